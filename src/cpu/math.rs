//! Elementary functions for the vectorized CPU kernel.
//!
//! The float32 `exp` is a branch-free (selects only) version of Cephes' `expf` (about 1 ulp);
//! `ln` is needed only on [1, 3] (the `ln(1 + p + q)` of a three-term log-add-exp) and is a short
//! atanh series there (at most 2 ulps, exact at 1). Both are written so that LLVM vectorizes
//! loops over them with whatever SIMD instructions the calling function is compiled for (see
//! `fast.rs`). No `floor` or float-to-int conversion is used, so that even the baseline x86-64
//! (SSE2) build vectorizes. `FMA` selects fused multiply-adds for the polynomials: only for code
//! compiled with the `fma` target feature (elsewhere `mul_add` would be a library call). float64
//! uses the standard library's `exp` and `ln`. [`FastReal`] gives the kernels one name for each
//! function in both precisions.

use super::convert;
use super::isa::F16c;
use crate::types::{Element, Real};

/// The scalar type of the CPU kernels: [`Real`] with the kernels' own elementary functions.
pub(crate) trait FastReal: Real {
    /// e^x as the vectorized kernels compute it; `FMA` only in code compiled with the fma target
    /// feature.
    fn fexp<const FMA: bool>(self) -> Self;
    /// e^x for x <= 0, as the kernels compute it where the result is added to 1.
    fn fexp_nonpositive<const FMA: bool>(self) -> Self;
    /// ln x for x in [1, 3].
    fn fln_1_3<const FMA: bool>(self) -> Self;
    /// `self * b + c`, fused when `FMA`.
    #[inline(always)]
    fn fmad<const FMA: bool>(self, b: Self, c: Self) -> Self {
        if FMA {
            self.mul_add(b, c)
        } else {
            self * b + c
        }
    }
}

impl FastReal for f32 {
    #[inline(always)]
    fn fexp<const FMA: bool>(self) -> f32 {
        exp_f32::<FMA>(self)
    }
    #[inline(always)]
    fn fexp_nonpositive<const FMA: bool>(self) -> f32 {
        exp_nonpositive_f32::<FMA>(self)
    }
    #[inline(always)]
    fn fln_1_3<const FMA: bool>(self) -> f32 {
        ln_1_3_f32::<FMA>(self)
    }
}

impl FastReal for f64 {
    #[inline(always)]
    fn fexp<const FMA: bool>(self) -> f64 {
        self.exp()
    }
    #[inline(always)]
    fn fexp_nonpositive<const FMA: bool>(self) -> f64 {
        self.exp()
    }
    #[inline(always)]
    fn fln_1_3<const FMA: bool>(self) -> f64 {
        self.ln()
    }
}

/// An element type the CPU kernels take: its accumulation type is a [`FastReal`], and its rows
/// convert to and from it in blocks.
pub(crate) trait CpuElement: Element<Acc = <Self as CpuElement>::Fast> {
    /// The accumulation type.
    type Fast: FastReal + CpuElement<Fast = Self::Fast>;
    /// Stored narrower than it is computed (float16, bfloat16): the kernels' passes over whole
    /// rows go through blocks of the accumulation type ([`Self::widen`], [`Self::narrow`]).
    const NARROW: bool = false;
    /// `dst[i] = src[i].to_acc()` for `i < min(len)`, with F16C when `f16c` is given.
    #[inline(always)]
    fn widen(src: &[Self], dst: &mut [Self::Fast], f16c: Option<F16c>) {
        let _ = f16c;
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s.to_acc();
        }
    }
    /// `dst[i] = from_acc(src[i])` for `i < min(len)`, with F16C when `f16c` is given.
    #[inline(always)]
    fn narrow(src: &[Self::Fast], dst: &mut [Self], f16c: Option<F16c>) {
        let _ = f16c;
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = Self::from_acc(s);
        }
    }
}

impl CpuElement for f32 {
    type Fast = f32;
}

