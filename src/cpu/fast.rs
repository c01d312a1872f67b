//! The vectorized CPU kernel: the recurrence of [`crate::algorithm`] for one sample, organized so
//! that LLVM vectorizes every inner loop, and compiled three times (AVX-512, AVX2+FMA, baseline)
//! with the best one picked at run time.
//!
//! Compared with the scalar reference (`reference.rs`, torch's loop structure), it:
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
//!   log-add-exp is kept in two parts `m + ln(u)` ([`lae2_parts`]: `m` the larger term,
//!   `u = 1 + exp(-|a - b|)`, not rounded to a logarithm), and the label's is
//!   `ln(exp(x) + exp(m) u)` ([`lae_with_pair`]): a step of the two states costs two `exp` and
//!   two `ln` instead of three and two, with the rounding of one three-term log-add-exp
//!   (chaining two rounded two-term ones instead doubles the rounding: 2.1 times torch's float32
//!   gradient error on the longest golden case). The blank's log-probability is one scalar per
//!   frame, the label log-probabilities are gathered in label order (looked up in registers for
//!   rows of at most 64 float32 classes in the AVX-512 kernel: [`table_gather`]), and the blank
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
//!   follow: about 5 % faster on 1024 classes and 2-5 % on 8000, two threads). That pass writes
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

use super::layout::VECTOR_WIDTH;
use super::math::{CpuElement, FastReal};
use super::{reference, rows_pair};
use crate::algorithm::{can_skip, log_add_exp};
use crate::types::{DType, Element};
use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};
use num_traits::{Float, Zero};

/// The scratch memory of one sample (slices of the workspace, see `workspace.rs`).
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
    /// Row width of the alpha table and of the other per-state buffers (2 (Lmax + 19)).
    pub width: usize,
    /// Rows of the alpha table (ring of 2 for the loss only).
    pub rows: usize,
    pub scratch: Scratch<'w, E::Acc>,
    /// The gradient to write, (T, C), with the upstream factor g_b and whether zero_infinity
    /// applies; `None` for the loss only.
    pub grad: Option<(ArrayViewMut2<'j, E>, E::Acc, bool)>,
    /// Leave the gradient rows to [`Phase::Gradient`]: the backward sweep writes the posteriors
    /// of each frame's states over that frame's row of alpha instead.
    pub deferred: bool,
}

/// A row of log-probabilities: the caller's memory when its class stride is 1, else a copy.
pub(super) enum Row<'r, E, A> {
    Direct(&'r [E]),
    Copied(&'r [A]),
}

impl<E: Element<Acc = A>, A: FastReal + Element<Acc = A>> Row<'_, E, A> {
    /// [`gather`] from this row.
    #[inline(always)]
    fn gather(&self, labels: &[u32], blank: u32, first: usize, e: &mut [A], table: bool) -> A {
        match self {
            Row::Direct(r) => gather(r, labels, blank, first, e, table),
            Row::Copied(r) => gather(r, labels, blank, first, e, table),
        }
    }

    /// [`write_grad_row`] from this row.
    #[inline(always)]
    pub(super) fn write_grad<const FMA: bool>(
        &self,
        acc: Option<&mut [A]>,
        g: A,
        out: &mut ArrayViewMut1<'_, E>,
    ) {
        match self {
            Row::Direct(r) => write_grad_row::<_, _, _, FMA>(r, acc, g, out),
            Row::Copied(r) => write_grad_row::<_, _, _, FMA>(r, acc, g, out),
        }
    }

    /// [`grad_row_posteriors`] from this row, into a gradient row of any class stride.
    #[inline(always)]
    fn write_grad_keeping<const FMA: bool>(&self, acc: &[A], g: A, out: &mut ArrayViewMut1<'_, E>) {
        match (self, out.as_slice_mut()) {
            (Row::Direct(r), Some(o)) => grad_row_posteriors::<_, _, _, FMA>(r, acc, g, o),
            (Row::Copied(r), Some(o)) => grad_row_posteriors::<_, _, _, FMA>(r, acc, g, o),
            (Row::Direct(r), None) => grad_row_posteriors::<_, _, _, FMA>(r, acc, g, out),
            (Row::Copied(r), None) => grad_row_posteriors::<_, _, _, FMA>(r, acc, g, out),
        }
    }
}

/// The states `[lo, hi)` of frame `t` that are reachable from the start and can still complete.
#[inline(always)]
fn window(t: usize, t_b: usize, s_prime: usize) -> (usize, usize) {
    (
        s_prime.saturating_sub(2 * (t_b - t)),
        s_prime.min(2 * t + 2),
    )
}

/// The window `[lo, hi)` as ranges of the two planes: blanks `[bl, bh)`, labels `[ll, lh)`.
#[derive(Clone, Copy)]
struct Planes {
    bl: usize,
    bh: usize,
    ll: usize,
    lh: usize,
}

#[inline(always)]
fn planes(lo: usize, hi: usize) -> Planes {
    Planes {
        bl: lo.div_ceil(2),
        bh: hi.div_ceil(2),
        ll: lo / 2,
        lh: hi / 2,
    }
}

/// Frames ahead whose log-probabilities the forward sweep asks the cache for.
const PREFETCH: usize = 4;

