//! The vectorized kernels against the scalar reference, sample by sample, for every instruction
//! set this CPU runs.
use super::reference;
use crate::{ctc_loss_and_grad, Inputs, IntView1, IntView2, Options, Reduction, Targets};
use ndarray::{s, Array1, Array2, Array3, ArrayView2, Axis};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// (nll, grad (T, C)) of one sample by the reference loop.
fn reference_sample(
    lp: ArrayView2<'_, f64>,
    labels: &[u32],
    blank: u32,
    t_b: usize,
    g: f64,
) -> (f64, Array2<f64>) {
    let (t, c) = lp.dim();
    let states = 2 * labels.len() + 3;
    let mut alpha = vec![0.0; t.max(1) * states];
    let mut beta = vec![0.0; 2 * states];
    let mut lcab = vec![0.0; c];
    let mut grad = Array2::zeros((t, c));
    let r = reference::Sample {
        log_probs: lp,
        labels,
        blank,
        input_length: t_b,
        states,
    };
    let nll = r.forward(&mut alpha, t.max(1));
    r.backward(&alpha, &mut beta, &mut lcab, nll, g, false, grad.view_mut());
    (nll, grad)
}

fn same(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn fast_kernel_equals_reference_for_every_instruction_set() {
    for isa in super::isa::supported() {
        println!("kernels compiled for {}", isa.name());
        super::isa::FORCED.with(|f| f.set(Some(isa)));
        // Few classes: every row takes the pass with the class posteriors; many: most rows
        // are streamed and the emitted classes corrected.
        fast_kernel_equals_reference(1, 9, 4, 400, 2e-5);
        // (more classes: log-likelihoods of ~ -200, whose float32 ulp is 1.5e-5)
        fast_kernel_equals_reference(1, 300, 4, 100, 1e-4);
        // Batches of 8 and more: groups of LANES samples side by side (lanes.rs), the rest
        // planar.
        fast_kernel_equals_reference(1, 40, 20, 150, 1e-4);
        // Rows of at least DEFER_CLASSES classes: the gradient in a pass of its own, in one
        // pass with the class posteriors, and (beyond planar::DENSE_BYTES) streamed and then
        // corrected.
        fast_kernel_equals_reference(super::planar::DEFER_CLASSES, 600, 4, 40, 1e-4);
        fast_kernel_equals_reference(2100, 2400, 3, 12, 1e-4);
    }
    super::isa::FORCED.with(|f| f.set(None));
}

fn fast_kernel_equals_reference(
    min_classes: usize,
    max_classes: usize,
    max_batch: usize,
    cases: usize,
    f32_tolerance: f64,
) {
    let mut rng = Rng(7);
    for case in 0..cases {
        let t = 1 + rng.below(40);
        let n = 1 + rng.below(max_batch);
        let c = min_classes + rng.below(max_classes - min_classes + 1);
        let blank = rng.below(c) as u32;
        let s_max = 12;
        let mut lp = Array3::from_shape_fn((t, n, c), |_| -4.0 * rng.unit());
        if case % 5 == 0 {
            // normalize, so that some cases are proper log-softmax outputs
            for mut row in lp.lanes_mut(Axis(2)) {
                let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
                row.mapv_inplace(|v| v - lse);
            }
        }
        if case % 7 == 0 {
            lp[[rng.below(t), rng.below(n), rng.below(c)]] = f64::NEG_INFINITY;
        }
        let mut targets = Array2::<i64>::from_elem((n, s_max), -1);
        let mut il = Array1::<i64>::zeros(n);
        let mut tl = Array1::<i64>::zeros(n);
        let mut labels: Vec<Vec<u32>> = Vec::new();
        for b in 0..n {
            il[b] = rng.below(t + 1) as i64;
            let l = if c == 1 {
                0
            } else {
                rng.below(s_max.min(t + 2) + 1)
            };
            tl[b] = l as i64;
            let mut row = Vec::new();
            for j in 0..l {
                // Few classes make repeats (and so infeasible samples) common.
                let mut k = rng.below(c - 1) as u32;
                if k >= blank {
                    k += 1;
                }
                targets[[b, j]] = k as i64;
                row.push(k);
            }
            labels.push(row);
        }
        let g = Array1::from_shape_fn(n, |_| 0.5 + rng.unit());
        let inputs = Inputs {
            log_probs: lp.view(),
            targets: Targets::Padded(IntView2::from(targets.view())),
            input_lengths: IntView1::from(il.view()),
            target_lengths: IntView1::from(tl.view()),
        };
        let options = Options {
            blank: blank as i64,
            reduction: Reduction::None,
            num_threads: 1,
            ..Options::default()
        };
        let (loss, grad) = ctc_loss_and_grad(&inputs, &options, Some(g.view())).unwrap();
        // The float32 kernel (polynomial exp/ln) against the same float64 reference.
        let lp32 = lp.mapv(|v| v as f32);
        let g32 = g.mapv(|v| v as f32);
        let inputs32 = Inputs {
            log_probs: lp32.view(),
            targets: inputs.targets,
            input_lengths: inputs.input_lengths,
            target_lengths: inputs.target_lengths,
        };
        let (loss32, grad32) = ctc_loss_and_grad(&inputs32, &options, Some(g32.view())).unwrap();
        // Other thread counts (other groups in the gradient pass): the same bits.
        let threads3 = Options {
            num_threads: 3,
            ..options
        };
        let (loss3, grad3) = ctc_loss_and_grad(&inputs32, &threads3, Some(g32.view())).unwrap();
        let bits = |a: &[f32]| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(loss3.as_slice().unwrap()),
            bits(loss32.as_slice().unwrap())
        );
        assert_eq!(
            bits(grad3.as_slice().unwrap()),
            bits(grad32.as_slice().unwrap())
        );
        for b in 0..n {
            let (nll, want) = reference_sample(
                lp.slice(s![.., b, ..]),
                &labels[b],
                blank,
                il[b] as usize,
                g[b],
            );
            assert!(
                same(loss[b], nll, 1e-12),
                "case {case} sample {b}: loss {} vs reference {nll}",
                loss[b]
            );
            for ((i, &w), &got) in want.indexed_iter().zip(grad.slice(s![.., b, ..]).iter()) {
                assert!(
                    same(got, w, 1e-11),
                    "case {case} sample {b} grad {i:?}: {got} vs reference {w}"
                );
            }
            assert!(
                same(loss32[b] as f64, nll, 2e-6),
                "case {case} sample {b}: f32 loss {} vs {nll}",
                loss32[b]
            );
            for ((i, &w), &got) in want.indexed_iter().zip(grad32.slice(s![.., b, ..]).iter()) {
                let ok = (w.is_nan() && got.is_nan())
                    || (got as f64 - w).abs() <= f32_tolerance * w.abs().max(1.0);
                assert!(
                    ok,
                    "case {case} sample {b} f32 grad {i:?}: {got} vs reference {w}"
                );
            }
        }
    }
}

