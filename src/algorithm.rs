//! The CTC recurrence, written down once. Every backend (the CPU code in `src/cpu/`, the CUDA
//! kernels in `src/cuda/kernels/*.cu`) implements exactly this and uses the names defined here.
//!
//! # Notation
//!
//! For one sample `b` of the batch, `lp[t][c]` is `log_probs[t][b][c]`, the log-probability of
//! class `c` at frame `t`, for `0 <= t < T_b` (`T_b = input_lengths[b]`) and `0 <= c < C`.
//! The target is `l[0..L)` (`L = target_lengths[b]`), labels in `[0, C)` and never `blank`.
//!
//! # Extended labels
//!
//! The extended target `l'` has `S' = 2L + 1` states: a blank before, between and after the
//! labels. `target_prime(s)` is the class of state `s`:
//!
//! ```text
//! target_prime(s) = blank          if s is even
//!                 = l[(s - 1) / 2] if s is odd
//! ```
//!
//! # Skip rule
//!
//! A path may move from state `s - 2` straight to state `s` (skipping the blank between them)
//! only when `s` is a label state whose label differs from the label two states back:
//! `s` odd, `s >= 2` and `target_prime(s) != target_prime(s - 2)`. Repeated labels therefore need
//! a blank between them, which is why `L` labels with `R` adjacent repeats need `T_b >= L + R`
//! frames; with fewer, no path exists and the loss is `+inf`.
//!
//! # Forward variable (alpha)
//!
//! `log_alpha[t][s]` is the log of the total probability of all path prefixes of length `t + 1`
//! that end in state `s`:
//!
//! ```text
//! log_alpha[0][0] = lp[0][blank]
//! log_alpha[0][1] = lp[0][l[0]]                    (when L > 0)
//! log_alpha[0][s] = -inf                           for s >= 2
//! log_alpha[t][s] = log_add_exp(log_alpha[t-1][s],
//!                               log_alpha[t-1][s-1]              (s >= 1),
//!                               log_alpha[t-1][s-2]              (skip rule))
//!                   + lp[t][target_prime(s)]
//! ```
//!
//! # Loss
//!
//! A complete path ends in the last label or the final blank:
//!
//! ```text
//! nll = -log_add_exp(log_alpha[T_b-1][S'-1], log_alpha[T_b-1][S'-2])   (L > 0)
//! nll = -log_alpha[T_b-1][0]                                            (L = 0)
//! nll = 0 if L = 0, +inf otherwise                                      (T_b = 0)
//! ```
//!
//! `log_probs` need not be normalized: the formula is applied as written (as torch does).
//! With `zero_infinity`, an infinite `nll` becomes 0. The reductions are those of torch:
//! `none` returns `nll[b]`, `sum` returns `sum_b nll[b]`, `mean` returns
//! `(1/N) sum_b nll[b] / max(L_b, 1)`.
//!
//! # Backward variable (beta)
//!
//! `log_beta[t][s]` is the log of the total probability of all path suffixes that occupy state `s`
//! at frame `t` and complete the target by frame `T_b - 1`, counting `lp[t]` itself:
//!
//! ```text
//! log_beta[T_b-1][S'-1] = lp[T_b-1][blank]
//! log_beta[T_b-1][S'-2] = lp[T_b-1][l[L-1]]        (when L > 0)
//! log_beta[T_b-1][s]    = -inf                     otherwise
//! log_beta[t][s] = log_add_exp(log_beta[t+1][s],
//!                              log_beta[t+1][s+1]                (s + 1 < S'),
//!                              log_beta[t+1][s+2]                (s+2 < S' and the skip rule
//!                                                                 holds for s+2))
//!                  + lp[t][target_prime(s)]
//! ```
//!
//! # Gradient
//!
//! Since both `log_alpha[t][s]` and `log_beta[t][s]` contain `lp[t][target_prime(s)]`, the
//! posterior probability that frame `t` emits class `c` is
//!
//! ```text
//! lcab[t][c]   = log_add_exp over { s : target_prime(s) = c } of (log_alpha[t][s] + log_beta[t][s])
//! posterior    = exp(lcab[t][c] + nll - lp[t][c])
//! ```
//!
//! (`lcab = -inf` for a class that no state emits.) The gradient returned is torch's convention,
//! which already folds in the backward pass of a preceding `log_softmax`:
//!
//! ```text
//! grad[t][c] = (exp(lp[t][c]) - exp(lcab[t][c] + nll - lp[t][c])) * g_b     for t < T_b
//! grad[t][c] = 0                                                              for t >= T_b
//! ```
//!
//! where `g_b` is the upstream gradient of the sample's loss: `grad_loss[b]` for `none`,
//! `grad_loss` for `sum` and `grad_loss / (N * max(L_b, 1))` for `mean`. The formula is applied as
//! written, so an impossible sample (`nll = +inf`, `lcab = -inf`) gets NaN at every frame below
//! `T_b`, and a `-inf` log-probability gets NaN, exactly as torch. With `zero_infinity` an
//! infinite sample's gradient is zero everywhere.
//!
//! **Exact gradient** (`CTC_GRADIENT_EXACT`). The loss as a function of arbitrary log-scores
//! `lp` (rows need not be normalized: priors, penalties, temperature) has the derivative
//!
//! ```text
//! grad[t][c] = -posterior[t][c] * g_b = -exp(lcab[t][c] + nll - lp[t][c]) * g_b   for t < T_b
//! ```
//!
//! torch's formula adds `exp(lp) g_b`, the derivative through a `log_softmax` before the loss
//! (whose rows' gradient sums to zero), and is wrong otherwise. A state whose class has
//! `lp = -inf` at frame `t` is on no alignment: its `log_alpha + log_beta - lp` is
//! `-inf - -inf` (NaN) and its posterior is taken as 0, so the exact gradient is finite wherever
//! the loss is (0 there), where torch's is NaN.
//!
//! **Logits** (`CTC_INPUT_LOGITS`). The first tensor holds unnormalized scores `x`, and the
//! recurrence runs on the log_softmax of each frame, formed where the values are read (never
//! stored), in torch's order of operations:
//!
//! ```text
//! lp[t][c] = (x[t][c] - m[t]) - lse[t],   m[t] = max_c x[t][c],   lse[t] = ln(sum_c exp(x[t][c] - m[t]))
//! ```
//!
//! (`x - m` is exact near the maximum, so a large offset common to a frame costs no accuracy,
//! as subtracting the rounded sum `m + lse` would). The loss is that
//! of `log_softmax(x)`, and the derivative with respect to `x` is torch's formula through the
//! softmax, `(exp(lp[t][c]) - posterior[t][c]) * g_b`, without its NaN at `x = -inf` (the
//! softmax is 0 there; the true derivative is finite), whichever gradient option is set.
//!
//! Because the beta recursion only needs row `t + 1`, a backend computes the gradient row `t`
//! during the beta sweep, keeping two rows of `log_beta` and the full `log_alpha` table.
//!
//! # log_add_exp
//!
//! All sums of probabilities are taken in log space, shifted by the largest term so that no
//! `exp` overflows: `log_add_exp(a, b, c) = m + ln(exp(a - m) + exp(b - m) + exp(c - m))` with
//! `m = max(a, b, c)`, and `m` replaced by 0 when it is `-inf` (so that `-inf - -inf` is never
//! formed). A NaN in any term gives NaN.
//!
//! # Forced alignment (Viterbi)
//!
//! The best alignment of a sample replaces the sums of the forward variable by maxima:
//!
//! ```text
//! delta[0][0] = lp[0][blank],  delta[0][1] = lp[0][l[0]] (L > 0),  delta[0][s] = -inf (s >= 2)
//! delta[t][s] = max(delta[t-1][s],
//!                   delta[t-1][s-1]                  (s >= 1),
//!                   delta[t-1][s-2]                  (skip rule))
//!               + lp[t][target_prime(s)]
//! score       = max(delta[T_b-1][S'-1], delta[T_b-1][S'-2])   (delta[T_b-1][0] when L = 0)
//! ```
//!
//! and the path is read back from the last frame: `path[t] = target_prime(s_t)`, where `s_t`
//! is the state of frame t and `s_{t-1}` the predecessor that gave `delta[t][s_t]` its maximum.
//! **Tie rule** (deterministic, and optimal whatever it picks, since every candidate it chooses
//! among attains the maximum): the path ends in the last label unless the final blank is
//! strictly better; a state's predecessor is the state itself (stay) unless `s - 1` is strictly
//! better, and `s - 2` only when strictly better than both (torchaudio's order). A sample
//! whose score is -inf (too few frames for its labels and repeats, or every alignment through a
//! -inf log-probability) has no alignment.
//!
//! Only back-pointers (which of the three a state took: 2 bits) are needed to read the path
//! back. Keeping them for every frame costs T x S'; instead the forward pass keeps the rows of
//! `delta` at checkpoints K frames apart, and the read-back recomputes one segment of K frames
//! at a time from its checkpoint, keeping that segment's back-pointers only: memory
//! (T / K) S' values plus K S' back-pointers, least at K ~ sqrt(T), for twice the work of one
//! forward pass.

