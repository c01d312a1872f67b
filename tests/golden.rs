//! Golden parity: every case of tests/data/golden (torch 2.15), float32 and float64, in four
//! memory layouts, through the C ABI.

mod common;
use common::*;
use ctc::ffi::CTC_STATUS_SUCCESS;

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
            check_golden_f64(&g, &o.loss, &o.grad, &format!("{} f64 {layout:?}", g.name));
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
            check_golden_f32(&g, &o.loss, &o.grad, &format!("{} f32 {layout:?}", g.name));
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