impl CpuElement for f64 {
    type Fast = f64;
}

impl CpuElement for half::f16 {
    type Fast = f32;
    const NARROW: bool = true;
    #[inline(always)]
    fn widen(src: &[Self], dst: &mut [f32], f16c: Option<F16c>) {
        convert::widen_f16(src, dst, f16c);
    }
    #[inline(always)]
    fn narrow(src: &[f32], dst: &mut [Self], f16c: Option<F16c>) {
        convert::narrow_f16(src, dst, f16c);
    }
}

impl CpuElement for half::bf16 {
    type Fast = f32;
    const NARROW: bool = true;
    #[inline(always)]
    fn widen(src: &[Self], dst: &mut [f32], _: Option<F16c>) {
        convert::widen_bf16(src, dst);
    }
    #[inline(always)]
    fn narrow(src: &[f32], dst: &mut [Self], _: Option<F16c>) {
        convert::narrow_bf16(src, dst);
    }
}

/// `a * b + c`, fused when `FMA`.
#[inline(always)]
fn mad<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn select(c: bool, a: f32, b: f32) -> f32 {
    if c {
        a
    } else {
        b
    }
}

/// Round-to-nearest-integer bias: adding it leaves the integer in the low mantissa bits.
const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23

/// Cephes `expf`: x = n ln2 + r with |r| <= ln2 / 2, e^r by a degree-6 polynomial, times 2^n.
#[inline(always)]
pub(crate) fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    const MAX: f32 = 88.722_83; // ln(f32::MAX)
    const MIN: f32 = -87.336_55; // ln(f32::MIN_POSITIVE)
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // Clamped by compare-and-select so that NaN passes through (and yields NaN below).
    let z = select(x > MAX, MAX, select(x < MIN, MIN, x));
    let t = mad::<FMA>(z, LOG2E, ROUND);
    let n = t - ROUND;
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32); // n as an integer
    let r = mad::<FMA>(n, -C2, mad::<FMA>(n, -C1, z));
    let mut p = 1.987_569_1e-4f32;
    p = mad::<FMA>(p, r, 1.398_199_9e-3);
    p = mad::<FMA>(p, r, 8.333_452e-3);
    p = mad::<FMA>(p, r, 4.166_579_6e-2);
    p = mad::<FMA>(p, r, 1.666_666_5e-1);
    p = mad::<FMA>(p, r, 0.5);
    let y = mad::<FMA>(p * r, r, r + 1.0);
    // 2^n as 2^h * 2^(n-h), h = n/2: both factors stay normal for every n in [-126, 128].
    let h = ni >> 1;
    let scale1 = f32::from_bits(((h + 127) as u32) << 23);
    let scale2 = f32::from_bits(((ni - h + 127) as u32) << 23);
    let e = y * scale1 * scale2;
    let e = select(x < MIN, 0.0, e);
    select(x > MAX, f32::INFINITY, e)
}

/// e^x for x <= 0 (or NaN, giving an unspecified value), as [`exp_f32`] without its special
/// cases: x below ln(f32::MIN_POSITIVE), -inf included, gives e^-87.3 (about 1.2e-38) instead of
/// a subnormal or 0. Used only where the result is added to 1, which that cannot change.
#[inline(always)]
pub(crate) fn exp_nonpositive_f32<const FMA: bool>(x: f32) -> f32 {
    const MIN: f32 = -87.336_55;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    let z = if x < MIN { MIN } else { x };
    let t = mad::<FMA>(z, LOG2E, ROUND);
    let n = t - ROUND;
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32); // in [-126, 0]
    let r = mad::<FMA>(n, -C2, mad::<FMA>(n, -C1, z));
    // The polynomial of exp_f32 by Estrin's scheme (pairs of coefficients, then powers of r^2):
    // a shorter dependency chain, since this exp sits on the recurrence's critical path.
    let r2 = r * r;
    let a = mad::<FMA>(r, 1.666_666_5e-1, 0.5);
    let b = mad::<FMA>(r, 8.333_452e-3, 4.166_579_6e-2);
    let c = mad::<FMA>(r, 1.987_569_1e-4, 1.398_199_9e-3);
    let p = mad::<FMA>(r2, mad::<FMA>(r2, c, b), a);
    let y = mad::<FMA>(p, r2, r + 1.0);
    y * f32::from_bits(((ni + 127) as u32) << 23)
}

