//! `CTC_INPUT_LOGITS` (`Options::input = Input::Logits`): the first tensor holds unnormalized
//! scores x and the library applies log_softmax itself.
//! - the loss equals the loss of log_softmax(x) computed in float64, and the gradient equals the
//!   derivative through the softmax, `(softmax(x) - posterior) g` (torch's log_softmax +
//!   ctc_loss backward), in every code path of the CPU kernel, float32 and float64, every
//!   reduction, contiguous and strided layouts;
//! - against central differences of the loss on float64 logits;
//! - unchanged by a constant added to a frame's logits, even a large one (no precision is lost
//!   to the scale of the scores), and by the gradient option;
//! - finite where a logit is -inf (a masked class), where log_softmax + torch's formula is NaN;
//! - bitwise the same for every thread count;
//! - aligned (`ctc_align`) as their log_softmax: the same paths, the scores of log-probabilities.

mod common;
use common::{log_softmax, PaddedCase, Rng};
use ctc::{ctc_align, ctc_loss, ctc_loss_and_grad, Gradient, Input, Options, Reduction};
use ndarray::{Array1, Array3, Axis};

fn options(reduction: Reduction, input: Input, gradient: Gradient, threads: usize) -> Options {
    Options {
        reduction,
        input,
        gradient,
        num_threads: threads,
        ..Options::default()
    }
}

/// log_softmax over the last axis in float64.
fn normalized(x: &Array3<f64>) -> Array3<f64> {
    let c = x.dim().2;
    let flat: Vec<f64> = x.iter().copied().collect();
    Array3::from_shape_vec(x.dim(), log_softmax(&flat, c)).unwrap()
}

