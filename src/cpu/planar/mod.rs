//! The planar CPU kernel: the recurrence of [`crate::algorithm`] for one sample, organized so
//! that LLVM vectorizes every inner loop, and compiled three times (AVX-512, AVX2+FMA, baseline)
//! with the best one picked at run time (`cpu/isa.rs`). Its phases: `forward.rs` (alpha, the
//! loss), `backward.rs` (beta, posteriors and the gradient rows written during the sweep),
//! `gradient.rs` (the rows themselves and the deferred gradient pass), `gather.rs` (emissions).
//!
//! Compared with the scalar reference (`cpu/reference.rs`, torch's loop structure), it:
//! - keeps the blank states and the label states of the extended sequence in two separate planes
//!   of each row: blank state `2k` as `b_k` (k = 0..=L), label state `2k + 1` as `l_k`
//!   (k = 0..L). In that form the recurrence of `crate::algorithm` reads
//!   `b_k(t) = lae(b_k(t-1), l_{k-1}(t-1)) + lp[t][blank]` (a blank state never skips) and
//!   `l_k(t) = lae(l_k(t-1), b_k(t-1), skip_k ? l_{k-1}(t-1) : -inf) + lp[t][labels[k]]`, and
//!   backwards `b_k(t) = lae(b_k(t+1), l_k(t+1)) + lp[t][blank]`,
//!   `l_k(t) = lae(l_k(t+1), b_{k+1}(t+1), skip_{k+1} ? l_{k+1}(t+1) : -inf) + lp[t][labels[k]]`.
//!   A blank state then takes a two-term log-add-exp, and a label state's three terms include
//!   a blank state's two: forwards `l_k` and `b_k` both take `b_k(t-1)` and `l_{k-1}(t-1)`,
//!   backwards `l_k` and `b_{k+1}` both take `b_{k+1}(t+1)` and `l_{k+1}(t+1)`. So the blank's
//!   log-add-exp is kept in two parts `m + ln(u)` (`lae2_parts`: `m` the larger term,
//!   `u = 1 + exp(-|a - b|)`, not rounded to a logarithm), and the label's is
//!   `ln(exp(x) + exp(m) u)` (`cpu/logadd.rs`): a step of the two states costs two `exp` and
//!   two `ln` instead of three and two, with the rounding of one three-term log-add-exp
//!   (chaining two rounded two-term ones instead doubles the rounding: 2.1 times torch's float32
//!   gradient error on the longest golden case). The blank's log-probability is one scalar per
//!   frame, the label log-probabilities are gathered in label order (looked up in registers for
//!   rows of at most 64 float32 classes in the AVX-512 kernel: `gather.rs`), and the blank
//!   posteriors are summed over a contiguous range;
//! - vectorizes across each plane: a row of `log_alpha` (or `log_beta`) depends only on the
//!   previous row, so all states of a frame are computed together, with the branch-free
//!   `exp`/`ln` of `math.rs`;
//! - computes only the states that can both be reached from the start and still complete the
//!   target in the remaining frames (warp-ctc and torchaudio prune the same way): at frame t of
//!   T_b, states `[S' - 2 (T_b - t), 2 t + 2)`; every other state has alpha or beta = -inf;
//! - accumulates the posterior per class in linear space (`exp(log_alpha + log_beta + nll - lp)`
//!   is a probability) instead of a log-space `lcab` table, and writes each gradient row with one
//!   fused vectorized pass `(exp(lp) - posterior) * g`, with NaN where `lp = -inf` as torch's
//!   formula gives;
//! - keeps the beta recursion in two rows and writes the gradient during the beta sweep; except
//!   for rows of at least [`DEFER_CLASSES`] classes, where the beta sweep leaves each frame's
//!   state posteriors over that frame's (no longer needed) row of alpha and a pass of its own
//!   ([`Phase::Gradient`]) writes the gradient rows afterwards, frame t of a group of
//!   neighbouring samples after another, in the order of their addresses (one sample alone
//!   reads and writes a new 4 KB page every frame, which the hardware prefetchers do not
//!   follow; docs/benchmarks.md has the figures). That pass writes
//!   a row in one pass with the group's class posteriors when they fit [`DENSE_BYTES`], else
//!   streams `exp(lp) * g` and then corrects the emitted classes.
//!
//! A row is `width = 2 P` wide (P = Lmax + 3 + `VECTOR_WIDTH`, see `layout::row_width`): `b_k` at offset k, `l_k` at offset P + 1 + k,
//! so that `l_{-1}` (offset P, read by `b_0` and by the skip term of `l_0` in the forward sweep)
//! and `l_L` (offset P + 1 + L, read by `b_L` and `l_{L-1}` in the backward sweep) are -inf pads,
//! and every computed range can be rounded up to whole vectors of `VECTOR_WIDTH` inside its plane.
//!
//! Which entries hold meaningful values: row t of alpha is exact on the window `[lo_t, hi_t)`
//! and -inf on states `hi_t` and `hi_t + 1` (one blank and one label); row t of beta is exact on
//! the window and -inf on states `lo_t - 2` and `lo_t - 1`. A valid state of frame t + 1 (alpha)
//! or t - 1 (beta) reads only those entries, since the window moves by at most two states a
//! frame. Everything else (what earlier frames, samples or calls left, and the padding that
//! rounds each computed range to whole vectors) may hold any value and is never read by a valid
//! state, nor used for a posterior. In a plane the window of states `[lo, hi)` is the blanks
//! `[(lo + 1) / 2, (hi + 1) / 2)` and the labels `[lo / 2, hi / 2)`.

