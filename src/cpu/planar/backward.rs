//! The backward sweep of the planar kernel: the cases settled without it (no frames,
//! zero_infinity, impossible targets, the scalar fallback), then beta in two rows, the
//! posteriors of each frame's states and the frame's gradient row (or, deferred, the posteriors
//! left in the alpha table for [`super::Phase::Gradient`]).

use super::gather::prefetch_classes;
use super::gradient::{emit_row, posterior, posteriors_in_place, Upstream};
use super::{label_rows, pad, pair_rows, planes, row_of, window, Job, Planes, PREFETCH};
use crate::cpu::isa::Avx512;
use crate::cpu::math::{CpuElement, FastReal};
use crate::cpu::{reference, rows_pair};
use ndarray::{s, ArrayViewMut2};
use num_traits::{Float, Zero};

impl<E: CpuElement> Job<'_, '_, E> {
    /// Writes the gradient of a sample that needs no backward sweep; returns its final negative
    /// log-likelihood then (the scalar fallback recomputes it), `None` when the sweep must run.
    #[inline(always)]
    pub(super) fn settle(
        &mut self,
        nll: E::Acc,
        grad: &mut ArrayViewMut2<'_, E>,
        upstream: Upstream<E::Acc>,
        zero_infinity: bool,
    ) -> Option<E::Acc> {
        let t_b = self.input_length;
        let zero = E::from_acc(E::Acc::zero());
        if t_b == 0 || (zero_infinity && nll == E::Acc::infinity()) {
            grad.fill(zero);
            return Some(nll);
        }
        if nll.is_nan() || nll == E::Acc::infinity() {
            // torch's formula: every class of every frame below T_b is NaN (lcab + nll - lp).
            grad.slice_mut(s![..t_b, ..])
                .fill(E::from_acc(E::Acc::nan()));
            grad.slice_mut(s![t_b.., ..]).fill(zero);
            return Some(nll);
        }
        if nll == E::Acc::neg_infinity() {
            // Only unnormalized +inf inputs get here: the reference loop applies torch's formula
            // literally, including its inf - inf cases.
            let r = reference::Sample {
                log_probs: self.log_probs,
                labels: self.labels,
                blank: self.blank,
                input_length: t_b,
                states: self.width,
            };
            let sc = &mut self.scratch;
            let nll = r.forward(sc.log_alpha, self.rows);
            r.backward(
                sc.log_alpha,
                sc.log_beta,
                sc.acc,
                nll,
                // The loss is -inf (+inf inputs): no finite derivative; torch's formula.
                upstream.g,
                false,
                grad.view_mut(),
            );
            return Some(nll);
        }
        None
    }

    /// Beta in two rows and, frame by frame from the last, the posteriors of the window's states
    /// and the frame's gradient row (or, deferred, the posteriors over the frame's alpha row).
    #[inline(always)]
    pub(super) fn backward<const FMA: bool>(
        &mut self,
        nll: E::Acc,
        mut grad: ArrayViewMut2<'_, E>,
        upstream: Upstream<E::Acc>,
        table: Option<Avx512>,
    ) {
        let (len, width, t_b) = (self.labels.len(), self.width, self.input_length);
        let plane = width / 2;
        // The class posteriors start at zero (the workspace holds whatever the last call left).
        self.scratch.acc.fill(E::Acc::zero());
        for r in 0..2 {
            self.scratch.log_beta[r * width + plane + 1 + len] = E::Acc::neg_infinity();
            // l_L
        }
        for t in (0..t_b).rev() {
            self.backward_frame::<FMA>(t, nll, &mut grad, upstream, table);
        }
        *self.scratch.pending = self.deferred as u8;
        grad.slice_mut(s![t_b.., ..])
            .fill(E::from_acc(E::Acc::zero()));
    }

