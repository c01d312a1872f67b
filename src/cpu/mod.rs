//! The CPU backend: the recurrence of [`crate::algorithm`] over one sample per task, samples spread
//! over the library's own rayon pool.
//!
//! Each sample is computed by one task from start to end, and the batch reduction runs serially
//! in index order afterwards, so results are bitwise identical for every thread count.

pub(crate) mod pool;

use crate::algorithm::{can_skip, log_add_exp, log_add_exp3, target_prime};
use crate::error::Error;
use crate::problem::Problem;
use crate::types::{Element, Real, Reduction};
use crate::workspace::{Layout, Parts};
use ndarray::parallel::prelude::*;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3, Axis};
use num_traits::{Float, One, Zero};
use rayon::prelude::*;

/// Where a computation writes, and the upstream gradient of the loss.
pub(crate) struct Outputs<'o, E> {
    /// Per-sample (N) or reduced (1) loss.
    pub loss: Option<ArrayViewMut1<'o, E>>,
    /// Gradient with respect to log_probs, (T, N, C).
    pub grad: Option<ArrayViewMut3<'o, E>>,
    /// Upstream gradient, shaped like the loss; `None` means ones.
    pub grad_loss: Option<ArrayView1<'o, E>>,
}

/// Runs the problem on the CPU in the carved workspace `parts` (laid out by `layout`).
pub(crate) fn run<E: Element>(
    p: &Problem<'_, '_, E>,
    layout: &Layout,
    parts: Parts<'_, E::Acc>,
    out: Outputs<'_, E>,
) -> Result<(), Error> {
    let Parts {
        labels,
        nll,
        log_alpha,
        log_beta,
        lcab,
    } = parts;
    let stride = layout.labels_stride;
    p.for_each_label(|b, j, _, label| {
        labels[b * stride + j] = label as u32;
        Ok(())
    })?;

    let want_grad = out.grad.is_some();
    let batch = p.batch;
    let mut no_grad: [E; 0] = [];
    let mut grad = match out.grad {
        Some(g) => g,
        None => ArrayViewMut3::from_shape((0, batch, 0), &mut no_grad[..])
            .map_err(|e| Error::Internal(format!("empty gradient view: {e}")))?,
    };
    let grad_loss = out.grad_loss;
    let upstream = |b: usize| -> E::Acc {
        let g = |i: usize| grad_loss.as_ref().map_or(E::Acc::one(), |g| g[i].to_acc());
        match p.options.reduction {
            Reduction::None => g(b),
            Reduction::Sum => g(0),
            Reduction::Mean => {
                let n = E::Acc::from_f64(batch as f64);
                let l = E::Acc::from_f64(p.target_length(b).max(1) as f64);
                g(0) / n / l
            }
        }
    };

    let pool = pool::pool(p.options.num_threads)?;
    pool.install(|| {
        (
            grad.axis_iter_mut(Axis(1)).into_par_iter(),
            log_alpha.par_chunks_mut(layout.alpha_stride),
            log_beta.par_chunks_mut(layout.beta_stride),
            lcab.par_chunks_mut(layout.lcab_stride),
            nll.par_iter_mut(),
            labels.par_chunks(stride),
        )
            .into_par_iter()
            .enumerate()
            .for_each(|(b, (grad_b, log_alpha, log_beta, lcab, nll_b, labels))| {
                let sample = Sample {
                    log_probs: p.sample_log_probs(b),
                    labels: &labels[..p.target_length(b)],
                    blank: p.blank,
                    input_length: p.input_length(b),
                    states: layout.states,
                };
                let rows = if want_grad { layout.alpha_rows } else { 2 };
                *nll_b = sample.forward(log_alpha, rows);
                if want_grad {
                    let zero = p.options.zero_infinity && *nll_b == E::Acc::infinity();
                    sample.backward(log_alpha, log_beta, lcab, *nll_b, upstream(b), zero, grad_b);
                }
            });
    });

    if let Some(mut loss) = out.loss {
        let value = |b: usize| -> E::Acc {
            let v = nll[b];
            if p.options.zero_infinity && v == E::Acc::infinity() {
                E::Acc::zero()
            } else {
                v
            }
        };
        match p.options.reduction {
            Reduction::None => {
                for b in 0..batch {
                    loss[b] = E::from_acc(value(b));
                }
            }
            Reduction::Sum => {
                let total: f64 = (0..batch).map(|b| value(b).to_f64()).sum();
                loss[0] = E::from_acc(E::Acc::from_f64(total));
            }
            Reduction::Mean => {
                let total: f64 = (0..batch)
                    .map(|b| value(b).to_f64() / p.target_length(b).max(1) as f64)
                    .sum();
                loss[0] = E::from_acc(E::Acc::from_f64(total / batch as f64));
            }
        }
    }
    Ok(())
}

/// One sample of the batch.
struct Sample<'s, E> {
    /// (T, C) log-probabilities of the sample.
    log_probs: ArrayView2<'s, E>,
    /// The sample's L labels.
    labels: &'s [u32],
    blank: u32,
    /// T_b.
    input_length: usize,
    /// Row stride of the alpha table (>= 2L + 1).
    states: usize,
}

impl<E: Element> Sample<'_, E> {
    #[inline(always)]
    fn lp(&self, t: usize, c: u32) -> E::Acc {
        self.log_probs[[t, c as usize]].to_acc()
    }

    /// Fills `log_alpha` (row `t` at `(t % rows) * states`) and returns the negative
    /// log-likelihood.
    fn forward(&self, log_alpha: &mut [E::Acc], rows: usize) -> E::Acc {
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
    fn backward(
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

/// Two distinct rows `a` (shared) and `b` (mutable) of a row-major table with `width` columns.
fn rows_pair<A>(table: &mut [A], a: usize, b: usize, width: usize) -> (&[A], &mut [A]) {
    debug_assert_ne!(a, b);
    if a < b {
        let (lo, hi) = table.split_at_mut(b * width);
        (&lo[a * width..][..width], &mut hi[..width])
    } else {
        let (lo, hi) = table.split_at_mut(a * width);
        (&hi[..width], &mut lo[b * width..][..width])
    }
}