mod backward;
mod forward;
mod gather;
mod gradient;

pub(crate) use gradient::{grad_row_acc, grad_value, Form, Upstream};

use super::isa::{self, F16c, Isa, Kernel};
use super::layout::VECTOR_WIDTH;
use super::logadd::{lae2_parts, lae_with_pair, pair_value};
use super::logits::frame_shifts;
pub(crate) use super::logits::Shift;
use super::math::{CpuElement, FastReal};
use gather::gather;
pub(crate) use gather::table_lookup;
use gradient::{grad_row_posteriors, grad_row_slice, write_grad_row};
use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};
use num_traits::Zero;

/// The scratch memory of one sample (slices of the workspace, see `cpu/layout.rs`).
pub(crate) struct Scratch<'w, A> {
    /// `rows * width`: the alpha table (rows = Tmax with a gradient, 2 without).
    pub log_alpha: &'w mut [A],
    /// `2 * width`: two rows of beta (gradient only).
    pub log_beta: &'w mut [A],
    /// `width`: `lp[t][labels[k]]` of the current frame, at k.
    pub ext: &'w mut [A],
    /// `width`: posteriors of the current frame's states (blanks at k, labels at P + k).
    pub post: &'w mut [A],
    /// `width`: `exp(ext)`, when the gradient row is streamed (wide rows).
    pub emit: &'w mut [A],
    /// `C`: posterior mass per class of the current frame (kept at zero between frames).
    pub acc: &'w mut [A],
    /// `C`: a contiguous copy of a log_probs row whose class stride is not 1.
    pub row: &'w mut [A],
    /// `width`: at k, 1 where the skip rule allows label k - 1 -> label k (state 2k - 1 ->
    /// 2k + 1).
    pub skip: &'w mut [u8],
    /// Whether [`Phase::Gradient`] has rows to write for the sample (set by the sweeps).
    pub pending: &'w mut u8,
    /// Logits only: at 2t and 2t + 1, the shift of frame t (see [`Row`]), set at the start of
    /// the sweeps.
    pub shifts: Option<&'w mut [A]>,
}

