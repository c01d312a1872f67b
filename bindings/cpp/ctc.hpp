// libctc C++ binding: header-only, C++17, no dependencies beyond ctc.h.
//
//   #include <ctc.hpp>
//   auto lp   = ctc::View::contiguous(log_probs.data(), {T, N, C});   // const float*
//   auto tg   = ctc::View::contiguous(targets.data(), {N, S});         // int64_t / int32_t
//   auto il   = ctc::View::contiguous(input_lengths.data(), {N});
//   auto tl   = ctc::View::contiguous(target_lengths.data(), {N});
//   float loss;
//   ctc::forward_backward(lp, tg, il, tl, ctc::View::scalar(&loss),
//                         ctc::View::contiguous(grad.data(), {T, N, C}));
//
//   std::vector<std::int64_t> path(T * N);                             // forced alignment
//   ctc::align(lp, tg, il, tl, ctc::View::contiguous(path.data(), {T, N}));
//
// Views describe caller-owned memory (pointer, shape, strides in elements) and own nothing.
// Every function throws ctc::Error (status + ctc_last_error_message()) when the C call fails;
// on failure nothing was written. Thread safety: as the C functions (any thread, any time).
#ifndef CTC_HPP
#define CTC_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "ctc.h"

namespace ctc {

/// A failed libctc call: the CtcStatus and the library's message.
class Error : public std::runtime_error {
 public:
  Error(CtcStatus status, const std::string& message)
      : std::runtime_error(std::string(ctc_status_string(status)) + ": " + message),
        status_(status),
        message_(message) {}
  /// The CtcStatus the call returned.
  CtcStatus status() const noexcept { return status_; }
  /// ctc_last_error_message() at the time of the failure.
  const std::string& message() const noexcept { return message_; }

 private:
  CtcStatus status_;
  std::string message_;
};

namespace detail {
template <typename T>
struct dtype_of;
template <>
struct dtype_of<float> : std::integral_constant<CtcDType, CTC_DTYPE_FLOAT32> {};
template <>
struct dtype_of<double> : std::integral_constant<CtcDType, CTC_DTYPE_FLOAT64> {};
template <>
struct dtype_of<std::int32_t> : std::integral_constant<CtcDType, CTC_DTYPE_INT32> {};
template <>
struct dtype_of<std::int64_t> : std::integral_constant<CtcDType, CTC_DTYPE_INT64> {};

inline void check(CtcStatus status) {
  if (status != CTC_STATUS_SUCCESS) throw Error(status, ctc_last_error_message());
}
}  // namespace detail

/// Which computation a workspace is sized for (ctc_workspace_size_for_call).
enum class Call : std::int32_t {
  Forward = CTC_CALL_FORWARD,
  Backward = CTC_CALL_BACKWARD,
  ForwardBackward = CTC_CALL_FORWARD_BACKWARD,
  Align = CTC_CALL_ALIGN,
};

/// How per-sample losses are combined.
enum class Reduction : std::int32_t {
  None = CTC_REDUCTION_NONE,
  Mean = CTC_REDUCTION_MEAN,
  Sum = CTC_REDUCTION_SUM,
};

/// A typed-at-construction, type-erased view of caller memory: up to 3 dimensions, strides in
/// elements. Views of `const T` are inputs only; passing one as an output throws.
class View {
 public:
  /// `data` with the given extents and element strides (same length, at most 3).
  template <typename T>
  View(T* data, std::initializer_list<std::int64_t> shape,
       std::initializer_list<std::int64_t> strides, CtcDevice device = CTC_DEVICE_CPU,
       std::int32_t device_index = 0)
      : writable_(!std::is_const<T>::value) {
    using U = typename std::remove_cv<T>::type;
    if (shape.size() != strides.size() || shape.size() > 3)
      throw Error(CTC_STATUS_INVALID_ARGUMENT,
                  "ctc::View needs as many strides as extents, at most 3");
    raw_.data = const_cast<U*>(data);
    raw_.dtype = detail::dtype_of<U>::value;
    raw_.device = device;
    raw_.device_index = device_index;
    raw_.ndim = static_cast<std::int32_t>(shape.size());
    std::size_t i = 0;
    for (std::int64_t n : shape) raw_.shape[i++] = n;
    i = 0;
    for (std::int64_t s : strides) raw_.strides[i++] = s;
  }