/// Rows of at least this many classes are prefetched: their emitted classes lie on many cache
/// lines that the hardware prefetcher cannot predict. (Shorter rows are a line or two, read
/// in order: prefetching them only costs instructions.)
const PREFETCH_CLASSES: usize = 256;

/// In the deferred gradient pass, rows whose class posteriors take at most this many bytes are
/// written in one pass with them (as [`grad_row_acc`]); wider ones stream `exp(lp) * g` and then
/// correct the emitted classes (a buffer of 8000 classes no longer stays in L1 beside the rows).
/// Measured at 2 threads: 1024 classes 5.15 -> 4.64 ms, 300 classes 7 % faster, 2048 and 4000
/// even, 8000 7 % slower.
const DENSE_BYTES: usize = 8 << 10;

/// Rows of at least this many classes have their gradient written in a pass of its own (see
/// [`Phase::Gradient`]) rather than during the backward sweep.
pub(crate) const DEFER_CLASSES: usize = 256;

/// `hi` moved up so that `hi - lo` is a whole number of vectors. The extra states are computed
/// from values nothing valid reads and are never read themselves (see the module doc): they only
/// spare the vector loops their scalar remainders. Each plane has `VECTOR_WIDTH` spare entries for them.
#[inline(always)]
fn pad(lo: usize, hi: usize) -> usize {
    lo + (hi - lo).next_multiple_of(VECTOR_WIDTH)
}

/// `lae2(a, b) = ln(exp(a) + exp(b))` in two parts `(m, u)`, `lae2(a, b) = m + ln(u)` (see
/// [`pair_value`]): `m` the larger term and `u = 1 + exp(-|a - b|)` in [1, 2] (1 where both are
/// -inf). Both -inf gives -inf; a NaN or a +inf gives `m` = NaN (torch's formula computes
/// `inf - inf` there). A label state's three-term log-add-exp takes the parts of a blank
/// state's two terms from here ([`lae_with_pair`]).
#[inline(always)]
pub(super) fn lae2_parts<A: FastReal, const FMA: bool>(a: A, b: A) -> (A, A) {
    let ninf = A::neg_infinity();
    let poison = (a + b + ninf).is_nan();
    let hi = if a > b { a } else { b };
    let m = if poison { A::nan() } else { hi };
    // -|a - b| rather than the smaller minus the larger: a select before the `exp` is what LLVM
    // turns into two `exp`s and a select after.
    let u = A::one() + (-(a - b).abs()).fexp_nonpositive::<FMA>();
    (m, if hi == ninf { A::one() } else { u })
}

/// `m + ln(u)`: `lae2(a, b)` from its parts [`lae2_parts`].
#[inline(always)]
pub(super) fn pair_value<A: FastReal, const FMA: bool>(m: A, u: A) -> A {
    let v = u.fln_1_3::<FMA>() + m;
    if m == A::neg_infinity() {
        A::neg_infinity()
    } else {
        v
    }
}

/// `ln(exp(x) + exp(m) * u)`: with `(m, u)` the parts of `lae2(b, c)` from [`lae2_parts`], the
/// three-term log-add-exp of `x`, `b` and `c` with one `exp` and one `ln` (and the rounding of
/// a single three-term one: `u` is not rounded to a logarithm in between); with `(b, 1)`,
/// `lae2(x, b)` with the bits of [`pair_value`]. The larger of `x` and `m` is factored out, so
/// that the `ln` takes
/// `1 + exp(m - x) u` or `exp(x - m) + u`, both in [1, 3]. All -inf gives -inf; a NaN or a +inf
/// anywhere gives NaN (as torch's formula, which computes `inf - inf` there).
#[inline(always)]
pub(super) fn lae_with_pair<A: FastReal, const FMA: bool>(x: A, m: A, u: A) -> A {
    let ninf = A::neg_infinity();
    let poison = (x + m + ninf).is_nan();
    let x_top = x >= m;
    let e = (-(x - m).abs()).fexp_nonpositive::<FMA>();
    let sum = if x_top {
        e.fmad::<FMA>(u, A::one())
    } else {
        e + u
    };
    let top = if poison {
        A::nan()
    } else if x_top {
        x
    } else {
        m
    };
    let v = sum.fln_1_3::<FMA>() + top;
    if top == ninf {
        ninf
    } else {
        v
    }
}