/// `ln x` for x in [1, 3] (other inputs give unspecified values; NaN gives NaN), with the
/// relative accuracy of float32 near x = 1 (ln 1 = 0 exactly): `ln x = ln c + 2 atanh(u)`,
/// `u = (x - c) / (x + c)`, with c = 1 below 1.75 and c = 2.25 above, so that `|u| <= 0.27`
/// and the odd series of atanh can stop after `u^11 / 11` (the next term is below 1e-8 of
/// the result). `x - c` is exact (Sterbenz: x is within a factor 2 of c).
#[inline(always)]
pub(crate) fn ln_1_3_f32<const FMA: bool>(x: f32) -> f32 {
    const LN_2_25: f32 = 0.810_930_2;
    let high = x >= 1.75;
    let c = select(high, 2.25, 1.0);
    let u = (x - c) / (x + c);
    let w = u * u;
    // 1/3 + w/5 + w^2/7 + w^3/9 + w^4/11 by Estrin's scheme (a shorter dependency chain).
    let w2 = w * w;
    let a = mad::<FMA>(w, 1.0 / 5.0, 1.0 / 3.0);
    let b = mad::<FMA>(w, 1.0 / 9.0, 1.0 / 7.0);
    let p = mad::<FMA>(w2, mad::<FMA>(w2, 1.0 / 11.0, b), a);
    let v = mad::<FMA>((u + u) * w, p, u + u);
    v + select(high, LN_2_25, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    fn exp_f32(x: f32) -> f32 {
        let (a, b) = (super::exp_f32::<false>(x), super::exp_f32::<true>(x));
        let want = (x as f64).exp() as f32;
        assert!(
            ulps(a, want) <= 2 && ulps(b, want) <= 2 || a == b || !want.is_finite(),
            "{x}"
        );
        b
    }

    #[test]
    fn exp_is_accurate_and_handles_specials() {
        let mut worst = 0;
        let mut x = -87.3f32;
        while x < 88.7 {
            let want = (x as f64).exp() as f32;
            worst = worst.max(ulps(exp_f32(x), want));
            x += 0.0137;
        }
        assert!(worst <= 2, "exp worst error {worst} ulps");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(88.7).is_finite());
    }

    #[test]
    fn exp_of_nonpositive_is_accurate() {
        let mut x = 0.0f32;
        while x > -87.3 {
            let want = (x as f64).exp() as f32;
            for got in [
                exp_nonpositive_f32::<false>(x),
                exp_nonpositive_f32::<true>(x),
            ] {
                assert!(ulps(got, want) <= 2, "{x}: {got} vs {want}");
            }
            x -= 0.0173;
        }
        assert!(exp_nonpositive_f32::<true>(f32::NEG_INFINITY) < 1.2e-38);
        assert!(exp_nonpositive_f32::<false>(-1000.0) < 1.2e-38);
    }

    #[test]
    fn ln_on_1_to_3_is_accurate() {
        let mut worst = 0;
        let mut x = 1.0f32;
        while x <= 3.0 {
            let want = (x as f64).ln() as f32;
            for got in [ln_1_3_f32::<false>(x), ln_1_3_f32::<true>(x)] {
                worst = worst.max(ulps(got, want));
            }
            x = f32::from_bits(x.to_bits() + 97);
        }
        assert!(worst <= 2, "ln on [1, 3] worst error {worst} ulps");
        assert_eq!(ln_1_3_f32::<true>(1.0).abs(), 0.0, "ln 1");
        assert!(ln_1_3_f32::<true>(f32::NAN).is_nan());
    }
}
