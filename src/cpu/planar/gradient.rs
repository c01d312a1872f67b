//! Gradient rows: `(exp(lp) - posterior) * g` for every class of a frame, from the posteriors of
//! the frame's states, either in one pass with the class posteriors or streamed and then
//! corrected at the emitted classes; and the deferred pass ([`super::Phase::Gradient`]) that
//! writes them from the posteriors the backward sweep left in the alpha table.

use super::gather::{prefetch_lines, table_lookup};
use super::{planes, row_of, window, Job, Planes, Row, Shift};
use crate::cpu::isa::{F16c, Isa};
use crate::cpu::layout::VECTOR_WIDTH;
use crate::cpu::math::{CpuElement, FastReal};
use crate::types::Element;
use ndarray::ArrayViewMut1;
use num_traits::Zero;

/// In the deferred gradient pass, rows whose class posteriors take at most this many bytes are
/// written in one pass with them (as [`grad_row_acc`]); wider ones stream `exp(lp) * g` and then
/// correct the emitted classes (a buffer of 8000 classes no longer stays in L1 beside the rows;
/// the measurements that set the bound are in docs/benchmarks.md).
const DENSE_BYTES: usize = 8 << 10;

/// Classes of a half row computed at a time through float32 buffers (two of 512 bytes, which
/// stay in L1 between the widening, the gradient and the narrowing).
const HALF_BLOCK: usize = 128;

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

/// Which derivative a gradient row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// torch's `exp(lp) - posterior` (`CTC_GRADIENT_TORCH` on log-probabilities).
    Torch,
    /// The exact `-posterior` (`CTC_GRADIENT_EXACT` on log-scores).
    Exact,
    /// `softmax(x) - posterior` for logits x (`CTC_INPUT_LOGITS`, either gradient): the rows
    /// hold the logits, and `lp = shift.apply(x)` with the frame's [`Shift`].
    Softmax,
}

/// The factor a sample's gradient rows are scaled by, which derivative they hold, and (logits)
/// what the row's values are shifted by to give log-probabilities.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Upstream<A> {
    /// `grad_loss` of the sample through the reduction.
    pub g: A,
    pub form: Form,
    /// The shift of the current frame's logits ([`Form::Softmax`]; none otherwise, and for
    /// values that are log-probabilities already).
    pub shift: Shift<A>,
}

impl<A: FastReal> Upstream<A> {
    /// The same factor and form for values shifted by `shift`.
    #[inline(always)]
    pub(crate) fn shifted(self, shift: Shift<A>) -> Upstream<A> {
        Upstream { shift, ..self }
    }
}

/// torch's `(exp(lp) - p) * g`, NaN where `lp = -inf` (its formula gives `-inf + inf` there),
/// for the posterior mass `p` of the class (0 for a class no state emits); or, exact,
/// `(0 - p) * g` (+0 for a class no state emits, finite where lp = -inf); or, for a logit `lp`,
/// `(exp(lp - shift) - p) * g` (finite where the logit is -inf, as the softmax is).
#[inline(always)]
pub(crate) fn grad_value<A: FastReal, const FMA: bool>(lp: A, p: A, u: Upstream<A>) -> A {
    match u.form {
        Form::Exact => (A::zero() - p) * u.g,
        Form::Softmax => (u.shift.apply(lp).fexp::<FMA>() - p) * u.g,
        Form::Torch => {
            let v = (lp.fexp::<FMA>() - p) * u.g;
            if lp == A::neg_infinity() {
                A::nan()
            } else {
                v
            }
        }
    }
}

/// A gradient row for the classes no state emits: `out[c] = exp(lp[c]) * g` (NaN where
/// lp = -inf). One streaming pass: read log_probs, write the gradient.
#[inline(always)]
pub(super) fn grad_row<
    'o,
    R: Element<Acc = A>,
    E: Element<Acc = A> + 'o,
    A: FastReal,
    const FMA: bool,
>(
    lp: &[R],
    g: Upstream<A>,
    out: impl Iterator<Item = &'o mut E>,
) {
    // The mode is tested once a row, not once an element, so that each loop vectorizes alone.
    match g.form {
        Form::Exact => out.for_each(|o| *o = E::from_acc(A::zero())),
        Form::Torch => {
            let torch = Upstream {
                form: Form::Torch,
                ..g
            };
            for (o, &x) in out.zip(lp) {
                *o = E::from_acc(grad_value::<A, FMA>(x.to_acc(), A::zero(), torch));
            }
        }
        Form::Softmax => {
            let softmax = Upstream {
                form: Form::Softmax,
                ..g
            };
            for (o, &x) in out.zip(lp) {
                *o = E::from_acc(grad_value::<A, FMA>(x.to_acc(), A::zero(), softmax));
            }
        }
    }
}