/// One sample's work.
pub(crate) struct Job<'j, 'w, E: CpuElement> {
    /// (T, C) log-probabilities of the sample.
    pub log_probs: ArrayView2<'j, E>,
    /// The sample's labels.
    pub labels: &'j [u32],
    pub blank: u32,
    /// T_b.
    pub input_length: usize,
    /// Row width of the alpha table and of the other per-state buffers (`layout::row_width`).
    pub width: usize,
    /// Rows of the alpha table (ring of 2 for the loss only).
    pub rows: usize,
    pub scratch: Scratch<'w, E::Acc>,
    /// The gradient to write, (T, C), with the upstream factor g_b and whether zero_infinity
    /// applies; `None` for the loss only.
    pub grad: Option<(ArrayViewMut2<'j, E>, Upstream<E::Acc>, bool)>,
    /// Leave the gradient rows to [`Phase::Gradient`]: the backward sweep writes the posteriors
    /// of each frame's states over that frame's row of alpha instead.
    pub deferred: bool,
    /// F16C, when the kernel's instruction set has it (whole rows of float16).
    pub f16c: Option<F16c>,
}

/// A row of the first tensor: the caller's memory when its class stride is 1, else a copy; and
/// what its values are shifted by to give log-probabilities (the frame's [`Shift`] for logits,
/// else none).
pub(crate) struct Row<'r, E, A> {
    pub values: RowValues<'r, E, A>,
    pub shift: Shift<A>,
    /// F16C, for the passes over whole float16 rows (see [`CpuElement::widen`]).
    pub f16c: Option<F16c>,
}

pub(crate) enum RowValues<'r, E, A> {
    Direct(&'r [E]),
    Copied(&'r [A]),
}

impl<E: CpuElement<Fast = A>, A: FastReal + CpuElement<Fast = A>> Row<'_, E, A> {
    /// [`gather`] from this row, shifted: log-probabilities.
    #[inline(always)]
    pub(crate) fn gather(
        &self,
        labels: &[u32],
        blank: u32,
        first: usize,
        e: &mut [A],
        table: Option<isa::Avx512>,
    ) -> A {
        let eb = match self.values {
            RowValues::Direct(r) => gather(r, labels, blank, first, e, table, self.f16c),
            RowValues::Copied(r) => gather(r, labels, blank, first, e, table, self.f16c),
        };
        // Logits only: no shift would give x, bit for bit, but costs a pass.
        if !self.shift.is_none() {
            let shift = self.shift;
            e.iter_mut().for_each(|v| *v = shift.apply(*v));
            return shift.apply(eb);
        }
        eb
    }

    /// [`write_grad_row`] from this row.
    #[inline(always)]
    pub(super) fn write_grad<const FMA: bool>(
        &self,
        acc: Option<&mut [A]>,
        g: Upstream<A>,
        out: &mut ArrayViewMut1<'_, E>,
    ) {
        let g = g.shifted(self.shift);
        match self.values {
            RowValues::Direct(r) => write_grad_row::<_, _, _, FMA>(r, acc, g, out, self.f16c),
            RowValues::Copied(r) => write_grad_row::<_, _, _, FMA>(r, acc, g, out, self.f16c),
        }
    }

    /// [`grad_row_posteriors`] from this row, into a gradient row of any class stride.
    #[inline(always)]
    fn write_grad_keeping<const FMA: bool>(
        &self,
        acc: &[A],
        g: Upstream<A>,
        out: &mut ArrayViewMut1<'_, E>,
    ) {
        let g = g.shifted(self.shift);
        let f16c = self.f16c;
        match (&self.values, out.as_slice_mut()) {
            (RowValues::Direct(r), Some(o)) => {
                grad_row_slice::<_, _, _, FMA>(r, Some(acc), g, o, f16c)
            }
            (RowValues::Copied(r), Some(o)) => {
                grad_row_slice::<_, _, _, FMA>(r, Some(acc), g, o, f16c)
            }
            (RowValues::Direct(r), None) => grad_row_posteriors::<_, _, _, FMA>(r, acc, g, out),
            (RowValues::Copied(r), None) => grad_row_posteriors::<_, _, _, FMA>(r, acc, g, out),
        }
    }
}

/// The states `[lo, hi)` of frame `t` that are reachable from the start and can still complete.
#[inline(always)]
pub(crate) fn window(t: usize, t_b: usize, s_prime: usize) -> (usize, usize) {
    (
        s_prime.saturating_sub(2 * (t_b - t)),
        s_prime.min(2 * t + 2),
    )
}

/// The window `[lo, hi)` as ranges of the two planes: blanks `[bl, bh)`, labels `[ll, lh)`.
#[derive(Clone, Copy)]
pub(crate) struct Planes {
    pub bl: usize,
    pub bh: usize,
    pub ll: usize,
    pub lh: usize,
}