  /// Row-major (C-contiguous) memory of the given extents.
  template <typename T>
  static View contiguous(T* data, std::initializer_list<std::int64_t> shape) {
    std::array<std::int64_t, 3> st{};
    std::array<std::int64_t, 3> sh{};
    std::size_t nd = shape.size();
    if (nd > 3) throw Error(CTC_STATUS_INVALID_ARGUMENT, "ctc::View has at most 3 dimensions");
    std::size_t i = 0;
    for (std::int64_t n : shape) sh[i++] = n;
    std::int64_t stride = 1;
    for (std::size_t k = nd; k-- > 0;) {
      st[k] = stride;
      stride *= sh[k];
    }
    View v(data, {}, {});
    v.raw_.ndim = static_cast<std::int32_t>(nd);
    v.raw_.shape[0] = sh[0];
    v.raw_.shape[1] = sh[1];
    v.raw_.shape[2] = sh[2];
    v.raw_.strides[0] = st[0];
    v.raw_.strides[1] = st[1];
    v.raw_.strides[2] = st[2];
    return v;
  }

  /// One element (a 0-dimensional tensor), e.g. a reduced loss.
  template <typename T>
  static View scalar(T* data) {
    return View(data, {}, {});
  }

  /// A Kaldi-style minibatch matrix seen as (T, N, C): `num_rows = T * num_sequences` rows of
  /// `num_cols = C` values, row `t * num_sequences + n` holding frame t of sequence n, rows
  /// `row_stride >= num_cols` elements apart (Kaldi's Stride()).
  template <typename T>
  static View kaldi_matrix(T* data, std::int64_t num_rows, std::int64_t num_cols,
                           std::int64_t row_stride, std::int64_t num_sequences) {
    if (num_sequences <= 0 || num_rows % num_sequences != 0)
      throw Error(CTC_STATUS_INVALID_ARGUMENT,
                  "kaldi_matrix: num_rows = " + std::to_string(num_rows) +
                      " is not a multiple of num_sequences = " + std::to_string(num_sequences));
    return View(data, {num_rows / num_sequences, num_sequences, num_cols},
                {num_sequences * row_stride, row_stride, 1});
  }

  /// The C description.
  const CtcTensor& raw() const noexcept { return raw_; }
  /// Whether the view was made from a non-const pointer.
  bool writable() const noexcept { return writable_; }

 private:
  CtcTensor raw_{};
  bool writable_;
};

/// Options with the library's defaults (blank 0, mean, no zero_infinity, default threads).
struct Options {
  std::int32_t blank = 0;
  Reduction reduction = Reduction::Mean;
  bool zero_infinity = false;
  std::uint32_t num_threads = 0;
  void* cuda_stream = nullptr;
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  /// The true derivative with respect to arbitrary log-scores, -posterior * grad_loss
  /// (CTC_GRADIENT_EXACT), instead of torch's (exp(lp) - posterior) * grad_loss.
  bool exact_gradient = false;
  /// The first tensor holds logits (CTC_INPUT_LOGITS): log_softmax is applied inside, the
  /// gradient is taken with respect to the logits ((softmax - posterior) * grad_loss).
  bool from_logits = false;