use crate::types::Real;

#[allow(unused_imports)]
use num_traits::Float;

/// The class emitted by extended state `s` (see the module doc). `labels` holds the sample's `L`
/// labels.
#[inline(always)]
pub(crate) fn target_prime(labels: &[u32], s: usize, blank: u32) -> u32 {
    if s.is_multiple_of(2) {
        blank
    } else {
        labels[s / 2]
    }
}

/// Whether the skip rule allows the move from state `s - 2` to state `s`.
#[inline(always)]
pub(crate) fn can_skip(labels: &[u32], s: usize) -> bool {
    s % 2 == 1 && s >= 2 && labels[s / 2] != labels[s / 2 - 1]
}

/// `ln(exp(a) + exp(b))`, stable, NaN-propagating.
#[inline(always)]
pub(crate) fn log_add_exp<R: Real>(a: R, b: R) -> R {
    let mut m = if b > a { b } else { a };
    if m == R::neg_infinity() {
        m = R::zero();
    }
    ((a - m).exp() + (b - m).exp()).ln() + m
}

/// `ln(exp(a) + exp(b) + exp(c))`, stable, NaN-propagating.
#[inline(always)]
pub(crate) fn log_add_exp3<R: Real>(a: R, b: R, c: R) -> R {
    let mut m = a;
    if b > m {
        m = b;
    }
    if c > m {
        m = c;
    }
    if m == R::neg_infinity() {
        m = R::zero();
    }
    ((a - m).exp() + (b - m).exp() + (c - m).exp()).ln() + m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_add_exp_is_stable_and_propagates_nan() {
        let ninf = f64::NEG_INFINITY;
        assert_eq!(log_add_exp(ninf, ninf), ninf);
        assert_eq!(log_add_exp3(ninf, ninf, ninf), ninf);
        assert!((log_add_exp(1000.0f64, 1000.0) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert!((log_add_exp3(-1000.0f64, ninf, -1000.0) - (-1000.0 + 2f64.ln())).abs() < 1e-12);
        assert!(log_add_exp(f64::NAN, 1.0).is_nan());
        assert!(log_add_exp(1.0, f64::NAN).is_nan());
        assert!(log_add_exp3(ninf, f64::NAN, ninf).is_nan());
        assert!(log_add_exp3(0.0, 0.0, f64::NAN).is_nan());
    }

    #[test]
    fn skip_rule() {
        let labels = [3, 3, 4];
        assert_eq!(target_prime(&labels, 0, 0), 0);
        assert_eq!(target_prime(&labels, 5, 0), 4);
        assert!(!can_skip(&labels, 1));
        assert!(!can_skip(&labels, 3)); // repeat 3,3
        assert!(!can_skip(&labels, 4)); // blank state
        assert!(can_skip(&labels, 5)); // 3 -> 4
    }
}
