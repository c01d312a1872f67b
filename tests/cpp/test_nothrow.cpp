// The C++ binding without exceptions: built with -fno-exceptions (tests/cpp_api.rs), so only the
// status-returning try_ functions exist; every failure comes back as a ctc::Status with the
// library's message, and nothing is written.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ctc.hpp"

static_assert(CTC_HPP_EXCEPTIONS == 0, "this test is built with -fno-exceptions");

#include "check.h"

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// Two frames, three classes, target [1]: -log P = -log(p0[1] p1[1] + p0[0] p1[1] + p0[1] p1[0]).
struct TwoFrames {
  double p[2][3] = {{0.5, 0.3, 0.2}, {0.25, 0.6, 0.15}};
  std::vector<double> lp = std::vector<double>(6);
  std::int64_t target[1] = {1};
  std::int64_t input_length[1] = {2};
  std::int64_t target_length[1] = {1};

  TwoFrames() {
    for (int t = 0; t < 2; ++t)
      for (int c = 0; c < 3; ++c) lp[t * 3 + c] = std::log(p[t][c]);
  }
  ctc::View log_probs() const { return ctc::View::contiguous(lp.data(), {2, 1, 3}); }
  ctc::View tg() const { return ctc::View::contiguous(static_cast<const std::int64_t*>(target), {1, 1}); }
  ctc::View il() const { return ctc::View::contiguous(static_cast<const std::int64_t*>(input_length), {1}); }
  ctc::View tl() const { return ctc::View::contiguous(static_cast<const std::int64_t*>(target_length), {1}); }
  double expected() const { return -std::log(p[0][1] * p[1][1] + p[0][0] * p[1][1] + p[0][1] * p[1][0]); }
};

void test_success() {
  TwoFrames pr;
  ctc::Options opts;
  opts.reduction = ctc::Reduction::Sum;
  double loss = 0;
  std::vector<double> grad(6, 7.0);
  ctc::Status st = ctc::try_forward_backward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(),
                                             ctc::View::scalar(&loss),
                                             ctc::View::contiguous(grad.data(), {2, 1, 3}), opts);
  CHECK(st.ok() && static_cast<bool>(st) && st.code() == CTC_STATUS_SUCCESS && st.message().empty());
  CHECK(std::fabs(loss - pr.expected()) < 1e-14);
  double alone = 0;
  CHECK(ctc::try_forward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), ctc::View::scalar(&alone), opts));
  CHECK(alone == loss);
  std::size_t bytes = 0;
  CHECK(ctc::try_workspace_size(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), bytes, opts) && bytes > 0);
  std::size_t align_bytes = 0;
  CHECK(ctc::try_workspace_size_for_call(ctc::Call::Align, pr.log_probs(), pr.tg(), pr.il(),
                                         pr.tl(), align_bytes) &&
        align_bytes > 0);
  std::int64_t path[2] = {9, 9};
  double score = 0;
  auto sv = ctc::View::contiguous(&score, {1});
  CHECK(ctc::try_align(pr.log_probs(), pr.tg(), pr.il(), pr.tl(),
                       ctc::View::contiguous(path, {2, 1}), &sv));
  // The best path of target [1]: 0 1 (0.5 * 0.6) beats 1 1 (0.3 * 0.6) and 1 0 (0.3 * 0.25).
  CHECK(path[0] == 0 && path[1] == 1);
  CHECK(std::fabs(score - std::log(0.5 * 0.6)) < 1e-14);
}

void test_failures_write_nothing() {
  TwoFrames pr;
  pr.target[0] = 3;  // == C
  double loss = -5;
  ctc::Status st =
      ctc::try_forward(pr.log_probs(), pr.tg(), pr.il(), pr.tl(), ctc::View::scalar(&loss));
  CHECK(!st && st.code() == CTC_STATUS_INVALID_ARGUMENT);
  CHECK(contains(st.message(), "targets[0][0] = 3"));
  CHECK(loss == -5);

  TwoFrames ok;
  const double fixed = 0;
  st = ctc::try_forward(ok.log_probs(), ok.tg(), ok.il(), ok.tl(), ctc::View::scalar(&fixed));
  CHECK(st.code() == CTC_STATUS_INVALID_ARGUMENT && contains(st.message(), "loss is a view of const memory"));

  // Views that cannot be described are refused by the call they are passed to.
  double mat[14] = {};
  st = ctc::try_forward(ctc::View::kaldi_matrix(static_cast<const double*>(mat), 7, 2, 2, 2), ok.tg(),
                        ok.il(), ok.tl(), ctc::View::scalar(&loss));
  CHECK(st.code() == CTC_STATUS_INVALID_ARGUMENT && contains(st.message(), "log_probs: kaldi_matrix"));
  st = ctc::try_forward(ok.log_probs(), ok.tg(), ok.il(), ok.tl(),
                        ctc::View::contiguous(&loss, {1, 1, 1, 1}));
  CHECK(st.code() == CTC_STATUS_INVALID_ARGUMENT && contains(st.message(), "loss: ctc::View has at most 3"));
  CHECK(loss == -5);

  std::size_t bytes = 123;
  st = ctc::try_workspace_size(ok.log_probs(), pr.tg(), ok.il(), ok.tl(), bytes);
  CHECK(!st && bytes == 123);
  std::int64_t path[2] = {9, 9};
  st = ctc::try_align(ok.log_probs(), pr.tg(), ok.il(), ok.tl(), ctc::View::contiguous(path, {2, 1}));
  CHECK(!st && path[0] == 9 && path[1] == 9);
}

}  // namespace

int main() {
  test_success();
  test_failures_write_nothing();
  std::printf("C++ no-exceptions tests: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
