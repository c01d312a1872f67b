//! The CPU backend: tasks on the calling thread and the library's own helper threads
//! (`pool.rs`), each running a vectorized kernel, with `reference.rs` as their scalar oracle:
//!
//! - `lanes.rs` for batches of at least 8 samples with short targets (at most
//!   `lanes::MAX_TARGET` labels) and fewer than 256 classes: one task per group of 8 consecutive
//!   samples, side by side in the vector lanes (the last `N % 8` samples as below);
//! - otherwise `fast.rs`, vectorized across the states of one sample: one task per sample; with
//!   256 classes or more a second round of tasks writes the gradient rows of groups of
//!   neighbouring samples (`fast::Phase::Gradient`).
//!
//! A sample's values never depend on another sample's, which samples form a group depends only
//! on the batch, and the batch reduction runs serially in index order afterwards, so results are
//! bitwise identical for every thread count.

mod fast;
mod lanes;
pub(crate) use lanes::{applies as lanes_apply, work_stride as lanes_work_stride, LANES};
pub(crate) mod math;
pub(crate) mod pool;
pub(crate) mod reference;
pub(crate) mod scratch;

use crate::error::Error;
use crate::problem::Problem;
use crate::types::{Element, Real, Reduction};
use crate::workspace::{Layout, Parts};
use ndarray::{ArrayView1, ArrayViewMut1, ArrayViewMut3, Axis};
use num_traits::{Float, One, Zero};

/// Where a computation writes, and the upstream gradient of the loss.
pub(crate) struct Outputs<'o, E> {
    /// Per-sample (N) or reduced (1) loss.
    pub loss: Option<ArrayViewMut1<'o, E>>,
    /// Gradient with respect to log_probs, (T, N, C).
    pub grad: Option<ArrayViewMut3<'o, E>>,
    /// Upstream gradient, shaped like the loss; `None` means ones.
    pub grad_loss: Option<ArrayView1<'o, E>>,
}

/// What a group of samples works in: its gradient (T, G, C) and its slices of every workspace
/// region.
type GroupSlices<'a, E> = (
    ArrayViewMut3<'a, E>,
    &'a mut [<E as Element>::Acc],
    &'a mut [<E as Element>::Acc],
    &'a mut [<E as Element>::Acc],
    &'a mut [<E as Element>::Acc],
    &'a [u32],
    &'a mut [u8],
);

/// A sample's scratch (`Layout::scratch_stride` elements) cut into its buffers: the gathered
/// log-probabilities, the state posteriors and the exponentials (`width` each), the class
/// posteriors and a row copy (`classes` each).
fn scratch_parts<A>(scratch: &mut [A], width: usize, classes: usize) -> [&mut [A]; 5] {
    let (ext, rest) = scratch.split_at_mut(width);
    let (post, rest) = rest.split_at_mut(width);
    let (emit, rest) = rest.split_at_mut(width);
    let (acc, rest) = rest.split_at_mut(classes);
    [ext, post, emit, acc, &mut rest[..classes]]
}

/// The most samples a worker takes through the deferred gradient rows together.
const MAX_GROUP: usize = 32;

