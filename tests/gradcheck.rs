//! Finite-difference check of the gradient through log_softmax: for random logits x,
//! f(x) = sum(loss(log_softmax(x)) * grad_loss); the library's gradient with respect to the
//! log-probabilities, pushed back through log_softmax, must equal central differences of f.

mod common;
use common::{log_softmax, Rng};
use ctc::{ctc_loss, ctc_loss_and_grad, Inputs, IntView1, IntView2, Options, Reduction, Targets};
use ndarray::{Array1, Array2, Array3};

struct Case {
    t: usize,
    n: usize,
    c: usize,
    targets: Array2<i64>,
    input_lengths: Array1<i64>,
    target_lengths: Array1<i64>,
    options: Options,
    grad_loss: Array1<f64>,
}

impl Case {
    fn inputs<'a>(&'a self, lp: &'a Array3<f64>) -> Inputs<'a, f64> {
        Inputs {
            log_probs: lp.view(),
            targets: Targets::Padded(IntView2::from(self.targets.view())),
            input_lengths: IntView1::from(self.input_lengths.view()),
            target_lengths: IntView1::from(self.target_lengths.view()),
        }
    }

    fn objective(&self, logits: &[f64]) -> f64 {
        let lp =
            Array3::from_shape_vec((self.t, self.n, self.c), log_softmax(logits, self.c)).unwrap();
        let loss = ctc_loss(&self.inputs(&lp), &self.options).unwrap();
        loss.iter()
            .zip(self.grad_loss.iter())
            .map(|(l, g)| l * g)
            .sum()
    }
}

#[test]
fn gradient_matches_central_differences_through_log_softmax() {
    let mut rng = Rng(42);
    for case_index in 0..24 {
        let t = rng.range(3, 9);
        let n = rng.range(1, 3);
        let c = rng.range(2, 5);
        let blank = rng.range(0, c - 1);
        let reduction = [Reduction::None, Reduction::Mean, Reduction::Sum][case_index % 3];
        let s = 4;
        let mut targets = Array2::<i64>::from_elem((n, s), 0);
        let mut input_lengths = Array1::<i64>::zeros(n);
        let mut target_lengths = Array1::<i64>::zeros(n);
        for b in 0..n {
            let t_b = rng.range(t / 2 + 1, t);
            input_lengths[b] = t_b as i64;
            // Distinct neighbours keep every alignment feasible: L <= T_b suffices.
            let l = rng.range(0, s.min(t_b));
            target_lengths[b] = l as i64;
            let mut prev = usize::MAX;
            for j in 0..l {
                let mut k;
                loop {
                    k = rng.range(0, c - 2);
                    if k >= blank {
                        k += 1;
                    }
                    if k != prev || c == 2 {
                        break;
                    }
                }
                if k == prev {
                    // C = 2 has one label: repeats need a blank between them; shorten instead.
                    target_lengths[b] = j as i64;
                    break;
                }
                targets[[b, j]] = k as i64;
                prev = k;
            }
        }
        let loss_len = if reduction == Reduction::None { n } else { 1 };
        let grad_loss = Array1::from_iter((0..loss_len).map(|_| 0.5 + rng.uniform()));
        let case = Case {
            t,
            n,
            c,
            targets,
            input_lengths,
            target_lengths,
            options: Options {
                blank: blank as i64,
                reduction,
                ..Options::default()
            },
            grad_loss,
        };
        let logits: Vec<f64> = (0..t * n * c).map(|_| 2.0 * rng.normal()).collect();
        let lp_vec = log_softmax(&logits, c);
        let lp = Array3::from_shape_vec((t, n, c), lp_vec.clone()).unwrap();
        let (_, grad) = ctc_loss_and_grad(
            &case.inputs(&lp),
            &case.options,
            Some(case.grad_loss.view()),
        )
        .unwrap();
        let grad: Vec<f64> = grad.iter().cloned().collect();
        // Back through log_softmax: dx = g - softmax(x) * sum_c g.
        let mut dx = vec![0.0; grad.len()];
        for ((g_row, lp_row), dx_row) in grad.chunks(c).zip(lp_vec.chunks(c)).zip(dx.chunks_mut(c))
        {
            let total: f64 = g_row.iter().sum();
            for k in 0..c {
                dx_row[k] = g_row[k] - lp_row[k].exp() * total;
            }
        }
        let h = 1e-5;
        for i in 0..logits.len() {
            let mut plus = logits.clone();
            let mut minus = logits.clone();
            plus[i] += h;
            minus[i] -= h;
            let numeric = (case.objective(&plus) - case.objective(&minus)) / (2.0 * h);
            assert!(
                (numeric - dx[i]).abs() <= 1e-6 * numeric.abs().max(1.0),
                "case {case_index} element {i}: finite difference {numeric}, library {}",
                dx[i]
            );
        }
    }
}
