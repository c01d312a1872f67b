//! The scalar reference kernel: the recurrence of [`crate::algorithm`] written with torch's loop
//! structure (log-space `lcab` per class, every state of every frame), one scalar operation at a
//! time. It is the test oracle of the vectorized kernel (`fast.rs`), which also falls back to it
//! for the rare samples whose loss is `-inf` (unnormalized `+inf` inputs).

use super::math::CpuElement;
use super::rows_pair;
use crate::algorithm::{can_skip, log_add_exp, log_add_exp3, target_prime};
use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};
use num_traits::{Float, Zero};

/// One sample of the batch.
pub(crate) struct Sample<'s, E> {
    /// (T, C) log-probabilities of the sample.
    pub log_probs: ArrayView2<'s, E>,
    /// The sample's L labels.
    pub labels: &'s [u32],
    pub blank: u32,
    /// T_b.
    pub input_length: usize,
    /// Row stride of the alpha table (>= 2L + 1).
    pub states: usize,
}

impl<E: CpuElement> Sample<'_, E> {
    #[inline(always)]
    fn lp(&self, t: usize, c: u32) -> E::Acc {
        self.log_probs[[t, c as usize]].to_acc()
    }

    /// Fills `log_alpha` (row `t` at `(t % rows) * states`) and returns the negative
    /// log-likelihood.
    pub fn forward(&self, log_alpha: &mut [E::Acc], rows: usize) -> E::Acc {
        let ninf = E::Acc::neg_infinity();
        let len = self.labels.len();
        let s_prime = 2 * len + 1;
        let t_b = self.input_length;
        if t_b == 0 {
            return if len == 0 {
                E::Acc::zero()
            } else {
                E::Acc::infinity()
            };
        }
        let states = self.states;
        {
            let row = &mut log_alpha[..s_prime];
            row.fill(ninf);
            row[0] = self.lp(0, self.blank);
            if len > 0 {
                row[1] = self.lp(0, self.labels[0]);
            }
        }
        for t in 1..t_b {
            let (prev, cur) = rows_pair(log_alpha, (t - 1) % rows, t % rows, states);
            for s in 0..s_prime {
                let la1 = prev[s];
                let la2 = if s > 0 { prev[s - 1] } else { ninf };
                let la3 = if can_skip(self.labels, s) {
                    prev[s - 2]
                } else {
                    ninf
                };
                cur[s] = log_add_exp3(la1, la2, la3)
                    + self.lp(t, target_prime(self.labels, s, self.blank));
            }
        }
        let last = &log_alpha[((t_b - 1) % rows) * states..][..s_prime];
        if len == 0 {
            -last[0]
        } else {
            -log_add_exp(last[s_prime - 1], last[s_prime - 2])
        }
    }

    /// The beta sweep fused with the gradient (module doc of [`crate::algorithm`]): writes every
    /// row of `grad` (T, C). `log_alpha` holds the full table from [`Sample::forward`].
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        log_alpha: &[E::Acc],
        log_beta: &mut [E::Acc],
        lcab: &mut [E::Acc],
        nll: E::Acc,
        upstream: E::Acc,
        zero: bool,
        mut grad: ArrayViewMut2<'_, E>,
    ) {
        let t_b = self.input_length;
        if zero || t_b == 0 {
            grad.fill(E::from_acc(E::Acc::zero()));
            return;
        }
        let ninf = E::Acc::neg_infinity();
        let len = self.labels.len();
        let s_prime = 2 * len + 1;
        let states = self.states;
        let classes = self.log_probs.dim().1;
        let lcab = &mut lcab[..classes];
        lcab.fill(ninf);
        let accumulate = |lcab: &mut [E::Acc], c: u32, log_alpha_beta: E::Acc| {
            let slot = &mut lcab[c as usize];
            *slot = if *slot == ninf {
                log_alpha_beta
            } else {
                log_add_exp(*slot, log_alpha_beta)
            };
        };

        // Last frame: only the final blank and the last label can complete the target.
        let t = t_b - 1;
        {
            let beta = &mut log_beta[(t % 2) * states..][..s_prime];
            beta.fill(ninf);
            let alpha = &log_alpha[t * states..][..s_prime];
            beta[s_prime - 1] = self.lp(t, self.blank);
            accumulate(lcab, self.blank, alpha[s_prime - 1] + beta[s_prime - 1]);
            if len > 0 {
                let c = self.labels[len - 1];
                beta[s_prime - 2] = self.lp(t, c);
                accumulate(lcab, c, alpha[s_prime - 2] + beta[s_prime - 2]);
            }
        }
        self.write_grad_row(t, lcab, nll, upstream, grad.row_mut(t));

        for t in (0..t_b - 1).rev() {
            let (next, beta) = rows_pair(log_beta, (t + 1) % 2, t % 2, states);
            let alpha = &log_alpha[t * states..][..s_prime];
            for s in (0..s_prime).rev() {
                let lb1 = next[s];
                let lb2 = if s + 1 < s_prime { next[s + 1] } else { ninf };
                let lb3 = if s + 2 < s_prime && can_skip(self.labels, s + 2) {
                    next[s + 2]
                } else {
                    ninf
                };
                let c = target_prime(self.labels, s, self.blank);
                beta[s] = log_add_exp3(lb1, lb2, lb3) + self.lp(t, c);
                accumulate(lcab, c, alpha[s] + beta[s]);
            }
            self.write_grad_row(t, lcab, nll, upstream, grad.row_mut(t));
        }
        grad.slice_mut(ndarray::s![t_b.., ..])
            .fill(E::from_acc(E::Acc::zero()));
    }

    /// `grad[t][c] = (exp(lp) - exp(lcab[c] + nll - lp)) * upstream`, then resets `lcab` to -inf.
    fn write_grad_row(
        &self,
        t: usize,
        lcab: &mut [E::Acc],
        nll: E::Acc,
        upstream: E::Acc,
        mut grad: ArrayViewMut1<'_, E>,
    ) {
        let lp = self.log_probs.row(t);
        for ((g, &lp), slot) in grad.iter_mut().zip(lp.iter()).zip(lcab.iter_mut()) {
            let lp = lp.to_acc();
            *g = E::from_acc((lp.exp() - (*slot + nll - lp).exp()) * upstream);
            *slot = E::Acc::neg_infinity();
        }
    }
}