/// Logits and gradients of `E`, the float64 reference of the same values, in every code path.
fn check_against_log_softmax<E>(from: fn(f64) -> E, tol: f64, shape: (usize, usize, usize, usize))
where
    E: ctc::Element + Into<f64> + Copy,
{
    let (t, n, c, s) = shape;
    let mut rng = Rng((t * 131 + n * 17 + c) as u64);
    let case = PaddedCase::random(&mut rng, t, n, c, s);
    // Logits with a large per-frame offset: log-probabilities are their differences.
    let x = Array3::from_shape_fn((t, n, c), |(tt, _, _)| {
        3.0 * rng.normal() + 40.0 * (tt % 3) as f64
    })
    .mapv(from);
    let x64 = x.mapv(|v| v.into());
    let lp64 = normalized(&x64);
    // The same values in (N, T, C) memory, read as (T, N, C) with strides: the strided path.
    let x_ntc = x.view().permuted_axes([1, 0, 2]).to_owned();
    let x_strided = x_ntc.view().permuted_axes([1, 0, 2]);
    for reduction in [Reduction::None, Reduction::Mean, Reduction::Sum] {
        let g = Array1::from_shape_fn(if reduction == Reduction::None { n } else { 1 }, |b| {
            0.5 + b as f64
        });
        let want_o = options(reduction, Input::LogProbs, Gradient::Torch, 1);
        let (want_loss, want_grad) =
            ctc_loss_and_grad(&case.inputs(lp64.view()), &want_o, Some(g.view())).unwrap();
        let g_e = g.mapv(from);
        // The error the same precision makes on log-probabilities given to it rounded: the
        // logits path may be as far off as that, not farther (plus a floor).
        let lp_e = lp64.mapv(from);
        let (_, lp_grad) =
            ctc_loss_and_grad(&case.inputs(lp_e.view()), &want_o, Some(g_e.view())).unwrap();
        let own = lp_grad
            .iter()
            .zip(&want_grad)
            .fold(0.0f64, |m, (&a, &w)| m.max((a.into() - w).abs()));
        let mut first: Option<(Array1<E>, Array3<E>)> = None;
        for threads in [1, 2, 3] {
            for gradient in [Gradient::Torch, Gradient::Exact] {
                for view in [x.view(), x_strided] {
                    let o = options(reduction, Input::Logits, gradient, threads);
                    let (loss, grad) =
                        ctc_loss_and_grad(&case.inputs(view), &o, Some(g_e.view())).unwrap();
                    for (&a, &w) in loss.iter().zip(&want_loss) {
                        let a: f64 = a.into();
                        assert!(
                            (a - w).abs() <= tol * w.abs().max(1.0),
                            "{shape:?} {reduction:?}: loss {a} against {w}"
                        );
                    }
                    let worst = grad
                        .iter()
                        .zip(&want_grad)
                        .fold(0.0f64, |m, (&a, &w)| m.max((a.into() - w).abs()));
                    let scale = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    assert!(
                        worst <= tol * scale + 2.0 * own,
                        "{shape:?} {reduction:?} {threads} threads: gradient off by {worst:e} (log-probabilities: {own:e})"
                    );
                    match &first {
                        None => first = Some((loss, grad)),
                        Some((l0, g0)) => {
                            let same = |a: &[E], b: &[E]| {
                                a.iter()
                                    .zip(b)
                                    .all(|(&p, &q)| p.into().to_bits() == q.into().to_bits())
                            };
                            assert!(
                                same(l0.as_slice().unwrap(), loss.as_slice().unwrap())
                                    && same(g0.as_slice().unwrap(), grad.as_slice().unwrap()),
                                "{shape:?} {reduction:?}: bits differ at {threads} threads / {gradient:?} / layout"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Shapes for one sample (planar), a batch that takes groups of 8 with log-probabilities (the
/// lanes kernel), long inputs, rows deferred to the gradient pass, rows wide enough to stream.
const SHAPES: [(usize, usize, usize, usize); 6] = [
    (20, 1, 6, 4),
    (30, 3, 10, 6),
    (25, 17, 7, 5),
    (300, 2, 12, 40),
    (30, 5, 300, 6),
    (40, 2, 3000, 8),
];

#[test]
fn logits_float64_match_log_softmax_in_every_code_path() {
    for shape in SHAPES {
        check_against_log_softmax::<f64>(|v| v, 1e-10, shape);
    }
}

#[test]
fn logits_float32_match_log_softmax_in_every_code_path() {
    for shape in SHAPES {
        check_against_log_softmax::<f32>(|v| v as f32, 1e-4, shape);
    }
}

/// The gradient with respect to the logits equals central differences of the loss.
#[test]
fn logits_gradient_matches_finite_differences() {
    let mut rng = Rng(5);
    for (t, n, c, s) in [(6, 2, 4, 2), (9, 3, 5, 3), (12, 9, 6, 3)] {
        let case = PaddedCase::random(&mut rng, t, n, c, s);
        let x = Array3::from_shape_fn((t, n, c), |_| 2.0 * rng.normal() + 5.0);
        let o = options(Reduction::Mean, Input::Logits, Gradient::Torch, 2);
        let (_, grad) = ctc_loss_and_grad(&case.inputs(x.view()), &o, None).unwrap();
        let loss = |x: &Array3<f64>| ctc_loss(&case.inputs(x.view()), &o).unwrap()[0];
        let h = 1e-6;
        let mut worst = 0.0f64;
        for i in 0..x.len() {
            let (mut up, mut down) = (x.clone(), x.clone());
            up.as_slice_mut().unwrap()[i] += h;
            down.as_slice_mut().unwrap()[i] -= h;
            let fd = (loss(&up) - loss(&down)) / (2.0 * h);
            worst = worst.max((fd - grad.as_slice().unwrap()[i]).abs());
        }
        assert!(
            worst < 1e-7,
            "T={t} N={n} C={c}: worst difference {worst:e}"
        );
    }
}

/// Adding a constant to every logit of a frame changes nothing, at any scale of the scores:
/// float32 logits around 1e4 give the losses of logits around 0 to float32 precision.
#[test]
fn frame_offsets_change_nothing() {
    let mut rng = Rng(9);
    let (t, n, c, s) = (200, 3, 40, 30);
    let case = PaddedCase::random(&mut rng, t, n, c, s);
    let x = Array3::from_shape_fn((t, n, c), |_| rng.normal() as f32);
    let far = Array3::from_shape_fn((t, n, c), |(tt, b, cc)| {
        x[[tt, b, cc]] + 1.0e4 * (1 + (tt + b) % 5) as f32
    });
    let o = options(Reduction::None, Input::Logits, Gradient::Torch, 1);
    let (l0, g0) = ctc_loss_and_grad(&case.inputs(x.view()), &o, None).unwrap();
    let (l1, g1) = ctc_loss_and_grad(&case.inputs(far.view()), &o, None).unwrap();
    for (a, b) in l0.iter().zip(&l1) {
        // The offsets round the logits themselves (an ulp of 5e4 is 4e-3): the loss moves by
        // that much per frame at most, not by the size of the offset.
        assert!((a - b).abs() < 2e-3 * t as f32, "{a} against {b}");
    }
    let worst = g0
        .iter()
        .zip(&g1)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 2e-2, "gradient moved by {worst}");
}

/// -inf logits (masked classes): the softmax is 0 there and the gradient finite, where
/// log_softmax followed by torch's formula gives NaN.
#[test]
fn masked_logits_give_finite_gradients() {
    let mut rng = Rng(3);
    for n in [1, 9] {
        let (t, c, s) = (12, 6, 3);
        let mut case = PaddedCase::random(&mut rng, t, n, c, s);
        // Class c - 1 is in no target.
        case.targets.mapv_inplace(|v| v.min(c as i64 - 2));
        let mut x = Array3::from_shape_fn((t, n, c), |_| rng.normal());
        for b in 0..n {
            x[[5, b, case.targets[[b, 0]] as usize]] = f64::NEG_INFINITY;
            x[[2, b, 0]] = f64::NEG_INFINITY;
            // A class never emitted, masked everywhere.
            x.index_axis_mut(Axis(1), b)
                .column_mut(c - 1)
                .fill(f64::NEG_INFINITY);
        }
        let o = options(Reduction::Sum, Input::Logits, Gradient::Torch, 2);
        let (loss, grad) = ctc_loss_and_grad(&case.inputs(x.view()), &o, None).unwrap();
        let lp = normalized(&x);
        let (want_loss, _) = ctc_loss_and_grad(&case.inputs(lp.view()), &o_lp(), None).unwrap();
        assert!(
            (loss[0] - want_loss[0]).abs() < 1e-9 * want_loss[0].abs(),
            "{loss} against {want_loss}"
        );
        assert!(grad.iter().all(|v| v.is_finite()), "{grad:?}");
        for b in 0..n {
            assert_eq!(grad[[2, b, 0]], 0.0);
            assert_eq!(grad[[5, b, case.targets[[b, 0]] as usize]], 0.0);
            assert!(grad
                .index_axis(Axis(1), b)
                .column(c - 1)
                .iter()
                .all(|&v| v == 0.0));
        }
        // Every frame's row of the gradient sums to zero (a softmax derivative).
        for row in grad.lanes(Axis(2)) {
            assert!(row.sum().abs() < 1e-12);
        }
    }
}

fn o_lp() -> Options {
    options(Reduction::Sum, Input::LogProbs, Gradient::Exact, 2)
}

/// Rows whose values are all -inf or hold NaN or +inf: the loss and gradient of the samples that
/// use them are NaN (as log_softmax gives), the other samples are untouched by them.
#[test]
fn rows_without_a_softmax_poison_only_their_sample() {
    let mut rng = Rng(11);
    let (t, n, c, s) = (10, 4, 5, 2);
    let case = PaddedCase::random(&mut rng, t, n, c, s);
    let clean = Array3::from_shape_fn((t, n, c), |_| rng.normal());
    let o = options(Reduction::None, Input::Logits, Gradient::Torch, 1);
    let (l_clean, g_clean) = ctc_loss_and_grad(&case.inputs(clean.view()), &o, None).unwrap();
    let mut x = clean.clone();
    x.slice_mut(ndarray::s![3, 0, ..]).fill(f64::NEG_INFINITY);
    x[[4, 1, 2]] = f64::NAN;
    x[[1, 2, 0]] = f64::INFINITY;
    let (loss, grad) = ctc_loss_and_grad(&case.inputs(x.view()), &o, None).unwrap();
    for b in 0..3 {
        assert!(loss[b].is_nan(), "sample {b}: {}", loss[b]);
    }
    assert_eq!(loss[3].to_bits(), l_clean[3].to_bits());
    let sample = |g: &Array3<f64>, b: usize| g.index_axis(Axis(1), b).to_owned();
    assert_eq!(sample(&grad, 3), sample(&g_clean, 3));
}

/// Forced alignment of logits: the paths of their float64 log_softmax (the scores within
/// rounding), contiguous and strided, every thread count; an impossible sample stays -1.
#[test]
fn logits_align_as_their_log_softmax() {
    let mut rng = Rng(13);
    for (t, n, c, s) in [(40, 3, 6, 8), (30, 10, 40, 5), (12, 2, 5, 7)] {
        let case = PaddedCase::random(&mut rng, t, n, c, s);
        let x = Array3::from_shape_fn((t, n, c), |(tt, _, _)| {
            2.0 * rng.normal() + 30.0 * (tt % 4) as f64
        });
        let lp = normalized(&x);
        let o = |input, threads| Options {
            input,
            num_threads: threads,
            ..Options::default()
        };
        let (want_path, want_scores) =
            ctc_align(&case.inputs(lp.view()), &o(Input::LogProbs, 1)).unwrap();
        let x_ntc = x.view().permuted_axes([1, 0, 2]).to_owned();
        for threads in [1, 2] {
            for view in [x.view(), x_ntc.view().permuted_axes([1, 0, 2])] {
                let (path, scores) =
                    ctc_align(&case.inputs(view), &o(Input::Logits, threads)).unwrap();
                assert_eq!(path, want_path, "T={t} N={n} C={c}");
                for (a, w) in scores.iter().zip(&want_scores) {
                    assert!(
                        (a - w).abs() <= 1e-9 * w.abs().max(1.0) || (a == w),
                        "score {a} against {w}"
                    );
                }
            }
        }
    }
}

/// torch's own answer on logits (tests/data/golden-logits/, scripts/make_golden_logits.py):
/// `ctc_loss(log_softmax(x))` and its gradient with respect to x through autograd. float64
/// within 1e-10 of torch's float64, float32 within twice torch's own float32 error, in every
/// memory layout and with 1 and 3 threads.
#[test]
fn logits_match_torch_golden_cases() {
    use common::{check_golden_f32, check_golden_f64, golden_logits, run_golden, LAYOUTS};
    use ctc::ffi::CTC_STATUS_SUCCESS;
    for g in golden_logits() {
        for layout in LAYOUTS {
            for threads in [1, 3] {
                let what = format!("{} {layout:?} {threads} threads", g.name);
                let o = run_golden::<f64>(&g, layout, threads);
                assert_eq!(o.status, CTC_STATUS_SUCCESS, "{what}");
                check_golden_f64(&g, &o.loss, &o.grad, &what);
                let o = run_golden::<f32>(&g, layout, threads);
                assert_eq!(o.status, CTC_STATUS_SUCCESS, "{what}");
                check_golden_f32(&g, &o.loss, &o.grad, &format!("{what} float32"));
            }
        }
    }
}
