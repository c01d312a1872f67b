//! Forced alignment on the CPU: the Viterbi recurrence of [`crate::algorithm`] for one sample at a
//! time, vectorized across its states in the planar layout of `planar/` (blank states `b_k` at
//! k, label states `l_k` at P + 1 + k, only the window of states that can still complete
//! computed), with the forward pass keeping checkpoint rows every K frames and the read-back
//! recomputing one segment at a time from its checkpoint, keeping that segment's back-pointers
//! (2 bits a state) only (`layout::AlignLayout`).
//!
//! In the planar form a step reads, for the blank `b_k`: stay `b_k`, previous `l_{k-1}`; for the
//! label `l_k`: stay `l_k`, previous `b_k`, skip `l_{k-1}` (when the skip rule allows it). The
//! back-pointer of a state is how many states back its predecessor lies: 0, 1 or 2, chosen by
//! the tie rule of the algorithm (stay unless another is strictly better).
//!
//! A sample's results depend on nothing but its own inputs, whichever thread computes it.

use super::isa::{self, Avx512, Isa, Kernel};
use super::layout::AlignLayout;
use super::logits::{frame_shift, Shift};
use super::math::{CpuElement, FastReal};
use super::planar::{pad, planes, row_of, table_lookup, window, Planes};
use super::rows_pair;
use crate::algorithm::{can_skip, target_prime};
use crate::types::Real;
use ndarray::ArrayView2;
use num_traits::Float;

/// One sample's scratch memory (slices of the workspace).
pub(crate) struct AlignScratch<'w, A> {
    /// `2 * width`: the current and the previous row of the Viterbi variable.
    pub rows: &'w mut [A],
    /// `checkpoint_rows * width`: the rows of frames 0, K, 2K, ...
    pub checkpoints: &'w mut [A],
    /// `K * code_row`: the packed back-pointers of a segment's frames.
    pub codes: &'w mut [u8],
    /// `width`: one frame's back-pointers before packing.
    pub choice: &'w mut [u8],
    /// `width`: the gathered label emissions of a frame.
    pub ext: &'w mut [A],
    /// `C`: a copy of a row whose class stride is not 1.
    pub row: &'w mut [A],
    /// `width`: the skip flags of the labels (as for the loss).
    pub skip: &'w mut [u8],
}

/// One sample's alignment.
pub(crate) struct AlignJob<'j, 'w, E: CpuElement> {
    /// (T, C) log-probabilities of the sample.
    pub log_probs: ArrayView2<'j, E>,
    pub labels: &'j [u32],
    pub blank: u32,
    /// T_b.
    pub input_length: usize,
    pub width: usize,
    /// K.
    pub segment: usize,
    pub code_row: usize,
    /// The first tensor holds logits: each frame's values are shifted by its log-sum-exp.
    pub logits: bool,
    pub scratch: AlignScratch<'w, E::Acc>,
}

/// The alignment of a sample: the class of each frame below T_b, written by `emit(t, class)`,
/// and the path's total log-score; `None` when there is no alignment (the best score is -inf or
/// NaN).
pub(crate) type Aligned = Option<f64>;

impl<E: CpuElement> AlignJob<'_, '_, E> {
    /// The read-back state of each frame, from the last: `emit(t, class)` for t = T_b - 1 down to
    /// 0. Returns the path's score (the sum of its log-probabilities, in f64), or `None`.
    #[inline(always)]
    fn align<const FMA: bool>(mut self, isa: Isa, emit: &mut impl FnMut(usize, u32)) -> Aligned {
        let (labels, t_b) = (self.labels, self.input_length);
        if t_b == 0 {
            return labels.is_empty().then_some(0.0);
        }
        if !feasible(labels, t_b) {
            return None;
        }
        let table = table_lookup::<E>(isa, self.log_probs.dim().1);
        self.mark_skips();
        let segments = (t_b - 1).div_ceil(self.segment);
        // One segment: the sweep that keeps its back-pointers is the only one.
        let one_sweep = segments <= 1;
        if one_sweep {
            self.forward::<FMA>(0..1, table);
            self.recompute::<FMA>(0, t_b - 1, table);
        } else {
            self.forward::<FMA>(0..t_b, table);
        }
        let (mut state, best) = self.final_state();
        if best == E::Acc::neg_infinity() || best.is_nan() {
            return None;
        }
        let mut score = 0.0f64;
        for g in (0..segments).rev() {
            let first = g * self.segment;
            let last = ((g + 1) * self.segment).min(t_b - 1);
            if !one_sweep {
                self.recompute::<FMA>(first, last, table);
            }
            // Frames last ..= first + 1 from their back-pointers; frame `first` is the next
            // segment's last (or frame 0).
            for t in (first + 1..=last).rev() {
                score += self.emit_frame::<FMA>(t, state, emit);
                state -= self.code(t - first - 1, state) as usize;
            }
        }
        score += self.emit_frame::<FMA>(0, state, emit);
        Some(score)
    }

