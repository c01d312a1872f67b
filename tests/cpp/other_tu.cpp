// Second translation unit including ctc.hpp: linking it with test_ctc_hpp.cpp fails if anything
// in the header is defined without `inline` (an ODR violation becomes a duplicate symbol).
#include <cmath>
#include <vector>

#include "ctc.hpp"

// -log P(target = [1] | two frames) with the given probabilities, through ctc.hpp.
double other_tu_two_frame_loss(const double (&p)[2][3]) {
  std::vector<double> lp(6);
  for (int t = 0; t < 2; ++t)
    for (int c = 0; c < 3; ++c) lp[t * 3 + c] = std::log(p[t][c]);
  const std::int64_t target = 1, input_length = 2, target_length = 1;
  double loss = 0;
  ctc::Options opts;
  opts.reduction = ctc::Reduction::Sum;
  ctc::forward(ctc::View::contiguous(lp.data(), {2, 1, 3}), ctc::View::contiguous(&target, {1, 1}),
               ctc::View::contiguous(&input_length, {1}),
               ctc::View::contiguous(&target_length, {1}), ctc::View::scalar(&loss), opts);
  return loss;
}