#[inline(always)]
pub(crate) fn planes(lo: usize, hi: usize) -> Planes {
    Planes {
        bl: lo.div_ceil(2),
        bh: hi.div_ceil(2),
        ll: lo / 2,
        lh: hi / 2,
    }
}

/// Frames ahead whose log-probabilities the forward sweep asks the cache for.
pub(super) const PREFETCH: usize = 4;

/// Rows of at least this many classes are prefetched: their emitted classes lie on many cache
/// lines that the hardware prefetcher cannot predict. (Shorter rows are a line or two, read
/// in order: prefetching them only costs instructions.)
pub(super) const PREFETCH_CLASSES: usize = 256;

/// Rows of at least this many classes have their gradient written in a pass of its own (see
/// [`Phase::Gradient`]) rather than during the backward sweep.
pub(crate) const DEFER_CLASSES: usize = 256;

/// `hi` moved up so that `hi - lo` is a whole number of vectors. The extra states are computed
/// from values nothing valid reads and are never read themselves (see the module doc): they only
/// spare the vector loops their scalar remainders. Each plane has `VECTOR_WIDTH` spare entries for them.
#[inline(always)]
pub(crate) fn pad(lo: usize, hi: usize) -> usize {
    lo + (hi - lo).next_multiple_of(VECTOR_WIDTH)
}

/// The blank half of a step of the recurrence: `out[i] = lae2(x[i], y[i]) + e`; and the
/// operands of the label state that shares its terms (see the module doc): the parts `(m, u)`
/// of that `lae2` (see [`lae2_parts`]) where `skip[i]`, else `(x[i], 1)`.
#[inline(always)]
pub(super) fn pair_rows<A: FastReal, const FMA: bool>(
    x: &[A],
    y: &[A],
    e: A,
    skip: &[u8],
    (lm, lu): (&mut [A], &mut [A]),
    out: &mut [A],
) {
    let n = out.len();
    let one = A::one();
    let parts = lm[..n].iter_mut().zip(&mut lu[..n]);
    let inputs = x[..n].iter().zip(&y[..n]).zip(&skip[..n]);
    for ((o, (lm, lu)), ((&a, &b), &sk)) in out.iter_mut().zip(parts).zip(inputs) {
        let (m, u) = lae2_parts::<A, FMA>(a, b);
        *o = pair_value::<A, FMA>(m, u) + e;
        (*lm, *lu) = if sk != 0 { (m, u) } else { (a, one) };
    }
}

/// The label half: `out[i] = lae_with_pair(x[i], m[i], u[i]) + e[i]`, with the operands from
/// [`pair_rows`]: one `exp` and one `ln` a state instead of two and one.
///
/// Two loops, each taking its vectors from the inputs to the output in registers: a fused loop
/// (two dependent log-add-exps an element) and separate sort, exp and ln passes were both
/// slower (docs/benchmarks.md).
#[inline(always)]
pub(super) fn label_rows<A: FastReal, const FMA: bool>(
    x: &[A],
    (m, u): (&[A], &[A]),
    e: &[A],
    out: &mut [A],
) {
    let n = out.len();
    let inputs = x[..n].iter().zip(m[..n].iter().zip(&u[..n])).zip(&e[..n]);
    for (o, ((&a, (&m, &u)), &ei)) in out.iter_mut().zip(inputs) {
        *o = lae_with_pair::<A, FMA>(a, m, u) + ei;
    }
}

/// Row `t` of `log_probs`: the caller's memory when its class stride is 1, else a copy into
/// `copy`; `shift` is what its values are shifted by (see [`Row`]); `f16c` converts whole rows
/// of float16.
#[inline(always)]
pub(crate) fn row_of<'r, E: CpuElement>(
    log_probs: &'r ArrayView2<'_, E>,
    t: usize,
    copy: &'r mut [E::Acc],
    shift: Shift<E::Acc>,
    f16c: Option<F16c>,
) -> Row<'r, E, E::Acc> {
    let r = log_probs.row(t);
    let values = match r.to_slice() {
        Some(s) => RowValues::Direct(s),
        None => {
            for (d, &x) in copy.iter_mut().zip(r.iter()) {
                *d = x.to_acc();
            }
            RowValues::Copied(copy)
        }
    };
    Row {
        values,
        shift,
        f16c,
    }
}