    /// `emit(t, class of state)`; returns that log-probability.
    #[inline(always)]
    fn emit_frame<const FMA: bool>(
        &mut self,
        t: usize,
        state: usize,
        emit: &mut impl FnMut(usize, u32),
    ) -> f64 {
        let c = target_prime(self.labels, state, self.blank);
        emit(t, c);
        let shift = self.shift::<FMA>(t);
        shift
            .apply(self.log_probs[[t, c as usize]].to_acc())
            .to_f64()
    }

    /// What frame t's values are shifted by: 0 for log-probabilities, the frame's log-sum-exp
    /// for logits (computed where needed: the alignment keeps no per-frame state).
    #[inline(always)]
    fn shift<const FMA: bool>(&mut self, t: usize) -> Shift<E::Acc> {
        if self.logits {
            frame_shift::<E, FMA>(&self.log_probs, t, self.scratch.row)
        } else {
            Shift::none()
        }
    }

    /// Sets the skip flags of the labels.
    #[inline(always)]
    fn mark_skips(&mut self) {
        let len = self.labels.len();
        for k in 0..self.width / 2 {
            self.scratch.skip[k] = (k < len && can_skip(self.labels, 2 * k + 1)) as u8;
        }
    }

    /// The Viterbi variable over `frames`, keeping the rows of frames 0, K, 2K, ...
    #[inline(always)]
    fn forward<const FMA: bool>(&mut self, frames: std::ops::Range<usize>, table: Option<Avx512>) {
        let (width, k) = (self.width, self.segment);
        for t in frames {
            self.step::<FMA>(t, table);
            if t % k == 0 {
                let at = (t / k) * width;
                let cur = &self.scratch.rows[(t % 2) * width..][..width];
                self.scratch.checkpoints[at..at + width].copy_from_slice(cur);
            }
        }
    }

    /// The final state (by the tie rule) and the best score, from the row of frame T_b - 1.
    #[inline(always)]
    fn final_state(&self) -> (usize, E::Acc) {
        let (len, width, t_b) = (self.labels.len(), self.width, self.input_length);
        let plane = width / 2;
        let last = &self.scratch.rows[((t_b - 1) % 2) * width..][..width];
        // b_L (state S' - 1) and l_{L-1} (state S' - 2): the last label unless the final blank
        // is strictly better.
        let blank = last[len];
        if len > 0 {
            let label = last[plane + len];
            let blank_better = blank > label;
            if !blank_better {
                return (2 * len - 1, label);
            }
        }
        (2 * len, blank)
    }

    /// Recomputes rows `first + 1 ..= last` from the checkpoint of frame `first` (a multiple of
    /// K), keeping their back-pointers.
    #[inline(always)]
    fn recompute<const FMA: bool>(&mut self, first: usize, last: usize, table: Option<Avx512>) {
        let width = self.width;
        let at = (first / self.segment) * width;
        let slot = (first % 2) * width;
        let sc = &mut self.scratch;
        sc.rows[slot..slot + width].copy_from_slice(&sc.checkpoints[at..at + width]);
        for t in first + 1..=last {
            self.step::<FMA>(t, table);
            let bytes = self.window_bytes(t);
            let (row, sc) = (self.code_row, &mut self.scratch);
            let out = &mut sc.codes[(t - first - 1) * row..][..row];
            pack(sc.choice, out, bytes);
        }
    }

    /// The byte range of a packed row that holds frame t's computed states.
    #[inline(always)]
    fn window_bytes(&self, t: usize) -> std::ops::Range<usize> {
        let (lo, hi) = window(t, self.input_length, 2 * self.labels.len() + 1);
        let Planes { ll, bh, lh, .. } = planes(lo, hi);
        let plane = self.width / 2;
        let end = (plane + 1 + pad(ll, lh)).min(self.width);
        (ll / 4)..end.div_ceil(4).max(pad(ll, bh).div_ceil(4))
    }

