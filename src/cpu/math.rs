//! Elementary functions for the vectorized CPU kernel.
//!
//! The float32 `exp` and `ln` are branch-free (selects only) versions of Cephes' `expf` and
//! `logf` (about 1 ulp), written so that LLVM vectorizes loops over them with whatever SIMD
//! instructions the calling function is compiled for (see `fast.rs`). No `floor` or float-to-int
//! conversion is used, so that even the baseline x86-64 (SSE2) build vectorizes. `FMA` selects
//! fused multiply-adds for the polynomials: only for code compiled with the `fma` target feature
//! (elsewhere `mul_add` would be a library call). float64 uses the
//! standard library's `exp` and `ln`. `Real::fexp` and `Real::fln` dispatch to these.

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
    let mut p = 1.987_569_1e-4f32;
    p = mad::<FMA>(p, r, 1.398_199_9e-3);
    p = mad::<FMA>(p, r, 8.333_452e-3);
    p = mad::<FMA>(p, r, 4.166_579_6e-2);
    p = mad::<FMA>(p, r, 1.666_666_5e-1);
    p = mad::<FMA>(p, r, 0.5);
    let y = mad::<FMA>(p * r, r, r + 1.0);
    y * f32::from_bits(((ni + 127) as u32) << 23)
}

/// Cephes `logf` for a positive normal `x`: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m by a
/// degree-9 polynomial. Other inputs give unspecified values.
#[inline(always)]
pub(crate) fn ln_normal_f32<const FMA: bool>(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // [0.5, 1)
    let small = m < SQRT_HALF;
    e -= small as i32;
    m = select(small, m + m - 1.0, m - 1.0);
    let ef = e as f32;
    let z = m * m;
    let mut y = 7.037_683_6e-2f32;
    y = mad::<FMA>(y, m, -1.151_461e-1);
    y = mad::<FMA>(y, m, 1.167_699_9e-1);
    y = mad::<FMA>(y, m, -1.242_014_1e-1);
    y = mad::<FMA>(y, m, 1.424_932_3e-1);
    y = mad::<FMA>(y, m, -1.666_805_8e-1);
    y = mad::<FMA>(y, m, 2.000_071_4e-1);
    y = mad::<FMA>(y, m, -2.499_999_4e-1);
    y = mad::<FMA>(y, m, 0.333_333_3);
    y = y * m * z;
    y = mad::<FMA>(-2.121_944_4e-4, ef, y);
    y = mad::<FMA>(-0.5, z, y);
    mad::<FMA>(0.693_359_4, ef, m + y)
}

/// `ln x` for x >= 0: -inf for 0, +inf for +inf, NaN for NaN, negative and subnormal x (the
/// kernel only needs [`ln_normal_f32`]; this is its checked form, kept for the tests).
#[cfg(test)]
#[inline(always)]
pub(crate) fn ln_f32<const FMA: bool>(x: f32) -> f32 {
    let r = ln_normal_f32::<FMA>(x);
    let r = select(x == 0.0, f32::NEG_INFINITY, r);
    let r = select(x == f32::INFINITY, f32::INFINITY, r);
    select(x >= f32::MIN_POSITIVE || x == 0.0, r, f32::NAN)
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

    fn ln_f32(x: f32) -> f32 {
        let (a, b) = (super::ln_f32::<false>(x), super::ln_f32::<true>(x));
        assert!(
            a.to_bits() == b.to_bits() || ulps(a, b) <= 2,
            "{x}: {a} {b}"
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
    fn ln_is_accurate_and_handles_specials() {
        let mut worst = 0;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let want = (x as f64).ln() as f32;
            worst = worst.max(ulps(ln_f32(x), want));
            x *= 1.0137;
        }
        assert!(worst <= 2, "ln worst error {worst} ulps");
        for x in [1.0f32, 1.5, 2.0, 2.999, 3.0] {
            assert!(ulps(ln_f32(x), (x as f64).ln() as f32) <= 1, "{x}");
        }
        assert_eq!(ln_f32(1.0), 0.0);
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32(-1.0).is_nan());
        assert!(ln_f32(f32::NAN).is_nan());
    }
}
