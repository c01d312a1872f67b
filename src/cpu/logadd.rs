//! The log-add-exp of the recurrence as the CPU kernels compute it: a blank state's two-term
//! `lae2` kept in two parts, and a label state's three-term one finished from those parts with
//! one `exp` and one `ln` (see the `planar` module doc for why). Shared by the planar and the
//! lanes kernels, so that both round alike.

use super::math::FastReal;

/// `lae2(a, b) = ln(exp(a) + exp(b))` in two parts `(m, u)`, `lae2(a, b) = m + ln(u)` (see
/// [`pair_value`]): `m` the larger term and `u = 1 + exp(-|a - b|)` in [1, 2] (1 where both are
/// -inf). Both -inf gives -inf; a NaN or a +inf gives `m` = NaN (torch's formula computes
/// `inf - inf` there). A label state's three-term log-add-exp takes the parts of a blank
/// state's two terms from here ([`lae_with_pair`]).
#[inline(always)]
pub(crate) fn lae2_parts<A: FastReal, const FMA: bool>(a: A, b: A) -> (A, A) {
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
pub(crate) fn pair_value<A: FastReal, const FMA: bool>(m: A, u: A) -> A {
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
pub(crate) fn lae_with_pair<A: FastReal, const FMA: bool>(x: A, m: A, u: A) -> A {
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