/// The blank half of a step of the recurrence: `out[i] = lae2(x[i], y[i]) + e`; and the
/// operands of the label state that shares its terms (see the module doc): the parts `(m, u)`
/// of that `lae2` (see [`lae2_parts`]) where `skip[i]`, else `(x[i], 1)`.
#[inline(always)]
fn pair_rows<A: FastReal, const FMA: bool>(
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
/// Two loops, each taking its vectors from the inputs to the output in registers: fusing the
/// halves into one loop (two dependent log-add-exps an element) was 9 % slower on short rows, and
/// splitting a loop into sort, exp and ln passes over blocks of states was no faster on long
/// rows and 15 % slower on short ones.
#[inline(always)]
fn label_rows<A: FastReal, const FMA: bool>(x: &[A], (m, u): (&[A], &[A]), e: &[A], out: &mut [A]) {
    let n = out.len();
    let inputs = x[..n].iter().zip(m[..n].iter().zip(&u[..n])).zip(&e[..n]);
    for (o, ((&a, (&m, &u)), &ei)) in out.iter_mut().zip(inputs) {
        *o = lae_with_pair::<A, FMA>(a, m, u) + ei;
    }
}

/// `e[i] = row[labels[first + i]]`; returns `row[blank]`. One scalar load per label (a vector
/// gather is no faster than that on current x86); with `table` (see [`table_gather`]), a row of
/// at most 64 float32 classes is held in registers and 16 labels are looked up at once.
#[inline(always)]
fn gather<R: Element<Acc = A>, A: FastReal>(
    row: &[R],
    labels: &[u32],
    blank: u32,
    first: usize,
    e: &mut [A],
    table: bool,
) -> A {
    let labels = &labels[first.min(labels.len())..];
    let n = e.len().min(labels.len());
    if !(table && table_gather(row, &labels[..n], &mut e[..n])) {
        for (d, &c) in e.iter_mut().zip(labels) {
            *d = row[c as usize].to_acc();
        }
    }
    row[blank as usize].to_acc()
}

/// Whether [`gather`] may look labels up in registers for rows of `classes` classes of `R`: a
/// float32 row of at most 64 classes, in the AVX-512 kernel.
fn table_lookup<R: Element>(classes: usize) -> bool {
    R::DTYPE == DType::Float32 && classes <= 64 && detect() == Isa::Avx512
}

/// `out[i] = row[labels[i]]` for a float32 row of at most 64 classes: the row in four 16-lane
/// registers, each 16 labels by two two-register permutes and a blend (about 5 instructions
/// where the scalar loop takes 8 a label). Returns false, having written nothing, where that
/// does not apply (not float32, more than 64 classes, not x86-64).
#[inline(always)]
fn table_gather<R: Element<Acc = A>, A: FastReal>(
    row: &[R],
    labels: &[u32],
    out: &mut [A],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if R::DTYPE == DType::Float32 && row.len() <= 64 {
        // SAFETY: R is f32 (its dtype says so), and so is A (f32 accumulates in f32); the caller checked (`table_lookup`)
        // that this CPU has AVX-512F; `table_gather_avx512` reads `row` only through masked
        // loads within its length, `labels` and `out` only within their common length.
        unsafe {
            table_gather_avx512(
                row.as_ptr() as *const f32,
                row.len(),
                labels,
                out.as_mut_ptr() as *mut f32,
                out.len(),
            )
        };
        return true;
    }
    let _ = (row, labels, out);
    false
}

/// The AVX-512 body of [`table_gather`]: `out[i] = row[labels[i] % 64]` (a label is below the
/// row's length, at most 64; the permutes never touch memory whatever the value), for
/// `i < min(labels.len(), out_len)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn table_gather_avx512(
    row: *const f32,
    len: usize,
    labels: &[u32],
    out: *mut f32,
    out_len: usize,
) {
    use std::arch::x86_64::{
        __mmask16, _mm512_mask_blend_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_epi32,
        _mm512_maskz_loadu_ps, _mm512_permutex2var_ps, _mm512_set1_epi32, _mm512_test_epi32_mask,
    };
    let mask = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as __mmask16 };
    // SAFETY (the whole body): each masked load reads only the lanes of its mask, which lie
    // within `row[..len]`, `labels` or (stores) `out[..out_len]`; masked-off lanes touch no
    // memory, so pointers past the end are never dereferenced (`wrapping_add` forms them).
    unsafe {
        let part = |k: usize| {
            _mm512_maskz_loadu_ps(mask(len.saturating_sub(16 * k)), row.wrapping_add(16 * k))
        };
        let (t0, t1, t2, t3) = (part(0), part(1), part(2), part(3));
        let high = _mm512_set1_epi32(32);
        let n = labels.len().min(out_len);
        let mut i = 0;
        while i < n {
            let m = mask(n - i);
            let idx = _mm512_maskz_loadu_epi32(m, labels.as_ptr().wrapping_add(i) as *const i32);
            let lo = _mm512_permutex2var_ps(t0, idx, t1);
            let hi = _mm512_permutex2var_ps(t2, idx, t3);
            let v = _mm512_mask_blend_ps(_mm512_test_epi32_mask(idx, high), lo, hi);
            _mm512_mask_storeu_ps(out.wrapping_add(i), m, v);
            i += 16;
        }
    }
}