/// A whole gradient row from the class posteriors: `out[c] = (exp(lp[c]) - acc[c]) * g` (NaN
/// where lp = -inf), then `acc[c] = 0`.
#[inline(always)]
pub(crate) fn grad_row_acc<
    'o,
    R: Element<Acc = A>,
    E: Element<Acc = A> + 'o,
    A: FastReal,
    const FMA: bool,
>(
    lp: &[R],
    acc: &mut [A],
    g: Upstream<A>,
    out: impl Iterator<Item = &'o mut E>,
) {
    grad_row_posteriors::<_, _, _, FMA>(lp, acc, g, out);
    acc.fill(A::zero());
}

/// [`grad_row_acc`] that leaves `acc` as it is (for a caller that clears only the entries it
/// set).
#[inline(always)]
pub(super) fn grad_row_posteriors<
    'o,
    R: Element<Acc = A>,
    E: Element<Acc = A> + 'o,
    A: FastReal,
    const FMA: bool,
>(
    lp: &[R],
    acc: &[A],
    g: Upstream<A>,
    out: impl IntoIterator<Item = &'o mut E>,
) {
    let out = out.into_iter();
    match g.form {
        Form::Exact => {
            for (o, &a) in out.zip(acc) {
                *o = E::from_acc((A::zero() - a) * g.g);
            }
        }
        Form::Torch => {
            let torch = Upstream {
                form: Form::Torch,
                ..g
            };
            for ((o, &x), &a) in out.zip(lp).zip(acc) {
                *o = E::from_acc(grad_value::<A, FMA>(x.to_acc(), a, torch));
            }
        }
        Form::Softmax => {
            let softmax = Upstream {
                form: Form::Softmax,
                ..g
            };
            for ((o, &x), &a) in out.zip(lp).zip(acc) {
                *o = E::from_acc(grad_value::<A, FMA>(x.to_acc(), a, softmax));
            }
        }
    }
}

/// [`grad_row_posteriors`] with the class posteriors `acc`, else [`grad_row`], into a
/// contiguous gradient row: directly for float32 and float64 rows; through float32 blocks for
/// half rows or outputs, widened and narrowed a block at a time (with F16C when `f16c` is given)
/// rather than an element at a time (the same bits either way).
#[inline(always)]
pub(super) fn grad_row_slice<
    R: CpuElement<Fast = A>,
    E: CpuElement<Fast = A>,
    A: FastReal + CpuElement<Fast = A>,
    const FMA: bool,
>(
    lp: &[R],
    acc: Option<&[A]>,
    g: Upstream<A>,
    out: &mut [E],
    f16c: Option<F16c>,
) {
    if !R::NARROW && !E::NARROW {
        match acc {
            None => grad_row::<_, _, _, FMA>(lp, g, out.iter_mut()),
            Some(acc) => grad_row_posteriors::<_, _, _, FMA>(lp, acc, g, out),
        }
        return;
    }
    let (mut x, mut y) = ([A::zero(); HALF_BLOCK], [A::zero(); HALF_BLOCK]);
    for (start, out) in (0..).step_by(HALF_BLOCK).zip(out.chunks_mut(HALF_BLOCK)) {
        let n = out.len();
        let (x, y) = (&mut x[..n], &mut y[..n]);
        if g.form != Form::Exact {
            // (The exact form does not read the row.)
            R::widen(&lp[start..start + n], x, f16c);
        }
        match acc {
            None => grad_row::<A, A, A, FMA>(x, g, y.iter_mut()),
            Some(acc) => grad_row_posteriors::<A, A, A, FMA>(x, &acc[start..start + n], g, &mut *y),
        }
        E::narrow(y, out, f16c);
    }
}

/// [`grad_row_acc`] with the class posteriors `acc`, else [`grad_row`], into a gradient row of
/// any class stride (a contiguous one takes [`grad_row_slice`], which vectorizes).
#[inline(always)]
pub(super) fn write_grad_row<
    R: CpuElement<Fast = A>,
    E: CpuElement<Fast = A>,
    A: FastReal + CpuElement<Fast = A>,
    const FMA: bool,
