//! Logits input: the shift of each frame, its log-sum-exp (`crate::algorithm`, "Logits"), which
//! the kernels subtract from the values they read to get log-probabilities.

use super::layout::VECTOR_WIDTH;
use super::math::{CpuElement, FastReal};
use crate::types::Element;
use ndarray::ArrayView2;
use num_traits::Float;

/// What a frame's values are shifted by to give log-probabilities: its maximum and the log of
/// its sum of `exp(x - max)`, subtracted in that order, `(x - max) - lse`, as torch's
/// log_softmax does: `x - max` is exact near the maximum, so a large offset common to a frame's
/// logits (1e4) costs no accuracy, as subtracting the rounded `max + lse` would.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Shift<A> {
    pub max: A,
    pub lse: A,
}

impl<A: FastReal> Shift<A> {
    /// No shift: the values are log-probabilities already.
    #[inline(always)]
    pub(crate) fn none() -> Shift<A> {
        Shift {
            max: A::zero(),
            lse: A::zero(),
        }
    }

    /// Whether applying the shift changes nothing.
    #[inline(always)]
    pub(crate) fn is_none(&self) -> bool {
        self.max == A::zero() && self.lse == A::zero()
    }

    /// The log-probability of the value `x`.
    #[inline(always)]
    pub(crate) fn apply(self, x: A) -> A {
        (x - self.max) - self.lse
    }
}

/// `shifts[2t]`, `shifts[2t + 1]` = the [`Shift`] (max, lse) of row t of `logits` (T, C), for
/// 2t < `shifts.len()`; `copy` (C entries) holds a row whose class stride is not 1.
#[inline(always)]
pub(crate) fn frame_shifts<E: CpuElement, const FMA: bool>(
    logits: &ArrayView2<'_, E>,
    shifts: &mut [E::Acc],
    copy: &mut [E::Acc],
) {
    for (t, pair) in shifts.chunks_exact_mut(2).enumerate() {
        let s = frame_shift::<E, FMA>(logits, t, copy);
        (pair[0], pair[1]) = (s.max, s.lse);
    }
}

/// The shift of row t of `logits` (T, C); `copy` as for [`frame_shifts`].
#[inline(always)]
pub(crate) fn frame_shift<E: CpuElement, const FMA: bool>(
    logits: &ArrayView2<'_, E>,
    t: usize,
    copy: &mut [E::Acc],
) -> Shift<E::Acc> {
    let row = logits.row(t);
    match row.as_slice() {
        Some(r) => log_sum_exp::<E, E::Acc, FMA>(r),
        None => {
            for (d, &x) in copy.iter_mut().zip(row.iter()) {
                *d = x.to_acc();
            }
            log_sum_exp::<E::Acc, E::Acc, FMA>(&copy[..row.len()])
        }
    }
}

/// `m` and `ln(sum exp(x - m))` over `row`, `m` its maximum, each in `VECTOR_WIDTH` lanes in a
/// fixed order (vectorized, and the same bits whatever the thread count). NaN for a row with a
/// NaN or +inf, max -inf for a row of -inf (the values' log-probabilities are NaN either way, as
/// torch's log_softmax gives).
#[inline(always)]
fn log_sum_exp<R: Element<Acc = A>, A: FastReal, const FMA: bool>(row: &[R]) -> Shift<A> {
    let ninf = A::neg_infinity();
    let chunks = row.chunks_exact(VECTOR_WIDTH);
    let rest = chunks.remainder();
    let mut maxima = [ninf; VECTOR_WIDTH];
    // Maxima by `>` would drop a NaN; the total of `x * 0` keeps it (and catches +inf) instead.
    let mut poison = [A::zero(); VECTOR_WIDTH];
    for chunk in chunks.clone() {
        for ((m, p), &x) in maxima.iter_mut().zip(&mut poison).zip(chunk) {
            let x = x.to_acc();
            *m = if x > *m { x } else { *m };
            *p = *p + x * A::zero();
        }
    }
    for ((m, p), &x) in maxima.iter_mut().zip(&mut poison).zip(rest) {
        let x = x.to_acc();
        *m = if x > *m { x } else { *m };
        *p = *p + x * A::zero();
    }
    let m = maxima.iter().fold(ninf, |a, &b| if b > a { b } else { a });
    // x * 0 is NaN for a NaN or an infinity; only -inf is allowed (it adds nothing to the sum).
    if poison.iter().any(|p| p.is_nan()) && (m == A::infinity() || row_has_nan(row)) {
        return Shift {
            max: A::nan(),
            lse: A::nan(),
        };
    }
    if m == ninf {
        return Shift {
            max: ninf,
            lse: A::zero(),
        };
    }
    let mut sums = [A::zero(); VECTOR_WIDTH];
    for chunk in chunks {
        for (s, &x) in sums.iter_mut().zip(chunk) {
            *s = *s + (x.to_acc() - m).fexp_nonpositive::<FMA>();
        }
    }
    for (s, &x) in sums.iter_mut().zip(rest) {
        *s = *s + (x.to_acc() - m).fexp_nonpositive::<FMA>();
    }
    let total = sums.iter().fold(A::zero(), |a, &b| a + b);
    Shift {
        max: m,
        lse: total.ln(),
    }
}

/// Whether `row` holds a NaN (the rare path of [`log_sum_exp`]).
#[cold]
fn row_has_nan<R: Element>(row: &[R]) -> bool {
    row.iter().any(|x| x.to_acc().is_nan())
}