    /// The back-pointer of `state` at the `i`-th recomputed frame of the segment.
    #[inline(always)]
    fn code(&self, i: usize, state: usize) -> u8 {
        let plane = self.width / 2;
        let at = if state.is_multiple_of(2) {
            state / 2
        } else {
            plane + 1 + state / 2
        };
        (self.scratch.codes[i * self.code_row + at / 4] >> (2 * (at % 4))) & 3
    }

    /// Row `t` of the Viterbi variable over frame t's window, from row t - 1 (rows alternate in
    /// `rows`), and each state's back-pointer in `choice`.
    #[inline(always)]
    fn step<const FMA: bool>(&mut self, t: usize, table: Option<Avx512>) {
        let ninf = E::Acc::neg_infinity();
        let (labels, blank, t_b, width) = (self.labels, self.blank, self.input_length, self.width);
        let (len, plane) = (labels.len(), width / 2);
        let (lo, hi) = window(t, t_b, 2 * len + 1);
        let Planes { bl, bh, ll, lh } = planes(lo, hi);
        let shift = self.shift::<FMA>(t);
        let sc = &mut self.scratch;
        // Alignment gathers the emitted classes only: no whole-row conversion.
        let row = row_of(&self.log_probs, t, sc.row, shift, None);
        let eb = row.gather(labels, blank, ll, &mut sc.ext[ll..lh], table);
        if t == 0 {
            // Only states 0 and 1 start a path.
            let cur = &mut sc.rows[..width];
            cur[plane] = ninf;
            if bl < bh {
                cur[0] = eb;
            }
            if ll < lh {
                cur[plane + 1] = sc.ext[0];
            }
        } else {
            let (prev, cur) = rows_pair(sc.rows, (t - 1) % 2, t % 2, width);
            let (pb, pl) = prev.split_at(plane);
            let (cb, cl) = cur.split_at_mut(plane);
            let (choice_b, choice_l) = sc.choice.split_at_mut(plane + 1);
            cl[0] = ninf;
            // b_k from b_k (stay) and l_{k-1} (at pl[k]), over [ll, bh) padded.
            let be = pad(ll, bh);
            blank_step(
                &pb[ll..be],
                &pl[ll..be],
                eb,
                &mut cb[ll..be],
                &mut choice_b[ll..be],
            );
            // l_k (at cl[k + 1]) from l_k, b_k and l_{k-1}.
            let le = pad(ll, lh);
            label_step(
                LabelInputs {
                    stay: &pl[ll + 1..le + 1],
                    prev: &pb[ll..le],
                    skip_from: &pl[ll..le],
                    skip: &sc.skip[ll..le],
                    e: &sc.ext[ll..le],
                },
                &mut cl[ll + 1..le + 1],
                &mut choice_l[ll..le],
            );
        }
        // The next frame reads states hi and hi + 1 of this one: they are unreachable.
        let cur = &mut sc.rows[(t % 2) * width..][..width];
        if bh <= len {
            cur[bh] = ninf;
        }
        if lh < len {
            cur[plane + 1 + lh] = ninf;
        }
    }
}

/// Whether `T_b` frames fit the labels and a blank between each adjacent repeat.
fn feasible(labels: &[u32], t_b: usize) -> bool {
    let repeats = labels.windows(2).filter(|w| w[0] == w[1]).count();
    labels.len() + repeats <= t_b
}

/// Blank states: `out[i] = max(stay[i], prev[i]) + e` (stay unless `prev` is strictly better),
/// `choice[i]` = 1 for `prev`, else 0.
#[inline(always)]
fn blank_step<A: FastReal>(stay: &[A], prev: &[A], e: A, out: &mut [A], choice: &mut [u8]) {
    let n = out.len();
    let inputs = stay[..n].iter().zip(&prev[..n]);
    for ((o, c), (&x0, &x1)) in out.iter_mut().zip(&mut choice[..n]).zip(inputs) {
        let take = x1 > x0;
        *o = if take { x1 } else { x0 } + e;
        *c = take as u8;
    }
}

/// The operands of the label states of a step.
struct LabelInputs<'a, A> {
    stay: &'a [A],
    prev: &'a [A],
    skip_from: &'a [A],
    skip: &'a [u8],
    e: &'a [A],
}

