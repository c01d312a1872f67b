//! The CUDA backend on a real GPU: golden parity on device memory (float32 and float64, two
//! layouts), host- and device-resident targets and lengths, the caller's stream, bitwise
//! determinism, a caller workspace, and invalid device-side values. Runs when a CUDA driver and
//! device are present (`ctc_cuda_device_count() > 0`); otherwise prints why and passes.

mod common;
use common::*;
use ctc::ffi::*;
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr, DevicePtrMut};
use std::sync::Arc;

fn device_available() -> bool {
    let n = ctc_cuda_device_count();
    if n <= 0 {
        println!("SKIPPED cuda_gpu: ctc_cuda_device_count() = {n} (no CUDA driver or device)");
        return false;
    }
    true
}

fn dev_tensor<T>(ptr: u64, dtype: CtcDType, shape: &[i64], strides: &[i64]) -> CtcTensor {
    let mut t = tensor(ptr as *mut T, dtype, shape, strides);
    t.device = CTC_DEVICE_CUDA;
    t.device_index = 0;
    t
}

struct GpuRun {
    loss: Vec<f64>,
    grad: Vec<f64>,
}

/// Runs golden case `g` on the GPU; `device_ints` puts targets and lengths on the device too.
fn run_case<F: Float + cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    stream: &Arc<CudaStream>,
    g: &Golden,
    layout: Layout,
    device_ints: bool,
    workspace: bool,
) -> GpuRun {
    let host = Strided::<F>::new(&g.log_probs, g.t, g.n, g.c, g.batched, layout, f64::NAN);
    let lp: CudaSlice<F> = stream.clone_htod(&host.buf).unwrap();
    let mut grad: CudaSlice<F> = stream.alloc_zeros(host.buf.len()).unwrap();
    let nloss = g.loss.len();
    let mut loss: CudaSlice<F> = stream.alloc_zeros(nloss.max(1)).unwrap();
    let go_host: Vec<F> = g.grad_out.iter().map(|&x| F::from_f64(x)).collect();
    let go: CudaSlice<F> = stream.clone_htod(&go_host).unwrap();
    let per_sample = g.batched && g.reduction == CTC_REDUCTION_NONE;
    let (lshape, lstrides): (Vec<i64>, Vec<i64>) = if per_sample {
        (vec![nloss as i64], vec![1])
    } else {
        (vec![], vec![])
    };
    let (tshape, tstrides) = if g.padded && g.batched {
        (
            vec![g.n as i64, g.s as i64],
            contiguous(&[g.n as i64, g.s as i64]),
        )
    } else {
        (vec![g.targets.len() as i64], vec![1])
    };
    let nshape: Vec<i64> = if g.batched { vec![g.n as i64] } else { vec![] };
    let nstrides: Vec<i64> = if g.batched { vec![1] } else { vec![] };
    let mut targets_h = g.targets.clone();
    let mut il_h = g.input_lengths.clone();
    let mut tl_h = g.target_lengths.clone();
    let targets_d: CudaSlice<i64> = stream.clone_htod(&targets_h).unwrap();
    let il_d: CudaSlice<i64> = stream.clone_htod(&il_h).unwrap();
    let tl_d: CudaSlice<i64> = stream.clone_htod(&tl_h).unwrap();
    let mut ws: CudaSlice<u8> = stream.alloc_zeros(1).unwrap();
    {
        let (lp_p, _a) = lp.device_ptr(stream);
        let (grad_p, _b) = grad.device_ptr_mut(stream);
        let (loss_p, _c) = loss.device_ptr_mut(stream);
        let (go_p, _d) = go.device_ptr(stream);
        let t_lp = dev_tensor::<F>(lp_p, F::DTYPE, &host.shape, &host.strides);
        let mut t_grad = dev_tensor::<F>(grad_p, F::DTYPE, &host.shape, &host.strides);
        let mut t_loss = dev_tensor::<F>(loss_p, F::DTYPE, &lshape, &lstrides);
        let t_go = dev_tensor::<F>(go_p, F::DTYPE, &lshape, &lstrides);
        let (tg_p, _e) = targets_d.device_ptr(stream);
        let (il_p, _f) = il_d.device_ptr(stream);
        let (tl_p, _g) = tl_d.device_ptr(stream);
        let (t_tg, t_il, t_tl) = if device_ints {
            (
                dev_tensor::<i64>(tg_p, CTC_DTYPE_INT64, &tshape, &tstrides),
                dev_tensor::<i64>(il_p, CTC_DTYPE_INT64, &nshape, &nstrides),
                dev_tensor::<i64>(tl_p, CTC_DTYPE_INT64, &nshape, &nstrides),
            )
        } else {
            (
                tensor(targets_h.as_mut_ptr(), CTC_DTYPE_INT64, &tshape, &tstrides),
                tensor(il_h.as_mut_ptr(), CTC_DTYPE_INT64, &nshape, &nstrides),
                tensor(tl_h.as_mut_ptr(), CTC_DTYPE_INT64, &nshape, &nstrides),
            )
        };
        let mut opts = ctc_options_default();
        opts.blank = g.blank;
        opts.reduction = g.reduction;
        opts.zero_infinity = CBool(g.zero_infinity as u8);
        opts.cuda_stream = stream.cu_stream().cast();
        let _ws_guard;
        if workspace {
            let mut bytes = 0usize;
            // SAFETY: valid tensors and out-pointer.
            let s = unsafe { ctc_workspace_size(&t_lp, &t_tg, &t_il, &t_tl, &opts, &mut bytes) };
            assert_eq!(s, CTC_STATUS_SUCCESS, "{}", last_error());
            drop((_a, _b, _c, _d, _e, _f, _g));
            ws = stream.alloc_zeros(bytes.max(1)).unwrap();
            let (ws_p, guard) = ws.device_ptr_mut(stream);
            _ws_guard = guard;
            opts.workspace = ws_p as *mut std::ffi::c_void;
            opts.workspace_bytes = bytes;
        }
        // SAFETY: device tensors alive for the call; the stream orders everything.
        let s = unsafe {
            ctc_loss_forward_backward(
                &t_lp,
                &t_tg,
                &t_il,
                &t_tl,
                &t_go,
                &opts,
                &mut t_loss,
                &mut t_grad,
            )
        };
        assert_eq!(s, CTC_STATUS_SUCCESS, "{}: {}", g.name, last_error());
    }
    stream.synchronize().unwrap();
    drop(ws);
    let loss_h: Vec<F> = stream.clone_dtoh(&loss).unwrap();
    let grad_h: Vec<F> = stream.clone_dtoh(&grad).unwrap();
    let back = Strided {
        buf: grad_h,
        shape: host.shape.clone(),
        strides: host.strides.clone(),
    };
    GpuRun {
        loss: loss_h[..nloss].iter().map(|v| v.to_f64()).collect(),
        grad: back.values(),
    }
}

