// Tests of the header-only C++ binding (bindings/cpp/ctc.hpp), built from two translation units
// with -Wall -Wextra -pedantic -Werror and run by `cargo test` (tests/cpp_api.rs).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ctc.hpp"

double other_tu_two_frame_loss(const double (&p)[2][3]);

#include "check.h"

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

// Logits: log-probabilities plus a different constant per frame are logits whose log_softmax is
// those log-probabilities; the loss and gradient are theirs (float32 rounding apart), and the
// workspace grows by the frames' shifts. The exact gradient: torch's minus exp(lp).
void test_from_logits_and_exact_gradient() {
  Problem pr;
  std::vector<float> logits(pr.lp.size());
  for (std::int64_t r = 0; r < pr.T * pr.N; ++r)
    for (std::int64_t c = 0; c < pr.C; ++c)
      logits[r * pr.C + c] = pr.lp[r * pr.C + c] + static_cast<float>(r % 5) * 3.0f;
  auto x = ctc::View::contiguous(static_cast<const float*>(logits.data()), {pr.T, pr.N, pr.C});
  ctc::Options lp_opts, x_opts, exact_opts;
  lp_opts.reduction = x_opts.reduction = exact_opts.reduction = ctc::Reduction::None;
  x_opts.from_logits = true;
  exact_opts.exact_gradient = true;
  std::vector<float> loss(pr.N), grad(pr.lp.size()), xloss(pr.N), xgrad(pr.lp.size()),
      eloss(pr.N), egrad(pr.lp.size());
  ctc::forward_backward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(),
                        ctc::View::contiguous(loss.data(), {pr.N}),
                        ctc::View::contiguous(grad.data(), {pr.T, pr.N, pr.C}), lp_opts);
  ctc::forward_backward(x, pr.tg(), pr.il(), pr.tl(), ctc::View::contiguous(xloss.data(), {pr.N}),
                        ctc::View::contiguous(xgrad.data(), {pr.T, pr.N, pr.C}), x_opts);
  ctc::forward_backward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(),
                        ctc::View::contiguous(eloss.data(), {pr.N}),
                        ctc::View::contiguous(egrad.data(), {pr.T, pr.N, pr.C}), exact_opts);
  bool close = true, relation = true;
  for (std::int64_t n = 0; n < pr.N; ++n)
    close = close && std::fabs(loss[n] - xloss[n]) <= 1e-4f * std::fabs(loss[n]) + 1e-5f;
  for (std::size_t i = 0; i < grad.size(); ++i) {
    close = close && std::fabs(grad[i] - xgrad[i]) < 1e-4f;
    std::int64_t t = static_cast<std::int64_t>(i) / (pr.N * pr.C);
    std::int64_t n = (static_cast<std::int64_t>(i) / pr.C) % pr.N;
    float want = t < pr.input_lengths[n] ? grad[i] - std::exp(pr.lp[i]) : 0.0f;
    relation = relation && std::fabs(egrad[i] - want) < 1e-5f;
  }
  CHECK(close);
  CHECK(relation);
  CHECK(ctc::workspace_size(x, pr.tg(), pr.il(), pr.tl(), x_opts) >
        ctc::workspace_size(x, pr.tg(), pr.il(), pr.tl(), lp_opts));
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
  // The try_ form of the same call: a Status with the exception's code and message.
  ctc::Status st = ctc::try_forward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), ctc::View::scalar(&loss));
  CHECK(!st && st.code() == CTC_STATUS_INVALID_ARGUMENT);
  CHECK(st.message().find("targets[1][2] = 7") != std::string::npos);
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

// Forced alignment of three samples whose best paths are known by hand: T = 4, C = 3, blank 0.
// Sample 0, target [1, 2], 4 frames: 1 1 0 2 (0.8 * 0.7 * 0.6 * 0.8 beats every other path);
// sample 1, the same emissions and target over 3 frames: 1 1 2 (0.8 * 0.7 * 0.2); sample 2,
// target [1, 1] in 2 frames: impossible (a blank must separate the repeat).
void test_align_known_paths() {
  const double p[4][3] = {{0.1, 0.8, 0.1}, {0.2, 0.7, 0.1}, {0.6, 0.2, 0.2}, {0.1, 0.1, 0.8}};
  const std::int64_t T = 4, N = 3, C = 3;
  std::vector<double> lp(T * N * C);
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c) lp[(t * N + n) * C + c] = std::log(p[t][c]);
  const std::int64_t targets[3][2] = {{1, 2}, {1, 2}, {1, 1}};
  const std::int32_t il[3] = {4, 3, 2}, tl[3] = {2, 2, 2};
  auto lpv = ctc::View::contiguous(static_cast<const double*>(lp.data()), {T, N, C});
  auto tgv = ctc::View::contiguous(&targets[0][0], {N, 2});
  auto ilv = ctc::View::contiguous(il, {N});
  auto tlv = ctc::View::contiguous(tl, {N});
  // The path written batch-first, (N, T) memory seen as (T, N), int32.
  std::int32_t path[3][4];
  std::vector<double> scores(N);
  ctc::align(lpv, tgv, ilv, tlv, ctc::View(&path[0][0], {T, N}, {1, T}),
             ctc::View::contiguous(scores.data(), {N}));
  const std::int32_t expected[3][4] = {{1, 1, 0, 2}, {1, 1, 2, -1}, {-1, -1, -1, -1}};
  CHECK(std::memcmp(path, expected, sizeof path) == 0);
  CHECK(std::fabs(scores[0] - std::log(0.8 * 0.7 * 0.6 * 0.8)) < 1e-12);
  CHECK(std::fabs(scores[1] - std::log(0.8 * 0.7 * 0.2)) < 1e-12);
  CHECK(std::isinf(scores[2]) && scores[2] < 0);
  // The path alone, time-first int64, with one thread.
  std::vector<std::int64_t> path64(T * N, 99);
  ctc::Options one;
  one.num_threads = 1;
  ctc::align(lpv, tgv, ilv, tlv, ctc::View::contiguous(path64.data(), {T, N}), one);
  bool same = true;
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t n = 0; n < N; ++n) same = same && path64[t * N + n] == expected[n][t];
  CHECK(same);
}

