//! float16 and bfloat16 inputs (accumulated in float32):
//! - the loss and gradient are those of the float32 computation on the same values widened
//!   (exactly: the kernels widen each value as they read it), rounded once to the half type, in
//!   every code path (one sample, groups of 8, long inputs, deferred and streamed gradient rows),
//!   for log-probabilities and logits, both gradients, contiguous and strided, every thread
//!   count;
//! - a float32 loss (the C ABI) is the float32 computation's loss bit for bit;
//! - forced alignment gives the paths of the widened values;
//! - accuracy against float64 of the same half values is float32's (documented in the README).

mod common;
use common::{log_softmax, PaddedCase, Rng};
use ctc::ffi::*;
use ctc::{bf16, ctc_align, ctc_loss_and_grad, f16, Element, Gradient, Input, Options, Reduction};
use ndarray::Array3;

const SHAPES: [(usize, usize, usize, usize); 5] = [
    (20, 1, 6, 4),
    (25, 17, 7, 5),
    (300, 2, 12, 40),
    (30, 5, 300, 6),
    (40, 2, 3000, 8),
];

fn bits<E: Element>(v: &[E]) -> Vec<u64> {
    v.iter().map(|x| x.to_acc().to_f64().to_bits()).collect()
}

use ctc::Real;

/// The half computation equals the float32 one on the widened values, rounded once.
fn check_half<H: Element<Acc = f32>>(round: fn(f64) -> H) {
    for (t, n, c, s) in SHAPES {
        let mut rng = Rng((t * 7 + n * 3 + c) as u64);
        let case = PaddedCase::random(&mut rng, t, n, c, s);
        let raw: Vec<f64> = (0..t * n * c).map(|_| 2.0 * rng.normal()).collect();
        for input in [Input::LogProbs, Input::Logits] {
            let values = match input {
                Input::LogProbs => log_softmax(&raw, c),
                Input::Logits => raw.iter().map(|v| v + 4.0).collect(),
            };
            let h = Array3::from_shape_vec((t, n, c), values.iter().map(|&v| round(v)).collect())
                .unwrap();
            let wide = h.mapv(|v| v.to_acc());
            let h_ntc = h.view().permuted_axes([1, 0, 2]).to_owned();
            let modes = [
                (Reduction::None, Gradient::Torch),
                (Reduction::Mean, Gradient::Torch),
                (Reduction::None, Gradient::Exact),
            ];
            for (reduction, gradient) in modes {
                let o = |threads| Options {
                    reduction,
                    input,
                    gradient,
                    num_threads: threads,
                    ..Options::default()
                };
                let (want_loss, want_grad) =
                    ctc_loss_and_grad(&case.inputs(wide.view()), &o(1), None).unwrap();
                let want_loss = want_loss.mapv(|v| H::from_acc(v));
                let want_grad = want_grad.mapv(|v| H::from_acc(v));
                for threads in [1, 2] {
                    for view in [h.view(), h_ntc.view().permuted_axes([1, 0, 2])] {
                        let (loss, grad) =
                            ctc_loss_and_grad(&case.inputs(view), &o(threads), None).unwrap();
                        let what = format!(
                            "{:?} T={t} N={n} C={c} {input:?} {reduction:?} {gradient:?} {threads}",
                            H::DTYPE
                        );
                        assert_eq!(
                            bits(loss.as_slice().unwrap()),
                            bits(want_loss.as_slice().unwrap()),
                            "{what}: loss"
                        );
                        assert!(
                            bits(grad.as_slice().unwrap()) == bits(want_grad.as_slice().unwrap()),
                            "{what}: gradient"
                        );
                    }
                }
            }
            if input == Input::LogProbs {
                let (path, _) = ctc_align(&case.inputs(h.view()), &Options::default()).unwrap();
                let (want, _) = ctc_align(&case.inputs(wide.view()), &Options::default()).unwrap();
                assert_eq!(path, want, "{:?}: alignment", H::DTYPE);
            }
        }
    }
}

#[test]
fn float16_is_float32_on_the_same_values_rounded_once() {
    check_half::<f16>(f16::from_f64);
}

#[test]
fn bfloat16_is_float32_on_the_same_values_rounded_once() {
    check_half::<bf16>(bf16::from_f64);
}