/// Asks the cache for the lines of `row` holding the classes that frame's states `lo..hi` emit,
/// into L2 (`T1`): a frame of a wide row is tens of lines, and with the L1 hint the prefetches of
/// the frames in flight exhausted its miss buffers (asr_bpe 2 threads 4.78 -> 4.11 ms, forward
/// alone 1 thread 1.59 -> 1.48).
#[inline(always)]
fn prefetch_classes<R>(row: &[R], labels: &[u32], blank: u32, lo: usize, hi: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let base = row.as_ptr();
        let touch = |c: u32| {
            // SAFETY: a prefetch never faults and changes no architectural state, whatever the
            // address; `wrapping_add` computes it without claiming it is in bounds.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(base.wrapping_add(c as usize) as *const i8) }
        };
        touch(blank);
        for &c in &labels[(lo / 2).min(labels.len())..(hi / 2).min(labels.len())] {
            touch(c);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (row, labels, blank, lo, hi);
}

/// Asks the cache for every line of `x`.
#[inline(always)]
fn prefetch_lines<A>(x: &[A]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let step = (64 / std::mem::size_of::<A>()).max(1);
        for i in (0..x.len()).step_by(step) {
            // SAFETY: `i` is within `x`; a prefetch never faults and changes no architectural
            // state.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(x.as_ptr().add(i) as *const i8) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// The sum of `post`, in `VECTOR_WIDTH` independent lanes (a fixed order, whatever the range).
#[inline(always)]
fn sum_lanes<A: FastReal>(post: &[A]) -> A {
    let mut lanes = [A::zero(); VECTOR_WIDTH];
    let chunks = post.chunks_exact(VECTOR_WIDTH);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (l, &p) in lanes.iter_mut().zip(chunk) {
            *l = *l + p;
        }
    }
    for (l, &p) in lanes.iter_mut().zip(rest) {
        *l = *l + p;
    }
    lanes.iter().fold(A::zero(), |a, &b| a + b)
}

/// `exp(lp) * g`, or NaN where `lp = -inf` (torch's formula gives `-inf + inf` there); with the
/// posterior mass `p` of the class subtracted first when there is any.
#[inline(always)]
pub(super) fn grad_value<A: FastReal, const FMA: bool>(lp: A, p: A, g: A) -> A {
    let v = (lp.fexp::<FMA>() - p) * g;
    if lp == A::neg_infinity() {
        A::nan()
    } else {
        v
    }
}

/// A gradient row for the classes no state emits: `out[c] = exp(lp[c]) * g` (NaN where
/// lp = -inf). One streaming pass: read log_probs, write the gradient.
#[inline(always)]
fn grad_row<'o, R: Element<Acc = A>, E: Element<Acc = A> + 'o, A: FastReal, const FMA: bool>(
    lp: &[R],
    g: A,
    out: impl Iterator<Item = &'o mut E>,
) {
    for (o, &x) in out.zip(lp) {
        *o = E::from_acc(grad_value::<A, FMA>(x.to_acc(), A::zero(), g));
    }
}

/// A whole gradient row from the class posteriors: `out[c] = (exp(lp[c]) - acc[c]) * g` (NaN
/// where lp = -inf), then `acc[c] = 0`.
#[inline(always)]
pub(super) fn grad_row_acc<
    'o,
    R: Element<Acc = A>,
    E: Element<Acc = A> + 'o,
    A: FastReal,
    const FMA: bool,
>(
    lp: &[R],
    acc: &mut [A],
    g: A,
    out: impl Iterator<Item = &'o mut E>,
) {
    grad_row_posteriors::<_, _, _, FMA>(lp, acc, g, out);
    acc.fill(A::zero());
}

/// [`grad_row_acc`] that leaves `acc` as it is (for a caller that clears only the entries it
/// set).
#[inline(always)]
fn grad_row_posteriors<
    'o,
    R: Element<Acc = A>,
    E: Element<Acc = A> + 'o,
    A: FastReal,
    const FMA: bool,
>(
    lp: &[R],
    acc: &[A],
    g: A,
    out: impl IntoIterator<Item = &'o mut E>,
) {
    for ((o, &x), &a) in out.into_iter().zip(lp).zip(acc) {
        *o = E::from_acc(grad_value::<A, FMA>(x.to_acc(), a, g));
    }
}

/// [`grad_row_acc`] with the class posteriors `acc`, else [`grad_row`], into a gradient row of
/// any class stride (a contiguous one takes the slice loop, which vectorizes).
#[inline(always)]
fn write_grad_row<R: Element<Acc = A>, E: Element<Acc = A>, A: FastReal, const FMA: bool>(
    lp: &[R],
    acc: Option<&mut [A]>,
    g: A,
    out: &mut ArrayViewMut1<'_, E>,
) {
    match (out.as_slice_mut(), acc) {
        (Some(o), None) => grad_row::<_, _, _, FMA>(lp, g, o.iter_mut()),
        (Some(o), Some(acc)) => grad_row_acc::<_, _, _, FMA>(lp, acc, g, o.iter_mut()),
        (None, None) => grad_row::<_, _, _, FMA>(lp, g, out.iter_mut()),
        (None, Some(acc)) => grad_row_acc::<_, _, _, FMA>(lp, acc, g, out.iter_mut()),
    }
}

/// After [`grad_row`]: overwrites the gradient of every class a state of the window emits (the
/// blank when `blank_state`, and `labels`) with `(exp(lp[c]) - acc[c]) * g`, then clears those
/// `acc` entries. `eb` is the blank's log-probability and `ext[k]` is `lp[labels[k]]`; the
/// values, computed by [`grad_value`] as [`grad_row_acc`] computes them (so with its bits), go
/// through `vals` (one vector pass between the two scalar passes over the labels).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fix_emitted_classes<E: Element<Acc = A>, A: FastReal, const FMA: bool>(
    eb: A,
    blank_state: bool,
    ext: &[A],
    vals: &mut [A],
    acc: &mut [A],
    labels: &[u32],
    blank: u32,
    g: A,
    out: &mut ArrayViewMut1<'_, E>,
) {
    let b = blank as usize;
    let blank_value = blank_state.then(|| E::from_acc(grad_value::<A, FMA>(eb, acc[b], g)));
    // A label may repeat: every value from its class's total before any total is cleared.
    for (v, &c) in vals.iter_mut().zip(labels) {
        *v = acc[c as usize];
    }
    for (v, &x) in vals.iter_mut().zip(ext) {
        *v = grad_value::<A, FMA>(x, *v, g);
    }
    let values = vals.iter().zip(labels);
    match out.as_slice_mut() {
        Some(o) => {
            if let Some(v) = blank_value {
                o[b] = v;
            }
            for (&v, &c) in values {
                o[c as usize] = E::from_acc(v);
            }
        }
        None => {
            if let Some(v) = blank_value {
                out[b] = v;
            }
            for (&v, &c) in values {
                out[c as usize] = E::from_acc(v);
            }
        }
    }
    acc[b] = A::zero();
    for &c in labels {
        acc[c as usize] = A::zero();
    }
}

/// Adds the posteriors of the window's states to their classes in `acc`: the blank states'
/// as one lane-wise sum (not a chain of read-modify-writes of the same slot), the label
/// states' in order.
#[inline(always)]
fn class_posteriors<A: FastReal>(
    acc: &mut [A],
    post_b: &[A],
    post_l: &[A],
    labels: &[u32],
    blank: u32,
) {
    acc[blank as usize] = acc[blank as usize] + sum_lanes(post_b);
    for (&p, &c) in post_l.iter().zip(labels) {
        acc[c as usize] = acc[c as usize] + p;
    }
}

/// `alpha[i] = exp(alpha[i] + beta[i] + nll - e(i))`: the posteriors of a range of states over
/// their alphas.
#[inline(always)]
fn posteriors_in_place<A: FastReal, const FMA: bool>(
    alpha: &mut [A],
    beta: &[A],
    nll: A,
    e: impl Fn(usize) -> A,
) {
    for (i, (a, &b)) in alpha.iter_mut().zip(beta).enumerate() {
        *a = (*a + b + nll - e(i)).fexp::<FMA>();
    }
}

/// Finishes a gradient row from the posteriors of the window's states (`post_b[k]` of the blank
/// states, `post_l[k]` of the label states, k from the window's first): sums them per class
/// (the blanks lane-wise, the labels in order) and writes `(exp(lp) - posterior) * g`, either in
/// one pass over the row with the class posteriors or, when `stream` wrote `exp(lp) * g` already,
/// by correcting the emitted classes. `acc` is zero on entry and on return.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn emit_row<E: Element<Acc = A>, A: FastReal + Element<Acc = A>, const FMA: bool>(
    row: &Row<'_, E, A>,
    post_b: &[A],
    post_l: &[A],
    ext: &[A],
    emit: &mut [A],
    acc: &mut [A],
    labels: &[u32],
    blank: u32,
    eb: A,
    blank_state: bool,
    upstream: A,
    stream: bool,
    out: &mut ArrayViewMut1<'_, E>,
) {
    class_posteriors(acc, post_b, post_l, labels, blank);
    if !stream {
        // Few classes for this many states: one pass over the row with the class posteriors
        // (`acc`), which it clears.
        row.write_grad::<FMA>(Some(acc), upstream, out);
    } else {
        fix_emitted_classes::<_, _, FMA>(
            eb,
            blank_state,
            ext,
            emit,
            acc,
            labels,
            blank,
            upstream,
            out,
        );
    }
}