/// Label states: the best of stay, previous and (where the skip rule allows) skip, by the tie
/// rule (skip only when strictly better than both, previous only when strictly better than
/// stay), plus the label's emission; `choice[i]` = 2, 1 or 0.
#[inline(always)]
fn label_step<A: FastReal>(x: LabelInputs<'_, A>, out: &mut [A], choice: &mut [u8]) {
    let n = out.len();
    let ninf = A::neg_infinity();
    let inputs = x.stay[..n].iter().zip(&x.prev[..n]);
    let inputs = inputs
        .zip(x.skip_from[..n].iter().zip(&x.skip[..n]))
        .zip(&x.e[..n]);
    for ((o, c), (((&x0, &x1), (&from, &sk)), &e)) in
        out.iter_mut().zip(&mut choice[..n]).zip(inputs)
    {
        let x2 = if sk != 0 { from } else { ninf };
        let two = x2 > x1 && x2 > x0;
        let one = !two && x1 > x0;
        let best = if two {
            x2
        } else if one {
            x1
        } else {
            x0
        };
        *o = best + e;
        *c = 2 * two as u8 + one as u8;
    }
}

/// Packs the back-pointers of `choice` (one a byte, each below 4) four to a byte of `out`, over
/// the bytes `range` of `out`.
#[inline(always)]
fn pack(choice: &[u8], out: &mut [u8], range: std::ops::Range<usize>) {
    let range = range.start.min(out.len())..range.end.min(out.len());
    let choice = &choice[range.start * 4..];
    let out = &mut out[range];
    let quads = choice.chunks_exact(4);
    let tail = quads.remainder();
    // Four choices c0..c3 read as one little-endian word w (c_i at bit 8i): shifting by 6, 12
    // and 18 brings c_i to bit 2i, with nothing else below bit 8. Word-wide, so it vectorizes.
    let full = quads.len().min(out.len());
    for (o, q) in out[..full].iter_mut().zip(quads) {
        let w = u32::from_le_bytes([q[0], q[1], q[2], q[3]]) & 0x0303_0303;
        *o = (w | w >> 6 | w >> 12 | w >> 18) as u8;
    }
    if let Some(o) = out.get_mut(full) {
        *o = tail.iter().rev().fold(0, |byte, &c| byte << 2 | (c & 3));
    }
}

/// A sample's alignment and where its path goes, as one kernel run.
pub(crate) struct AlignRun<'j, 'w, 'e, E: CpuElement, F: FnMut(usize, u32)> {
    pub job: AlignJob<'j, 'w, E>,
    pub emit: &'e mut F,
}

impl<E: CpuElement, F: FnMut(usize, u32)> Kernel for AlignRun<'_, '_, '_, E, F> {
    type Output = Aligned;

    #[inline(always)]
    fn run<const FMA: bool>(self, isa: Isa) -> Aligned {
        self.job.align::<FMA>(isa, self.emit)
    }
}

/// Aligns one sample with the kernel compiled for `isa`.
pub(crate) fn align<E: CpuElement, F: FnMut(usize, u32)>(
    job: AlignJob<'_, '_, E>,
    emit: &mut F,
    isa: Isa,
) -> Aligned {
    isa::run(isa, AlignRun { job, emit })
}

/// The per-sample regions of an alignment workspace, but for the scores: (labels, scratch) of
/// each sample in turn.
pub(crate) fn samples<'w, A>(
    parts: super::layout::AlignParts<'w, A>,
    layout: &AlignLayout,
    classes: usize,
) -> impl ExactSizeIterator<Item = (&'w [u32], AlignScratch<'w, A>)> {
    let w = layout.width;
    parts
        .labels
        .chunks(layout.labels_stride)
        .zip(parts.skip.chunks_mut(w))
        .zip(parts.choice.chunks_mut(w))
        .zip(parts.codes.chunks_mut(layout.segment * layout.code_row))
        .zip(parts.rows.chunks_mut(2 * w))
        .zip(parts.checkpoints.chunks_mut(layout.checkpoint_rows * w))
        .zip(parts.scratch.chunks_mut(layout.scratch_stride))
        .map(
            move |((((((labels, skip), choice), codes), rows), checkpoints), scratch)| {
                let (ext, row) = scratch.split_at_mut(w);
                let scratch = AlignScratch {
                    rows,
                    checkpoints,
                    codes,
                    choice,
                    ext,
                    row: &mut row[..classes],
                    skip,
                };
                (labels, scratch)
            },
        )
}
