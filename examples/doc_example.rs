//! The torch.nn.CTCLoss documentation example (T = 50, C = 20, N = 16, S = 30, padded targets,
//! mean reduction), computed through the C ABI exactly as a C program would call it: one
//! `ctc_loss_forward_backward` call on raw `CtcTensor` descriptions of caller-owned buffers.
//!
//! The inputs are those torch 2.15 used for the golden case `seed_padded_mean`
//! (tests/data/golden/), so the printed loss can be compared with torch's.
//!
//! Run: `cargo run --release --example doc_example`

use ctc::ffi::*;
use std::ffi::CStr;

fn tensor<T>(data: &mut [T], dtype: CtcDType, shape: &[i64]) -> CtcTensor {
    let mut t = CtcTensor {
        data: data.as_mut_ptr().cast(),
        dtype,
        device: CTC_DEVICE_CPU,
        device_index: 0,
        ndim: shape.len() as i32,
        shape: [0; 3],
        strides: [0; 3],
    };
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        t.shape[i] = shape[i];
        t.strides[i] = stride;
        stride *= shape[i];
    }
    t
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
        .unwrap_or_else(|| vec![v.as_f64().unwrap_or(f64::NAN)])
}

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/golden/seed_padded_mean.json"
    );
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("golden case present"))
            .expect("valid JSON");
    let (t, n, c, s) = (50i64, 16i64, 20i64, 30i64);
    assert_eq!(case["T"], t);
    assert_eq!(case["N"], n);
    let ints = |k: &str| -> Vec<i64> {
        case[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    let mut log_probs: Vec<f32> = numbers(&case["log_probs"])
        .iter()
        .map(|&x| x as f32)
        .collect();
    let mut targets = ints("targets");
    let mut input_lengths = ints("input_lengths");
    let mut target_lengths = ints("target_lengths");
    let mut loss = [0f32];
    let mut grad = vec![0f32; (t * n * c) as usize];

    let lp = tensor(&mut log_probs, CTC_DTYPE_FLOAT32, &[t, n, c]);
    let tg = tensor(&mut targets, CTC_DTYPE_INT64, &[n, s]);
    let il = tensor(&mut input_lengths, CTC_DTYPE_INT64, &[n]);
    let tl = tensor(&mut target_lengths, CTC_DTYPE_INT64, &[n]);
    let mut loss_t = tensor(&mut loss, CTC_DTYPE_FLOAT32, &[]);
    let mut grad_t = tensor(&mut grad, CTC_DTYPE_FLOAT32, &[t, n, c]);
    let options = ctc_options_default(); // blank 0, mean reduction

    // SAFETY: every tensor describes a live, correctly sized buffer owned by this function.
    let status = unsafe {
        ctc_loss_forward_backward(
            &lp,
            &tg,
            &il,
            &tl,
            std::ptr::null(), // grad_loss: ones
            &options,
            &mut loss_t,
            &mut grad_t,
        )
    };
    if status != CTC_STATUS_SUCCESS {
        // SAFETY: both return static or thread-local NUL-terminated strings.
        let (what, why) = unsafe {
            (
                CStr::from_ptr(ctc_status_string(status)),
                CStr::from_ptr(ctc_last_error_message()),
            )
        };
        eprintln!("ctc_loss_forward_backward failed: {what:?}: {why:?}");
        std::process::exit(1);
    }

    let torch_loss = numbers(&case["expected"]["loss"])[0];
    let torch_grad = numbers(&case["expected"]["grad"]);
    let max_diff = grad
        .iter()
        .zip(&torch_grad)
        .map(|(&a, &b)| (a as f64 - b).abs())
        .fold(0.0, f64::max);
    let norm = grad.iter().map(|&g| (g as f64).powi(2)).sum::<f64>().sqrt();
    // SAFETY: static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(ctc_version_string()) };
    println!(
        "libctc {} - torch.nn.CTCLoss documentation example, float32, through the C ABI",
        version.to_str().unwrap()
    );
    println!("T = {t}, N = {n}, C = {c}, S = {s}, blank = 0, reduction = mean");
    println!("loss            = {:.7}", loss[0]);
    println!(
        "torch (float64) = {torch_loss:.7}   |difference| = {:.2e}",
        (loss[0] as f64 - torch_loss).abs()
    );
    println!(
        "gradient: {} values, L2 norm {norm:.6}, largest |difference| from torch {max_diff:.2e}",
        grad.len()
    );
    println!("grad[0][0][0..5] = {:?}", &grad[..5]);
}
