//! Numeric stress of the C ABI, against an independent float64 reference written here (a
//! straightforward log-space alpha/beta recursion of torch's formula, itself checked against
//! brute-force enumeration of every alignment for tiny sizes):
//!
//! - log_probs that are not normalized (any offset, positive values): the formula as written;
//! - rows that are entirely -inf: an impossible sample (loss +inf, NaN gradient below its input
//!   length; 0 and 0 with zero_infinity), exactly as for too few frames;
//! - NaN in one sample: that sample's loss is NaN; every other sample's loss and gradient are
//!   bitwise what they are without the NaN;
//! - extreme magnitudes (-1e30 everywhere except one path, +-1e30, +-f64::MAX, subnormals):
//!   no crash, no hang (bounded wall time) and the documented result.
//!
//! What the library returns in each case is written next to the check; all of it is what
//! torch's formula gives when evaluated in IEEE arithmetic.

mod common;
use common::*;
use ctc::ffi::*;
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// The reference
// ---------------------------------------------------------------------------------------------

fn lse(values: &[f64]) -> f64 {
    let m = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    m + values.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// -log p(target) and torch's gradient `exp(lp) - exp(log(sum alpha beta) + nll - lp)` (before the
/// upstream gradient) of one sample: `lp` holds its `t_b` frames of `c` classes.
fn reference(lp: &[f64], t_b: usize, c: usize, blank: usize, target: &[usize]) -> (f64, Vec<f64>) {
    let l = target.len();
    let sp = 2 * l + 1;
    let lab = |s: usize| {
        if s.is_multiple_of(2) {
            blank
        } else {
            target[s / 2]
        }
    };
    let mut grad = vec![0.0; t_b * c];
    if t_b == 0 {
        return (if l == 0 { 0.0 } else { f64::INFINITY }, grad);
    }
    let ninf = f64::NEG_INFINITY;
    let mut alpha = vec![vec![ninf; sp]; t_b];
    alpha[0][0] = lp[lab(0)];
    if sp > 1 {
        alpha[0][1] = lp[lab(1)];
    }
    for t in 1..t_b {
        for s in 0..sp {
            let mut terms = vec![alpha[t - 1][s]];
            if s >= 1 {
                terms.push(alpha[t - 1][s - 1]);
            }
            if s >= 2 && lab(s) != blank && lab(s) != lab(s - 2) {
                terms.push(alpha[t - 1][s - 2]);
            }
            alpha[t][s] = lse(&terms) + lp[t * c + lab(s)];
        }
    }
    let mut beta = vec![vec![ninf; sp]; t_b];
    let last = t_b - 1;
    beta[last][sp - 1] = lp[last * c + lab(sp - 1)];
    if sp > 1 {
        beta[last][sp - 2] = lp[last * c + lab(sp - 2)];
    }
    for t in (0..last).rev() {
        for s in 0..sp {
            let mut terms = vec![beta[t + 1][s]];
            if s + 1 < sp {
                terms.push(beta[t + 1][s + 1]);
            }
            if s + 2 < sp && lab(s) != blank && lab(s) != lab(s + 2) {
                terms.push(beta[t + 1][s + 2]);
            }
            beta[t][s] = lse(&terms) + lp[t * c + lab(s)];
        }
    }
    let ends: Vec<f64> = (sp.saturating_sub(2)..sp).map(|s| alpha[last][s]).collect();
    let nll = -lse(&ends);
    for t in 0..t_b {
        for k in 0..c {
            let ab: Vec<f64> = (0..sp)
                .filter(|&s| lab(s) == k)
                .map(|s| alpha[t][s] + beta[t][s])
                .collect();
            let v = lp[t * c + k];
            grad[t * c + k] = v.exp() - (lse(&ab) + nll - v).exp();
        }
    }
    (nll, grad)
}

// ---------------------------------------------------------------------------------------------
// Calling the library
// ---------------------------------------------------------------------------------------------

/// A batch: (T, N, C) row-major log_probs, padded targets, lengths.
#[derive(Clone, Debug)]
struct Batch {
    t: usize,
    n: usize,
    c: usize,
    blank: usize,
    lp: Vec<f64>,
    targets: Vec<Vec<usize>>,
    input_lengths: Vec<usize>,
}

impl Batch {
    fn random(rng: &mut Rng, t: usize, n: usize, c: usize, blank: usize, max_l: usize) -> Batch {
        let logits: Vec<f64> = (0..t * n * c).map(|_| 2.0 * rng.normal()).collect();
        let lp = log_softmax(&logits, c);
        let mut targets = Vec::new();
        let mut input_lengths = Vec::new();
        for _ in 0..n {
            let l = rng.range(0, max_l);
            targets.push(
                (0..l)
                    .map(|_| {
                        let k = rng.range(0, c - 2);
                        if k >= blank {
                            k + 1
                        } else {
                            k
                        }
                    })
                    .collect(),
            );
            input_lengths.push(rng.range((2 * l + 1).min(t), t));
        }
        Batch {
            t,
            n,
            c,
            blank,
            lp,
            targets,
            input_lengths,
        }
    }

    /// The frames of sample b, (t_b, C) row-major.
    fn sample(&self, b: usize) -> Vec<f64> {
        (0..self.input_lengths[b])
            .flat_map(|t| {
                self.lp[(t * self.n + b) * self.c..(t * self.n + b + 1) * self.c].to_vec()
            })
            .collect()
    }

    /// The reference's loss and (T_b, C) gradient of sample b.
    fn reference(&self, b: usize) -> (f64, Vec<f64>) {
        reference(
            &self.sample(b),
            self.input_lengths[b],
            self.c,
            self.blank,
            &self.targets[b],
        )
    }

    fn set(&mut self, t: usize, b: usize, k: usize, v: f64) {
        self.lp[(t * self.n + b) * self.c + k] = v;
    }
}

/// Losses (reduction none) and gradient (upstream ones), (T, N, C) row-major, as f64.
struct Out {
    loss: Vec<f64>,
    grad: Vec<f64>,
}

fn run<F: Float>(b: &Batch, zero_infinity: bool, threads: u32) -> Out {
    let (t, n, c) = (b.t as i64, b.n as i64, b.c as i64);
    let s = b.targets.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut lp: Vec<F> = b.lp.iter().map(|&v| F::from_f64(v)).collect();
    let mut grad = vec![F::from_f64(-7.0); lp.len()];
    let mut tg = vec![-1i64; b.n * s];
    for (i, row) in b.targets.iter().enumerate() {
        for (j, &k) in row.iter().enumerate() {
            tg[i * s + j] = k as i64;
        }
    }
    let mut il: Vec<i64> = b.input_lengths.iter().map(|&x| x as i64).collect();
    let mut tl: Vec<i64> = b.targets.iter().map(|r| r.len() as i64).collect();
    let mut loss = vec![F::from_f64(-9.0); b.n];
    let shape = [t, n, c];
    let t_lp = tensor(lp.as_mut_ptr(), F::DTYPE, &shape, &contiguous(&shape));
    let t_tg = tensor(
        tg.as_mut_ptr(),
        CTC_DTYPE_INT64,
        &[n, s as i64],
        &[s as i64, 1],
    );
    let t_il = tensor(il.as_mut_ptr(), CTC_DTYPE_INT64, &[n], &[1]);
    let t_tl = tensor(tl.as_mut_ptr(), CTC_DTYPE_INT64, &[n], &[1]);
    let mut t_loss = tensor(loss.as_mut_ptr(), F::DTYPE, &[n], &[1]);
    let mut t_grad = tensor(grad.as_mut_ptr(), F::DTYPE, &shape, &contiguous(&shape));
    let mut opts = ctc_options_default();
    opts.blank = b.blank as i32;
    opts.reduction = CTC_REDUCTION_NONE;
    opts.zero_infinity = CBool(zero_infinity as u8);
    opts.num_threads = threads;
    // SAFETY: every tensor describes a live buffer of its shape and dtype.
    let status = unsafe {
        ctc_loss_forward_backward(
            &t_lp,
            &t_tg,
            &t_il,
            &t_tl,
            std::ptr::null(),
            &opts,
            &mut t_loss,
            &mut t_grad,
        )
    };
    assert_eq!(status, CTC_STATUS_SUCCESS, "{}", last_error());
    Out {
        loss: loss.iter().map(|x| x.to_f64()).collect(),
        grad: grad.iter().map(|x| x.to_f64()).collect(),
    }
}

fn run_both(b: &Batch, zero_infinity: bool) -> [Out; 2] {
    [
        run::<f32>(b, zero_infinity, 0),
        run::<f64>(b, zero_infinity, 3),
    ]
}

/// Gradient entries of sample `bi`, (T, C) row-major.
fn grad_of(out: &Out, b: &Batch, bi: usize) -> Vec<f64> {
    (0..b.t)
        .flat_map(|t| out.grad[(t * b.n + bi) * b.c..(t * b.n + bi + 1) * b.c].to_vec())
        .collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The reference agrees with enumeration (so that it can judge the library).
#[test]
fn reference_agrees_with_brute_force() {
    let mut rng = Rng(0xb4f7);
    for case in 0..200 {
        let t = rng.range(1, 5);
        let c = rng.range(2, 4);
        let blank = rng.range(0, c - 1);
        let offset = [0.0, -3.0, 2.5][case % 3];
        let lp: Vec<f64> = (0..t * c).map(|_| rng.normal() + offset).collect();
        let l = rng.range(0, 3);
        let target: Vec<usize> = (0..l)
            .map(|_| {
                let k = rng.range(0, c - 2);
                if k >= blank {
                    k + 1
                } else {
                    k
                }
            })
            .collect();
        let want = common::brute_force_nll(&lp, t, c, blank, &target);
        let (got, _) = reference(&lp, t, c, blank, &target);
        if want.is_infinite() {
            assert_eq!(got, want, "case {case}");
        } else {
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "case {case}: {got} vs {want}"
            );
        }
    }
}

/// Unnormalized log_probs (rows offset by -5 .. +3, positive values included): loss and gradient
/// are torch's formula applied as written, within 1e-10 (float64) and float32 rounding.
#[test]
fn unnormalized_log_probs_follow_the_formula() {
    let mut rng = Rng(0x0ddba11);
    let mut checked = 0;
    for case in 0..40 {
        let (t, n, c) = (rng.range(1, 12), rng.range(1, 4), rng.range(2, 7));
        let blank = rng.range(0, c - 1);
        let mut b = Batch::random(&mut rng, t, n, c, blank, 4);
        let offset = [-5.0, -0.5, 0.0, 1.0, 3.0][case % 5];
        for (i, v) in b.lp.iter_mut().enumerate() {
            *v += offset + 0.3 * ((i % 7) as f64 - 3.0);
        }
        let [o32, o64] = run_both(&b, false);
        for bi in 0..n {
            let (nll, g) = reference(&b.sample(bi), b.input_lengths[bi], c, blank, &b.targets[bi]);
            let lib64 = grad_of(&o64, &b, bi);
            let lib32 = grad_of(&o32, &b, bi);
            if nll.is_infinite() {
                assert_eq!(o64.loss[bi], nll, "case {case} sample {bi}");
                continue;
            }
            let scale = nll.abs().max(1.0);
            assert!(
                (o64.loss[bi] - nll).abs() <= 1e-10 * scale,
                "case {case} sample {bi}: float64 loss {} vs {nll}",
                o64.loss[bi]
            );
            assert!(
                (o32.loss[bi] - nll).abs() <= 1e-4 * scale,
                "case {case} sample {bi}: float32 loss {} vs {nll}",
                o32.loss[bi]
            );
            for (i, want) in g.iter().enumerate() {
                let tol = 1e-9 * want.abs().max(1.0);
                assert!(
                    (lib64[i] - want).abs() <= tol,
                    "case {case} sample {bi} grad[{i}]: {} vs {want}",
                    lib64[i]
                );
                let tol32 = 1e-3 * want.abs().max(1.0);
                assert!(
                    (lib32[i] - want).abs() <= tol32,
                    "case {case} sample {bi} grad[{i}] f32: {} vs {want}",
                    lib32[i]
                );
            }
            // Frames at or past the input length have zero gradient.
            for i in g.len()..t * c {
                assert_eq!(lib64[i], 0.0);
                assert_eq!(lib32[i], 0.0);
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

/// A problem used by the special-value tests: T = 10, N = 4, C = 6, blank 2; sample 1 has target
/// [1, 3, 3] (so class 3 and the blank are on its paths), sample 3 has input length 0 and an
/// empty target (loss 0 whatever the values), sample 2 stops at frame 7.
fn special_batch() -> Batch {
    let mut rng = Rng(0x5bec1a1);
    let mut b = Batch::random(&mut rng, 10, 4, 6, 2, 3);
    b.targets = vec![vec![0, 4], vec![1, 3, 3], vec![5], vec![]];
    b.input_lengths = vec![10, 9, 7, 0];
    b
}

/// Checks that samples other than `changed` have the same loss and gradient bits in `a` and `b`.
fn others_bitwise_equal(a: &Out, b: &Out, batch: &Batch, changed: usize, what: &str) {
    for bi in (0..batch.n).filter(|&x| x != changed) {
        assert_eq!(
            a.loss[bi].to_bits(),
            b.loss[bi].to_bits(),
            "{what}: loss of sample {bi}"
        );
        assert_eq!(
            bits(&grad_of(a, batch, bi)),
            bits(&grad_of(b, batch, bi)),
            "{what}: gradient of sample {bi}"
        );
    }
}

/// A frame of one sample (below its input length) that is -inf for every class makes that
/// sample impossible: loss +inf and a NaN gradient at every frame below its input length (0 past
/// it), as for too few frames; with zero_infinity its loss and whole gradient are 0. Every other
/// sample keeps its bits. The same frame past the input length changes nothing at all. A
/// log_probs that is -inf everywhere makes every sample impossible except an empty target in zero
/// frames (loss 0).
#[test]
fn rows_of_minus_infinity_make_a_sample_impossible() {
    let b = special_batch();
    let mut x = b.clone();
    for k in 0..b.c {
        x.set(4, 1, k, f64::NEG_INFINITY);
    }
    let t_b = b.input_lengths[1];
    for zero_infinity in [false, true] {
        let base = run_both(&b, zero_infinity);
        let got = run_both(&x, zero_infinity);
        for (w, (o, o0)) in got.iter().zip(&base).enumerate() {
            let what = format!(
                "{} zero_infinity={zero_infinity}",
                ["float32", "float64"][w]
            );
            let g = grad_of(o, &x, 1);
            if zero_infinity {
                assert_eq!(o.loss[1], 0.0, "{what}");
                assert!(g.iter().all(|&v| v == 0.0), "{what}: {g:?}");
            } else {
                assert_eq!(o.loss[1], f64::INFINITY, "{what}");
                assert!(g[..t_b * b.c].iter().all(|v| v.is_nan()), "{what}: {g:?}");
                assert!(g[t_b * b.c..].iter().all(|&v| v == 0.0), "{what}: {g:?}");
            }
            others_bitwise_equal(o, o0, &b, 1, &what);
        }
    }

    // Past the input length: no effect on any bit.
    let mut y = b.clone();
    for k in 0..b.c {
        y.set(8, 2, k, f64::NEG_INFINITY);
        y.set(9, 1, k, f64::NEG_INFINITY);
        y.set(0, 3, k, f64::NEG_INFINITY);
    }
    for (o, o0) in run_both(&y, false).iter().zip(&run_both(&b, false)) {
        assert_eq!(bits(&o.loss), bits(&o0.loss));
        assert_eq!(bits(&o.grad), bits(&o0.grad));
    }

    // -inf everywhere.
    let mut z = b.clone();
    z.lp.iter_mut().for_each(|v| *v = f64::NEG_INFINITY);
    for zero_infinity in [false, true] {
        for o in run_both(&z, zero_infinity) {
            let want = if zero_infinity { 0.0 } else { f64::INFINITY };
            assert_eq!(
                o.loss,
                [want, want, want, 0.0],
                "zero_infinity={zero_infinity}"
            );
            for bi in 0..3 {
                let g = grad_of(&o, &z, bi);
                let below = b.input_lengths[bi] * b.c;
                if zero_infinity {
                    assert!(g.iter().all(|&v| v == 0.0));
                } else {
                    assert!(g[..below].iter().all(|v| v.is_nan()), "sample {bi}: {g:?}");
                    assert!(g[below..].iter().all(|&v| v == 0.0), "sample {bi}: {g:?}");
                }
            }
            assert!(grad_of(&o, &z, 3).iter().all(|&v| v == 0.0));
        }
    }
}

/// -inf for classes on none of a sample's paths (a masked vocabulary): the loss is the
/// reference's (finite), and the gradient is the reference's everywhere, which at the masked
/// entries is NaN: torch's formula `exp(lp) - exp(log(sum alpha beta) + nll - lp)` evaluates
/// `-inf + nll + inf` there (no state carries the class, and lp = -inf), exactly as torch's own
/// CPU kernel does. Other samples keep their bits.
#[test]
fn minus_infinity_outside_every_path_gives_torchs_nan_gradient_there() {
    let b = special_batch();
    let mut x = b.clone();
    // Sample 0 uses classes {0, 4} and the blank 2: mask 1, 3 and 5 at every frame.
    for t in 0..b.t {
        for k in [1, 3, 5] {
            x.set(t, 0, k, f64::NEG_INFINITY);
        }
    }
    let (nll, g) = reference(&x.sample(0), 10, b.c, b.blank, &x.targets[0]);
    assert!(nll.is_finite());
    for (w, o) in run_both(&x, false).iter().enumerate() {
        let tol = [1e-5, 1e-10][w];
        assert!(
            (o.loss[0] - nll).abs() <= tol * nll,
            "{} vs {nll}",
            o.loss[0]
        );
        let lib = grad_of(o, &x, 0);
        for (i, (&got, &want)) in lib.iter().zip(&g).enumerate() {
            if [1, 3, 5].contains(&(i % b.c)) {
                assert!(
                    want.is_nan() && got.is_nan(),
                    "masked grad[{i}]: {got}, reference {want}"
                );
            } else {
                assert!(
                    (got - want).abs() <= [1e-4, 1e-9][w],
                    "grad[{i}]: {got} vs {want}"
                );
            }
        }
        others_bitwise_equal(o, &run_both(&b, false)[w], &b, 0, "masked classes");
    }
}

/// NaN in one sample: on one of its paths (below its input length), its loss is NaN (with or
/// without zero_infinity, which replaces only infinities, as torch's) and its gradient is NaN
/// below its input length; on a class on none of its paths, the loss is unchanged and only that
/// gradient entry is NaN (exp(NaN) - 0). Every other sample's loss and gradient keep their bits;
/// a NaN past the input length changes no bit at all.
#[test]
fn nan_in_one_sample_stays_in_that_sample() {
    let b = special_batch();
    for zero_infinity in [false, true] {
        let base = run_both(&b, zero_infinity);
        // On a path: class 3 (a label of sample 1) at frame 5.
        let mut x = b.clone();
        x.set(5, 1, 3, f64::NAN);
        for (w, (o, o0)) in run_both(&x, zero_infinity).iter().zip(&base).enumerate() {
            let what = format!(
                "{} zero_infinity={zero_infinity}",
                ["float32", "float64"][w]
            );
            assert!(o.loss[1].is_nan(), "{what}: loss {}", o.loss[1]);
            let g = grad_of(o, &x, 1);
            let below = b.input_lengths[1] * b.c;
            assert!(g[..below].iter().all(|v| v.is_nan()), "{what}: {g:?}");
            assert!(g[below..].iter().all(|&v| v == 0.0), "{what}: {g:?}");
            others_bitwise_equal(o, o0, &b, 1, &what);
        }
        // Off every path: class 5 of sample 1 at frame 5.
        let mut y = b.clone();
        y.set(5, 1, 5, f64::NAN);
        for (o, o0) in run_both(&y, zero_infinity).iter().zip(&base) {
            assert_eq!(o.loss[1].to_bits(), o0.loss[1].to_bits());
            let g = grad_of(o, &y, 1);
            let g0 = grad_of(o0, &y, 1);
            for i in 0..g.len() {
                if i == 5 * b.c + 5 {
                    assert!(g[i].is_nan());
                } else {
                    assert_eq!(g[i].to_bits(), g0[i].to_bits(), "grad[{i}]");
                }
            }
            others_bitwise_equal(o, o0, &b, 1, "NaN off the paths");
        }
    }
    // Past the input length (sample 2 stops at 7; sample 3 has none).
    let mut z = b.clone();
    z.set(8, 2, 5, f64::NAN);
    z.set(7, 2, 2, f64::NAN);
    z.set(0, 3, 2, f64::NAN);
    for (o, o0) in run_both(&z, false).iter().zip(&run_both(&b, false)) {
        assert_eq!(bits(&o.loss), bits(&o0.loss));
        assert_eq!(bits(&o.grad), bits(&o0.grad));
    }
}

/// Extreme magnitudes, T = 60, N = 4, C = 12, each call within a few seconds (no hang), no crash:
///
/// - -1e30 everywhere except one alignment of each sample's target, 0 there: loss 0 and a zero
///   gradient (the path has probability 1, every other path e^-1e30 = 0);
/// - -1e30 everywhere: loss T_b * 1e30 - log(#paths), finite, as the reference; gradient <= 0 and
///   never NaN (exp(lp) = 0; the posteriors, exp of differences of ~1e31 terms, are 0 or +inf);
/// - +1e30 everywhere: loss -T_b * 1e30 - log(#paths), finite; gradient +inf or NaN below the
///   input length (exp(1e30) = +inf, minus posteriors that may overflow too);
/// - -f64::MAX everywhere: every path's log-probability overflows to -inf: loss +inf and NaN
///   gradient below the input length (an impossible sample), 0 and 0 with zero_infinity;
/// - +f64::MAX everywhere (+inf in float32): path sums overflow to +inf, and inf - inf in the
///   log-sum-exp gives a NaN loss and gradient;
/// - -1e-310 (subnormal; -0 in float32) everywhere: the reference's loss, finite gradient.
#[test]
fn extreme_magnitudes_give_the_documented_results_quickly() {
    let mut rng = Rng(0xe417e);
    let mut b = Batch::random(&mut rng, 60, 4, 12, 0, 20);
    b.input_lengths = vec![60, 45, 60, 0];
    b.targets[3] = vec![];
    let fill = |v: f64| {
        let mut x = b.clone();
        x.lp.iter_mut().for_each(|e| *e = v);
        x
    };
    let timed = |x: &Batch, zi: bool| {
        let start = Instant::now();
        let out = run_both(x, zi);
        let s = start.elapsed().as_secs_f64();
        assert!(s < 10.0, "took {s:.1} s");
        out
    };
    let below = |bi: usize| b.input_lengths[bi] * b.c;

    // One path at 0, the rest -1e30.
    let mut x = fill(-1e30);
    for bi in 0..3 {
        let target = &b.targets[bi];
        // Each label for one frame, blanks elsewhere: spells the target (blanks between repeats).
        let mut t = 0;
        let mut prev = None;
        for &k in target {
            if prev == Some(k) {
                x.set(t, bi, b.blank, 0.0);
                t += 1;
            }
            x.set(t, bi, k, 0.0);
            t += 1;
            prev = Some(k);
        }
        assert!(t <= b.input_lengths[bi], "sample {bi} needs {t} frames");
        for tt in t..b.input_lengths[bi] {
            x.set(tt, bi, b.blank, 0.0);
        }
    }
    for o in timed(&x, false) {
        for bi in 0..4 {
            assert_eq!(o.loss[bi], 0.0, "sample {bi}: {}", o.loss[bi]);
        }
        assert!(
            o.grad.iter().all(|&v| v == 0.0),
            "{:?}",
            o.grad.iter().find(|v| **v != 0.0)
        );
    }

    // -1e30 everywhere.
    let x = fill(-1e30);
    for o in timed(&x, false) {
        for bi in 0..3 {
            let (nll, _) = reference(
                &x.sample(bi),
                b.input_lengths[bi],
                b.c,
                b.blank,
                &b.targets[bi],
            );
            assert!(
                nll.is_finite() && (o.loss[bi] - nll).abs() <= 1e-6 * nll,
                "{} vs {nll}",
                o.loss[bi]
            );
        }
        assert_eq!(o.loss[3], 0.0);
        assert!(o.grad.iter().all(|&v| v <= 0.0), "a NaN or positive entry");
    }

    // +1e30 everywhere.
    let x = fill(1e30);
    for o in timed(&x, false) {
        for bi in 0..3 {
            let (nll, _) = reference(
                &x.sample(bi),
                b.input_lengths[bi],
                b.c,
                b.blank,
                &b.targets[bi],
            );
            assert!(
                nll.is_finite() && (o.loss[bi] - nll).abs() <= 1e-6 * nll.abs(),
                "{} vs {nll}",
                o.loss[bi]
            );
            let g = grad_of(&o, &x, bi);
            assert!(g[..below(bi)]
                .iter()
                .all(|&v| v.is_nan() || v == f64::INFINITY));
            assert!(g[below(bi)..].iter().all(|&v| v == 0.0));
        }
        assert_eq!(o.loss[3], 0.0);
    }

    // -f64::MAX everywhere.
    let x = fill(-f64::MAX);
    for zero_infinity in [false, true] {
        for o in timed(&x, zero_infinity) {
            for bi in 0..3 {
                let g = grad_of(&o, &x, bi);
                if zero_infinity {
                    assert_eq!(o.loss[bi], 0.0);
                    assert!(g.iter().all(|&v| v == 0.0));
                } else {
                    assert_eq!(o.loss[bi], f64::INFINITY);
                    assert!(g[..below(bi)].iter().all(|v| v.is_nan()));
                    assert!(g[below(bi)..].iter().all(|&v| v == 0.0));
                }
            }
            assert_eq!(o.loss[3], 0.0);
        }
    }

    // +f64::MAX everywhere.
    let x = fill(f64::MAX);
    for o in timed(&x, true) {
        for bi in 0..3 {
            assert!(o.loss[bi].is_nan(), "sample {bi}: {}", o.loss[bi]);
            let g = grad_of(&o, &x, bi);
            assert!(g[..below(bi)].iter().all(|v| v.is_nan()));
        }
        assert_eq!(o.loss[3], 0.0);
    }

    // Subnormal.
    let x = fill(-1e-310);
    for (w, o) in timed(&x, false).iter().enumerate() {
        for bi in 0..4 {
            let (nll, _) = reference(
                &x.sample(bi),
                b.input_lengths[bi],
                b.c,
                b.blank,
                &b.targets[bi],
            );
            assert!(
                (o.loss[bi] - nll).abs() <= [1e-5, 1e-12][w] * nll.abs().max(1.0),
                "{} vs {nll}",
                o.loss[bi]
            );
        }
        assert!(o.grad.iter().all(|v| v.is_finite()));
    }
}

/// Batches of 8 samples and more with short targets run 8 samples side by side (`cpu/lanes.rs`).
/// Special samples inside such a group (impossible, NaN, no frames, a `+inf` input that sends
/// the gradient to the scalar fallback) get the same results as on their own, and leave every
/// other sample's bits alone; every thread count gives the same bits.
#[test]
fn special_samples_inside_a_group_of_eight() {
    let mut rng = Rng(0x1a9e5);
    let base = Batch::random(&mut rng, 14, 11, 7, 3, 4);
    let mut x = base.clone();
    // Sample 1: impossible (a row of -inf inside its input length).
    for k in 0..x.c {
        x.set(2, 1, k, f64::NEG_INFINITY);
    }
    // Sample 2: NaN.
    x.set(4, 2, 0, f64::NAN);
    // Sample 3: no frames.
    x.input_lengths[3] = 0;
    x.targets[3] = vec![];
    // Sample 4: one frame, no labels, +inf on the blank: loss -inf (the scalar fallback).
    x.input_lengths[4] = 1;
    x.targets[4] = vec![];
    x.set(0, 4, x.blank, f64::INFINITY);
    for (w, (o, base_out)) in run_both(&x, false)
        .iter()
        .zip(&run_both(&base, false))
        .enumerate()
    {
        let tol = [1e-4, 1e-9][w];
        for bi in 0..x.n {
            let (nll, g) = x.reference(bi);
            let got = o.loss[bi];
            let same = |a: f64, b: f64| {
                a.to_bits() == b.to_bits()
                    || (a.is_nan() && b.is_nan())
                    || (a - b).abs() <= tol * b.abs().max(1.0)
            };
            if bi == 4 {
                continue; // below: the same bits as on its own
            }
            assert!(same(got, nll), "width {w} sample {bi}: {got} vs {nll}");
            if nll.is_finite() {
                let lib = grad_of(o, &x, bi);
                for (i, (&a, &b)) in lib.iter().zip(&g).enumerate() {
                    assert!(same(a, b), "width {w} sample {bi} grad[{i}]: {a} vs {b}");
                }
            }
        }
        // The fallback sample: what the library gives it in a batch of its own.
        assert_eq!(o.loss[4], f64::NEG_INFINITY, "the fallback sample");
        let alone = Batch {
            n: 1,
            lp: (0..x.t)
                .flat_map(|t| x.lp[(t * x.n + 4) * x.c..(t * x.n + 5) * x.c].to_vec())
                .collect(),
            targets: vec![x.targets[4].clone()],
            input_lengths: vec![1],
            ..x.clone()
        };
        let alone_out = &run_both(&alone, false)[w];
        assert_eq!(o.loss[4].to_bits(), alone_out.loss[0].to_bits());
        assert_eq!(
            bits(&grad_of(o, &x, 4)),
            bits(&grad_of(alone_out, &alone, 0))
        );
        // The normal samples keep the bits they have without their neighbours' specials.
        for bi in [0, 5, 6, 7, 8, 9, 10] {
            assert_eq!(
                o.loss[bi].to_bits(),
                base_out.loss[bi].to_bits(),
                "sample {bi}"
            );
            assert_eq!(
                bits(&grad_of(o, &x, bi)),
                bits(&grad_of(base_out, &base, bi)),
                "sample {bi}"
            );
        }
    }
    for threads in [1, 2, 8] {
        let [a, b] = [run::<f32>(&x, false, threads), run::<f32>(&x, false, 0)];
        assert_eq!(bits(&a.loss), bits(&b.loss), "{threads} threads");
        assert_eq!(bits(&a.grad), bits(&b.grad), "{threads} threads");
    }
}