    /// Frame `t` of the backward sweep.
    #[inline(always)]
    fn backward_frame<const FMA: bool>(
        &mut self,
        t: usize,
        nll: E::Acc,
        grad: &mut ArrayViewMut2<'_, E>,
        upstream: Upstream<E::Acc>,
        table: Option<Avx512>,
    ) {
        let (labels, blank, t_b, width) = (self.labels, self.blank, self.input_length, self.width);
        let (len, plane, classes) = (labels.len(), width / 2, self.log_probs.dim().1);
        let (lo, hi) = window(t, t_b, 2 * len + 1);
        let Planes { bl, bh, ll, lh } = planes(lo, hi);
        // Beta, the gathered log-probs and the posteriors over ranges padded upwards to whole
        // vectors; only the window's posteriors are used.
        let (bh_pad, lh_pad) = (pad(bl, bh), pad(ll, lh));
        if self.deferred && t >= PREFETCH {
            // No streamed row brings this frame's emitted classes into the cache: ask for those
            // of a few frames ahead, as the forward sweep does.
            if let Some(r) = self.log_probs.row(t - PREFETCH).to_slice() {
                let (plo, phi) = window(t - PREFETCH, t_b, 2 * len + 1);
                prefetch_classes(r, labels, blank, plo, phi);
            }
        }
        let sc = &mut self.scratch;
        let row = row_of(
            &self.log_probs,
            t,
            sc.row,
            Self::shift(&sc.shifts, t),
            self.f16c,
        );
        let mut out = grad.row_mut(t);
        // Many classes: stream `exp(lp) * g` through the gradient row first (it needs no
        // posterior, and reading the row in order brings it into the cache for the gathers
        // below); the few classes the window's states emit are corrected at the end.
        let stream = hi - lo <= classes / 4;
        if stream && !self.deferred {
            row.write_grad::<FMA>(None, upstream, &mut out);
        }
        let eb = row.gather(labels, blank, ll, &mut sc.ext[ll..lh_pad], table);
        let rows = BetaRows {
            log_beta: &mut *sc.log_beta,
            ext: &*sc.ext,
            pair_m: &mut *sc.post,
            pair_u: &mut *sc.emit,
            skip: &*sc.skip,
            width,
            len,
        };
        rows.compute::<FMA>(t, t_b, eb, planes(lo, hi));

        // Posteriors of the window's states: into `post` (blanks at k, labels at plane + k), or,
        // when the gradient is deferred, in place over row t of alpha (which nothing reads any
        // more).
        let cur_at = (t % 2) * width;
        let beta = &sc.log_beta[cur_at..][..width];
        let (beta_b, beta_l) = (&beta[bl..bh_pad], &beta[plane + 1 + ll..plane + 1 + lh_pad]);
        let ext = &sc.ext[ll..lh_pad];
        let (alpha_b, alpha_l) = sc.log_alpha[t * width..][..width].split_at_mut(plane + 1);
        let (alpha_b, alpha_l) = (&mut alpha_b[bl..bh_pad], &mut alpha_l[ll..lh_pad]);
        if self.deferred {
            posteriors_in_place::<_, FMA>(alpha_b, beta_b, nll, |_| eb);
            posteriors_in_place::<_, FMA>(alpha_l, beta_l, nll, |i| ext[i]);
            return;
        }
        let (post_b, post_l) = sc.post.split_at_mut(plane);
        posteriors::<_, FMA>(&mut post_b[bl..bh_pad], alpha_b, beta_b, nll, |_| eb);
        posteriors::<_, FMA>(&mut post_l[ll..lh_pad], alpha_l, beta_l, nll, |i| ext[i]);
        emit_row::<_, _, FMA>(
            &row,
            &post_b[bl..bh],
            &post_l[ll..lh],
            &sc.ext[ll..lh],
            &mut sc.emit[ll..lh],
            sc.acc,
            &labels[ll..lh],
            blank,
            eb,
            bl < bh,
            upstream,
            stream,
            &mut out,
        );
    }
}

/// `post[i] = exp(alpha[i] + beta[i] + nll - e(i))`: the posteriors of a range of states.
#[inline(always)]
fn posteriors<A: FastReal, const FMA: bool>(
    post: &mut [A],
    alpha: &[A],
    beta: &[A],
    nll: A,
    e: impl Fn(usize) -> A,
) {
    for (i, ((p, &a), &b)) in post.iter_mut().zip(alpha).zip(beta).enumerate() {
        *p = posterior::<A, FMA>(a + b + nll - e(i));
    }
}

/// What a row of beta is computed from and into.
struct BetaRows<'s, A> {
    /// Two rows, frame t at `(t % 2) * width`.
    log_beta: &'s mut [A],
    /// `lp[t][labels[k]]` at k.
    ext: &'s [A],
    /// The label states' operands between the two loops (see `pair_rows`).
    pair_m: &'s mut [A],
    pair_u: &'s mut [A],
    skip: &'s [u8],
    width: usize,
    /// L.
    len: usize,
}

impl<A: FastReal> BetaRows<'_, A> {
    /// Row `t` of beta over frame t's window (`eb` the blank's log-probability).
    #[inline(always)]
    fn compute<const FMA: bool>(self, t: usize, t_b: usize, eb: A, p: Planes) {
        let ninf = A::neg_infinity();
        let BetaRows {
            log_beta,
            ext,
            pair_m,
            pair_u,
            skip,
            width,
            len,
        } = self;
        let Planes { bl, bh, ll, lh } = p;
        let plane = width / 2;
        let lh_pad = pad(ll, lh);
        let cur_at = (t % 2) * width;
        if t == t_b - 1 {
            // The window is [S' - 2, S'): the final label and the final blank.
            let cur = &mut log_beta[cur_at..cur_at + width];
            if bl < bh {
                cur[len] = eb;
            }
            if ll < lh {
                cur[plane + 1 + ll] = ext[ll];
            }
        } else {
            let (next, cur) = rows_pair(log_beta, (t + 1) % 2, t % 2, width);
            let (nb, nl) = next.split_at(plane);
            let (cb, cl) = cur.split_at_mut(plane);
            // b_k from b_k and l_k (at nl[k + 1]), their pair kept for l_{k-1}: over [bl, bh]
            // padded (l_{lh-1} takes the pair of b_{lh}, which may be bh).
            let pe = pad(bl, bh + 1);
            pair_rows::<_, FMA>(
                &nb[bl..pe],
                &nl[bl + 1..pe + 1],
                eb,
                &skip[bl..pe],
                (&mut pair_m[bl..pe], &mut pair_u[bl..pe]),
                &mut cb[bl..pe],
            );
            // l_k (at cl[k + 1]) from l_k and the pair (b_{k+1}, l_{k+1}).
            label_rows::<_, FMA>(
                &nl[ll + 1..lh_pad + 1],
                (&pair_m[ll + 1..lh_pad + 1], &pair_u[ll + 1..lh_pad + 1]),
                &ext[ll..lh_pad],
                &mut cl[ll + 1..lh_pad + 1],
            );
            // The padding may have overwritten the pad l_L.
            cl[len + 1] = ninf;
        }
        // The previous frame reads states lo - 2 and lo - 1 of this one (the blank and the label
        // below the window): they cannot finish.
        if bl > 0 {
            log_beta[cur_at + bl - 1] = ninf;
        }
        if ll > 0 {
            log_beta[cur_at + plane + ll] = ninf;
        }
    }
}