/// The vectorized aligner against the full-table reference Viterbi, on random problems with ties
/// made likely (few distinct values) or not, with segments of every size from 1 frame to all of
/// them (checkpoint boundaries everywhere), for every instruction set: the same path and score.
#[test]
fn aligner_equals_reference_viterbi_for_every_segment_size() {
    use super::align::{align, AlignJob, AlignScratch};
    use super::layout::row_width;
    let mut rng = Rng(11);
    for isa in super::isa::supported() {
        for case in 0..300 {
            let t = 1 + rng.below(30);
            let c = 2 + rng.below(8);
            let blank = rng.below(c) as u32;
            let coarse = case % 3 == 0; // ties everywhere
            let lp = Array2::from_shape_fn((t, c), |_| {
                if coarse {
                    -((rng.below(3)) as f32)
                } else {
                    -4.0 * rng.unit() as f32
                }
            });
            let len = rng.below(t.min(10) + 2);
            let labels: Vec<u32> = (0..len)
                .map(|_| {
                    let k = rng.below(c - 1) as u32;
                    if k >= blank {
                        k + 1
                    } else {
                        k
                    }
                })
                .collect();
            let t_b = rng.below(t + 1);
            let want = reference::viterbi(lp.view(), &labels, blank, t_b);
            let width = row_width(len).unwrap();
            for segment in 1..=t_b.max(1) {
                let rows_ck = t_b.div_ceil(segment).max(1);
                let code_row = width.div_ceil(4);
                let mut rows = vec![f32::NAN; 2 * width];
                let mut checkpoints = vec![f32::NAN; rows_ck * width];
                let mut codes = vec![0xFFu8; segment * code_row];
                let mut choice = vec![9u8; width];
                let mut ext = vec![f32::NAN; width];
                let mut row = vec![f32::NAN; c];
                let mut skip = vec![0u8; width];
                let job = AlignJob {
                    log_probs: lp.view(),
                    labels: &labels,
                    blank,
                    input_length: t_b,
                    width,
                    segment,
                    code_row,
                    logits: false,
                    scratch: AlignScratch {
                        rows: &mut rows,
                        checkpoints: &mut checkpoints,
                        codes: &mut codes,
                        choice: &mut choice,
                        ext: &mut ext,
                        row: &mut row,
                        skip: &mut skip,
                    },
                };
                let mut path = vec![u32::MAX; t_b];
                let got = align(job, &mut |t, c| path[t] = c, isa);
                match (&want, got) {
                    (None, None) => {}
                    (Some((p, score)), Some(s)) => {
                        assert_eq!(&path, p, "{} case {case} segment {segment}", isa.name());
                        let sum: f64 = p
                            .iter()
                            .enumerate()
                            .map(|(t, &c)| lp[[t, c as usize]] as f64)
                            .sum();
                        assert_eq!(s, sum, "case {case}: score");
                        assert!((s - *score as f64).abs() <= 1e-4 * s.abs().max(1.0));
                    }
                    _ => panic!(
                        "{} case {case} segment {segment}: {want:?} vs {got:?}",
                        isa.name()
                    ),
                }
            }
        }
    }
    super::isa::FORCED.with(|f| f.set(None));
}