/// The best alignment of one sample by the Viterbi recurrence of [`crate::algorithm`] with the
/// whole back-pointer table and the documented tie rule: the classes of frames `0..T_b` and the
/// best score, or `None` when the sample has no alignment (score -inf or NaN). The test oracle of
/// `cpu/align.rs`.
#[cfg(test)]
pub(crate) fn viterbi<E: CpuElement>(
    log_probs: ArrayView2<'_, E>,
    labels: &[u32],
    blank: u32,
    input_length: usize,
) -> Option<(Vec<u32>, E::Acc)> {
    let ninf = E::Acc::neg_infinity();
    let (len, t_b) = (labels.len(), input_length);
    let s_prime = 2 * len + 1;
    let lp = |t: usize, s: usize| log_probs[[t, target_prime(labels, s, blank) as usize]].to_acc();
    if t_b == 0 {
        return (len == 0).then(|| (Vec::new(), E::Acc::zero()));
    }
    let mut delta = vec![ninf; s_prime];
    let mut from = vec![0u8; t_b * s_prime];
    delta[0] = lp(0, 0);
    if len > 0 {
        delta[1] = lp(0, 1);
    }
    for t in 1..t_b {
        let prev = delta.clone();
        for s in 0..s_prime {
            let x0 = prev[s];
            let x1 = if s >= 1 { prev[s - 1] } else { ninf };
            let x2 = if can_skip(labels, s) {
                prev[s - 2]
            } else {
                ninf
            };
            let (best, code) = if x2 > x1 && x2 > x0 {
                (x2, 2)
            } else if x1 > x0 {
                (x1, 1)
            } else {
                (x0, 0)
            };
            delta[s] = best + lp(t, s);
            from[t * s_prime + s] = code;
        }
    }
    let blank_better = len == 0 || delta[s_prime - 1] > delta[s_prime - 2];
    let mut s = if !blank_better {
        s_prime - 2
    } else {
        s_prime - 1
    };
    let score = delta[s];
    if score == ninf || score.is_nan() {
        return None;
    }
    let mut path = vec![0u32; t_b];
    for t in (0..t_b).rev() {
        path[t] = target_prime(labels, s, blank);
        s -= from[t * s_prime + s] as usize;
    }
    Some((path, score))
}
