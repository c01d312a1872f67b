#include <cmath>

#include <ctc.hpp>

extern "C" double cpp_loss() {
  const double p[2][3] = {{0.2, 0.5, 0.3}, {0.6, 0.1, 0.3}};
  double lp[6];
  for (int t = 0; t < 2; ++t)
    for (int c = 0; c < 3; ++c) lp[t * 3 + c] = std::log(p[t][c]);
  const std::int64_t target = 1, il = 2, tl = 1;
  double loss = 0;
  ctc::forward(ctc::View::contiguous(static_cast<const double*>(lp), {2, 1, 3}),
               ctc::View::contiguous(&target, {1, 1}), ctc::View::contiguous(&il, {1}),
               ctc::View::contiguous(&tl, {1}), ctc::View::scalar(&loss));
  return loss;
}
