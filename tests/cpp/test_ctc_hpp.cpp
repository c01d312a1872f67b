// Tests of the header-only C++ binding (bindings/cpp/ctc.hpp), built from two translation units
// with -Wall -Wextra -pedantic -Werror and run by `cargo test` (tests/cpp_api.rs).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ctc.hpp"

double other_tu_two_frame_loss(const double (&p)[2][3]);

static int passed = 0, failed = 0;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (cond) {                                                       \
      ++passed;                                                       \
    } else {                                                          \
      ++failed;                                                       \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                 \
  } while (0)

namespace {

struct Problem {
  std::int64_t T = 24, N = 3, C = 7, S = 5;
  std::vector<float> lp;
  std::vector<std::int32_t> targets;
  std::vector<std::int64_t> input_lengths{24, 20, 11};
  std::vector<std::int64_t> target_lengths{5, 3, 0};

  Problem() : lp(T * N * C), targets(N * S, -1) {
    std::uint64_t state = 12345;
    auto next = [&state]() {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      return static_cast<double>(state >> 11) / 9007199254740992.0;
    };
    for (std::int64_t r = 0; r < T * N; ++r) {
      double sum = 0;
      std::vector<double> x(C);
      for (std::int64_t c = 0; c < C; ++c) sum += (x[c] = std::exp(3 * next()));
      for (std::int64_t c = 0; c < C; ++c) lp[r * C + c] = static_cast<float>(std::log(x[c] / sum));
    }
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t j = 0; j < target_lengths[n]; ++j)
        targets[n * S + j] = static_cast<std::int32_t>(1 + (n + 3 * j) % (C - 1));
  }
  ctc::View log_probs() const { return ctc::View::contiguous(lp.data(), {T, N, C}); }
  ctc::View tg() const { return ctc::View::contiguous(targets.data(), {N, S}); }
  ctc::View il() const { return ctc::View::contiguous(input_lengths.data(), {N}); }
  ctc::View tl() const { return ctc::View::contiguous(target_lengths.data(), {N}); }
};

void test_analytic_two_frames_in_other_translation_unit() {
  const double p[2][3] = {{0.2, 0.5, 0.3}, {0.6, 0.1, 0.3}};
  double expected = -std::log(p[0][1] * p[1][1] + p[0][0] * p[1][1] + p[0][1] * p[1][0]);
  CHECK(std::fabs(other_tu_two_frame_loss(p) - expected) < 1e-14);
}

void test_fused_equals_separate_calls_and_kaldi_view() {
  Problem pr;
  ctc::Options opts;
  opts.reduction = ctc::Reduction::None;
  std::vector<float> loss(pr.N), loss2(pr.N), grad(pr.T * pr.N * pr.C), grad2(grad.size());
  ctc::forward_backward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(),
                        ctc::View::contiguous(loss.data(), {pr.N}),
                        ctc::View::contiguous(grad.data(), {pr.T, pr.N, pr.C}), opts);
  ctc::forward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), ctc::View::contiguous(loss2.data(), {pr.N}),
               opts);
  ctc::backward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(),
                ctc::View::contiguous(grad2.data(), {pr.T, pr.N, pr.C}), opts);
  CHECK(std::memcmp(loss.data(), loss2.data(), loss.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(grad.data(), grad2.data(), grad.size() * sizeof(float)) == 0);
  CHECK(std::isfinite(loss[0]) && loss[0] > 0 && std::isfinite(loss[2]));
  // Frames past input_lengths[2] = 11 get zero gradient.
  CHECK(grad[(15 * pr.N + 2) * pr.C + 1] == 0.0f);

  // The same problem as a Kaldi minibatch matrix: rows t * N + n, row stride 10 > C.
  const std::int64_t stride = 10;
  std::vector<float> mat(pr.T * pr.N * stride, NAN), deriv(pr.T * pr.N * stride, 42.0f);
  for (std::int64_t r = 0; r < pr.T * pr.N; ++r)
    for (std::int64_t c = 0; c < pr.C; ++c) mat[r * stride + c] = pr.lp[r * pr.C + c];
  std::vector<float> loss3(pr.N);
  auto in = ctc::View::kaldi_matrix(static_cast<const float*>(mat.data()), pr.T * pr.N, pr.C, stride, pr.N);
  ctc::forward_backward(in, pr.tg(), pr.il(), pr.tl(), ctc::View::contiguous(loss3.data(), {pr.N}),
                        ctc::View::kaldi_matrix(deriv.data(), pr.T * pr.N, pr.C, stride, pr.N), opts);
  CHECK(std::memcmp(loss.data(), loss3.data(), loss.size() * sizeof(float)) == 0);
  bool same = true, padding_untouched = true;
  for (std::int64_t r = 0; r < pr.T * pr.N; ++r)
    for (std::int64_t c = 0; c < stride; ++c) {
      if (c < pr.C)
        same = same && deriv[r * stride + c] == grad[r * pr.C + c];
      else
        padding_untouched = padding_untouched && deriv[r * stride + c] == 42.0f;
    }
  CHECK(same);
  CHECK(padding_untouched);
}

void test_workspace() {
  Problem pr;
  std::size_t bytes = ctc::workspace_size(pr.log_probs(), pr.tg(), pr.il(), pr.tl());
  CHECK(bytes > 0);
  std::vector<unsigned char> ws(bytes + 1);
  ctc::Options opts;
  opts.workspace = ws.data() + 1;
  opts.workspace_bytes = bytes;
  float a = 0, b = 0;
  ctc::forward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), ctc::View::scalar(&a));
  ctc::forward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), ctc::View::scalar(&b), opts);
  CHECK(a == b);
  opts.workspace_bytes = 3;
  try {
    ctc::forward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), ctc::View::scalar(&b), opts);
    CHECK(false);
  } catch (const ctc::Error& e) {
    CHECK(e.status() == CTC_STATUS_INVALID_ARGUMENT);
    CHECK(e.message().find("workspace_bytes = 3") != std::string::npos);
  }
}

void test_errors_throw_and_leave_outputs_alone() {
  Problem pr;
  pr.targets[1 * pr.S + 2] = 7;  // == C: out of range
  float loss = -5.0f;
  try {
    ctc::forward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), ctc::View::scalar(&loss));
    CHECK(false);
  } catch (const ctc::Error& e) {
    CHECK(e.status() == CTC_STATUS_INVALID_ARGUMENT);
    CHECK(e.message().find("targets[1][2] = 7") != std::string::npos);
    CHECK(std::string(e.what()).find("invalid argument: ") == 0);
  }
  CHECK(loss == -5.0f);
  // A view of const memory cannot be an output.
  const float fixed = 0;
  try {
    Problem ok;
    ctc::forward(ok.log_probs(), ok.tg(), ok.il(), ok.tl(), ctc::View::scalar(&fixed));
    CHECK(false);
  } catch (const ctc::Error& e) {
    CHECK(e.message().find("const") != std::string::npos);
  }
  // Kaldi helper checks its own arguments.
  try {
    ctc::View::kaldi_matrix(&loss, 7, 1, 1, 2);
    CHECK(false);
  } catch (const ctc::Error& e) {
    CHECK(e.status() == CTC_STATUS_INVALID_ARGUMENT);
  }
  CHECK(ctc::version() == CTC_VERSION_STRING);
}

}  // namespace

int main() {
  test_analytic_two_frames_in_other_translation_unit();
  test_fused_equals_separate_calls_and_kaldi_view();
  test_workspace();
  test_errors_throw_and_leave_outputs_alone();
  std::printf("C++ tests: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
