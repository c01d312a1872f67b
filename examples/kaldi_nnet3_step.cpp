// A CTC training step in the style of a Kaldi nnet3 minibatch, through the C++ binding.
//
// Kaldi lays a minibatch out as one matrix whose row t * num_sequences + n holds frame t of
// sequence n, with rows padded to a stride (CuMatrix::Stride()). The network output is
// log-softmaxed in place, libctc reads it through strides (no reshaping copy), and writes the
// derivative straight into the caller's strided derivative matrix. Kaldi maximizes an objective,
// so objective = -loss and the derivative it back-propagates is -grad.
//
// Build (after `cargo build --release`):
//   c++ -std=c++17 -O2 -Iinclude -Ibindings/cpp examples/kaldi_nnet3_step.cpp
//       -Ltarget/release -lctc -Wl,-rpath,$PWD/target/release -o kaldi_nnet3_step
//   (one command line)
// It recomputes everything from contiguous (T, N, C) copies and exits non-zero if the strided
// results differ in any bit.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "ctc.hpp"

int main() {
  const std::int64_t num_sequences = 4, frames = 40, dim = 12, stride = 16;  // stride > dim
  const std::int64_t rows = frames * num_sequences;
  std::vector<float> nnet_output(rows * stride, NAN);  // padding never read: NaN proves it
  std::vector<float> deriv(rows * stride, 0.0f);

  // Deterministic "network output", log-softmaxed row by row in place.
  std::uint64_t state = 2026;
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = &nnet_output[r * stride];
    double sum = 0;
    for (std::int64_t c = 0; c < dim; ++c) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      row[c] = static_cast<float>(4.0 * (static_cast<double>(state >> 11) / 9007199254740992.0) - 2.0);
      sum += std::exp(row[c]);
    }
    for (std::int64_t c = 0; c < dim; ++c) row[c] -= static_cast<float>(std::log(sum));
  }

  // Per-utterance supervision: frame counts and label sequences (blank = 0), concatenated.
  std::vector<std::int32_t> num_frames{40, 36, 29, 40};
  std::vector<std::int32_t> label_counts{12, 9, 7, 0};
  std::vector<std::int32_t> labels;
  for (std::int64_t n = 0; n < num_sequences; ++n)
    for (std::int32_t j = 0; j < label_counts[n]; ++j)
      labels.push_back(1 + static_cast<std::int32_t>((5 * n + 7 * j) % (dim - 1)));

  ctc::Options opts;
  opts.reduction = ctc::Reduction::None;
  std::vector<float> loss(num_sequences);
  auto input = ctc::View::kaldi_matrix(static_cast<const float*>(nnet_output.data()), rows, dim,
                                       stride, num_sequences);
  auto output_deriv = ctc::View::kaldi_matrix(deriv.data(), rows, dim, stride, num_sequences);
  auto targets = ctc::View::contiguous(labels.data(), {static_cast<std::int64_t>(labels.size())});
  auto in_len = ctc::View::contiguous(num_frames.data(), {num_sequences});
  auto tg_len = ctc::View::contiguous(label_counts.data(), {num_sequences});
  ctc::forward_backward(input, targets, in_len, tg_len,
                        ctc::View::contiguous(loss.data(), {num_sequences}), output_deriv, opts);

  double objective = 0;
  for (std::int64_t n = 0; n < num_sequences; ++n) {
    std::printf("utterance %lld: frames %d, labels %d, loss %.6f\n", static_cast<long long>(n),
                num_frames[n], label_counts[n], loss[n]);
    objective -= loss[n];
  }
  std::printf("objective (sum of log-likelihoods) %.6f\n", objective);

  // The same computation on contiguous (T, N, C) copies must give the same bits.
  std::vector<float> dense(frames * num_sequences * dim), dense_grad(dense.size());
  for (std::int64_t r = 0; r < rows; ++r)
    std::memcpy(&dense[r * dim], &nnet_output[r * stride], dim * sizeof(float));
  std::vector<float> dense_loss(num_sequences);
  ctc::forward_backward(ctc::View::contiguous(dense.data(), {frames, num_sequences, dim}), targets,
                        in_len, tg_len, ctc::View::contiguous(dense_loss.data(), {num_sequences}),
                        ctc::View::contiguous(dense_grad.data(), {frames, num_sequences, dim}),
                        opts);
  double max_diff = 0;
  bool padding_untouched = true;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < stride; ++c) {
      if (c < dim)
        max_diff = std::fmax(max_diff, std::fabs(deriv[r * stride + c] - dense_grad[r * dim + c]));
      else
        padding_untouched = padding_untouched && deriv[r * stride + c] == 0.0f;
    }
  for (std::int64_t n = 0; n < num_sequences; ++n)
    max_diff = std::fmax(max_diff, std::fabs(loss[n] - dense_loss[n]));
  std::printf("max |strided - contiguous| = %g, derivative padding untouched: %s\n", max_diff,
              padding_untouched ? "yes" : "no");
  return (max_diff == 0 && padding_untouched) ? 0 : 1;
}
