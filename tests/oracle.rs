//! Brute-force oracle: for tiny T and C, enumerate every one of the C^T frame-wise paths, collapse
//! it (merge repeats, drop blanks) and add up the probabilities of those that spell the target.
//! Compared with the library's loss through the safe Rust API, in float64.

mod common;
use common::{brute_force_nll, log_softmax, Rng};
use ctc::{ctc_loss, Inputs, IntView1, IntView2, Options, Reduction, Targets};
use ndarray::{Array1, Array2, Array3};

#[test]
fn loss_equals_enumeration_over_all_alignments() {
    let mut rng = Rng(0x0c7c);
    let mut checked = 0;
    let mut impossible = 0;
    for case in 0..300 {
        let t = rng.range(0, 6);
        let c = rng.range(1, 4);
        let n = rng.range(1, 3);
        let blank = rng.range(0, c - 1);
        let s = 4;
        let scale = [0.5, 1.0, 3.0][case % 3];
        let logits: Vec<f64> = (0..t * n * c).map(|_| scale * rng.normal()).collect();
        // Unnormalized inputs are allowed too: torch applies the formula as written.
        let lp: Vec<f64> = if case % 7 == 0 {
            logits.iter().map(|v| v - 1.0).collect()
        } else {
            log_softmax(&logits, c)
        };
        let mut targets = Array2::<i64>::from_elem((n, s), -1);
        let mut input_lengths = Array1::<i64>::zeros(n);
        let mut target_lengths = Array1::<i64>::zeros(n);
        let mut labels = Vec::new();
        for b in 0..n {
            input_lengths[b] = rng.range(0, t) as i64;
            let l = if c == 1 { 0 } else { rng.range(0, s.min(4)) };
            target_lengths[b] = l as i64;
            let mut row = Vec::new();
            for j in 0..l {
                let mut k = rng.range(0, c - 2);
                if k >= blank {
                    k += 1;
                }
                targets[[b, j]] = k as i64;
                row.push(k);
            }
            labels.push(row);
        }
        let log_probs = Array3::from_shape_vec((t, n, c), lp.clone()).unwrap();
        let inputs = Inputs {
            log_probs: log_probs.view(),
            targets: Targets::Padded(IntView2::from(targets.view())),
            input_lengths: IntView1::from(input_lengths.view()),
            target_lengths: IntView1::from(target_lengths.view()),
        };
        let options = Options {
            blank: blank as i64,
            reduction: Reduction::None,
            ..Options::default()
        };
        let loss = ctc_loss(&inputs, &options).unwrap();
        for b in 0..n {
            let t_b = input_lengths[b] as usize;
            let sample: Vec<f64> = (0..t_b)
                .flat_map(|tt| lp[(tt * n + b) * c..(tt * n + b + 1) * c].to_vec())
                .collect();
            let want = brute_force_nll(&sample, t_b, c, blank, &labels[b]);
            let got = loss[b];
            if want.is_infinite() {
                impossible += 1;
                assert_eq!(
                    got,
                    f64::INFINITY,
                    "case {case} sample {b}: T_b={t_b} labels {:?}",
                    labels[b]
                );
            } else {
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "case {case} sample {b}: got {got}, enumeration {want} (T_b={t_b}, C={c}, blank={blank}, labels {:?})",
                    labels[b]
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 400 && impossible > 20,
        "checked {checked}, impossible {impossible}"
    );
}

#[test]
fn analytic_two_frame_case() {
    // warp-ctc's style of analytic score: T = 2, target [1], blank 0. Paths 1 1, 0 1, 1 0.
    let p = [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]];
    let lp: Vec<f64> = p.iter().flatten().map(|v: &f64| v.ln()).collect();
    let log_probs = Array3::from_shape_vec((2, 1, 3), lp).unwrap();
    let targets = Array1::from_vec(vec![1i64]);
    let lengths_in = Array1::from_vec(vec![2i64]);
    let lengths_t = Array1::from_vec(vec![1i64]);
    let inputs = Inputs {
        log_probs: log_probs.view(),
        targets: Targets::Concatenated(IntView1::from(targets.view())),
        input_lengths: IntView1::from(lengths_in.view()),
        target_lengths: IntView1::from(lengths_t.view()),
    };
    let options = Options {
        reduction: Reduction::Sum,
        ..Options::default()
    };
    let loss = ctc_loss(&inputs, &options).unwrap();
    let expected = -(p[0][1] * p[1][1] + p[0][0] * p[1][1] + p[0][1] * p[1][0]).ln();
    assert!(
        (loss[0] - expected).abs() < 1e-14,
        "{} vs {expected}",
        loss[0]
    );
}
