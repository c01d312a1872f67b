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
//
// Without exceptions (-fno-exceptions, or CTC_HPP_EXCEPTIONS defined to 0 before the include),
// the throwing functions are left out and the try_ functions remain: each returns a ctc::Status
// (the CtcStatus and the library's message) and throws nothing; they exist with exceptions on
// too. A View that cannot be described (more than 3 dimensions, a Kaldi matrix whose rows are
// not a multiple of the sequences) is then marked invalid, and the call it is passed to returns
// CTC_STATUS_INVALID_ARGUMENT naming the reason.
//
//   ctc::Status st = ctc::try_forward_backward(lp, tg, il, tl, loss, grad);
//   if (!st) log(st.message());
#ifndef CTC_HPP
#define CTC_HPP

#ifndef CTC_HPP_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define CTC_HPP_EXCEPTIONS 1
#else
#define CTC_HPP_EXCEPTIONS 0
#endif
#endif

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "ctc.h"

namespace ctc {

/// What a libctc call returned: the CtcStatus, and the library's message when it failed.
class Status {
 public:
  Status() = default;
  Status(CtcStatus code, std::string message) : code_(code), message_(std::move(message)) {}
  /// Whether the call succeeded.
  bool ok() const noexcept { return code_ == CTC_STATUS_SUCCESS; }
  explicit operator bool() const noexcept { return ok(); }
  /// The CtcStatus the call returned.
  CtcStatus code() const noexcept { return code_; }
  /// ctc_last_error_message() at the time of the failure ("" on success).
  const std::string& message() const noexcept { return message_; }

 private:
  CtcStatus code_ = CTC_STATUS_SUCCESS;
  std::string message_;
};

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

/// The Status of a C call that returned `status`.
inline Status status_of(CtcStatus status) {
  if (status == CTC_STATUS_SUCCESS) return Status();
  return Status(status, ctc_last_error_message());
}

#if CTC_HPP_EXCEPTIONS
inline void check(const Status& status) {
  if (!status) throw Error(status.code(), status.message());
}
#endif
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
/// elements. Views of `const T` are inputs only; passing one as an output fails. A view that
/// cannot be described throws ctc::Error, or without exceptions is marked invalid (see the top).
class View {
 public:
  /// `data` with the given extents and element strides (same length, at most 3).
  template <typename T>
  View(T* data, std::initializer_list<std::int64_t> shape,
       std::initializer_list<std::int64_t> strides, CtcDevice device = CTC_DEVICE_CPU,
       std::int32_t device_index = 0)
      : writable_(!std::is_const<T>::value) {
    using U = typename std::remove_cv<T>::type;
    if (shape.size() != strides.size() || shape.size() > 3) {
      invalidate("ctc::View needs as many strides as extents, at most 3");
      return;
    }
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
    if (nd > 3) {
      View v(data, {}, {});
      v.invalidate("ctc::View has at most 3 dimensions");
      return v;
    }
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
    if (num_sequences <= 0 || num_rows % num_sequences != 0) {
      View v(data, {}, {});
      v.invalidate("kaldi_matrix: num_rows is not a multiple of a positive num_sequences");
      return v;
    }
    return View(data, {num_rows / num_sequences, num_sequences, num_cols},
                {num_sequences * row_stride, row_stride, 1});
  }

  /// The C description.
  const CtcTensor& raw() const noexcept { return raw_; }
  /// Whether the view was made from a non-const pointer.
  bool writable() const noexcept { return writable_; }
  /// Why the view could not be described (no exceptions), else nullptr.
  const char* invalid() const noexcept { return invalid_; }

 private:
  /// Throws, or (no exceptions) marks the view invalid: ndim -1, which every call refuses.
  void invalidate(const char* why) {
#if CTC_HPP_EXCEPTIONS
    throw Error(CTC_STATUS_INVALID_ARGUMENT, why);
#else
    invalid_ = why;
    raw_.ndim = -1;
#endif
  }