/// Runs the problem on the CPU in the carved workspace `parts` (laid out by `layout`).
pub(crate) fn run<E: Element>(
    p: &Problem<'_, '_, E>,
    layout: &Layout,
    parts: Parts<'_, E::Acc>,
    out: Outputs<'_, E>,
) -> Result<(), Error> {
    let Parts {
        labels,
        skip,
        nll,
        log_alpha,
        log_beta,
        scratch,
        lanes: lanes_work,
    } = parts;
    let stride = layout.labels_stride;
    p.for_each_label(|b, j, _, label| {
        labels[b * stride + j] = label as u32;
        Ok(())
    })?;

    let want_grad = out.grad.is_some();
    let batch = p.batch;
    let mut no_grad: [E; 0] = [];
    let mut grad = match out.grad {
        Some(g) => g,
        None => ArrayViewMut3::from_shape((0, batch, 0), &mut no_grad[..])
            .map_err(|e| Error::Internal(format!("empty gradient view: {e}")))?,
    };
    let grad_loss = out.grad_loss;
    let upstream = |b: usize| -> E::Acc {
        let g = |i: usize| grad_loss.as_ref().map_or(E::Acc::one(), |g| g[i].to_acc());
        match p.options.reduction {
            Reduction::None => g(b),
            Reduction::Sum => g(0),
            Reduction::Mean => {
                let n = E::Acc::from_f64(batch as f64);
                let l = E::Acc::from_f64(p.target_length(b).max(1) as f64);
                g(0) / n / l
            }
        }
    };
    let isa = fast::detect();
    let width = layout.width;
    let classes = p.classes;

    let threads = pool::effective_threads(p.options.num_threads);
    let (alpha_stride, beta_stride, scratch_stride) = (
        layout.alpha_stride,
        layout.beta_stride,
        layout.scratch_stride,
    );
    let deferred = want_grad && classes >= fast::DEFER_CLASSES;
    // Rows of the alpha table: all of them for a gradient, a ring of two for the loss alone.
    let rows = if want_grad { layout.alpha_rows } else { 2 };

    // The per-group slices of every region, for groups of `size` consecutive samples.
    macro_rules! groups {
        ($size:expr) => {{
            let size: usize = $size;
            grad.axis_chunks_iter_mut(Axis(1), size)
                .zip(log_alpha.chunks_mut(alpha_stride * size))
                .zip(log_beta.chunks_mut(beta_stride * size))
                .zip(scratch.chunks_mut(scratch_stride * size))
                .zip(nll.chunks_mut(size))
                .zip(labels.chunks(stride * size))
                .zip(skip.chunks_mut(width * size))
                .map(|((((((g, a), be), sc), n), l), sk)| (g, a, be, sc, n, l, sk))
        }};
    }

    // A group of samples `first * size ..` in the planar kernel, each with its slices split off
    // the group's (`only`: the samples of the group to run, all when None).
    let group_run = |size: usize, phase: fast::Phase| {
        move |(first, (mut grad_g, log_alpha, log_beta, scratch, nll_g, labels, skip)): (
            usize,
            GroupSlices<'_, E>,
        ),
              only: Option<[bool; LANES]>| {
            let mut jobs: [Option<fast::Job<'_, '_, E>>; MAX_GROUP] = Default::default();
            let parts = grad_g
                .axis_iter_mut(Axis(1))
                .zip(log_alpha.chunks_mut(alpha_stride))
                .zip(log_beta.chunks_mut(beta_stride))
                .zip(scratch.chunks_mut(scratch_stride))
                .zip(labels.chunks(stride))
                .zip(skip.chunks_mut(width));
            for (i, (slot, (((((grad_b, log_alpha), log_beta), scratch), labels), skip))) in
                jobs.iter_mut().zip(parts).enumerate()
            {
                if only.is_some_and(|o| !o.get(i).copied().unwrap_or(false)) {
                    continue;
                }
                let b = first * size + i;
                let [ext, post, emit, acc, row] = scratch_parts(scratch, width, classes);
                let job = fast::Job {
                    log_probs: p.sample_log_probs(b),
                    labels: &labels[..p.target_length(b)],
                    blank: p.blank,
                    input_length: p.input_length(b),
                    width,
                    rows,
                    scratch: fast::Scratch {
                        log_alpha,
                        log_beta,
                        ext,
                        post,
                        emit,
                        acc,
                        row,
                        skip,
                    },
                    grad: want_grad.then(|| (grad_b, upstream(b), p.options.zero_infinity)),
                    deferred,
                };
                *slot = Some(job);
            }
            fast::process(&mut jobs, nll_g, phase, isa);
        }
    };

    if layout.lanes_stride > 0 {
        // Short targets: groups of LANES samples side by side in the vector lanes; the samples
        // of an incomplete last group, and any sample whose gradient needs the scalar fallback,
        // in the planar kernel.
        let planar = group_run(LANES, fast::Phase::Sweeps);
        let lanes_stride = layout.lanes_stride;
        let run = |(
            gi,
            ((mut grad_g, log_alpha, log_beta, scratch, nll_g, labels_g, skip), work),
        ): (usize, (GroupSlices<'_, E>, &mut [E::Acc]))| {
            let first = gi * LANES;
            if nll_g.len() == LANES {
                let mut copy: [&mut [E::Acc]; LANES] = Default::default();
                for (c, sc) in copy.iter_mut().zip(scratch.chunks_mut(scratch_stride)) {
                    [_, _, _, _, *c] = scratch_parts(sc, width, classes);
                }
                let group = lanes::Group {
                    log_probs: p
                        .inputs
                        .log_probs
                        .slice(ndarray::s![.., first..first + LANES, ..]),
                    labels: std::array::from_fn(|j| {
                        &labels_g[j * stride..][..p.target_length(first + j)]
                    }),
                    blank: p.blank,
                    input_lengths: std::array::from_fn(|j| p.input_length(first + j)),
                    width,
                    rows,
                    log_alpha: &mut *log_alpha,
                    log_beta: &mut *log_beta,
                    work,
                    copy,
                    grad: want_grad.then(|| {
                        (
                            grad_g.view_mut(),
                            std::array::from_fn(|j| upstream(first + j)),
                            p.options.zero_infinity,
                        )
                    }),
                };
                let rerun = lanes::process(group, nll_g, isa);
                if rerun.contains(&true) {
                    let slices = (grad_g, log_alpha, log_beta, scratch, nll_g, labels_g, skip);
                    planar((gi, slices), Some(rerun));
                }
                return;
            }
            planar(
                (
                    gi,
                    (grad_g, log_alpha, log_beta, scratch, nll_g, labels_g, skip),
                ),
                None,
            );
        };
        let chunks = groups!(LANES)
            .zip(lanes_work.chunks_mut(lanes_stride))
            .enumerate();
        pool::for_each(threads, chunks, run)?;
    } else {
        // The sweeps, one sample at a time (each sample's alpha table stays in the core's cache);
        // then, for a deferred gradient, the gradient rows, a group of neighbouring samples at a time.
        let phases = [
            (1, fast::Phase::Sweeps),
            (
                batch.div_ceil(threads).clamp(1, MAX_GROUP),
                fast::Phase::Gradient,
            ),
        ];
        for (size, phase) in phases.into_iter().take(1 + deferred as usize) {
            let group = group_run(size, phase);
            let run = |slices| group(slices, None);
            let chunks = groups!(size).enumerate();
            pool::for_each(threads, chunks, run)?;
        }
    }

    if let Some(mut loss) = out.loss {
        let value = |b: usize| -> E::Acc {
            let v = nll[b];
            if p.options.zero_infinity && v == E::Acc::infinity() {
                E::Acc::zero()
            } else {
                v
            }
        };
        match p.options.reduction {
            Reduction::None => {
                for b in 0..batch {
                    loss[b] = E::from_acc(value(b));
                }
            }
            Reduction::Sum => {
                let total: f64 = (0..batch).map(|b| value(b).to_f64()).sum();
                loss[0] = E::from_acc(E::Acc::from_f64(total));
            }
            Reduction::Mean => {
                let total: f64 = (0..batch)
                    .map(|b| value(b).to_f64() / p.target_length(b).max(1) as f64)
                    .sum();
                loss[0] = E::from_acc(E::Acc::from_f64(total / batch as f64));
            }
        }
    }
    Ok(())
}

/// Two distinct rows `a` (shared) and `b` (mutable) of a row-major table with `width` columns.
pub(crate) fn rows_pair<A>(table: &mut [A], a: usize, b: usize, width: usize) -> (&[A], &mut [A]) {
    debug_assert_ne!(a, b);
    if a < b {
        let (lo, hi) = table.split_at_mut(b * width);
        (&lo[a * width..][..width], &mut hi[..width])
    } else {
        let (lo, hi) = table.split_at_mut(a * width);
        (&hi[..width], &mut lo[b * width..][..width])
    }
}

#[cfg(test)]
mod tests {
    //! The vectorized kernel against the scalar reference, sample by sample.
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
        for isa in super::fast::supported() {
            super::fast::FORCED.with(|f| f.set(Some(isa)));
            // Few classes: every row takes the pass with the class posteriors; many: most rows
            // are streamed and the emitted classes corrected.
            fast_kernel_equals_reference(1, 9, 4, 400, 2e-5);
            // (more classes: log-likelihoods of ~ -200, whose float32 ulp is 1.5e-5)
            fast_kernel_equals_reference(1, 300, 4, 100, 1e-4);
            // Batches of 8 and more: groups of LANES samples side by side (lanes.rs), the rest
            // planar.
            fast_kernel_equals_reference(1, 40, 20, 150, 1e-4);
            // Rows of at least DEFER_CLASSES classes: the gradient in a pass of its own, in one
            // pass with the class posteriors, and (beyond fast::DENSE_BYTES) streamed and then
            // corrected.
            fast_kernel_equals_reference(super::fast::DEFER_CLASSES, 600, 4, 40, 1e-4);
            fast_kernel_equals_reference(2100, 2400, 3, 12, 1e-4);
        }
        super::fast::FORCED.with(|f| f.set(None));
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
            let (loss32, grad32) =
                ctc_loss_and_grad(&inputs32, &options, Some(g32.view())).unwrap();
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
}