  /// The C options (struct_size set by ctc_options_default()).
  CtcOptions raw() const {
    CtcOptions o = ctc_options_default();
    o.blank = blank;
    o.reduction = static_cast<CtcReduction>(reduction);
    o.zero_infinity = zero_infinity;
    o.num_threads = num_threads;
    o.cuda_stream = cuda_stream;
    o.workspace = workspace;
    o.workspace_bytes = workspace_bytes;
    o.gradient = exact_gradient ? CTC_GRADIENT_EXACT : CTC_GRADIENT_TORCH;
    o.input = from_logits ? CTC_INPUT_LOGITS : CTC_INPUT_LOG_PROBS;
    return o;
  }
};

namespace detail {
inline const CtcTensor* output(const View& v, const char* name) {
  if (!v.writable())
    throw Error(CTC_STATUS_INVALID_ARGUMENT,
                std::string(name) + " is a view of const memory but is written");
  return &v.raw();
}
}  // namespace detail

/// ctc_loss_forward: writes the loss ((N,) for Reduction::None on a batch, else ()).
inline void forward(const View& log_probs, const View& targets, const View& input_lengths,
                    const View& target_lengths, const View& loss, const Options& options = {}) {
  CtcOptions o = options.raw();
  CtcTensor out = *detail::output(loss, "loss");
  detail::check(ctc_loss_forward(&log_probs.raw(), &targets.raw(), &input_lengths.raw(),
                                 &target_lengths.raw(), &o, &out));
}

/// ctc_loss_backward: writes the gradient of sum(loss * grad_loss) (grad_loss null = ones).
inline void backward(const View& log_probs, const View& targets, const View& input_lengths,
                     const View& target_lengths, const View& grad_log_probs,
                     const Options& options = {}, const View* grad_loss = nullptr) {
  CtcOptions o = options.raw();
  CtcTensor grad = *detail::output(grad_log_probs, "grad_log_probs");
  detail::check(ctc_loss_backward(&log_probs.raw(), &targets.raw(), &input_lengths.raw(),
                                  &target_lengths.raw(), grad_loss ? &grad_loss->raw() : nullptr,
                                  &o, &grad));
}

/// ctc_loss_forward_backward: loss and gradient in one pass.
inline void forward_backward(const View& log_probs, const View& targets,
                             const View& input_lengths, const View& target_lengths,
                             const View& loss, const View& grad_log_probs,
                             const Options& options = {}, const View* grad_loss = nullptr) {
  CtcOptions o = options.raw();
  CtcTensor out = *detail::output(loss, "loss");
  CtcTensor grad = *detail::output(grad_log_probs, "grad_log_probs");
  detail::check(ctc_loss_forward_backward(&log_probs.raw(), &targets.raw(),
                                          &input_lengths.raw(), &target_lengths.raw(),
                                          grad_loss ? &grad_loss->raw() : nullptr, &o, &out,
                                          &grad));
}

/// ctc_workspace_size: bytes of options.workspace any of the three calls needs.
inline std::size_t workspace_size(const View& log_probs, const View& targets,
                                  const View& input_lengths, const View& target_lengths,
                                  const Options& options = {}) {
  CtcOptions o = options.raw();
  std::size_t bytes = 0;
  detail::check(ctc_workspace_size(&log_probs.raw(), &targets.raw(), &input_lengths.raw(),
                                    &target_lengths.raw(), &o, &bytes));
  return bytes;
}

/// ctc_workspace_size_for_call: bytes of options.workspace that `call` needs with these
/// arguments (Call::Forward needs far less than the gradient; Call::Align ~ N (L + C) sqrt(T)).
inline std::size_t workspace_size_for_call(Call call, const View& log_probs, const View& targets,
                                           const View& input_lengths,
                                           const View& target_lengths,
                                           const Options& options = {}) {
  CtcOptions o = options.raw();
  std::size_t bytes = 0;
  detail::check(ctc_workspace_size_for_call(static_cast<CtcCall>(call), &log_probs.raw(),
                                            &targets.raw(), &input_lengths.raw(),
                                            &target_lengths.raw(), &o, &bytes));
  return bytes;
}

/// ctc_align (forced alignment): writes `path`, (T, N) or unbatched (T,), int32_t or int64_t,
/// any strides: the class each sample's best alignment emits at frame t, -1 from
/// input_lengths[n] on; and `path_scores`, (N,) or (), float of log_probs' dtype: the path's
/// total log-probability. A sample with no alignment gets -1 everywhere and -inf; the call
/// still succeeds. options.reduction and zero_infinity are ignored.
inline void align(const View& log_probs, const View& targets, const View& input_lengths,
                  const View& target_lengths, const View& path, const View& path_scores,
                  const Options& options = {}) {
  CtcOptions o = options.raw();
  CtcTensor p = *detail::output(path, "path");
  CtcTensor s = *detail::output(path_scores, "path_scores");
  detail::check(ctc_align(&log_probs.raw(), &targets.raw(), &input_lengths.raw(),
                          &target_lengths.raw(), &o, &p, &s));
}

/// ctc_align writing the path alone.
inline void align(const View& log_probs, const View& targets, const View& input_lengths,
                  const View& target_lengths, const View& path, const Options& options = {}) {
  CtcOptions o = options.raw();
  CtcTensor p = *detail::output(path, "path");
  detail::check(ctc_align(&log_probs.raw(), &targets.raw(), &input_lengths.raw(),
                          &target_lengths.raw(), &o, &p, nullptr));
}

/// ctc_release_cached_memory: frees the host scratch memory kept between calls that bring no
/// workspace; returns the bytes freed. Never throws.
inline std::size_t release_cached_memory() noexcept { return ctc_release_cached_memory(); }

/// The library's version string ("MAJOR.MINOR.PATCH").
inline std::string version() { return ctc_version_string(); }

}  // namespace ctc

#endif  // CTC_HPP
