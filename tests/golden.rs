//! Golden parity: every case of tests/data/golden (torch 2.15), float32 and float64, in four
//! memory layouts, through the C ABI.

mod common;
use common::*;
use ctc::ffi::CTC_STATUS_SUCCESS;

fn same_class(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a.is_infinite() && a == b) || (a.is_finite() && b.is_finite())
}

/// Checks float64 results: losses within 1e-10 relative, gradients within 1e-10 absolute,
/// non-finite values exactly where torch has them.
fn check_f64(g: &Golden, o: &Outcome, what: &str) {
    for (i, (&a, &e)) in o.loss.iter().zip(&g.loss).enumerate() {
        assert!(same_class(a, e), "{what}: loss[{i}] = {a}, torch {e}");
        if e.is_finite() {
            assert!(
                (a - e).abs() <= 1e-10 * e.abs().max(1.0),
                "{what}: loss[{i}] = {a}, torch {e}"
            );
        }
    }
    assert_eq!(o.grad.len(), g.grad.len());
    for (i, (&a, &e)) in o.grad.iter().zip(&g.grad).enumerate() {
        assert!(same_class(a, e), "{what}: grad[{i}] = {a}, torch {e}");
        if e.is_finite() {
            assert!((a - e).abs() <= 1e-10, "{what}: grad[{i}] = {a}, torch {e}");
        }
    }
}

/// Checks float32 results: on every case, the largest error is at most twice torch's own float32
/// error, with floors of 1e-6 relative (loss) and 1e-5 absolute (gradient).
fn check_f32(g: &Golden, o: &Outcome, what: &str) {
    let mut ours = 0.0f64;
    let mut torch = 0.0f64;
    for (i, ((&a, &e), &t)) in o
        .loss
        .iter()
        .zip(&g.loss)
        .zip(&g.torch_f32_loss)
        .enumerate()
    {
        assert!(same_class(a, e), "{what}: loss[{i}] = {a}, torch {e}");
        if e.is_finite() {
            let scale = e.abs().max(1.0);
            ours = ours.max((a - e).abs() / scale);
            torch = torch.max((t - e).abs() / scale);
        }
    }
    assert!(
        ours <= (2.0 * torch).max(1e-6),
        "{what}: loss error {ours:e}, torch's float32 error {torch:e}"
    );
    let (mut ours, mut torch) = (0.0f64, 0.0f64);
    for (i, ((&a, &e), &t)) in o
        .grad
        .iter()
        .zip(&g.grad)
        .zip(&g.torch_f32_grad)
        .enumerate()
    {
        assert!(same_class(a, e), "{what}: grad[{i}] = {a}, torch {e}");
        if e.is_finite() {
            ours = ours.max((a - e).abs());
            torch = torch.max((t - e).abs());
        }
    }
    assert!(
        ours <= (2.0 * torch).max(1e-5),
        "{what}: grad error {ours:e}, torch's float32 error {torch:e}"
    );
}

#[test]
fn golden_float64_all_layouts() {
    for g in all_golden() {
        for layout in LAYOUTS {
            let o = run_golden::<f64>(&g, layout, 0);
            assert_eq!(
                o.status,
                CTC_STATUS_SUCCESS,
                "{} {layout:?}: {}",
                g.name,
                last_error()
            );
            check_f64(&g, &o, &format!("{} f64 {layout:?}", g.name));
        }
    }
}

#[test]
fn golden_float32_all_layouts() {
    for g in all_golden() {
        for layout in LAYOUTS {
            let o = run_golden::<f32>(&g, layout, 0);
            assert_eq!(
                o.status,
                CTC_STATUS_SUCCESS,
                "{} {layout:?}: {}",
                g.name,
                last_error()
            );
            check_f32(&g, &o, &format!("{} f32 {layout:?}", g.name));
        }
    }
}

#[test]
fn golden_results_do_not_depend_on_thread_count() {
    for g in all_golden() {
        let reference = run_golden::<f32>(&g, Layout::Contiguous, 1);
        for threads in [2, 8] {
            let o = run_golden::<f32>(&g, Layout::Contiguous, threads);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&o.loss),
                bits(&reference.loss),
                "{}: loss, {threads} threads",
                g.name
            );
            assert_eq!(
                bits(&o.grad),
                bits(&reference.grad),
                "{}: grad, {threads} threads",
                g.name
            );
        }
    }
}