/// Through the C ABI: float16 log_probs with a float32 loss give the float32 computation's loss
/// bit for bit (no half rounding of the loss, which would overflow past 65504).
#[test]
fn float32_loss_and_gradient_for_float16_inputs_through_the_c_abi() {
    let (t, n, c, s) = (60, 4, 9, 12);
    let mut rng = Rng(77);
    let case = PaddedCase::random(&mut rng, t, n, c, s);
    let raw: Vec<f64> = (0..t * n * c).map(|_| 2.0 * rng.normal()).collect();
    let h: Vec<f16> = log_softmax(&raw, c)
        .iter()
        .map(|&v| f16::from_f64(v))
        .collect();
    let wide = Array3::from_shape_vec((t, n, c), h.iter().map(|v| v.to_f32()).collect()).unwrap();
    let o = Options {
        reduction: Reduction::None,
        ..Options::default()
    };
    let (want, want_grad) = ctc_loss_and_grad(&case.inputs(wide.view()), &o, None).unwrap();
    let tensor = |data: *const u8, dtype, shape: &[i64]| {
        common::tensor(data.cast_mut(), dtype, shape, &common::contiguous(shape))
    };
    let mut loss = vec![0f32; n];
    let (ti, ni, ci, si) = (t as i64, n as i64, c as i64, s as i64);
    let lp = tensor(h.as_ptr().cast(), CTC_DTYPE_FLOAT16, &[ti, ni, ci]);
    let tg = tensor(case.targets.as_ptr().cast(), CTC_DTYPE_INT64, &[ni, si]);
    let il = tensor(case.input_lengths.as_ptr().cast(), CTC_DTYPE_INT64, &[ni]);
    let tl = tensor(case.target_lengths.as_ptr().cast(), CTC_DTYPE_INT64, &[ni]);
    let mut out = tensor(loss.as_mut_ptr().cast(), CTC_DTYPE_FLOAT32, &[ni]);
    let mut opts = ctc_options_default();
    opts.reduction = CTC_REDUCTION_NONE;
    // SAFETY: every descriptor describes live memory of its dtype and shape.
    let status = unsafe { ctc_loss_forward(&lp, &tg, &il, &tl, &opts, &mut out) };
    assert_eq!(status, CTC_STATUS_SUCCESS);
    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&loss), bits(want.as_slice().unwrap()));
    // A float32 gradient (and loss) of the float16 inputs, in a strided layout: the float32
    // computation on the widened values, bit for bit, with 1 and 3 threads.
    for threads in [1, 3] {
        opts.num_threads = threads;
        let mut loss = vec![0f32; n];
        let mut out = tensor(loss.as_mut_ptr().cast(), CTC_DTYPE_FLOAT32, &[ni]);
        let pad = 3;
        let mut grad = vec![-7f32; t * n * (c + pad)];
        let mut g = common::tensor(
            grad.as_mut_ptr(),
            CTC_DTYPE_FLOAT32,
            &[ti, ni, ci],
            &[ni * (ci + pad as i64), ci + pad as i64, 1],
        );
        // SAFETY: as above.
        let status = unsafe {
            ctc_loss_forward_backward(
                &lp,
                &tg,
                &il,
                &tl,
                std::ptr::null(),
                &opts,
                &mut out,
                &mut g,
            )
        };
        assert_eq!(status, CTC_STATUS_SUCCESS, "{}", common::last_error());
        assert_eq!(bits(&loss), bits(want.as_slice().unwrap()));
        let got: Vec<f32> = grad
            .chunks(c + pad)
            .flat_map(|row| row[..c].to_vec())
            .collect();
        assert_eq!(bits(&got), bits(want_grad.as_slice().unwrap()));
        assert!(grad.chunks(c + pad).all(|row| row[c..] == [-7f32; 3]));
    }
}

/// Accuracy of half inputs against float64 on the same half values: the loss to float32's
/// relative rounding (a few 1e-7), the half gradient to its own rounding (2^-11 of float16,
/// 2^-8 of bfloat16, relative to the largest entry).
#[test]
fn accuracy_against_float64_of_the_same_values() {
    let (t, n, c, s) = (200, 3, 50, 30);
    let mut rng = Rng(5);
    let case = PaddedCase::random(&mut rng, t, n, c, s);
    let raw: Vec<f64> = (0..t * n * c).map(|_| 2.0 * rng.normal()).collect();
    let lp = log_softmax(&raw, c);
    let o = Options {
        reduction: Reduction::Sum,
        ..Options::default()
    };
    let h =
        Array3::from_shape_vec((t, n, c), lp.iter().map(|&v| f16::from_f64(v)).collect()).unwrap();
    let b =
        Array3::from_shape_vec((t, n, c), lp.iter().map(|&v| bf16::from_f64(v)).collect()).unwrap();
    let h64 = h.mapv(|v| v.to_f64());
    let b64 = b.mapv(|v| v.to_f64());
    let (lh, gh) = ctc_loss_and_grad(&case.inputs(h.view()), &o, None).unwrap();
    let (lb, gb) = ctc_loss_and_grad(&case.inputs(b.view()), &o, None).unwrap();
    let (lh64, gh64) = ctc_loss_and_grad(&case.inputs(h64.view()), &o, None).unwrap();
    let (lb64, gb64) = ctc_loss_and_grad(&case.inputs(b64.view()), &o, None).unwrap();
    // The Rust API rounds the loss to the half type too: within its rounding.
    assert!((lh[0].to_f64() - lh64[0]).abs() <= lh64[0].abs() * 2f64.powi(-11));
    assert!((lb[0].to_f64() - lb64[0]).abs() <= lb64[0].abs() * 2f64.powi(-8));
    let worst = |g: &Array3<f64>, want: &Array3<f64>| {
        g.iter()
            .zip(want)
            .fold(0.0f64, |m, (a, w)| m.max((a - w).abs()))
    };
    let scale = gh64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(worst(&gh.mapv(|v| v.to_f64()), &gh64) <= scale * 2f64.powi(-11) + 1e-6);
    assert!(worst(&gb.mapv(|v| v.to_f64()), &gb64) <= scale * 2f64.powi(-8) + 1e-6);
}