impl<E: CpuElement> Job<'_, '_, E> {
    /// Row `t` of log_probs.
    #[inline(always)]
    pub(super) fn row<'r>(
        log_probs: &'r ArrayView2<'_, E>,
        t: usize,
        copy: &'r mut [E::Acc],
    ) -> Row<'r, E, E::Acc> {
        let r = log_probs.row(t);
        match r.to_slice() {
            Some(s) => Row::Direct(s),
            None => {
                for (d, &x) in copy.iter_mut().zip(r.iter()) {
                    *d = x.to_acc();
                }
                Row::Copied(copy)
            }
        }
    }

    /// Forward and, when asked, backward for the sample; returns the negative log-likelihood.
    #[inline(always)]
    fn process<const FMA: bool>(self) -> E::Acc {
        let Job {
            log_probs,
            labels,
            blank,
            input_length: t_b,
            width,
            rows,
            scratch: sc,
            grad,
            deferred,
        } = self;
        let ninf = E::Acc::neg_infinity();
        let len = labels.len();
        let s_prime = 2 * len + 1;
        let classes = log_probs.dim().1;
        let table = table_lookup::<E>(classes);
        // Plane width: b_k at k, l_k at plane + 1 + k.
        let plane = width / 2;
        for k in 0..plane {
            sc.skip[k] = (k < len && can_skip(labels, 2 * k + 1)) as u8;
        }

        // Forward: alpha, row t at (t % rows) * width.
        let mut nll = if t_b == 0 {
            if len == 0 {
                E::Acc::zero()
            } else {
                E::Acc::infinity()
            }
        } else {
            E::Acc::nan() // set below
        };
        if t_b > 0 {
            let mut feasible = true;
            for t in 0..t_b {
                let (lo, hi) = window(t, t_b, s_prime);
                if lo >= hi {
                    feasible = false;
                    break;
                }
                let Planes { bl, bh, ll, lh } = planes(lo, hi);
                // Row 0 takes its (at most two) states as they are; later rows compute ranges
                // padded upwards to whole vectors.
                let lh_pad = pad(ll, lh);
                if classes >= PREFETCH_CLASSES && t + PREFETCH < t_b {
                    if let Some(r) = log_probs.row(t + PREFETCH).to_slice() {
                        let (plo, phi) = window(t + PREFETCH, t_b, s_prime);
                        prefetch_classes(r, labels, blank, plo, phi);
                    }
                }
                let ext = &mut sc.ext[ll..lh];
                let eb = Self::row(&log_probs, t, sc.row).gather(labels, blank, ll, ext, table);
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
                    // b_k from b_k and l_{k-1} (at pl[k]), their pair kept for l_k: over
                    // [ll, bh) padded (ll is bl or bl - 1).
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
                // The next frame reads states hi and hi + 1 of this one (the next blank and the
                // next label): they are unreachable.
                let cur = &mut sc.log_alpha[cur_at..cur_at + width];
                if bh <= len {
                    cur[bh] = ninf;
                }
                if lh < len {
                    cur[plane + 1 + lh] = ninf;
                }
            }
            nll = if !feasible {
                E::Acc::infinity()
            } else {
                let t = t_b - 1;
                let (lo, hi) = window(t, t_b, s_prime);
                let last = &sc.log_alpha[(t % rows) * width..][..width];
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
            };
        }

        *sc.pending = 0;
        let Some((mut grad, upstream, zero_infinity)) = grad else {
            return nll;
        };
        let zero = E::from_acc(E::Acc::zero());
        if t_b == 0 || (zero_infinity && nll == E::Acc::infinity()) {
            grad.fill(zero);
            return nll;
        }
        if nll.is_nan() || nll == E::Acc::infinity() {
            // torch's formula: every class of every frame below T_b is NaN (lcab + nll - lp).
            grad.slice_mut(ndarray::s![..t_b, ..])
                .fill(E::from_acc(E::Acc::nan()));
            grad.slice_mut(ndarray::s![t_b.., ..]).fill(zero);
            return nll;
        }
        if nll == ninf {
            // Only unnormalized +inf inputs get here: the reference loop applies torch's formula
            // literally, including its inf - inf cases.
            let r = reference::Sample {
                log_probs,
                labels,
                blank,
                input_length: t_b,
                states: width,
            };
            let nll = r.forward(sc.log_alpha, rows);
            r.backward(
                sc.log_alpha,
                sc.log_beta,
                sc.acc,
                nll,
                upstream,
                false,
                grad,
            );
            return nll;
        }

        // Backward: beta in two rows, gradient row by row. The class posteriors start at zero
        // (the workspace holds whatever the last call left).
        sc.acc.fill(E::Acc::zero());
        for r in 0..2 {
            sc.log_beta[r * width + plane + 1 + len] = ninf; // l_L
        }
        for t in (0..t_b).rev() {
            let (lo, hi) = window(t, t_b, s_prime);
            let Planes { bl, bh, ll, lh } = planes(lo, hi);
            // Beta, the gathered log-probs and the posteriors over ranges padded upwards to
            // whole vectors; only the window's posteriors are used.
            let (bh_pad, lh_pad) = (pad(bl, bh), pad(ll, lh));
            if deferred && t >= PREFETCH {
                // No streamed row brings this frame's emitted classes into the cache: ask for
                // those of a few frames ahead, as the forward sweep does.
                if let Some(r) = log_probs.row(t - PREFETCH).to_slice() {
                    let (plo, phi) = window(t - PREFETCH, t_b, s_prime);
                    prefetch_classes(r, labels, blank, plo, phi);
                }
            }
            let row = Self::row(&log_probs, t, sc.row);
            let mut out = grad.row_mut(t);
            // Many classes: stream `exp(lp) * g` through the gradient row first (it needs no
            // posterior, and reading the row in order brings it into the cache for the gathers
            // below); the few classes the window's states emit are corrected at the end.
            let stream = hi - lo <= classes / 4;
            if stream && !deferred {
                row.write_grad::<FMA>(None, upstream, &mut out);
            }
            let eb = row.gather(labels, blank, ll, &mut sc.ext[ll..lh_pad], table);
            let cur_at = (t % 2) * width;
            if t == t_b - 1 {
                // The window is [S' - 2, S'): the final label and the final blank.
                let cur = &mut sc.log_beta[cur_at..cur_at + width];
                if bl < bh {
                    cur[len] = eb;
                }
                if ll < lh {
                    cur[plane + 1 + ll] = sc.ext[ll];
                }
            } else {
                let (next, cur) = rows_pair(sc.log_beta, (t + 1) % 2, t % 2, width);
                let (nb, nl) = next.split_at(plane);
                let (cb, cl) = cur.split_at_mut(plane);
                // b_k from b_k and l_k (at nl[k + 1]), their pair kept for l_{k-1}: over
                // [bl, bh] padded (l_{lh-1} takes the pair of b_{lh}, which may be bh).
                let pe = pad(bl, bh + 1);
                pair_rows::<_, FMA>(
                    &nb[bl..pe],
                    &nl[bl + 1..pe + 1],
                    eb,
                    &sc.skip[bl..pe],
                    (&mut sc.post[bl..pe], &mut sc.emit[bl..pe]),
                    &mut cb[bl..pe],
                );
                // l_k (at cl[k + 1]) from l_k and the pair (b_{k+1}, l_{k+1}).
                label_rows::<_, FMA>(
                    &nl[ll + 1..lh_pad + 1],
                    (&sc.post[ll + 1..lh_pad + 1], &sc.emit[ll + 1..lh_pad + 1]),
                    &sc.ext[ll..lh_pad],
                    &mut cl[ll + 1..lh_pad + 1],
                );
                // The padding may have overwritten the pad l_L.
                cl[len + 1] = ninf;
            }
            // The previous frame reads states lo - 2 and lo - 1 of this one (the blank and the
            // label below the window): they cannot finish.
            if bl > 0 {
                sc.log_beta[cur_at + bl - 1] = ninf;
            }
            if ll > 0 {
                sc.log_beta[cur_at + plane + ll] = ninf;
            }

            // Posteriors of the window's states: into `post` (blanks at k, labels at
            // plane + k), or, when the gradient is deferred, in place over row t of alpha
            // (which nothing reads any more).
            let beta = &sc.log_beta[cur_at..][..width];
            let (beta_b, beta_l) = (&beta[bl..bh_pad], &beta[plane + 1 + ll..plane + 1 + lh_pad]);
            let ext = &sc.ext[ll..lh_pad];
            let (alpha_b, alpha_l) = sc.log_alpha[t * width..][..width].split_at_mut(plane + 1);
            let (alpha_b, alpha_l) = (&mut alpha_b[bl..bh_pad], &mut alpha_l[ll..lh_pad]);
            if deferred {
                posteriors_in_place::<_, FMA>(alpha_b, beta_b, nll, |_| eb);
                posteriors_in_place::<_, FMA>(alpha_l, beta_l, nll, |i| ext[i]);
                continue;
            }
            let (post_b, post_l) = sc.post.split_at_mut(plane);
            for ((p, &a), &b) in post_b[bl..bh_pad].iter_mut().zip(&*alpha_b).zip(beta_b) {
                *p = (a + b + nll - eb).fexp::<FMA>();
            }
            for (((p, &a), &b), &e) in post_l[ll..lh_pad]
                .iter_mut()
                .zip(&*alpha_l)
                .zip(beta_l)
                .zip(ext)
            {
                *p = (a + b + nll - e).fexp::<FMA>();
            }
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
        // Whether `Phase::Gradient` has rows to write for this sample.
        *sc.pending = deferred as u8;
        grad.slice_mut(ndarray::s![t_b.., ..]).fill(zero);
        nll
    }

    /// Row `t` of the gradient from the posteriors the backward sweep left in row t of alpha
    /// (deferred gradient), with `acc` (C entries, zero on entry and on return) for the class
    /// posteriors.
    #[inline(always)]
    fn gradient_frame<const FMA: bool>(&mut self, t: usize, acc: &mut [E::Acc]) {
        let job = self;
        let t_b = job.input_length;
        if !job.deferred || *job.scratch.pending == 0 || t >= t_b {
            return;
        }
        let (labels, blank, width) = (job.labels, job.blank, job.width);
        let (log_probs, sc) = (&job.log_probs, &mut job.scratch);
        let Some((grad, upstream, _)) = job.grad.as_mut() else {
            return;
        };
        let upstream = *upstream;
        let classes = log_probs.dim().1;
        let table = table_lookup::<E>(classes);
        let plane = width / 2;
        let (lo, hi) = window(t, t_b, 2 * labels.len() + 1);
        let Planes { bl, bh, ll, lh } = planes(lo, hi);
        let row = Job::row(log_probs, t, sc.row);
        let mut out = grad.row_mut(t);
        let post = &sc.log_alpha[t * width..][..width];
        if t + 1 < t_b {
            // This sample's next row of posteriors, which the sweeps left in a table too large
            // for the core's cache, and which comes back after the group's other samples.
            prefetch_lines(&sc.log_alpha[(t + 1) * width..][..width]);
        }
        let (post_b, post_l) = (&post[bl..bh], &post[plane + 1 + ll..plane + 1 + lh]);
        if classes * std::mem::size_of::<E::Acc>() <= DENSE_BYTES {
            // One pass over the row with the class posteriors (the group's buffer stays in L1),
            // which it leaves for the emitted classes to be cleared.
            let labels = &labels[ll..lh];
            class_posteriors(acc, post_b, post_l, labels, blank);
            row.write_grad_keeping::<FMA>(acc, upstream, &mut out);
            acc[blank as usize] = E::Acc::zero();
            for &c in labels {
                acc[c as usize] = E::Acc::zero();
            }
            return;
        }
        let stream = hi - lo <= classes / 4;
        if stream {
            row.write_grad::<FMA>(None, upstream, &mut out);
        }
        let eb = row.gather(labels, blank, ll, &mut sc.ext[ll..lh], table);
        emit_row::<_, _, FMA>(
            &row,
            post_b,
            post_l,
            &sc.ext[ll..lh],
            &mut sc.emit[ll..lh],
            acc,
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

#[inline(always)]
fn process_group<E: CpuElement, const FMA: bool>(
    group: &mut [Option<Job<'_, '_, E>>],
    nll: &mut [E::Acc],
    phase: Phase,
) {
    match phase {
        Phase::Sweeps => {
            for (job, nll) in group.iter_mut().zip(nll) {
                if let Some(job) = job.take() {
                    *nll = job.process::<FMA>();
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
                    job.gradient_frame::<FMA>(t, acc);
                }
            }
            if let Some(first) = group.iter_mut().flatten().next() {
                first.scratch.acc = acc;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
fn process_avx512<E: CpuElement>(
    group: &mut [Option<Job<'_, '_, E>>],
    nll: &mut [E::Acc],
    phase: Phase,
) {
    process_group::<E, true>(group, nll, phase)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn process_avx2<E: CpuElement>(
    group: &mut [Option<Job<'_, '_, E>>],
    nll: &mut [E::Acc],
    phase: Phase,
) {
    process_group::<E, true>(group, nll, phase)
}

/// The instruction sets the kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
    Baseline,
}

#[cfg(test)]
thread_local! {
    /// Tests run the kernel compiled for a chosen instruction set (never one the CPU lacks).
    pub(crate) static FORCED: std::cell::Cell<Option<Isa>> = const { std::cell::Cell::new(None) };
}

/// Every instruction set this CPU can run, best first.
#[cfg(test)]
pub(crate) fn supported() -> Vec<Isa> {
    let best = FORCED.with(|f| f.replace(None));
    let top = detect();
    FORCED.with(|f| f.set(best));
    [Isa::Avx512, Isa::Avx2, Isa::Baseline]
        .into_iter()
        .skip_while(|&i| i != top)
        .collect()
}

/// The best instruction set this CPU supports.
pub(crate) fn detect() -> Isa {
    #[cfg(test)]
    if let Some(isa) = FORCED.with(|f| f.get()) {
        return isa;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx2") && has!("fma") {
            return Isa::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

/// Runs `phase` for a group of samples with the kernel compiled for `isa` (which must be
/// supported: see [`detect`]); [`Phase::Sweeps`] sets `nll[i]` for `group[i]`.
pub(crate) fn process<E: CpuElement>(
    group: &mut [Option<Job<'_, '_, E>>],
    nll: &mut [E::Acc],
    phase: Phase,
    isa: Isa,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` found avx512f, avx512bw, avx512vl, avx2 and fma on this CPU.
        Isa::Avx512 => unsafe { process_avx512(group, nll, phase) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` found avx2 and fma on this CPU.
        Isa::Avx2 => unsafe { process_avx2(group, nll, phase) },
        _ => process_group::<E, false>(group, nll, phase),
    }
}

#[cfg(test)]
mod tests {
    use super::{lae2_parts, lae_with_pair, pair_value};
    use crate::algorithm::{log_add_exp, log_add_exp3};

    /// Finite values of many magnitudes, and the special ones.
    const VALUES: [f64; 12] = [
        0.0,
        -1e-7,
        -0.5,
        -0.69,
        -3.0,
        -30.0,
        -88.0,
        -1000.0,
        2.5,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NAN,
    ];

    /// The two-term log-add-exp from its parts, and the three-term one from a pair, against the
    /// reference formulas (torch's) on every combination: the same class (NaN, +-inf, finite)
    /// and, where finite, the same value up to float32 rounding; with `(b, 1)` for the pair, the
    /// two-term one with the same bits. Run without FMA and, where the CPU has it, with.
    #[test]
    fn log_add_exp_parts_agree_with_the_reference_formulas() {
        fn check<const FMA: bool>() {
            let class = |v: f64| (v.is_nan(), v == f64::INFINITY, v == f64::NEG_INFINITY);
            for &a in &VALUES {
                for &b in &VALUES {
                    let (m, u) = lae2_parts::<f32, FMA>(a as f32, b as f32);
                    let two = pair_value::<f32, FMA>(m, u) as f64;
                    let want = log_add_exp(a, b);
                    assert_eq!(
                        class(two),
                        class(want),
                        "lae2({a}, {b}) = {two}, want {want}"
                    );
                    if want.is_finite() {
                        assert!((two - want).abs() <= 3e-7 * want.abs().max(1.0), "{a} {b}");
                    }
                    for &x in &VALUES {
                        let three = lae_with_pair::<f32, FMA>(x as f32, m, u) as f64;
                        let want = log_add_exp3(x, a, b);
                        assert_eq!(
                            class(three),
                            class(want),
                            "lae3({x}, {a}, {b}) = {three}, want {want}"
                        );
                        if want.is_finite() {
                            let tol = 4e-7 * want.abs().max(1.0);
                            assert!((three - want).abs() <= tol, "lae3({x}, {a}, {b})");
                        }
                    }
                    let (ma, ua) = lae2_parts::<f32, FMA>(b as f32, a as f32);
                    let alone = pair_value::<f32, FMA>(ma, ua);
                    let with_one = lae_with_pair::<f32, FMA>(b as f32, a as f32, 1.0);
                    assert!(
                        alone.to_bits() == with_one.to_bits()
                            || alone.is_nan() && with_one.is_nan(),
                        "lae2({b}, {a}): {alone} from its parts, {with_one} from (a, 1)"
                    );
                }
            }
        }
        check::<false>();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("fma") {
            check::<true>();
        }
    }
}