#[test]
fn golden_parity_on_the_gpu() {
    if !device_available() {
        return;
    }
    let ctx = CudaContext::new(0).unwrap();
    let stream = ctx.new_stream().unwrap();
    for g in all_golden() {
        for (k, layout) in [Layout::Contiguous, Layout::BatchFirst]
            .into_iter()
            .enumerate()
        {
            let device_ints = k == 1;
            let r = run_case::<f64>(&stream, &g, layout, device_ints, k == 0);
            check_golden_f64(&g, &r.loss, &r.grad, &format!("{} f64 {layout:?}", g.name));
            let r = run_case::<f32>(&stream, &g, layout, device_ints, k == 1);
            check_golden_f32(&g, &r.loss, &r.grad, &format!("{} f32 {layout:?}", g.name));
        }
    }
}

#[test]
fn gpu_results_are_bitwise_deterministic() {
    if !device_available() {
        return;
    }
    let ctx = CudaContext::new(0).unwrap();
    let stream = ctx.new_stream().unwrap();
    for g in all_golden() {
        let a = run_case::<f32>(&stream, &g, Layout::Contiguous, true, false);
        let b = run_case::<f32>(&stream, &g, Layout::Contiguous, true, false);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.loss), bits(&b.loss), "{}", g.name);
        assert_eq!(bits(&a.grad), bits(&b.grad), "{}", g.name);
    }
}
