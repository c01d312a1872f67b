//! Threads: many callers at once get exactly the serial results; the library never builds or
//! uses rayon's global pool (the host application keeps control of it).

mod common;
use common::*;

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn concurrent_callers_get_the_serial_results() {
    let cases = all_golden();
    let serial: Vec<(Vec<u64>, Vec<u64>)> = cases
        .iter()
        .map(|g| {
            let o = run_golden::<f64>(g, Layout::Contiguous, 1);
            (bits(&o.loss), bits(&o.grad))
        })
        .collect();
    std::thread::scope(|scope| {
        for worker in 0..8u32 {
            let cases = &cases;
            let serial = &serial;
            scope.spawn(move || {
                for round in 0..3 {
                    for (i, g) in cases.iter().enumerate() {
                        let threads = [0, 1, 2, 3, 8][(worker as usize + round + i) % 5];
                        let layout = LAYOUTS[(worker as usize + i) % 4];
                        let o = run_golden::<f64>(g, layout, threads);
                        assert_eq!(bits(&o.loss), serial[i].0, "{} worker {worker}", g.name);
                        assert_eq!(bits(&o.grad), serial[i].1, "{} worker {worker}", g.name);
                        assert_eq!(last_error(), "", "message after success");
                    }
                }
            });
        }
    });
}

#[test]
fn rayon_global_pool_is_left_alone() {
    let g = &all_golden()[0];
    for threads in [0, 1, 3] {
        let o = run_golden::<f32>(g, Layout::Contiguous, threads);
        assert_eq!(o.status, ctc::ffi::CTC_STATUS_SUCCESS);
    }
    // Had libctc built or used the global pool, configuring it now would fail.
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .expect("libctc must not initialize rayon's global pool");
}