/// The alignment workspace: one segment (a single sweep) while a sample's back-pointers for every
/// frame fit `ONE_SWEEP_CODE_BYTES`, else checkpoints every sqrt(16 T) frames, so that the one
/// hour of issue 16 (T = 180,000, L = 40,000) needs well under its 1 GiB bound and the bytes
/// grow with sqrt(T), not T.
#[test]
fn alignment_workspace_is_one_segment_when_small_else_checkpointed() {
    use super::layout::{segment_frames, AlignLayout, Dims, ONE_SWEEP_CODE_BYTES};
    let layout = |t: usize, l: usize| {
        let dims = Dims {
            batch: 1,
            classes: 32,
            max_input_length: t,
            max_target_length: l,
            logits: false,
        };
        AlignLayout::new(dims, 4).unwrap()
    };
    let small = layout(1500, 400);
    assert_eq!((small.segment, small.checkpoint_rows), (1500, 1));
    assert!(1500 * small.code_row <= ONE_SWEEP_CODE_BYTES);
    let hour = layout(180_000, 40_000);
    assert!(180_000 * hour.code_row > ONE_SWEEP_CODE_BYTES);
    assert_eq!(hour.segment, segment_frames(180_000, 4));
    assert!(hour.bytes < 128 << 20, "{} bytes for one hour", hour.bytes);
    let four_hours = layout(720_000, 40_000);
    let ratio = four_hours.bytes as f64 / hour.bytes as f64;
    assert!(
        (1.8..2.2).contains(&ratio),
        "4x the frames: {ratio}x the bytes"
    );
    assert_eq!(layout(0, 0).segment, 1);
}