  CtcTensor raw_{};
  bool writable_;
  const char* invalid_ = nullptr;
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
/// Why `v` cannot be passed as argument `name` (an output when `written`), or success.
inline Status usable(const View& v, const char* name, bool written) {
  if (v.invalid()) return Status(CTC_STATUS_INVALID_ARGUMENT, std::string(name) + ": " + v.invalid());
  if (written && !v.writable())
    return Status(CTC_STATUS_INVALID_ARGUMENT,
                  std::string(name) + " is a view of const memory but is written");
  return Status();
}

/// The first failure among the views' checks, else success.
inline Status usable_all(std::initializer_list<Status> checks) {
  for (const Status& s : checks)
    if (!s) return s;
  return Status();
}

/// The usual four inputs.
inline Status inputs(const View& log_probs, const View& targets, const View& input_lengths,
                     const View& target_lengths) {
  return usable_all({usable(log_probs, "log_probs", false), usable(targets, "targets", false),
                     usable(input_lengths, "input_lengths", false),
                     usable(target_lengths, "target_lengths", false)});
}
}  // namespace detail

/// ctc_loss_forward: writes the loss ((N,) for Reduction::None on a batch, else ()).
inline Status try_forward(const View& log_probs, const View& targets, const View& input_lengths,
                          const View& target_lengths, const View& loss,
                          const Options& options = {}) {
  Status bad = detail::usable_all({detail::inputs(log_probs, targets, input_lengths, target_lengths),
                                   detail::usable(loss, "loss", true)});
  if (!bad) return bad;
  CtcOptions o = options.raw();
  CtcTensor out = loss.raw();
  return detail::status_of(ctc_loss_forward(&log_probs.raw(), &targets.raw(),
                                            &input_lengths.raw(), &target_lengths.raw(), &o,
                                            &out));
}

/// ctc_loss_backward: writes the gradient of sum(loss * grad_loss) (grad_loss null = ones).
inline Status try_backward(const View& log_probs, const View& targets, const View& input_lengths,
                           const View& target_lengths, const View& grad_log_probs,
                           const Options& options = {}, const View* grad_loss = nullptr) {
  Status bad = detail::usable_all(
      {detail::inputs(log_probs, targets, input_lengths, target_lengths),
       detail::usable(grad_log_probs, "grad_log_probs", true),
       grad_loss ? detail::usable(*grad_loss, "grad_loss", false) : Status()});
  if (!bad) return bad;
  CtcOptions o = options.raw();
  CtcTensor grad = grad_log_probs.raw();
  return detail::status_of(ctc_loss_backward(&log_probs.raw(), &targets.raw(),
                                             &input_lengths.raw(), &target_lengths.raw(),
                                             grad_loss ? &grad_loss->raw() : nullptr, &o, &grad));
}

/// ctc_loss_forward_backward: loss and gradient in one pass.
inline Status try_forward_backward(const View& log_probs, const View& targets,
                                   const View& input_lengths, const View& target_lengths,
                                   const View& loss, const View& grad_log_probs,
                                   const Options& options = {}, const View* grad_loss = nullptr) {
  Status bad = detail::usable_all(
      {detail::inputs(log_probs, targets, input_lengths, target_lengths),
       detail::usable(loss, "loss", true), detail::usable(grad_log_probs, "grad_log_probs", true),
       grad_loss ? detail::usable(*grad_loss, "grad_loss", false) : Status()});
  if (!bad) return bad;
  CtcOptions o = options.raw();
  CtcTensor out = loss.raw();
  CtcTensor grad = grad_log_probs.raw();
  return detail::status_of(ctc_loss_forward_backward(
      &log_probs.raw(), &targets.raw(), &input_lengths.raw(), &target_lengths.raw(),
      grad_loss ? &grad_loss->raw() : nullptr, &o, &out, &grad));
}

/// ctc_workspace_size_for_call: bytes of options.workspace that `call` needs with these
/// arguments (Call::Forward needs far less than the gradient; Call::Align ~ N (L + C) sqrt(T)),
/// written to `bytes` on success.
inline Status try_workspace_size_for_call(Call call, const View& log_probs, const View& targets,
                                          const View& input_lengths, const View& target_lengths,
                                          std::size_t& bytes, const Options& options = {}) {
  Status bad = detail::inputs(log_probs, targets, input_lengths, target_lengths);
  if (!bad) return bad;
  CtcOptions o = options.raw();
  return detail::status_of(ctc_workspace_size_for_call(static_cast<CtcCall>(call),
                                                       &log_probs.raw(), &targets.raw(),
                                                       &input_lengths.raw(),
                                                       &target_lengths.raw(), &o, &bytes));
}

/// ctc_workspace_size: bytes of options.workspace any of the three loss calls needs.
inline Status try_workspace_size(const View& log_probs, const View& targets,
                                 const View& input_lengths, const View& target_lengths,
                                 std::size_t& bytes, const Options& options = {}) {
  Status bad = detail::inputs(log_probs, targets, input_lengths, target_lengths);
  if (!bad) return bad;
  CtcOptions o = options.raw();
  return detail::status_of(ctc_workspace_size(&log_probs.raw(), &targets.raw(),
                                              &input_lengths.raw(), &target_lengths.raw(), &o,
                                              &bytes));
}

/// ctc_align (forced alignment): writes `path`, (T, N) or unbatched (T,), int32_t or int64_t,
/// any strides: the class each sample's best alignment emits at frame t, -1 from
/// input_lengths[n] on; and `path_scores` unless null, (N,) or (), float of log_probs' dtype or
/// float: the path's total log-probability. A sample with no alignment gets -1 everywhere and
/// -inf; the call still succeeds. options.reduction and zero_infinity are ignored.
inline Status try_align(const View& log_probs, const View& targets, const View& input_lengths,
                        const View& target_lengths, const View& path,
                        const View* path_scores = nullptr, const Options& options = {}) {
  Status bad = detail::usable_all(
      {detail::inputs(log_probs, targets, input_lengths, target_lengths),
       detail::usable(path, "path", true),
       path_scores ? detail::usable(*path_scores, "path_scores", true) : Status()});
  if (!bad) return bad;
  CtcOptions o = options.raw();
  CtcTensor p = path.raw();
  CtcTensor sc{};
  if (path_scores) sc = path_scores->raw();
  return detail::status_of(ctc_align(&log_probs.raw(), &targets.raw(), &input_lengths.raw(),
                                     &target_lengths.raw(), &o, &p,
                                     path_scores ? &sc : nullptr));
}

#if CTC_HPP_EXCEPTIONS
/// try_forward, throwing ctc::Error on failure.
inline void forward(const View& log_probs, const View& targets, const View& input_lengths,
                    const View& target_lengths, const View& loss, const Options& options = {}) {
  detail::check(try_forward(log_probs, targets, input_lengths, target_lengths, loss, options));
}

/// try_backward, throwing ctc::Error on failure.
inline void backward(const View& log_probs, const View& targets, const View& input_lengths,
                     const View& target_lengths, const View& grad_log_probs,
                     const Options& options = {}, const View* grad_loss = nullptr) {
  detail::check(try_backward(log_probs, targets, input_lengths, target_lengths, grad_log_probs,
                             options, grad_loss));
}

/// try_forward_backward, throwing ctc::Error on failure.
inline void forward_backward(const View& log_probs, const View& targets,
                             const View& input_lengths, const View& target_lengths,
                             const View& loss, const View& grad_log_probs,
                             const Options& options = {}, const View* grad_loss = nullptr) {
  detail::check(try_forward_backward(log_probs, targets, input_lengths, target_lengths, loss,
                                     grad_log_probs, options, grad_loss));
}

/// try_workspace_size, returning the bytes; throws ctc::Error on failure.
inline std::size_t workspace_size(const View& log_probs, const View& targets,
                                  const View& input_lengths, const View& target_lengths,
                                  const Options& options = {}) {
  std::size_t bytes = 0;
  detail::check(
      try_workspace_size(log_probs, targets, input_lengths, target_lengths, bytes, options));
  return bytes;
}

/// try_workspace_size_for_call, returning the bytes; throws ctc::Error on failure.
inline std::size_t workspace_size_for_call(Call call, const View& log_probs, const View& targets,
                                           const View& input_lengths,
                                           const View& target_lengths,
                                           const Options& options = {}) {
  std::size_t bytes = 0;
  detail::check(try_workspace_size_for_call(call, log_probs, targets, input_lengths,
                                            target_lengths, bytes, options));
  return bytes;
}

/// try_align with the path and its scores; throws ctc::Error on failure.
inline void align(const View& log_probs, const View& targets, const View& input_lengths,
                  const View& target_lengths, const View& path, const View& path_scores,
                  const Options& options = {}) {
  detail::check(try_align(log_probs, targets, input_lengths, target_lengths, path, &path_scores,
                          options));
}

/// try_align writing the path alone; throws ctc::Error on failure.
inline void align(const View& log_probs, const View& targets, const View& input_lengths,
                  const View& target_lengths, const View& path, const Options& options = {}) {
  detail::check(
      try_align(log_probs, targets, input_lengths, target_lengths, path, nullptr, options));
}
#endif  // CTC_HPP_EXCEPTIONS

/// ctc_release_cached_memory: frees the host scratch memory kept between calls that bring no
/// workspace; returns the bytes freed. Never throws.
inline std::size_t release_cached_memory() noexcept { return ctc_release_cached_memory(); }

/// The library's version string ("MAJOR.MINOR.PATCH").
inline std::string version() { return ctc_version_string(); }

}  // namespace ctc

#endif  // CTC_HPP
