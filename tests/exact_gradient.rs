//! `CTC_GRADIENT_EXACT` (`Options::gradient = Gradient::Exact`): the true derivative of the loss
//! with respect to arbitrary log-scores, `-posterior * g`.
//! - against central differences of the loss on unnormalized float64 scores (torch's formula
//!   fails there: its rows carry `exp(lp)`);
//! - against `exp(lp) * g` subtracted from torch's gradient on normalized inputs, in every code
//!   path of the CPU kernel (one sample, groups of 8, the deferred pass, rows wide enough to be
//!   streamed), float32 and float64, every reduction;
//! - finite where a log-probability is -inf (a masked class), where torch's formula is NaN.

mod common;
use common::{log_softmax, PaddedCase, Rng};
use ctc::{ctc_loss, ctc_loss_and_grad, Gradient, Options, Reduction};
use ndarray::{Array1, Array3};

fn options(reduction: Reduction, gradient: Gradient, threads: usize) -> Options {
    Options {
        reduction,
        gradient,
        num_threads: threads,
        ..Options::default()
    }
}

/// The exact gradient of sum(loss) on unnormalized scores equals central differences.
#[test]
fn exact_gradient_matches_finite_differences_on_unnormalized_scores() {
    let mut rng = Rng(41);
    for (t, n, c, s) in [(6, 2, 4, 2), (9, 3, 5, 3), (12, 9, 6, 3)] {
        let case = PaddedCase::random(&mut rng, t, n, c, s);
        // Scores that are no log-probabilities: rows sum to anything (priors, temperature).
        let x = Array3::from_shape_fn((t, n, c), |_| 2.0 * rng.normal() - 1.5);
        let o = options(Reduction::Sum, Gradient::Exact, 1);
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
            worst < 1e-6,
            "T={t} N={n} C={c}: worst difference {worst:e}"
        );
        // torch's formula is not this derivative on such scores.
        let torch = options(Reduction::Sum, Gradient::Torch, 1);
        let (_, torch_grad) = ctc_loss_and_grad(&case.inputs(x.view()), &torch, None).unwrap();
        let apart = (&torch_grad - &grad)
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(apart > 0.1, "the two modes agree on unnormalized scores");
    }
}

/// On log-probabilities, exact = torch - exp(lp) g, in every code path and both precisions.
fn check_relation<E: ctc::Element + Into<f64> + Copy + PartialEq>(
    from: fn(f64) -> E,
    tol: f64,
    t: usize,
    n: usize,
    c: usize,
    s: usize,
) {
    let mut rng = Rng((t * 131 + n * 17 + c) as u64);
    let case = PaddedCase::random(&mut rng, t, n, c, s);
    let logits: Vec<f64> = (0..t * n * c).map(|_| 3.0 * rng.normal()).collect();
    let lp64 = Array3::from_shape_vec((t, n, c), log_softmax(&logits, c)).unwrap();
    let lp = lp64.mapv(from);
    for reduction in [Reduction::None, Reduction::Mean, Reduction::Sum] {
        let g = Array1::from_shape_fn(if reduction == Reduction::None { n } else { 1 }, |b| {
            from(0.5 + b as f64)
        });
        for threads in [1, 2] {
            let run = |gradient| {
                let o = options(reduction, gradient, threads);
                ctc_loss_and_grad(&case.inputs(lp.view()), &o, Some(g.view())).unwrap()
            };
            let (loss_t, torch) = run(Gradient::Torch);
            let (loss_e, exact) = run(Gradient::Exact);
            assert_eq!(
                loss_t, loss_e,
                "the loss does not depend on the gradient mode"
            );
            let (_, unit) = ctc_loss_and_grad(
                &case.inputs(lp.view()),
                &options(reduction, Gradient::Torch, threads),
                Some(Array1::from_elem(g.len(), from(0.0)).view()),
            )
            .unwrap();
            assert!(unit.iter().all(|&v| v.into() == 0.0));
            let factor = |b: usize| -> f64 {
                let g0: f64 = g[0].into();
                match reduction {
                    Reduction::None => g[b].into(),
                    Reduction::Sum => g0,
                    Reduction::Mean => g0 / n as f64 / case.target_lengths[b].max(1) as f64,
                }
            };
            let mut worst = 0.0f64;
            for ((i, &te), &ex) in torch.indexed_iter().zip(exact.iter()) {
                let (te, ex): (f64, f64) = (te.into(), ex.into());
                let (tt, b, _) = i;
                if tt >= case.input_lengths[b] as usize {
                    assert_eq!((te, ex), (0.0, 0.0), "padding frames");
                    continue;
                }
                // torch = (exp(lp) - post) g and exact = -post g.
                let l: f64 = lp[i].into();
                let want = te - l.exp() * factor(b);
                worst = worst.max((ex - want).abs() / factor(b));
                assert!(
                    ex.is_finite() && ex * factor(b).signum() <= 0.0,
                    "{ex} is not -post g"
                );
            }
            assert!(worst < tol, "T={t} N={n} C={c} {reduction:?}: {worst:e}");
        }
    }
}

#[test]
fn exact_is_torch_minus_exp_lp_in_every_code_path() {
    // One sample (planar), groups of 8 (lanes), long inputs (the deferred gradient pass), wide
    // rows (the streamed rows and corrected classes).
    for (t, n, c, s) in [
        (20, 1, 6, 4),
        (30, 3, 10, 6),
        (25, 16, 7, 5),
        (400, 2, 12, 40),
        (40, 2, 3000, 8),
    ] {
        check_relation::<f64>(|v| v, 1e-9, t, n, c, s);
        check_relation::<f32>(|v| v as f32, 2e-3, t, n, c, s);
    }
}

/// A class with log-probability -inf at some frames, on the path: the exact gradient is finite
/// (0 at those entries' frames and classes where no alignment passes), torch's is NaN there.
#[test]
fn masked_classes_give_finite_exact_gradients() {
    let mut rng = Rng(7);
    for n in [1, 9] {
        let (t, c, s) = (12, 5, 3);
        let case = PaddedCase::random(&mut rng, t, n, c, s);
        let logits: Vec<f64> = (0..t * n * c).map(|_| rng.normal()).collect();
        let mut lp = Array3::from_shape_vec((t, n, c), log_softmax(&logits, c)).unwrap();
        for b in 0..n {
            // Mask the first label at frame 5 and the blank at frame 2: alignments remain.
            let first = case.targets[[b, 0]] as usize;
            lp[[5, b, first]] = f64::NEG_INFINITY;
            lp[[2, b, 0]] = f64::NEG_INFINITY;
        }
        let o = options(Reduction::Sum, Gradient::Exact, 2);
        let (loss, exact) = ctc_loss_and_grad(&case.inputs(lp.view()), &o, None).unwrap();
        assert!(loss[0].is_finite());
        assert!(exact.iter().all(|v| v.is_finite()), "{exact:?}");
        for b in 0..n {
            assert_eq!(exact[[2, b, 0]], 0.0);
            assert_eq!(exact[[5, b, case.targets[[b, 0]] as usize]], 0.0);
        }
        let torch = options(Reduction::Sum, Gradient::Torch, 2);
        let (_, tg) = ctc_loss_and_grad(&case.inputs(lp.view()), &torch, None).unwrap();
        assert!(
            tg[[2, 0, 0]].is_nan(),
            "torch's formula is NaN at a -inf input"
        );
        // Elsewhere the two modes differ by exp(lp) exactly as on unmasked inputs.
        let d = tg[[3, 0, 1]] - exact[[3, 0, 1]];
        assert!((d - lp[[3, 0, 1]].exp()).abs() < 1e-12);
    }
}