>(
    lp: &[R],
    acc: Option<&mut [A]>,
    g: Upstream<A>,
    out: &mut ArrayViewMut1<'_, E>,
    f16c: Option<F16c>,
) {
    match (out.as_slice_mut(), acc) {
        (Some(o), None) => grad_row_slice::<_, _, _, FMA>(lp, None, g, o, f16c),
        (Some(o), Some(acc)) => {
            grad_row_slice::<_, _, _, FMA>(lp, Some(acc), g, o, f16c);
            acc.fill(A::zero());
        }
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
    g: Upstream<A>,
    out: &mut ArrayViewMut1<'_, E>,
) {
    let b = blank as usize;
    // `eb` and `ext` are log-probabilities already (gathered with the frame's shift).
    let g = g.shifted(Shift::none());
    let blank_value = blank_state.then(|| E::from_acc(grad_value::<A, FMA>(eb, acc[b], g)));
    // A label may repeat: every value from its class's total before any total is cleared.
    for (v, &c) in vals.iter_mut().zip(labels) {
        *v = acc[c as usize];
    }
    grad_values::<A, FMA>(ext, vals, g);
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

/// `vals[i] = grad_value(xs[i], vals[i], g)`, the form tested once (not once an element), so
/// that each loop vectorizes alone.
#[inline(always)]
fn grad_values<A: FastReal, const FMA: bool>(xs: &[A], vals: &mut [A], g: Upstream<A>) {
    macro_rules! each {
        ($form:expr) => {{
            let u = Upstream { form: $form, ..g };
            for (v, &x) in vals.iter_mut().zip(xs) {
                *v = grad_value::<A, FMA>(x, *v, u);
            }
        }};
    }
    match g.form {
        Form::Exact => each!(Form::Exact),
        Form::Torch => each!(Form::Torch),
        Form::Softmax => each!(Form::Softmax),
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

/// `exp(x)` of a state's log-posterior `x = alpha + beta + nll - e`; 0 where `x` is NaN, which
/// (nll being finite here) only a state emitting a class of log-probability -inf gives
/// (`-inf - -inf`): it is on no alignment, its posterior is 0 (the exact gradient is finite
/// there; torch's formula is NaN there whatever the posterior).
#[inline(always)]
pub(super) fn posterior<A: FastReal, const FMA: bool>(x: A) -> A {
    if x.is_nan() {
        A::zero()
    } else {
        x.fexp::<FMA>()
    }
}

/// `alpha[i] = exp(alpha[i] + beta[i] + nll - e(i))`: the posteriors of a range of states over
/// their alphas.
#[inline(always)]
pub(super) fn posteriors_in_place<A: FastReal, const FMA: bool>(
    alpha: &mut [A],
    beta: &[A],
    nll: A,
    e: impl Fn(usize) -> A,
) {
    for (i, (a, &b)) in alpha.iter_mut().zip(beta).enumerate() {
        *a = posterior::<A, FMA>(*a + b + nll - e(i));
    }
}

/// Finishes a gradient row from the posteriors of the window's states (`post_b[k]` of the blank
/// states, `post_l[k]` of the label states, k from the window's first): sums them per class
/// (the blanks lane-wise, the labels in order) and writes `(exp(lp) - posterior) * g`, either in
/// one pass over the row with the class posteriors or, when `stream` wrote `exp(lp) * g` already,
/// by correcting the emitted classes. `acc` is zero on entry and on return.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn emit_row<
    E: CpuElement<Fast = A>,
    A: FastReal + CpuElement<Fast = A>,
    const FMA: bool,
>(
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
    upstream: Upstream<A>,
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
    /// Row `t` of the gradient from the posteriors the backward sweep left in row t of alpha
    /// (deferred gradient), with `acc` (C entries, zero on entry and on return) for the class
    /// posteriors.
    #[inline(always)]
    pub(super) fn gradient_frame<const FMA: bool>(
        &mut self,
        t: usize,
        acc: &mut [E::Acc],
        isa: Isa,
    ) {
        let job = self;
        let t_b = job.input_length;
        if !job.deferred || *job.scratch.pending == 0 || t >= t_b {
            return;
        }
        let (labels, blank, width, f16c) = (job.labels, job.blank, job.width, job.f16c);
        let (log_probs, sc) = (&job.log_probs, &mut job.scratch);
        let Some((grad, upstream, _)) = job.grad.as_mut() else {
            return;
        };
        let upstream = *upstream;
        let classes = log_probs.dim().1;
        let table = table_lookup::<E>(isa, classes);
        let plane = width / 2;
        let (lo, hi) = window(t, t_b, 2 * labels.len() + 1);
        let Planes { bl, bh, ll, lh } = planes(lo, hi);
        let shift = Job::<E>::shift(&sc.shifts, t);
        let row = row_of(log_probs, t, sc.row, shift, f16c);
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