impl<E: CpuElement> Job<'_, '_, E> {
    /// The shift of frame `t` (see [`Row`]).
    #[inline(always)]
    pub(crate) fn shift(shifts: &Option<&mut [E::Acc]>, t: usize) -> Shift<E::Acc> {
        shifts.as_ref().map_or(Shift::none(), |s| Shift {
            max: s[2 * t],
            lse: s[2 * t + 1],
        })
    }

    /// Forward and, when asked, backward for the sample; returns the negative log-likelihood.
    #[inline(always)]
    fn process<const FMA: bool>(mut self, isa: Isa) -> E::Acc {
        let table = table_lookup::<E>(isa, self.log_probs.dim().1);
        if let Some(shifts) = self.scratch.shifts.as_deref_mut() {
            let frames = self.input_length;
            frame_shifts::<E, FMA>(&self.log_probs, &mut shifts[..2 * frames], self.scratch.row);
        }
        self.mark_skips();
        let nll = self.forward::<FMA>(table);
        *self.scratch.pending = 0;
        let Some((mut grad, upstream, zero_infinity)) = self.grad.take() else {
            return nll;
        };
        if let Some(settled) = self.settle(nll, &mut grad, upstream, zero_infinity) {
            return settled;
        }
        self.backward::<FMA>(nll, grad, upstream, table);
        nll
    }
}

/// The two parts of the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Each sample of the group on its own: the forward sweep, then the backward sweep (which
    /// writes the gradient rows, or leaves the posteriors for [`Phase::Gradient`] when the job
    /// defers them).
    Sweeps,
    /// The deferred gradient rows of the group's samples, frame by frame: frame t of every
    /// sample, for t = 0, 1, .... Samples share no value, so a sample's bits do not depend on
    /// its group; going frame by frame puts the group's rows of log_probs and of the gradient
    /// (neighbours in a (T, N, C) tensor) into one stream of addresses that the hardware
    /// prefetcher follows, where one sample alone jumps to a new page every row.
    Gradient,
}

/// The jobs of a group of samples and the phase to run (see [`process`]).
struct Group<'g, 'j, 'w, E: CpuElement> {
    jobs: &'g mut [Option<Job<'j, 'w, E>>],
    nll: &'g mut [E::Acc],
    phase: Phase,
}

impl<E: CpuElement> Kernel for Group<'_, '_, '_, E> {
    type Output = ();

    #[inline(always)]
    fn run<const FMA: bool>(self, isa: Isa) {
        let Group {
            jobs: group,
            nll,
            phase,
        } = self;
        match phase {
            Phase::Sweeps => {
                for (job, nll) in group.iter_mut().zip(nll) {
                    if let Some(job) = job.take() {
                        *nll = job.process::<FMA>(isa);
                    }
                }
            }
            Phase::Gradient => {
                let frames = group
                    .iter()
                    .flatten()
                    .map(|j| j.input_length)
                    .max()
                    .unwrap_or(0);
                // One buffer of class posteriors for the whole group, the first job's: the
                // samples' own would not fit the core's L1 cache together (16 samples of 1024
                // classes are 64 KB), and each row's read-modify-writes would miss it.
                let Some(first) = group.iter_mut().flatten().next() else {
                    return;
                };
                let acc = std::mem::take(&mut first.scratch.acc);
                acc.fill(E::Acc::zero());
                for t in 0..frames {
                    for job in group.iter_mut().flatten() {
                        job.gradient_frame::<FMA>(t, acc, isa);
                    }
                }
                if let Some(first) = group.iter_mut().flatten().next() {
                    first.scratch.acc = acc;
                }
            }
        }
    }
}

/// Runs `phase` for a group of samples with the kernel compiled for `isa`; [`Phase::Sweeps`]
/// sets `nll[i]` for `group[i]`.
pub(crate) fn process<E: CpuElement>(
    jobs: &mut [Option<Job<'_, '_, E>>],
    nll: &mut [E::Acc],
    phase: Phase,
    isa: Isa,
) {
    isa::run(isa, Group { jobs, nll, phase });
}