void test_align_problem_workspace_and_errors() {
  Problem pr;
  std::vector<std::int64_t> path(pr.T * pr.N);
  std::vector<float> scores(pr.N);
  auto pv = ctc::View::contiguous(path.data(), {pr.T, pr.N});
  auto sv = ctc::View::contiguous(scores.data(), {pr.N});
  ctc::align(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), pv, sv);
  bool valid = true;
  for (std::int64_t n = 0; n < pr.N; ++n) {
    std::vector<std::int32_t> spelled;
    double sum = 0;
    std::int64_t prev = -1;
    for (std::int64_t t = 0; t < pr.T; ++t) {
      std::int64_t c = path[t * pr.N + n];
      if (t >= pr.input_lengths[n]) {
        valid = valid && c == -1;
        continue;
      }
      sum += pr.lp[(t * pr.N + n) * pr.C + c];
      if (c != 0 && c != prev) spelled.push_back(static_cast<std::int32_t>(c));
      prev = c;
    }
    std::vector<std::int32_t> target(pr.targets.begin() + n * pr.S,
                                     pr.targets.begin() + n * pr.S + pr.target_lengths[n]);
    valid = valid && spelled == target && std::fabs(sum - scores[n]) < 1e-4 * (1 + std::fabs(sum));
  }
  CHECK(valid);

  // A caller workspace of the size Call::Align asks for gives the same path.
  std::size_t bytes = ctc::workspace_size_for_call(ctc::Call::Align, pr.log_probs(), pr.tg(),
                                                   pr.il(), pr.tl());
  CHECK(bytes > 0);
  CHECK(ctc::workspace_size_for_call(ctc::Call::Forward, pr.log_probs(), pr.tg(), pr.il(),
                                     pr.tl()) > 0);
  std::vector<unsigned char> ws(bytes);
  ctc::Options opts;
  opts.workspace = ws.data();
  opts.workspace_bytes = bytes;
  std::vector<std::int64_t> path2(path.size(), 7);
  ctc::align(pr.log_probs(), pr.tg(), pr.il(), pr.tl(),
             ctc::View::contiguous(path2.data(), {pr.T, pr.N}), opts);
  CHECK(path2 == path);
  opts.workspace_bytes = bytes - 1;
  try {
    ctc::align(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), pv, opts);
    CHECK(false);
  } catch (const ctc::Error& e) {
    CHECK(e.status() == CTC_STATUS_INVALID_ARGUMENT);
  }
  (void)ctc::release_cached_memory();  // whatever was cached; never throws
  CHECK(ctc::release_cached_memory() == 0);

  // The blank as a label: an error naming it, the outputs untouched.
  pr.targets[0 * pr.S + 1] = 0;
  std::vector<std::int64_t> untouched(path.size(), 5);
  try {
    ctc::align(pr.log_probs(), pr.tg(), pr.il(), pr.tl(),
               ctc::View::contiguous(untouched.data(), {pr.T, pr.N}), sv);
    CHECK(false);
  } catch (const ctc::Error& e) {
    CHECK(e.status() == CTC_STATUS_INVALID_ARGUMENT);
    CHECK(e.message().find("targets[0][1] = 0") != std::string::npos);
  }
  CHECK(untouched == std::vector<std::int64_t>(path.size(), 5));
  const std::int64_t* fixed = path.data();
  try {
    Problem ok;
    ctc::align(ok.log_probs(), ok.tg(), ok.il(), ok.tl(),
               ctc::View::contiguous(fixed, {ok.T, ok.N}));
    CHECK(false);
  } catch (const ctc::Error& e) {
    CHECK(e.message().find("path is a view of const memory") != std::string::npos);
  }
}

}  // namespace

int main() {
  test_analytic_two_frames_in_other_translation_unit();
  test_fused_equals_separate_calls_and_kaldi_view();
  test_workspace();
  test_from_logits_and_exact_gradient();
  test_errors_throw_and_leave_outputs_alone();
  test_align_known_paths();
  test_align_problem_workspace_and_errors();
  std::printf("C++ tests: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
