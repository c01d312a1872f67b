//! The forward sweep of the planar kernel: alpha row by row over the window of states that can
//! still complete, then the negative log-likelihood from the last row.

use super::gather::prefetch_classes;
use super::{
    label_rows, pad, pair_rows, planes, row_of, window, Job, Planes, PREFETCH, PREFETCH_CLASSES,
};
use crate::algorithm::{can_skip, log_add_exp};
use crate::cpu::isa::Avx512;
use crate::cpu::math::CpuElement;
use crate::cpu::rows_pair;
use num_traits::{Float, Zero};

impl<E: CpuElement> Job<'_, '_, E> {
    /// Sets the skip flags of the sample's labels (see `Scratch::skip`).
    #[inline(always)]
    pub(super) fn mark_skips(&mut self) {
        let len = self.labels.len();
        for k in 0..self.width / 2 {
            self.scratch.skip[k] = (k < len && can_skip(self.labels, 2 * k + 1)) as u8;
        }
    }

    /// Alpha for every frame (row t at `(t % rows) * width`); returns the negative
    /// log-likelihood: +inf when no path fits the frames, 0 or +inf for no frames.
    #[inline(always)]
    pub(super) fn forward<const FMA: bool>(&mut self, table: Option<Avx512>) -> E::Acc {
        let t_b = self.input_length;
        if t_b == 0 {
            return if self.labels.is_empty() {
                E::Acc::zero()
            } else {
                E::Acc::infinity()
            };
        }
        for t in 0..t_b {
            if !self.forward_frame::<FMA>(t, table) {
                return E::Acc::infinity();
            }
        }
        self.final_nll()
    }

    /// Row `t` of alpha over frame t's window; false when the window is empty (no path).
    #[inline(always)]
    fn forward_frame<const FMA: bool>(&mut self, t: usize, table: Option<Avx512>) -> bool {
        let ninf = E::Acc::neg_infinity();
        let (labels, blank, t_b, width, rows) = (
            self.labels,
            self.blank,
            self.input_length,
            self.width,
            self.rows,
        );
        let len = labels.len();
        let s_prime = 2 * len + 1;
        let plane = width / 2;
        let (lo, hi) = window(t, t_b, s_prime);
        if lo >= hi {
            return false;
        }
        let Planes { bl, bh, ll, lh } = planes(lo, hi);
        // Row 0 takes its (at most two) states as they are; later rows compute ranges padded
        // upwards to whole vectors.
        let lh_pad = pad(ll, lh);
        if self.log_probs.dim().1 >= PREFETCH_CLASSES && t + PREFETCH < t_b {
            if let Some(r) = self.log_probs.row(t + PREFETCH).to_slice() {
                let (plo, phi) = window(t + PREFETCH, t_b, s_prime);
                prefetch_classes(r, labels, blank, plo, phi);
            }
        }
        let sc = &mut self.scratch;
        let ext = &mut sc.ext[ll..lh];
        let shift = Self::shift(&sc.shifts, t);
        let eb = row_of(&self.log_probs, t, sc.row, shift, self.f16c)
            .gather(labels, blank, ll, ext, table);
        let cur_at = (t % rows) * width;
        if t == 0 {
            // Only states 0 and 1 start a path; the window at t = 0 lies within [0, 2).
            let cur = &mut sc.log_alpha[..width];
            cur[plane] = ninf;
            if bl < bh {
                cur[0] = eb;
            }
            if ll < lh {
                cur[plane + 1] = sc.ext[0];
            }
        } else {
            let (prev, cur) = rows_pair(sc.log_alpha, (t - 1) % rows, t % rows, width);
            let (pb, pl) = prev.split_at(plane);
            let (cb, cl) = cur.split_at_mut(plane);
            cl[0] = ninf;
            // b_k from b_k and l_{k-1} (at pl[k]), their pair kept for l_k: over [ll, bh)
            // padded (ll is bl or bl - 1).
            let pe = pad(ll, bh);
            pair_rows::<_, FMA>(
                &pb[ll..pe],
                &pl[ll..pe],
                eb,
                &sc.skip[ll..pe],
                (&mut sc.post[ll..pe], &mut sc.emit[ll..pe]),
                &mut cb[ll..pe],
            );
            // l_k (at cl[k + 1]) from l_k and the pair (b_k, l_{k-1}).
            label_rows::<_, FMA>(
                &pl[ll + 1..lh_pad + 1],
                (&sc.post[ll..lh_pad], &sc.emit[ll..lh_pad]),
                &sc.ext[ll..lh_pad],
                &mut cl[ll + 1..lh_pad + 1],
            );
        }
        // The next frame reads states hi and hi + 1 of this one (the next blank and the next
        // label): they are unreachable.
        let cur = &mut sc.log_alpha[cur_at..cur_at + width];
        if bh <= len {
            cur[bh] = ninf;
        }
        if lh < len {
            cur[plane + 1 + lh] = ninf;
        }
        true
    }

    /// `-log_add_exp` of the final blank and the final label at the last frame.
    #[inline(always)]
    fn final_nll(&self) -> E::Acc {
        let ninf = E::Acc::neg_infinity();
        let (len, t_b, plane) = (self.labels.len(), self.input_length, self.width / 2);
        let t = t_b - 1;
        let (lo, hi) = window(t, t_b, 2 * len + 1);
        let last = &self.scratch.log_alpha[(t % self.rows) * self.width..][..self.width];
        let inside = |s: usize| s >= lo && s < hi;
        let b = |k: usize| if inside(2 * k) { last[k] } else { ninf };
        let l = |k: usize| {
            if inside(2 * k + 1) {
                last[plane + 1 + k]
            } else {
                ninf
            }
        };
        if len == 0 {
            -b(0)
        } else {
            -log_add_exp(b(len), l(len - 1))
        }
    }
}
