//! The CUDA backend end to end through the C ABI, on device memory: golden parity (float32 and
//! float64, every memory layout, targets and lengths on the host, on the device and in
//! page-locked host memory, int32 and int64, with and without a caller workspace), the caller's
//! stream, NULL / legacy / per-thread streams, a non-default context, a thread with no current
//! context, two threads on two streams, the loss alone, determinism, large C and large N
//! against the CPU backend, invalid device-side values, targets longer than T, workspace sizes,
//! bad inputs, the fallback without memory pools, stream capture.
//!
//! It runs against the real CUDA driver when one loads, else against the driver stand-in of
//! tests/cuda_driver/ (tests/common/cuda.rs), which runs the kernels on the CPU and also checks
//! that every call leaves the caller's context current, synchronizes nothing and enqueues work
//! on the caller's stream only; one test re-runs the whole suite against the stand-in built with
//! AddressSanitizer. Each test prints which driver it ran against.

mod common;
use common::cuda::{self, DeviceBuf, Driver, PinnedBuf, Stream};
use common::native::{self, skip};
use common::*;
use ctc::ffi::*;
use cudarc::driver::sys as cu;
use std::ffi::c_void;

/// The driver, announced; None (after printing why) when there is none to run against.
fn driver(test: &str) -> Option<&'static Driver> {
    let Some(d) = cuda::driver() else {
        skip(
            &format!("cuda_gpu::{test}"),
            "no CUDA driver, and no C++ compiler to build the driver stand-in",
        );
        return None;
    };
    let n = ctc_cuda_device_count();
    assert!(n > 0, "libctc sees {n} CUDA devices with the driver loaded");
    match d {
        Driver::Real => println!("{test}: real CUDA driver, {n} device(s)"),
        Driver::StandIn { asan, nvrtc, .. } => println!(
            "{test}: CUDA driver stand-in{} (no GPU), {nvrtc}",
            if *asan { " with AddressSanitizer" } else { "" }
        ),
    }
    cuda::use_primary_context();
    Some(d)
}

/// Where a test puts targets and lengths.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    Host,
    Device,
    /// Page-locked host memory, overwritten as soon as the call returns.
    Pinned,
    /// Targets, input lengths and target lengths each on the device where bit 0, 1, 2 is set,
    /// else on the host.
    Mixed(u8),
}

impl Place {
    /// Where operand `k` (0 targets, 1 input lengths, 2 target lengths) goes.
    fn of(self, k: u32) -> Place {
        match self {
            Place::Mixed(bits) if bits >> k & 1 == 1 => Place::Device,
            Place::Mixed(_) => Place::Host,
            other => other,
        }
    }
}

/// How a run is set up.
#[derive(Clone, Copy, Debug)]
struct Setup {
    layout: Layout,
    place: Place,
    wide: bool,
    workspace: bool,
    stream: cu::CUstream,
    /// Loss and gradient (else the loss alone, `ctc_loss_forward`).
    gradient: bool,
    /// CTC_GRADIENT_EXACT.
    exact: bool,
}

impl Setup {
    fn new(stream: cu::CUstream) -> Setup {
        Setup {
            layout: Layout::Contiguous,
            place: Place::Device,
            wide: true,
            workspace: false,
            stream,
            gradient: true,
            exact: false,
        }
    }
}

struct Outcome {
    status: CtcStatus,
    message: String,
    loss: Vec<f64>,
    grad: Vec<f64>,
}

/// An integer tensor placed as `place` (keeps its memory alive).
struct IntTensor {
    tensor: CtcTensor,
    _host: Option<Ints>,
    _dev: Option<DeviceBuf>,
    pinned: Option<PinnedBuf>,
}

fn int_tensor(values: &[i64], wide: bool, place: Place, shape: &[i64]) -> IntTensor {
    let strides = contiguous(shape);
    let mut host = Ints::new(values, wide);
    let bytes: Vec<u8> = match &host {
        Ints::I32(v) => v.iter().flat_map(|x| x.to_ne_bytes()).collect(),
        Ints::I64(v) => v.iter().flat_map(|x| x.to_ne_bytes()).collect(),
    };
    let mut tensor = host.tensor(shape, &strides);
    match place {
        Place::Host => IntTensor {
            tensor,
            _host: Some(host),
            _dev: None,
            pinned: None,
        },
        Place::Device => {
            let dev = DeviceBuf::upload(&bytes);
            tensor.data = dev.ptr as *mut c_void;
            tensor.device = CTC_DEVICE_CUDA;
            IntTensor {
                tensor,
                _host: None,
                _dev: Some(dev),
                pinned: None,
            }
        }
        Place::Mixed(_) => unreachable!("resolved by Place::of"),
        Place::Pinned => {
            let pinned = PinnedBuf::copy_of(&bytes);
            tensor.data = pinned.ptr;
            IntTensor {
                tensor,
                _host: None,
                _dev: None,
                pinned: Some(pinned),
            }
        }
    }
}

fn dev_tensor(ptr: u64, dtype: CtcDType, shape: &[i64], strides: &[i64]) -> CtcTensor {
    let mut t = tensor(ptr as *mut u8, dtype, shape, strides);
    t.device = CTC_DEVICE_CUDA;
    t.device_index = 0;
    t
}

/// Calls `f` (one libctc call) and checks what a caller relies on: its current context is
/// current again afterwards; with the stand-in, no synchronization was made and every operation
/// went to `stream` (`allow_sync`: the fallback without memory pools synchronizes once).
fn checked_call(
    stream: cu::CUstream,
    allow_sync: bool,
    f: impl FnOnce() -> CtcStatus,
) -> CtcStatus {
    let controls = cuda::driver().and_then(|d| d.controls());
    let before = cuda::current_context();
    let mut ops = vec![0u64; 4096];
    let (syncs, depth) = match controls {
        // SAFETY: the stand-in's test functions; `ops` holds 4096 entries.
        Some(c) => unsafe {
            (c.take_thread_ops)(ops.as_mut_ptr(), 0);
            ((c.thread_syncs)(), (c.context_depth)())
        },
        None => (0, 0),
    };
    let status = f();
    assert_eq!(
        cuda::current_context(),
        before,
        "the caller's context is current again"
    );
    if let Some(c) = controls {
        // SAFETY: as above.
        unsafe {
            assert_eq!((c.context_depth)(), depth, "the context stack is as it was");
            let syncs = (c.thread_syncs)() - syncs;
            assert!(
                syncs == 0 || (allow_sync && syncs == 1),
                "libctc synchronized {syncs} time(s)"
            );
            let n = (c.take_thread_ops)(ops.as_mut_ptr(), 4096) as usize;
            let on = ops[..n.min(4096)].iter().filter(|&&s| s != stream as u64);
            assert_eq!(
                on.count(),
                0,
                "every operation goes to the caller's stream {stream:?}"
            );
        }
    }
    status
}

/// The stand-in's violation count is still zero.
fn no_violations() {
    if let Some(c) = cuda::driver().and_then(|d| d.controls()) {
        // SAFETY: a stand-in test function.
        assert_eq!(
            unsafe { (c.violations)() },
            0,
            "the stand-in recorded violations (stderr)"
        );
    }
}

/// Runs `g` on the device as `setup` says; the loss goes to every other element of its buffer
/// (reduction none) and the gradient's gaps (padded rows) must stay untouched.
fn run_case<F: Float>(g: &Golden, setup: Setup) -> Outcome {
    let host = Strided::<F>::new(
        &g.log_probs,
        g.t,
        g.n,
        g.c,
        g.batched,
        setup.layout,
        f64::NAN,
    );
    let lp = DeviceBuf::upload(&host.buf);
    let sentinel = vec![F::from_f64(-7.0); host.buf.len()];
    let grad = DeviceBuf::upload(&sentinel);
    let per_sample = g.batched && g.reduction == CTC_REDUCTION_NONE;
    let nloss = g.loss.len();
    let loss = DeviceBuf::upload(&vec![F::from_f64(-9.0); 2 * nloss]);
    let go_host: Vec<F> = g.grad_out.iter().map(|&x| F::from_f64(x)).collect();
    let go = DeviceBuf::upload(&go_host);
    let (lshape, lstrides, gshape, gstrides) = if per_sample {
        (vec![nloss as i64], vec![2], vec![nloss as i64], vec![1])
    } else {
        (vec![], vec![], vec![], vec![])
    };
    let tshape = if g.padded && g.batched {
        vec![g.n as i64, g.s as i64]
    } else {
        vec![g.targets.len() as i64]
    };
    let nshape: Vec<i64> = if g.batched { vec![g.n as i64] } else { vec![] };
    let targets = int_tensor(&g.targets, setup.wide, setup.place.of(0), &tshape);
    let il = int_tensor(&g.input_lengths, !setup.wide, setup.place.of(1), &nshape);
    let tl = int_tensor(&g.target_lengths, setup.wide, setup.place.of(2), &nshape);
    let t_lp = dev_tensor(lp.ptr, F::DTYPE, &host.shape, &host.strides);
    let mut t_grad = dev_tensor(grad.ptr, F::DTYPE, &host.shape, &host.strides);
    let mut t_loss = dev_tensor(loss.ptr, F::DTYPE, &lshape, &lstrides);
    let t_go = dev_tensor(go.ptr, F::DTYPE, &gshape, &gstrides);
    let mut opts = ctc_options_default();
    opts.blank = g.blank;
    opts.reduction = g.reduction;
    opts.zero_infinity = CBool(g.zero_infinity as u8);
    opts.input = g.input;
    opts.cuda_stream = setup.stream.cast();
    if setup.exact {
        opts.gradient = CTC_GRADIENT_EXACT;
    }
    let (tg, ilt, tlt) = (&targets.tensor, &il.tensor, &tl.tensor);
    let mut ws = None;
    if setup.workspace {
        let mut bytes = 0usize;
        let s = checked_call(setup.stream, false, || {
            // SAFETY: valid tensors and out-pointer.
            unsafe { ctc_workspace_size(&t_lp, tg, ilt, tlt, &opts, &mut bytes) }
        });
        assert_eq!(s, CTC_STATUS_SUCCESS, "{}", last_error());
        // Any alignment: one byte past an allocation's start.
        let buf = DeviceBuf::new(bytes + 1);
        opts.workspace = (buf.ptr + 1) as *mut c_void;
        opts.workspace_bytes = bytes;
        ws = Some(buf);
    }
    let status = checked_call(setup.stream, false, || {
        // SAFETY: device tensors alive for the call; the stream orders everything.
        unsafe {
            if setup.gradient {
                ctc_loss_forward_backward(
                    &t_lp,
                    tg,
                    ilt,
                    tlt,
                    &t_go,
                    &opts,
                    &mut t_loss,
                    &mut t_grad,
                )
            } else {
                ctc_loss_forward(&t_lp, tg, ilt, tlt, &opts, &mut t_loss)
            }
        }
    });
    let message = last_error();
    // Page-locked host integers may be reused as soon as the call returns.
    for t in [&targets, &il, &tl] {
        if let Some(p) = &t.pinned {
            p.scribble(0x7f);
        }
    }
    cuda::sync(setup.stream);
    drop(ws);
    no_violations();
    let loss_h: Vec<F> = loss.download(2 * nloss);
    let grad_h: Vec<F> = grad.download(host.buf.len());
    if setup.layout == Layout::PaddedRows {
        for (i, v) in grad_h.iter().enumerate() {
            if i % (g.c + 3) >= g.c {
                assert_eq!(v.to_f64(), -7.0, "{}: padding of grad written", g.name);
            }
        }
    }
    let back = Strided {
        buf: grad_h,
        shape: host.shape.clone(),
        strides: host.strides.clone(),
    };
    Outcome {
        status,
        message,
        loss: (0..nloss)
            .map(|i| loss_h[if per_sample { 2 * i } else { i }].to_f64())
            .collect(),
        grad: back.values(),
    }
}

fn ok_case<F: Float>(g: &Golden, setup: Setup) -> Outcome {
    let o = run_case::<F>(g, setup);
    assert_eq!(
        o.status, CTC_STATUS_SUCCESS,
        "{} {setup:?}: {}",
        g.name, o.message
    );
    o
}

#[test]
fn golden_parity_every_layout_and_placement() {
    if driver("golden_parity").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    let places = [Place::Host, Place::Device, Place::Pinned, Place::Device];
    for g in all_golden() {
        for (k, layout) in LAYOUTS.into_iter().enumerate() {
            let setup = Setup {
                layout,
                place: places[k],
                wide: k % 2 == 0,
                workspace: k % 2 == 1,
                ..Setup::new(stream.0)
            };
            let what = format!("{} {layout:?} {:?}", g.name, setup.place);
            let r = ok_case::<f64>(&g, setup);
            check_golden_f64(&g, &r.loss, &r.grad, &format!("{what} f64"));
            let r = ok_case::<f32>(&g, setup);
            check_golden_f32(&g, &r.loss, &r.grad, &format!("{what} f32"));
        }
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn results_are_bitwise_deterministic_and_the_loss_alone_agrees() {
    if driver("determinism").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    for g in all_golden() {
        let a = ok_case::<f32>(&g, Setup::new(stream.0));
        let b = ok_case::<f32>(&g, Setup::new(stream.0));
        assert_eq!(bits(&a.loss), bits(&b.loss), "{}", g.name);
        assert_eq!(bits(&a.grad), bits(&b.grad), "{}", g.name);
        let alone = ok_case::<f32>(
            &g,
            Setup {
                gradient: false,
                place: Place::Host,
                ..Setup::new(stream.0)
            },
        );
        assert_eq!(bits(&alone.loss), bits(&a.loss), "{}: loss alone", g.name);
    }
}

/// A golden case with per-sample losses (several samples, padded targets).
fn reference_case() -> Golden {
    load_golden(&golden_dir().join("reduction_none.json"))
}

#[test]
fn null_legacy_and_per_thread_streams() {
    if driver("special_streams").is_none() {
        return;
    }
    let g = reference_case();
    let want = ok_case::<f64>(&g, Setup::new(Stream::non_blocking().0));
    for handle in [0usize, 1, 2] {
        let got = ok_case::<f64>(&g, Setup::new(handle as cu::CUstream));
        assert_eq!(bits(&got.loss), bits(&want.loss), "stream {handle:#x}");
        assert_eq!(bits(&got.grad), bits(&want.grad), "stream {handle:#x}");
    }
}

#[test]
fn a_thread_without_a_current_context() {
    if driver("no_current_context").is_none() {
        return;
    }
    let g = reference_case();
    let want = ok_case::<f64>(&g, Setup::new(std::ptr::null_mut()));
    let got = std::thread::spawn(move || {
        // SAFETY: detaches whatever is current (nothing, on a new thread).
        unsafe { cu::cuCtxSetCurrent(std::ptr::null_mut()) };
        assert!(cuda::current_context().is_null());
        // The allocations need a context; the call itself runs without one.
        let ctx = cuda::use_primary_context();
        let mut popped = std::ptr::null_mut();
        let setup = Setup {
            place: Place::Host,
            ..Setup::new(std::ptr::null_mut())
        };
        let host = Strided::<f64>::new(&g.log_probs, g.t, g.n, g.c, true, Layout::Contiguous, 0.0);
        let lp = DeviceBuf::upload(&host.buf);
        let loss = DeviceBuf::new(8 * g.n);
        let targets = int_tensor(&g.targets, true, setup.place, &[g.n as i64, g.s as i64]);
        let il = int_tensor(&g.input_lengths, true, setup.place, &[g.n as i64]);
        let tl = int_tensor(&g.target_lengths, true, setup.place, &[g.n as i64]);
        let t_lp = dev_tensor(lp.ptr, CTC_DTYPE_FLOAT64, &host.shape, &host.strides);
        let mut t_loss = dev_tensor(loss.ptr, CTC_DTYPE_FLOAT64, &[g.n as i64], &[1]);
        let mut opts = ctc_options_default();
        opts.reduction = CTC_REDUCTION_NONE;
        // SAFETY: pops the primary context this thread made current.
        unsafe { cuda::ok(cu::cuCtxPopCurrent_v2(&mut popped), "cuCtxPopCurrent") };
        assert_eq!(popped, ctx);
        assert!(cuda::current_context().is_null());
        let s = checked_call(std::ptr::null_mut(), false, || {
            // SAFETY: live tensors.
            unsafe {
                ctc_loss_forward(
                    &t_lp,
                    &targets.tensor,
                    &il.tensor,
                    &tl.tensor,
                    &opts,
                    &mut t_loss,
                )
            }
        });
        assert_eq!(s, CTC_STATUS_SUCCESS, "{}", last_error());
        assert!(
            cuda::current_context().is_null(),
            "no context is left current"
        );
        cuda::use_primary_context();
        cuda::sync(std::ptr::null_mut());
        loss.download::<f64>(g.n)
    })
    .join()
    .unwrap();
    assert_eq!(bits(&got), bits(&want.loss));
}

#[test]
fn a_stream_of_a_non_default_context_and_a_context_created_again() {
    if driver("non_default_context").is_none() {
        return;
    }
    let g = reference_case();
    let want = ok_case::<f64>(&g, Setup::new(std::ptr::null_mut()));
    // Twice: the second context may get the address of the destroyed first one (as a primary
    // context released and retained again did on a real GPU); the kernels must be loaded anew.
    for round in 0..2 {
        let mut ctx = std::ptr::null_mut();
        // SAFETY: creates a context (pushed current) for this test's thread.
        unsafe { cuda::ok(cu::cuCtxCreate_v2(&mut ctx, 0, 0), "cuCtxCreate") };
        let stream = Stream::non_blocking();
        let got = {
            // Called with the primary context current: libctc switches to the stream's.
            let mut popped = std::ptr::null_mut();
            // SAFETY: pops the context pushed above.
            unsafe { cuda::ok(cu::cuCtxPopCurrent_v2(&mut popped), "cuCtxPopCurrent") };
            cuda::use_primary_context();
            // SAFETY: makes the new context current for the buffers (freed before it goes).
            unsafe { cuda::ok(cu::cuCtxPushCurrent_v2(ctx), "cuCtxPushCurrent") };
            let host =
                Strided::<f64>::new(&g.log_probs, g.t, g.n, g.c, true, Layout::Contiguous, 0.0);
            let lp = DeviceBuf::upload(&host.buf);
            let loss = DeviceBuf::new(8 * g.n);
            let targets = int_tensor(&g.targets, true, Place::Device, &[g.n as i64, g.s as i64]);
            let il = int_tensor(&g.input_lengths, true, Place::Device, &[g.n as i64]);
            let tl = int_tensor(&g.target_lengths, true, Place::Device, &[g.n as i64]);
            // SAFETY: back to the primary context for the call.
            unsafe { cuda::ok(cu::cuCtxPopCurrent_v2(&mut popped), "cuCtxPopCurrent") };
            let t_lp = dev_tensor(lp.ptr, CTC_DTYPE_FLOAT64, &host.shape, &host.strides);
            let mut t_loss = dev_tensor(loss.ptr, CTC_DTYPE_FLOAT64, &[g.n as i64], &[1]);
            let mut opts = ctc_options_default();
            opts.reduction = CTC_REDUCTION_NONE;
            opts.cuda_stream = stream.0.cast();
            let s = checked_call(stream.0, false, || {
                // SAFETY: live tensors of the stream's context.
                unsafe {
                    ctc_loss_forward(
                        &t_lp,
                        &targets.tensor,
                        &il.tensor,
                        &tl.tensor,
                        &opts,
                        &mut t_loss,
                    )
                }
            });
            assert_eq!(s, CTC_STATUS_SUCCESS, "round {round}: {}", last_error());
            // SAFETY: the stream's context, to wait and read back.
            unsafe { cuda::ok(cu::cuCtxPushCurrent_v2(ctx), "cuCtxPushCurrent") };
            cuda::sync(stream.0);
            let v = loss.download::<f64>(g.n);
            drop((lp, targets, il, tl, loss));
            v
        };
        drop(stream);
        // SAFETY: destroys the context created above (current, popped by the destroy).
        unsafe { cuda::ok(cu::cuCtxDestroy_v2(ctx), "cuCtxDestroy") };
        cuda::use_primary_context();
        assert_eq!(bits(&got), bits(&want.loss), "round {round}");
    }
}

#[test]
fn two_threads_on_two_streams() {
    if driver("two_threads").is_none() {
        return;
    }
    let cases = all_golden();
    let want: Vec<Outcome> = cases
        .iter()
        .map(|g| ok_case::<f32>(g, Setup::new(Stream::non_blocking().0)))
        .collect();
    let run = |first: bool| {
        let cases = cases.clone();
        std::thread::spawn(move || {
            cuda::use_primary_context();
            let stream = Stream::non_blocking();
            let order: Vec<usize> = if first {
                (0..cases.len()).collect()
            } else {
                (0..cases.len()).rev().collect()
            };
            order
                .into_iter()
                .map(|i| {
                    let place = if first { Place::Host } else { Place::Device };
                    let o = ok_case::<f32>(
                        &cases[i],
                        Setup {
                            place,
                            ..Setup::new(stream.0)
                        },
                    );
                    (i, o.loss, o.grad)
                })
                .collect::<Vec<_>>()
        })
    };
    let (a, b) = (run(true), run(false));
    for (i, loss, grad) in a.join().unwrap().into_iter().chain(b.join().unwrap()) {
        assert_eq!(bits(&loss), bits(&want[i].loss), "{}", cases[i].name);
        assert_eq!(bits(&grad), bits(&want[i].grad), "{}", cases[i].name);
    }
}

/// A random problem: (T, N, C), target lengths in [lo, hi], padded targets, reduction none.
fn random_case(
    name: &str,
    t: usize,
    n: usize,
    c: usize,
    lo: usize,
    hi: usize,
    seed: u64,
) -> Golden {
    let mut rng = Rng(seed);
    let logits: Vec<f64> = (0..t * n * c).map(|_| rng.normal()).collect();
    let target_lengths: Vec<i64> = (0..n).map(|_| rng.range(lo, hi) as i64).collect();
    let targets: Vec<i64> = (0..n * hi).map(|_| rng.range(1, c - 1) as i64).collect();
    Golden {
        name: name.into(),
        batched: true,
        t,
        n,
        c,
        blank: 0,
        reduction: CTC_REDUCTION_NONE,
        zero_infinity: false,
        padded: true,
        s: hi,
        targets,
        input_lengths: (0..n).map(|b| (t - b % 3) as i64).collect(),
        target_lengths,
        grad_out: vec![1.0; n],
        log_probs: log_softmax(&logits, c),
        loss: vec![0.0; n],
        grad: vec![],
        torch_f32_loss: vec![],
        torch_f32_grad: vec![],
        input: CTC_INPUT_LOG_PROBS,
    }
}

/// The device results of `g` against the CPU backend's, float64.
fn agrees_with_the_cpu(g: &Golden, setup: Setup) {
    let cpu = run_golden::<f64>(g, Layout::Contiguous, 1);
    assert_eq!(cpu.status, CTC_STATUS_SUCCESS, "{}: CPU", g.name);
    let gpu = ok_case::<f64>(g, setup);
    let close = |a: f64, b: f64| {
        same_class(a, b) && (!a.is_finite() || (a - b).abs() <= 1e-9 * b.abs().max(1.0))
    };
    for (i, (a, b)) in gpu.loss.iter().zip(&cpu.loss).enumerate() {
        assert!(close(*a, *b), "{}: loss[{i}] = {a}, CPU {b}", g.name);
    }
    for (i, (a, b)) in gpu.grad.iter().zip(&cpu.grad).enumerate() {
        assert!(close(*a, *b), "{}: grad[{i}] = {a}, CPU {b}", g.name);
    }
}

#[test]
fn large_c_and_large_n_agree_with_the_cpu() {
    if driver("large_c_and_n").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    let setup = Setup::new(stream.0);
    agrees_with_the_cpu(&random_case("large_c", 12, 3, 8000, 2, 4, 1), setup);
    agrees_with_the_cpu(&random_case("large_n", 9, 300, 7, 0, 4, 2), setup);
    agrees_with_the_cpu(
        &random_case("long_targets", 70, 2, 5, 25, 30, 3),
        Setup {
            place: Place::Host,
            workspace: true,
            ..setup
        },
    );
}

/// CTC_GRADIENT_EXACT on the device: -posterior * g, as the CPU computes it, finite where a
/// class is masked (-inf, where torch's formula is NaN), every reduction's upstream factor.
#[test]
fn exact_gradient_agrees_with_the_cpu() {
    use ctc::{ctc_loss_and_grad, Gradient, Inputs, IntView1, IntView2, Options, Targets};
    use ndarray::{Array1, Array2, Array3};
    if driver("exact_gradient").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    for (name, masked) in [("exact", false), ("exact_masked", true)] {
        let mut g = random_case(name, 20, 5, 9, 1, 6, 7);
        if masked {
            // Class 8 in no target: masked in every frame.
            for k in g.targets.iter_mut().filter(|k| **k == 8) {
                *k = 7;
            }
            for row in g.log_probs.chunks_mut(g.c) {
                row[8] = f64::NEG_INFINITY;
            }
        }
        let gpu = ok_case::<f64>(
            &g,
            Setup {
                exact: true,
                ..Setup::new(stream.0)
            },
        );
        let lp = Array3::from_shape_vec((g.t, g.n, g.c), g.log_probs.clone()).unwrap();
        let tg = Array2::from_shape_vec((g.n, g.s), g.targets.clone()).unwrap();
        let il = Array1::from_vec(g.input_lengths.clone());
        let tl = Array1::from_vec(g.target_lengths.clone());
        let inputs = Inputs {
            log_probs: lp.view(),
            targets: Targets::Padded(IntView2::from(tg.view())),
            input_lengths: IntView1::from(il.view()),
            target_lengths: IntView1::from(tl.view()),
        };
        let o = Options {
            reduction: ctc::Reduction::None,
            gradient: Gradient::Exact,
            ..Options::default()
        };
        let (loss, grad) = ctc_loss_and_grad(&inputs, &o, None).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        for (i, (a, b)) in gpu.loss.iter().zip(loss.iter()).enumerate() {
            assert!(close(*a, *b), "{name}: loss[{i}] = {a}, CPU {b}");
        }
        assert_eq!(gpu.grad.len(), grad.len());
        for (i, (a, b)) in gpu.grad.iter().zip(grad.iter()).enumerate() {
            assert!(
                a.is_finite() && close(*a, *b),
                "{name}: grad[{i}] = {a}, CPU {b}"
            );
        }
        if masked {
            assert!(gpu.grad.iter().skip(8).step_by(g.c).all(|&v| v == 0.0));
        }
    }
    no_violations();
}

#[test]
fn targets_longer_than_t_with_device_lengths() {
    if driver("longer_than_t").is_none() {
        return;
    }
    // S = 12 > T = 6: the device-length capacity is min(S, T) = 6; samples with 7..12 labels
    // have no alignment (+inf, or 0 with zero_infinity) and are not invalid.
    let mut g = random_case("longer_than_t", 6, 4, 5, 1, 12, 4);
    g.target_lengths = vec![3, 7, 12, 6];
    g.input_lengths = vec![6, 6, 6, 5];
    let stream = Stream::non_blocking();
    for zero_infinity in [false, true] {
        g.zero_infinity = zero_infinity;
        for place in [Place::Device, Place::Host] {
            let setup = Setup {
                place,
                ..Setup::new(stream.0)
            };
            agrees_with_the_cpu(&g, setup);
            let o = ok_case::<f64>(&g, setup);
            let impossible = if zero_infinity { 0.0 } else { f64::INFINITY };
            assert_eq!(o.loss[1], impossible, "{place:?}");
            assert_eq!(o.loss[2], impossible, "{place:?}");
            assert!(o.loss[0].is_finite(), "{place:?}");
        }
    }
}

/// `ctc_workspace_size` for a problem of N samples of `len` labels in concatenated targets.
fn concatenated_workspace(n: usize, len: usize, t: usize, place: Place) -> usize {
    let c = 6;
    let lp = DeviceBuf::new(4 * t * n * c);
    let t_lp = dev_tensor(
        lp.ptr,
        CTC_DTYPE_FLOAT32,
        &[t as i64, n as i64, c as i64],
        &contiguous(&[t as i64, n as i64, c as i64]),
    );
    let targets = int_tensor(&vec![1; n * len], true, place, &[(n * len) as i64]);
    let il = int_tensor(&vec![t as i64; n], true, place, &[n as i64]);
    let tl = int_tensor(&vec![len as i64; n], true, place, &[n as i64]);
    let mut bytes = 0;
    // SAFETY: valid tensors and out-pointer.
    let s = unsafe {
        ctc_workspace_size(
            &t_lp,
            &targets.tensor,
            &il.tensor,
            &tl.tensor,
            std::ptr::null(),
            &mut bytes,
        )
    };
    assert_eq!(s, CTC_STATUS_SUCCESS, "{}", last_error());
    bytes
}

#[test]
fn the_workspace_grows_with_the_longest_target_not_the_batch() {
    if driver("workspace_size").is_none() {
        return;
    }
    // N = 64 targets of 3 labels, concatenated (192 labels), T = 40: an alpha table of
    // 64 * 40 * (2 * 3 + 1) floats with host lengths, 64 * 40 * (2 * 40 + 1) with device
    // lengths (capacity min(192, T)), never 64 * 40 * (2 * 192 + 1).
    let host = concatenated_workspace(64, 3, 40, Place::Host);
    let device = concatenated_workspace(64, 3, 40, Place::Device);
    let alpha = |lmax: usize| 64 * 40 * (2 * lmax + 1) * 4;
    assert!(
        host >= alpha(3) && host < alpha(3) + 64 * 1024,
        "host lengths: {host} bytes"
    );
    assert!(
        device >= alpha(40) && device < alpha(40) + 64 * 1024,
        "device lengths: {device} bytes"
    );
}

/// Targets and lengths split between host and device in every way (host padded targets with
/// device target lengths among them: the targets are staged whole, as the lengths that say
/// which entries are labels are not read on the host).
#[test]
fn host_and_device_integers_mixed() {
    if driver("mixed_placement").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    for g in all_golden() {
        for bits in 1..7u8 {
            let setup = Setup {
                place: Place::Mixed(bits),
                wide: bits % 2 == 0,
                ..Setup::new(stream.0)
            };
            let what = format!("{} mixed {bits:03b}", g.name);
            let r = ok_case::<f64>(&g, setup);
            check_golden_f64(&g, &r.loss, &r.grad, &what);
        }
    }
    // Host target lengths beside device input lengths are not checked on the host: a bad one
    // poisons its sample on the device, as a bad device value does (no panic, no stray read).
    let clean = reference_case();
    let mut bad = clean.clone();
    bad.target_lengths[4] = 11; // sample 4: target length > S
    let got = ok_case::<f64>(
        &bad,
        Setup {
            place: Place::Mixed(0b010),
            ..Setup::new(stream.0)
        },
    );
    for b in 0..clean.n {
        assert_eq!(got.loss[b].is_nan(), b == 4, "loss[{b}] = {}", got.loss[b]);
    }
}

#[test]
fn invalid_device_values_poison_only_their_sample() {
    if driver("invalid_device_values").is_none() {
        return;
    }
    let clean = reference_case();
    let mut bad = clean.clone();
    bad.targets[10] = clean.c as i64; // sample 1: label C
    bad.input_lengths[2] = clean.t as i64 + 1; // sample 2: input length > T
    bad.targets[3 * 10 + 1] = 0; // sample 3: the blank as a label
    bad.target_lengths[4] = 11; // sample 4: target length > S
    bad.input_lengths[5] = -1; // sample 5: negative input length
    bad.target_lengths[6] = -2; // sample 6: negative target length
    let stream = Stream::non_blocking();
    let want = ok_case::<f64>(&clean, Setup::new(stream.0));
    let got = ok_case::<f64>(&bad, Setup::new(stream.0));
    let (t, n, c) = (clean.t, clean.n, clean.c);
    for b in 0..n {
        let invalid = (1..=6).contains(&b);
        assert_eq!(got.loss[b].is_nan(), invalid, "loss[{b}] = {}", got.loss[b]);
        for k in 0..t * c {
            let i = (k / c * n + b) * c + k % c;
            if invalid {
                assert!(got.grad[i].is_nan(), "sample {b} gradient");
            } else {
                assert_eq!(
                    got.grad[i].to_bits(),
                    want.grad[i].to_bits(),
                    "sample {b} gradient"
                );
            }
        }
    }
    // The same values on the host are refused before anything runs.
    let host = run_case::<f64>(
        &bad,
        Setup {
            place: Place::Host,
            ..Setup::new(stream.0)
        },
    );
    assert_eq!(host.status, CTC_STATUS_INVALID_ARGUMENT, "{}", host.message);
}

#[test]
fn bad_inputs_are_refused_and_write_nothing() {
    if driver("bad_inputs").is_none() {
        return;
    }
    let g = reference_case();
    let stream = Stream::non_blocking();
    // A workspace too small.
    let host = Strided::<f32>::new(&g.log_probs, g.t, g.n, g.c, true, Layout::Contiguous, 0.0);
    let lp = DeviceBuf::upload(&host.buf);
    let loss = DeviceBuf::upload(&vec![-9.0f32; g.n]);
    let targets = int_tensor(&g.targets, true, Place::Device, &[g.n as i64, g.s as i64]);
    let il = int_tensor(&g.input_lengths, true, Place::Device, &[g.n as i64]);
    let tl = int_tensor(&g.target_lengths, true, Place::Device, &[g.n as i64]);
    let t_lp = dev_tensor(lp.ptr, CTC_DTYPE_FLOAT32, &host.shape, &host.strides);
    let mut t_loss = dev_tensor(loss.ptr, CTC_DTYPE_FLOAT32, &[g.n as i64], &[1]);
    let mut opts = ctc_options_default();
    opts.reduction = CTC_REDUCTION_NONE;
    opts.cuda_stream = stream.0.cast();
    let mut bytes = 0;
    // SAFETY (calls below): live tensors; the options name a live stream.
    let s = unsafe {
        ctc_workspace_size(
            &t_lp,
            &targets.tensor,
            &il.tensor,
            &tl.tensor,
            &opts,
            &mut bytes,
        )
    };
    assert_eq!(s, CTC_STATUS_SUCCESS);
    let ws = DeviceBuf::new(bytes);
    opts.workspace = ws.ptr as *mut c_void;
    opts.workspace_bytes = 16;
    let call = |opts: &CtcOptions, lp: &CtcTensor, loss: &mut CtcTensor| {
        checked_call(stream.0, false, || unsafe {
            ctc_loss_forward(lp, &targets.tensor, &il.tensor, &tl.tensor, opts, loss)
        })
    };
    assert_eq!(call(&opts, &t_lp, &mut t_loss), CTC_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("workspace_bytes"), "{}", last_error());
    // A device that does not exist.
    opts.workspace_bytes = bytes;
    let mut other = t_lp;
    other.device_index = 7;
    assert_eq!(
        call(&opts, &other, &mut t_loss),
        CTC_STATUS_INVALID_ARGUMENT
    );
    assert!(last_error().contains("device 7"), "{}", last_error());
    cuda::sync(stream.0);
    assert_eq!(
        loss.download::<f32>(g.n),
        vec![-9.0; g.n],
        "nothing written"
    );
    // The same call with the right size works.
    assert_eq!(
        call(&opts, &t_lp, &mut t_loss),
        CTC_STATUS_SUCCESS,
        "{}",
        last_error()
    );
    cuda::sync(stream.0);
    no_violations();
}

#[test]
fn without_memory_pools_and_under_stream_capture() {
    let Some(d) = driver("pools_and_capture") else {
        return;
    };
    let Some(c) = d.controls() else {
        println!("pools_and_capture: not applicable to a real driver (the stand-in sets them)");
        return;
    };
    let g = reference_case();
    let stream = Stream::non_blocking();
    let want = ok_case::<f64>(&g, Setup::new(stream.0));
    // No pools: cuMemAlloc, and one synchronization of the stream before cuMemFree.
    // SAFETY: stand-in test functions.
    unsafe { (c.set_memory_pools)(0) };
    let setup = Setup::new(stream.0);
    let o = {
        let host = Strided::<f64>::new(&g.log_probs, g.t, g.n, g.c, true, Layout::Contiguous, 0.0);
        let lp = DeviceBuf::upload(&host.buf);
        let loss = DeviceBuf::new(8 * g.n);
        let targets = int_tensor(&g.targets, true, Place::Device, &[g.n as i64, g.s as i64]);
        let il = int_tensor(&g.input_lengths, true, Place::Device, &[g.n as i64]);
        let tl = int_tensor(&g.target_lengths, true, Place::Device, &[g.n as i64]);
        let t_lp = dev_tensor(lp.ptr, CTC_DTYPE_FLOAT64, &host.shape, &host.strides);
        let mut t_loss = dev_tensor(loss.ptr, CTC_DTYPE_FLOAT64, &[g.n as i64], &[1]);
        let mut opts = ctc_options_default();
        opts.reduction = CTC_REDUCTION_NONE;
        opts.cuda_stream = setup.stream.cast();
        let s = checked_call(stream.0, true, || unsafe {
            // SAFETY: live tensors.
            ctc_loss_forward(
                &t_lp,
                &targets.tensor,
                &il.tensor,
                &tl.tensor,
                &opts,
                &mut t_loss,
            )
        });
        assert_eq!(s, CTC_STATUS_SUCCESS, "{}", last_error());
        // Under capture: host integers are refused, device ones run.
        // SAFETY: a stand-in test function on a live stream.
        unsafe { (c.set_capturing)(stream.0.cast(), 1) };
        let host_tl = int_tensor(&g.target_lengths, true, Place::Host, &[g.n as i64]);
        let s = checked_call(stream.0, true, || unsafe {
            // SAFETY: live tensors.
            ctc_loss_forward(
                &t_lp,
                &targets.tensor,
                &il.tensor,
                &host_tl.tensor,
                &opts,
                &mut t_loss,
            )
        });
        assert_eq!(s, CTC_STATUS_UNSUPPORTED);
        assert!(last_error().contains("captured"), "{}", last_error());
        unsafe { (c.set_capturing)(stream.0.cast(), 0) };
        cuda::sync(stream.0);
        loss.download::<f64>(g.n)
    };
    unsafe { (c.set_memory_pools)(1) };
    assert_eq!(bits(&o), bits(&want.loss));
    no_violations();
}

/// Sizes past the kernels' `int` indices are refused (UNSUPPORTED, naming the bound) instead of
/// overflowing: C > 2^30 classes, and targets of 2^30 labels (2 L + 1 states). Size queries:
/// nothing is read from the (tiny) device buffers the huge shapes describe.
#[test]
fn sizes_past_the_kernels_int_range_are_refused() {
    if driver("int_range").is_none() {
        return;
    }
    let buf = DeviceBuf::new(64);
    let host = |v: &[i64]| {
        tensor(
            v.as_ptr() as *mut i64,
            CTC_DTYPE_INT64,
            &[v.len() as i64],
            &[1],
        )
    };
    let size = |lp: &CtcTensor, tg: &CtcTensor, il: &CtcTensor, tl: &CtcTensor| {
        let mut bytes = 7usize;
        // SAFETY: valid descriptors; device memory is not read by a size query.
        let s = unsafe { ctc_workspace_size(lp, tg, il, tl, std::ptr::null(), &mut bytes) };
        (s, last_error(), bytes)
    };
    let wide = 1i64 << 30;
    // C = 2^30 + 1.
    let lp = dev_tensor(
        buf.ptr,
        CTC_DTYPE_FLOAT32,
        &[1, 1, wide + 1],
        &[wide + 1, wide + 1, 1],
    );
    let (tg, il, tl) = ([1i64], [1i64], [1i64]);
    let t_tg = tensor(tg.as_ptr() as *mut i64, CTC_DTYPE_INT64, &[1, 1], &[1, 1]);
    let (s, m, bytes) = size(&lp, &t_tg, &host(&il), &host(&tl));
    assert_eq!((s, bytes), (CTC_STATUS_UNSUPPORTED, 7), "{m}");
    assert!(m.contains("C = 1073741825 classes"), "{m}");
    // L = 2^30 labels in T = 2^30 frames, targets on the device.
    let lp = dev_tensor(buf.ptr, CTC_DTYPE_FLOAT32, &[wide, 1, 2], &[2, 2, 1]);
    let t_tg = dev_tensor(buf.ptr, CTC_DTYPE_INT64, &[1, wide], &[wide, 1]);
    let (il, tl) = ([wide], [wide]);
    let (s, m, bytes) = size(&lp, &t_tg, &host(&il), &host(&tl));
    assert_eq!((s, bytes), (CTC_STATUS_UNSUPPORTED, 7), "{m}");
    assert!(m.contains("1073741824 labels"), "{m}");
    // One label fewer is within the kernels' range (and needs more memory than the query checks).
    let tl = [wide - 1];
    let (s, m, _) = size(&lp, &t_tg, &host(&il), &host(&tl));
    assert_eq!(s, CTC_STATUS_SUCCESS, "{m}");
}

/// Without a caller workspace, the workspace comes from the library's own pool on the device,
/// made once, which keeps up to 256 MiB across synchronizations (the device's default pool,
/// left alone, keeps nothing), and every allocation is given back in stream order.
#[test]
fn the_workspace_comes_from_the_librarys_pool() {
    let Some(d) = driver("librarys_pool") else {
        return;
    };
    let g = reference_case();
    let stream = Stream::non_blocking();
    let first = ok_case::<f64>(&g, Setup::new(stream.0));
    let again = ok_case::<f64>(&g, Setup::new(stream.0));
    assert_eq!(bits(&first.loss), bits(&again.loss));
    let Some(c) = d.controls() else {
        println!("librarys_pool: the pool itself is checked against the stand-in only");
        return;
    };
    // SAFETY: stand-in test functions.
    unsafe {
        assert_eq!(
            (c.pools)(),
            1,
            "one pool for the one device, whatever the calls"
        );
        assert_eq!((c.pool_release_threshold)(0), 256 << 20);
    }
    no_violations();
}

#[test]
fn the_suite_under_address_sanitizer() {
    let Some(d) = driver("address_sanitizer") else {
        return;
    };
    if std::env::var_os(cuda::CHILD_ENV).is_some() {
        return; // the re-run itself
    }
    if matches!(d, Driver::Real) {
        println!("address_sanitizer: not applicable to a real driver (the stand-in is not used)");
        return;
    }
    let cxx = native::tool("CXX", "c++");
    let runtime = std::process::Command::new(&cxx)
        .arg("-print-file-name=libasan.so")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|p| p.starts_with('/'));
    let Some(runtime) = runtime else {
        skip(
            "cuda_gpu::address_sanitizer",
            &format!("{cxx} has no libasan.so"),
        );
        return;
    };
    let lib = cuda::build(
        "standin.cpp",
        "libcuda.so.1",
        "cuda_standin/asan",
        &cuda::ASAN_FLAGS,
    );
    // The sanitizer's dlopen interceptor hides NVRTC's own RUNPATH, where it finds its
    // builtins library: name NVRTC's directory as well.
    let mut search_path = lib.parent().unwrap().as_os_str().to_owned();
    if let Some(nvrtc) = cuda::venv_nvrtc() {
        search_path.push(":");
        search_path.push(nvrtc.parent().unwrap());
    }
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--skip",
        "the_suite_under_address_sanitizer",
        "--test-threads",
        "2",
        "--nocapture",
    ])
    .env(cuda::CHILD_ENV, "1")
    .env("LD_PRELOAD", &runtime)
    .env("LD_LIBRARY_PATH", search_path)
    .env(
        "ASAN_OPTIONS",
        "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0",
    );
    let started = std::time::Instant::now();
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the suite under AddressSanitizer failed ({})",
        out.status
    );
    assert!(
        stdout.contains("CUDA driver stand-in with AddressSanitizer"),
        "the re-run used the sanitized stand-in"
    );
    println!(
        "address_sanitizer: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_gpu_benchmark_runs_against_the_stand_in() {
    let Some(d) = driver("bench_gpu") else {
        return;
    };
    if matches!(d, Driver::Real) || std::env::var_os(cuda::CHILD_ENV).is_some() {
        println!(
            "bench_gpu: only against the plain stand-in (scripts/gpu_check.sh runs it on a GPU)"
        );
        return;
    }
    let Some(python) = native::python_with("numpy") else {
        skip(
            "cuda_gpu::bench_gpu",
            "no Python with numpy (set CTC_PYTHON or create .venv)",
        );
        return;
    };
    // A separate process that finds the stand-in (and NVRTC) through the library search path.
    let standin = cuda::build("standin.cpp", "libcuda.so.1", "cuda_standin/plain", &[]);
    let mut search_path = standin.parent().unwrap().as_os_str().to_owned();
    match cuda::venv_nvrtc() {
        Some(nvrtc) => search_path.push(format!(":{}", nvrtc.parent().unwrap().display())),
        None => {
            let fake = cuda::build(
                "nvrtc_standin.cpp",
                "libnvrtc.so.12",
                "cuda_standin/nvrtc",
                &[],
            );
            search_path.push(format!(":{}", fake.parent().unwrap().display()));
        }
    }
    let root = native::manifest_dir();
    let out = std::process::Command::new(python)
        .arg(root.join("scripts/bench_gpu.py"))
        .args(["--driver-api", "--shapes", "seed", "--reps", "1"])
        .env("LD_LIBRARY_PATH", search_path)
        .env(
            "CTC_LIBRARY",
            native::library_dir("libctc.so").join("libctc.so"),
        )
        .env("PYTHONPATH", root.join("bindings/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "bench_gpu.py failed ({})", out.status);
    assert!(
        stdout.contains("libctc CUDA driver stand-in"),
        "it ran against the stand-in"
    );
    for input in ["log-probs f32", "logits f32", "logits f16"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("| seed | 128 | {input} |"))),
            "its table has {input}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Forced alignment (ctc_align): the device's paths and scores against the CPU backend's, bit
// for bit.

/// An alignment problem: (T, N, C) log-probabilities (row-major), padded (N, S) targets, each
/// sample's input and target lengths (which the invalid-value test may spoil).
#[derive(Clone, Debug)]
struct AlignCase {
    name: String,
    t: usize,
    n: usize,
    c: usize,
    blank: i32,
    lp: Vec<f64>,
    s: usize,
    targets: Vec<i64>,
    input_lengths: Vec<i64>,
    target_lengths: Vec<i64>,
    /// `lp` holds logits (CTC_INPUT_LOGITS).
    logits: bool,
}

impl AlignCase {
    /// A case from each sample's labels and input length.
    fn new(
        name: &str,
        t: usize,
        c: usize,
        blank: i32,
        lp: Vec<f64>,
        samples: &[(Vec<i64>, i64)],
    ) -> Self {
        let n = samples.len();
        assert_eq!(lp.len(), t * n * c, "{name}");
        let s = samples
            .iter()
            .map(|(l, _)| l.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut targets = vec![-5i64; n * s];
        for (b, (labels, _)) in samples.iter().enumerate() {
            targets[b * s..][..labels.len()].copy_from_slice(labels);
        }
        AlignCase {
            name: name.into(),
            t,
            n,
            c,
            blank,
            lp,
            s,
            targets,
            input_lengths: samples.iter().map(|&(_, il)| il).collect(),
            target_lengths: samples.iter().map(|(l, _)| l.len() as i64).collect(),
            logits: false,
        }
    }

    /// Padded (N, S) targets, or concatenated (sum L_b,) ones.
    fn targets(&self, padded: bool) -> (Vec<i64>, Vec<i64>) {
        if padded {
            return (self.targets.clone(), vec![self.n as i64, self.s as i64]);
        }
        let v: Vec<i64> = (0..self.n)
            .flat_map(|b| self.targets[b * self.s..][..self.target_lengths[b] as usize].to_vec())
            .collect();
        let len = v.len() as i64;
        (v, vec![len])
    }
}

/// Random log-probabilities on a coarse grid (multiples of -0.5 down to -0.5 (levels - 1)),
/// exact in float32 and float64, so that equally probable alignments are common; random
/// labels in [1, C) (few classes make adjacent repeats common); blank 0.
fn tie_case(
    name: &str,
    t: usize,
    c: usize,
    samples: &[(usize, i64)],
    levels: usize,
    seed: u64,
) -> AlignCase {
    let mut rng = Rng(seed);
    let lp: Vec<f64> = (0..t * samples.len() * c)
        .map(|_| -0.5 * rng.range(0, levels - 1) as f64)
        .collect();
    let samples: Vec<(Vec<i64>, i64)> = samples
        .iter()
        .map(|&(len, il)| ((0..len).map(|_| rng.range(1, c - 1) as i64).collect(), il))
        .collect();
    AlignCase::new(name, t, c, 0, lp, &samples)
}

/// How an alignment runs on the device.
#[derive(Clone, Copy, Debug)]
struct AlignSetup {
    layout: Layout,
    /// Unbatched (T, C) log_probs, (T,) path, () score (N = 1).
    unbatched: bool,
    /// Path (and scores) every other element, batch-first (strides [2, 2T]); else time-first
    /// and contiguous ([N, 1]).
    batch_first: bool,
    path_i32: bool,
    padded: bool,
    place: Place,
    wide: bool,
    workspace: bool,
    /// path_scores: None (NULL), Some(true) float32, Some(false) log_probs' dtype.
    scores: Option<bool>,
    /// Options ctc_align ignores set away from their defaults: reduction sum, zero_infinity,
    /// the exact gradient (which the CUDA loss refuses).
    ignored_options: bool,
    stream: cu::CUstream,
}

impl AlignSetup {
    fn new(stream: cu::CUstream) -> AlignSetup {
        AlignSetup {
            layout: Layout::Contiguous,
            unbatched: false,
            batch_first: false,
            path_i32: false,
            padded: true,
            place: Place::Device,
            wide: true,
            workspace: false,
            scores: Some(false),
            ignored_options: false,
            stream,
        }
    }
}

/// What `ctc_align` returned: the logical (T, N) path row-major, the scores as f64 (exact).
#[derive(Debug)]
struct Aligned {
    status: CtcStatus,
    message: String,
    path: Vec<i64>,
    scores: Vec<f64>,
}

impl Aligned {
    fn score_bits(&self) -> Vec<u64> {
        bits(&self.scores)
    }
}

/// The CPU backend's alignment: contiguous host tensors, padded int64 targets, one thread;
/// scores in float32 when `scores_f32`, else in log_probs' dtype.
fn cpu_align<F: Float>(a: &AlignCase, scores_f32: bool) -> Aligned {
    let (t, n) = (a.t as i64, a.n as i64);
    let mut lp = Strided::<F>::new(&a.lp, a.t, a.n, a.c, true, Layout::Contiguous, f64::NAN);
    let mut targets = a.targets.clone();
    let mut il = a.input_lengths.clone();
    let mut tl = a.target_lengths.clone();
    let mut path = vec![77i64; a.t * a.n];
    let mut s32 = vec![12345f32; a.n];
    let mut s64 = vec![12345f64; a.n];
    let t_lp = lp.tensor();
    let t_tg = tensor(
        targets.as_mut_ptr(),
        CTC_DTYPE_INT64,
        &[n, a.s as i64],
        &[a.s as i64, 1],
    );
    let t_il = tensor(il.as_mut_ptr(), CTC_DTYPE_INT64, &[n], &[1]);
    let t_tl = tensor(tl.as_mut_ptr(), CTC_DTYPE_INT64, &[n], &[1]);
    let mut t_path = tensor(path.as_mut_ptr(), CTC_DTYPE_INT64, &[t, n], &[n, 1]);
    let mut t_scores = match scores_f32 || F::DTYPE == CTC_DTYPE_FLOAT32 {
        true => tensor(s32.as_mut_ptr(), CTC_DTYPE_FLOAT32, &[n], &[1]),
        false => tensor(s64.as_mut_ptr(), CTC_DTYPE_FLOAT64, &[n], &[1]),
    };
    let mut opts = ctc_options_default();
    opts.blank = a.blank;
    if a.logits {
        opts.input = CTC_INPUT_LOGITS;
    }
    opts.num_threads = 1;
    // SAFETY: host tensors describing live buffers of their shapes.
    let status = unsafe {
        ctc_align(
            &t_lp,
            &t_tg,
            &t_il,
            &t_tl,
            &opts,
            &mut t_path,
            &mut t_scores,
        )
    };
    let scores = match t_scores.dtype {
        CTC_DTYPE_FLOAT32 => s32.iter().map(|&v| v as f64).collect(),
        _ => s64,
    };
    Aligned {
        status,
        message: last_error(),
        path,
        scores,
    }
}

/// A device buffer of `len` elements of `T` holding `fill`.
fn filled<T: Copy>(len: usize, fill: T) -> DeviceBuf {
    DeviceBuf::upload(&vec![fill; len.max(1)])
}

/// The path buffer's (shape, strides, elements) for `setup`.
fn path_geometry(a: &AlignCase, setup: AlignSetup) -> (Vec<i64>, Vec<i64>, usize) {
    let (t, n) = (a.t as i64, a.n as i64);
    match (setup.unbatched, setup.batch_first) {
        (true, false) => (vec![t], vec![1], a.t),
        (true, true) => (vec![t], vec![2], 2 * a.t),
        (false, false) => (vec![t, n], vec![n, 1], a.t * a.n),
        (false, true) => (vec![t, n], vec![2, 2 * t], 2 * a.t * a.n),
    }
}

/// Aligns `a` on the device as `setup` says, checking what a caller relies on (context, no
/// synchronization, the caller's stream) and that the gaps of strided outputs stay untouched.
fn gpu_align<F: Float>(a: &AlignCase, setup: AlignSetup) -> Aligned {
    let batched = !setup.unbatched;
    let host = Strided::<F>::new(&a.lp, a.t, a.n, a.c, batched, setup.layout, f64::NAN);
    let lp = DeviceBuf::upload(&host.buf);
    let (targets, tshape) = a.targets(setup.padded);
    let tshape = if batched {
        tshape
    } else {
        vec![targets.len() as i64]
    };
    let nshape: Vec<i64> = if batched { vec![a.n as i64] } else { vec![] };
    let tg = int_tensor(&targets, setup.wide, setup.place, &tshape);
    let il = int_tensor(&a.input_lengths, !setup.wide, setup.place, &nshape);
    let tl = int_tensor(&a.target_lengths, setup.wide, setup.place, &nshape);
    let (pshape, pstrides, plen) = path_geometry(a, setup);
    let (path, path_dtype) = match setup.path_i32 {
        true => (filled(plen, 77i32), CTC_DTYPE_INT32),
        false => (filled(plen, 77i64), CTC_DTYPE_INT64),
    };
    let step = if setup.batch_first { 2 } else { 1 };
    let scores_f32 = setup.scores == Some(true) || F::DTYPE == CTC_DTYPE_FLOAT32;
    let scores = match scores_f32 {
        true => filled(step * a.n, 12345f32),
        false => filled(step * a.n, 12345f64),
    };
    let sdtype = if scores_f32 {
        CTC_DTYPE_FLOAT32
    } else {
        CTC_DTYPE_FLOAT64
    };
    let (sshape, sstrides) = if batched {
        (vec![a.n as i64], vec![step as i64])
    } else {
        (vec![], vec![])
    };
    let t_lp = dev_tensor(lp.ptr, F::DTYPE, &host.shape, &host.strides);
    let mut t_path = dev_tensor(path.ptr, path_dtype, &pshape, &pstrides);
    let mut t_scores = dev_tensor(scores.ptr, sdtype, &sshape, &sstrides);
    let mut opts = ctc_options_default();
    opts.blank = a.blank;
    if a.logits {
        opts.input = CTC_INPUT_LOGITS;
    }
    opts.cuda_stream = setup.stream.cast();
    if setup.ignored_options {
        opts.reduction = CTC_REDUCTION_SUM;
        opts.zero_infinity = CBool(1);
        opts.gradient = CTC_GRADIENT_EXACT;
    }
    let (tgt, ilt, tlt) = (&tg.tensor, &il.tensor, &tl.tensor);
    let ws = setup.workspace.then(|| {
        let mut bytes = 0usize;
        let s = checked_call(setup.stream, false, || {
            // SAFETY: valid tensors and out-pointer.
            unsafe {
                ctc_workspace_size_for_call(CTC_CALL_ALIGN, &t_lp, tgt, ilt, tlt, &opts, &mut bytes)
            }
        });
        assert_eq!(s, CTC_STATUS_SUCCESS, "{}", last_error());
        // Any alignment: one byte past an allocation's start.
        let buf = DeviceBuf::new(bytes + 1);
        (buf, bytes)
    });
    if let Some((buf, bytes)) = &ws {
        opts.workspace = (buf.ptr + 1) as *mut c_void;
        opts.workspace_bytes = *bytes;
    }
    let out_scores: *mut CtcTensor = match setup.scores {
        Some(_) => &mut t_scores,
        None => std::ptr::null_mut(),
    };
    let status = checked_call(setup.stream, false, || {
        // SAFETY: device tensors alive for the call; the stream orders everything.
        unsafe { ctc_align(&t_lp, tgt, ilt, tlt, &opts, &mut t_path, out_scores) }
    });
    let message = last_error();
    for t in [&tg, &il, &tl] {
        if let Some(p) = &t.pinned {
            p.scribble(0x7f);
        }
    }
    cuda::sync(setup.stream);
    drop(ws);
    no_violations();
    let raw_path: Vec<i64> = match setup.path_i32 {
        true => path
            .download::<i32>(plen)
            .iter()
            .map(|&v| v as i64)
            .collect(),
        false => path.download::<i64>(plen),
    };
    let raw_scores: Vec<f64> = match scores_f32 {
        true => scores
            .download::<f32>(step * a.n)
            .iter()
            .map(|&v| v as f64)
            .collect(),
        false => scores.download::<f64>(step * a.n),
    };
    if setup.batch_first {
        assert!(
            raw_path.iter().skip(1).step_by(2).all(|&v| v == 77),
            "{}: a gap of path was written",
            a.name
        );
        assert!(
            raw_scores.iter().skip(1).step_by(2).all(|&v| v == 12345.0),
            "{}: a gap of path_scores was written",
            a.name
        );
    }
    let at = |t: usize, b: usize| -> usize {
        match setup.batch_first {
            true => 2 * t + 2 * a.t * b,
            false => t * a.n + b,
        }
    };
    Aligned {
        status,
        message,
        path: (0..a.t)
            .flat_map(|t| (0..a.n).map(move |b| (t, b)))
            .map(|(t, b)| raw_path[at(t, b)])
            .collect(),
        scores: match setup.scores {
            Some(_) => (0..a.n).map(|b| raw_scores[step * b]).collect(),
            None => vec![],
        },
    }
}

/// The device's alignment of `a` under `setup` has the CPU's path and score bits.
fn align_agrees_with_the_cpu<F: Float>(a: &AlignCase, setup: AlignSetup) -> Aligned {
    let gpu = gpu_align::<F>(a, setup);
    let what = format!("{} {:?} {setup:?}", a.name, F::DTYPE);
    assert_eq!(gpu.status, CTC_STATUS_SUCCESS, "{what}: {}", gpu.message);
    let cpu = cpu_align::<F>(a, setup.scores == Some(true));
    assert_eq!(
        cpu.status, CTC_STATUS_SUCCESS,
        "{what}: CPU {}",
        cpu.message
    );
    for b in 0..a.n {
        let column = |p: &[i64]| (0..a.t).map(|t| p[t * a.n + b]).collect::<Vec<_>>();
        assert_eq!(
            column(&gpu.path),
            column(&cpu.path),
            "{what}: sample {b}'s path"
        );
    }
    if setup.scores.is_some() {
        assert_eq!(
            gpu.score_bits(),
            cpu.score_bits(),
            "{what}: scores {:?} vs CPU {:?}",
            gpu.scores,
            cpu.scores
        );
    }
    gpu
}

/// torchaudio's golden alignments (tests/data/golden-align): the CPU's path (torchaudio's, as
/// there are no ties) and score bits on the device, float32 and float64, every log_probs layout.
#[test]
fn align_golden_cases_agree_with_the_cpu() {
    if driver("align_golden").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    let dir = native::manifest_dir().join("tests/data/golden-align");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 11);
    for (k, file) in files.iter().enumerate() {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let (t, c) = (
            v["T"].as_u64().unwrap() as usize,
            v["C"].as_u64().unwrap() as usize,
        );
        let lp: Vec<f64> = v["log_probs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect();
        let ints = |key: &str| -> Vec<i64> {
            v[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect()
        };
        let name = file.file_stem().unwrap().to_string_lossy();
        let a = AlignCase::new(
            &name,
            t,
            c,
            v["blank"].as_i64().unwrap() as i32,
            lp,
            &[(ints("targets"), t as i64)],
        );
        let setup = AlignSetup {
            layout: LAYOUTS[k % 4],
            unbatched: k % 3 == 0,
            path_i32: k % 2 == 1,
            ..AlignSetup::new(stream.0)
        };
        for got in [
            align_agrees_with_the_cpu::<f32>(&a, setup),
            align_agrees_with_the_cpu::<f64>(&a, setup),
        ] {
            assert_eq!(got.path, ints("path"), "{name}: torchaudio's path");
        }
    }
}

/// One batch with ties everywhere and mixed lengths, through every option of the call: log_probs
/// layouts, unbatched, time-first and strided batch-first paths, int32 and int64 paths, padded
/// and concatenated targets, targets and lengths on the host, the device or page-locked, int32
/// and int64 integers, the caller's workspace or the library's, scores absent, float32 or the
/// input's dtype, float32 and float64, the caller's stream, NULL and the special handles.
#[test]
fn align_every_option_agrees_with_the_cpu() {
    if driver("align_options").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    let samples = [
        (6, 20),
        (0, 20),
        (9, 17),
        (3, 5),
        (12, 20),
        (1, 1),
        (4, 0),
        (0, 0),
    ];
    let a = tie_case("ties", 20, 5, &samples, 3, 11);
    let places = [Place::Device, Place::Host, Place::Pinned];
    let streams = [
        stream.0,
        std::ptr::null_mut(),
        1usize as cu::CUstream,
        2usize as cu::CUstream,
    ];
    for k in 0..24 {
        let setup = AlignSetup {
            layout: LAYOUTS[k % 4],
            unbatched: false,
            batch_first: k % 3 == 1,
            path_i32: (k / 2) % 2 == 1,
            padded: (k / 4) % 2 == 0,
            place: places[k % 3],
            wide: k % 5 < 3,
            workspace: (k / 3) % 2 == 1,
            scores: [Some(false), Some(true), None][(k / 8) % 3],
            ignored_options: k % 7 == 2,
            stream: streams[k % 4],
        };
        align_agrees_with_the_cpu::<f32>(&a, setup);
        align_agrees_with_the_cpu::<f64>(&a, setup);
    }
    // No frames at all (T = 0): nothing to write in the path, the scores 0 and -inf.
    let empty = tie_case("no_frames", 0, 4, &[(0, 0), (2, 0)], 3, 13);
    for place in [Place::Host, Place::Device] {
        let setup = AlignSetup {
            place,
            ..AlignSetup::new(stream.0)
        };
        let got = align_agrees_with_the_cpu::<f32>(&empty, setup);
        assert_eq!(got.scores, [0.0, f64::NEG_INFINITY]);
    }
    // Unbatched: one sample of the batch.
    let one = tie_case("ties_unbatched", 20, 5, &[(7, 18)], 3, 12);
    for batch_first in [false, true] {
        let setup = AlignSetup {
            unbatched: true,
            batch_first,
            place: Place::Host,
            ..AlignSetup::new(stream.0)
        };
        align_agrees_with_the_cpu::<f64>(&one, setup);
    }
}

/// Input lengths just below, at and above multiples of the segment length K (checkpoint rows and
/// the last, shorter, segment), with host lengths (K from the longest input) and device lengths
/// (K from T); impossible samples inside the batch (too few frames for the repeats, more labels
/// than frames, a label that is -inf everywhere, NaN); no frames at all, with and without
/// labels. Float32: T = 100 gives K = 40 from T; float64 K = 57.
#[test]
fn align_segment_boundaries_and_impossible_samples() {
    if driver("align_boundaries").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    let lengths = [100i64, 81, 80, 79, 41, 40, 39, 58, 57, 56, 1, 2];
    let mut samples: Vec<(usize, i64)> = lengths
        .iter()
        .map(|&il| ((il as usize).min(13) / 2, il))
        .collect();
    samples.extend([(0, 0), (3, 0), (12, 11), (9, 9), (5, 60), (5, 60)]);
    let mut a = tie_case("boundaries", 100, 6, &samples, 5, 21);
    let (n, c) = (a.n, a.c);
    // Sample 14: 12 labels in 11 frames. Sample 15: 9 labels, 9 frames, with a repeat.
    a.targets[15 * a.s..][..2].copy_from_slice(&[2, 2]);
    // Sample 16: its first label is -inf at every frame. Sample 17: NaN on its path's way.
    let first = a.targets[16 * a.s] as usize;
    for t in 0..a.t {
        a.lp[(t * n + 16) * c + first] = f64::NEG_INFINITY;
        a.lp[(t * n + 17) * c] = if t % 7 == 3 {
            f64::NAN
        } else {
            a.lp[(t * n + 17) * c]
        };
    }
    for place in [Place::Host, Place::Device] {
        for path_i32 in [false, true] {
            let setup = AlignSetup {
                place,
                path_i32,
                padded: place == Place::Host,
                ..AlignSetup::new(stream.0)
            };
            for got in [
                align_agrees_with_the_cpu::<f32>(&a, setup),
                align_agrees_with_the_cpu::<f64>(&a, setup),
            ] {
                for b in [12, 13, 14, 15, 16] {
                    let empty = b == 12;
                    let want = if empty { 0.0 } else { f64::NEG_INFINITY };
                    assert_eq!(got.scores[b], want, "sample {b}");
                    assert!((0..a.t).all(|t| got.path[t * n + b] == -1), "sample {b}");
                }
                assert!(
                    got.scores[..12].iter().all(|s| s.is_finite()),
                    "{:?}",
                    got.scores
                );
            }
        }
    }
}

/// Invalid device-side values make only their sample impossible (path -1, score -inf); every
/// other sample keeps the CPU's path and score.
#[test]
fn align_invalid_device_values_make_only_their_sample_impossible() {
    if driver("align_invalid_device_values").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    let samples = [
        (4, 12),
        (5, 12),
        (3, 10),
        (6, 12),
        (2, 9),
        (4, 12),
        (5, 11),
        (3, 12),
    ];
    let clean = tie_case("clean", 12, 6, &samples, 4, 31);
    let want = cpu_align::<f64>(&clean, false);
    assert_eq!(want.status, CTC_STATUS_SUCCESS, "{}", want.message);
    let mut bad = clean.clone();
    let s = bad.s;
    bad.targets[s] = 6; // sample 1: label C
    bad.input_lengths[2] = 13; // sample 2: input length > T
    bad.targets[3 * s + 1] = 0; // sample 3: the blank as a label
    bad.target_lengths[4] = s as i64 + 1; // sample 4: target length > S
    bad.input_lengths[5] = -1; // sample 5: negative input length
    bad.target_lengths[6] = -2; // sample 6: negative target length
    for path_i32 in [false, true] {
        let setup = AlignSetup {
            path_i32,
            ..AlignSetup::new(stream.0)
        };
        let got = gpu_align::<f64>(&bad, setup);
        assert_eq!(got.status, CTC_STATUS_SUCCESS, "{}", got.message);
        for b in 0..bad.n {
            let column = |p: &[i64]| (0..bad.t).map(|t| p[t * bad.n + b]).collect::<Vec<_>>();
            if (1..=6).contains(&b) {
                assert!(column(&got.path).iter().all(|&v| v == -1), "sample {b}");
                assert_eq!(got.scores[b], f64::NEG_INFINITY, "sample {b}");
            } else {
                assert_eq!(column(&got.path), column(&want.path), "sample {b}");
                assert_eq!(
                    got.scores[b].to_bits(),
                    want.scores[b].to_bits(),
                    "sample {b}"
                );
            }
        }
    }
}

/// The workspace of an alignment: what `ctc_workspace_size_for_call(CTC_CALL_ALIGN)` reports
/// grows with sqrt(T), not T; a caller's workspace one byte short is refused, writing nothing.
#[test]
fn align_workspace_grows_with_the_square_root_of_t() {
    if driver("align_workspace").is_none() {
        return;
    }
    let size = |t: usize, n: usize, l: usize| -> usize {
        let lp = DeviceBuf::new(4 * t * n * 3);
        let shape = [t as i64, n as i64, 3];
        let t_lp = dev_tensor(lp.ptr, CTC_DTYPE_FLOAT32, &shape, &contiguous(&shape));
        let targets = int_tensor(&vec![1; n * l], true, Place::Host, &[n as i64, l as i64]);
        let il = int_tensor(&vec![t as i64; n], true, Place::Host, &[n as i64]);
        let tl = int_tensor(&vec![l as i64; n], true, Place::Host, &[n as i64]);
        let mut bytes = 0;
        // SAFETY: valid tensors and out-pointer.
        let s = unsafe {
            ctc_workspace_size_for_call(
                CTC_CALL_ALIGN,
                &t_lp,
                &targets.tensor,
                &il.tensor,
                &tl.tensor,
                std::ptr::null(),
                &mut bytes,
            )
        };
        assert_eq!(s, CTC_STATUS_SUCCESS, "{}", last_error());
        bytes
    };
    // N = 2, L = 100 (W = 201), float32: T = 10^4 gives K = 400, 25 checkpoint rows; T = 10^6
    // gives K = 4000, 250 rows: about 10x the memory for 100x the frames.
    let (small, large) = (size(10_000, 2, 100), size(1_000_000, 2, 100));
    let expect = |k: usize, rows: usize| 2 * 201 * (2 + rows) * 4 + 2 * k * 51;
    assert!(
        small >= expect(400, 25) && small < expect(400, 25) + 64 * 1024,
        "{small}"
    );
    assert!(
        large >= expect(4000, 250) && large < expect(4000, 250) + 64 * 1024,
        "{large}"
    );
    // A workspace one byte short.
    let stream = Stream::non_blocking();
    let a = tie_case("short_workspace", 10, 4, &[(3, 10), (2, 8)], 3, 41);
    let host = Strided::<f32>::new(&a.lp, a.t, a.n, a.c, true, Layout::Contiguous, 0.0);
    let lp = DeviceBuf::upload(&host.buf);
    let (targets, tshape) = a.targets(true);
    let tg = int_tensor(&targets, true, Place::Device, &tshape);
    let il = int_tensor(&a.input_lengths, true, Place::Device, &[2]);
    let tl = int_tensor(&a.target_lengths, true, Place::Device, &[2]);
    let path = filled(a.t * a.n, 77i64);
    let t_lp = dev_tensor(lp.ptr, CTC_DTYPE_FLOAT32, &host.shape, &host.strides);
    let mut t_path = dev_tensor(path.ptr, CTC_DTYPE_INT64, &[a.t as i64, 2], &[2, 1]);
    let mut opts = ctc_options_default();
    opts.cuda_stream = stream.0.cast();
    let mut bytes = 0;
    // SAFETY (calls below): live tensors; the options name a live stream.
    let s = unsafe {
        ctc_workspace_size_for_call(
            CTC_CALL_ALIGN,
            &t_lp,
            &tg.tensor,
            &il.tensor,
            &tl.tensor,
            &opts,
            &mut bytes,
        )
    };
    assert_eq!(s, CTC_STATUS_SUCCESS, "{}", last_error());
    let ws = DeviceBuf::new(bytes);
    opts.workspace = ws.ptr as *mut c_void;
    opts.workspace_bytes = bytes - 1;
    let call = |opts: &CtcOptions, t_path: &mut CtcTensor| {
        checked_call(stream.0, false, || unsafe {
            ctc_align(
                &t_lp,
                &tg.tensor,
                &il.tensor,
                &tl.tensor,
                opts,
                t_path,
                std::ptr::null_mut(),
            )
        })
    };
    assert_eq!(call(&opts, &mut t_path), CTC_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("workspace_bytes"), "{}", last_error());
    cuda::sync(stream.0);
    assert_eq!(
        path.download::<i64>(a.t * a.n),
        vec![77; a.t * a.n],
        "nothing written"
    );
    opts.workspace_bytes = bytes;
    // Logits also keep each frame's shift: a workspace sized for log-probabilities is short.
    opts.input = CTC_INPUT_LOGITS;
    assert_eq!(call(&opts, &mut t_path), CTC_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("workspace_bytes"), "{}", last_error());
    opts.input = CTC_INPUT_LOG_PROBS;
    assert_eq!(
        call(&opts, &mut t_path),
        CTC_STATUS_SUCCESS,
        "{}",
        last_error()
    );
    cuda::sync(stream.0);
    no_violations();
    let want = cpu_align::<f32>(&a, false);
    assert_eq!(path.download::<i64>(a.t * a.n), want.path);
}

// ---------------------------------------------------------------------------------------------
// Logits input and half inputs on the device.

/// torch's answer on logits (tests/data/golden-logits/, the CPU's test `logits_match_torch_
/// golden_cases`) from the device, float64 and float32, in every layout; the exact-gradient
/// option changes no bit (the derivative through the softmax is finite already).
#[test]
fn logits_golden_cases_on_the_device() {
    if driver("logits_golden").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    for g in golden_logits() {
        for (k, layout) in LAYOUTS.into_iter().enumerate() {
            let setup = Setup {
                layout,
                place: if k % 2 == 0 {
                    Place::Device
                } else {
                    Place::Host
                },
                workspace: k % 2 == 1,
                ..Setup::new(stream.0)
            };
            let what = format!("{} {layout:?}", g.name);
            let r = ok_case::<f64>(&g, setup);
            check_golden_f64(&g, &r.loss, &r.grad, &format!("{what} f64"));
            let r = ok_case::<f32>(&g, setup);
            check_golden_f32(&g, &r.loss, &r.grad, &format!("{what} f32"));
            let exact = ok_case::<f32>(
                &g,
                Setup {
                    exact: true,
                    ..setup
                },
            );
            assert_eq!(bits(&exact.loss), bits(&r.loss), "{what}: exact loss");
            assert_eq!(bits(&exact.grad), bits(&r.grad), "{what}: exact gradient");
            let alone = ok_case::<f32>(
                &g,
                Setup {
                    gradient: false,
                    ..setup
                },
            );
            assert_eq!(bits(&alone.loss), bits(&r.loss), "{what}: loss alone");
        }
    }
    no_violations();
}

/// float16 and bfloat16.
#[derive(Clone, Copy, Debug)]
enum Half {
    F16,
    BF16,
}

impl Half {
    fn dtype(self) -> CtcDType {
        match self {
            Half::F16 => CTC_DTYPE_FLOAT16,
            Half::BF16 => CTC_DTYPE_BFLOAT16,
        }
    }

    /// `v` rounded to the type, as bits.
    fn bits(self, v: f64) -> u16 {
        match self {
            Half::F16 => half::f16::from_f64(v).to_bits(),
            Half::BF16 => half::bf16::from_f64(v).to_bits(),
        }
    }

    /// A float32 result rounded once to the type, as bits.
    fn round(self, v: f32) -> u16 {
        match self {
            Half::F16 => half::f16::from_f32(v).to_bits(),
            Half::BF16 => half::bf16::from_f32(v).to_bits(),
        }
    }

    fn value(self, bits: u16) -> f64 {
        match self {
            Half::F16 => half::f16::from_bits(bits).to_f64(),
            Half::BF16 => half::bf16::from_bits(bits).to_f64(),
        }
    }
}

/// Contiguous half log_probs of `g` (its values rounded to `half`) on the device.
fn half_log_probs(g: &Golden, half: Half) -> (DeviceBuf, CtcTensor) {
    let lp_bits: Vec<u16> = g.log_probs.iter().map(|&v| half.bits(v)).collect();
    let lp = DeviceBuf::upload(&lp_bits);
    let shape = [g.t as i64, g.n as i64, g.c as i64];
    let t = dev_tensor(lp.ptr, half.dtype(), &shape, &contiguous(&shape));
    (lp, t)
}

/// The loss (one per sample for reduction none) and gradient of the padded batch `g` from half
/// log_probs, with the loss, the gradient and the upstream gradient in `half` (`out_half`) or
/// float32.
fn run_half(g: &Golden, half: Half, out_half: bool, stream: cu::CUstream) -> (Vec<f64>, Vec<f64>) {
    let (_lp, t_lp) = half_log_probs(g, half);
    let count = g.t * g.n * g.c;
    let (out_dtype, size) = match out_half {
        true => (half.dtype(), 2),
        false => (CTC_DTYPE_FLOAT32, 4),
    };
    let upstream: Vec<u8> = g
        .grad_out
        .iter()
        .flat_map(|&v| match out_half {
            true => half.bits(v).to_ne_bytes().to_vec(),
            false => (v as f32).to_ne_bytes().to_vec(),
        })
        .collect();
    let go = DeviceBuf::upload(&upstream);
    let grad = DeviceBuf::new(count * size);
    let per_sample = g.reduction == CTC_REDUCTION_NONE;
    let nloss = if per_sample { g.n } else { 1 };
    let loss = DeviceBuf::new(nloss * size);
    let shape = [g.t as i64, g.n as i64, g.c as i64];
    let nshape = [g.n as i64];
    let (lshape, lstrides): (&[i64], &[i64]) = match per_sample {
        true => (&nshape, &[1]),
        false => (&[], &[]),
    };
    let mut t_grad = dev_tensor(grad.ptr, out_dtype, &shape, &contiguous(&shape));
    let mut t_loss = dev_tensor(loss.ptr, out_dtype, lshape, lstrides);
    let t_go = dev_tensor(go.ptr, out_dtype, lshape, lstrides);
    let targets = int_tensor(&g.targets, true, Place::Device, &[g.n as i64, g.s as i64]);
    let il = int_tensor(&g.input_lengths, false, Place::Device, &nshape);
    let tl = int_tensor(&g.target_lengths, true, Place::Device, &nshape);
    let mut opts = ctc_options_default();
    opts.blank = g.blank;
    opts.reduction = g.reduction;
    opts.input = g.input;
    opts.cuda_stream = stream.cast();
    let status = checked_call(stream, false, || {
        // SAFETY: device tensors alive for the call; the stream orders everything.
        unsafe {
            ctc_loss_forward_backward(
                &t_lp,
                &targets.tensor,
                &il.tensor,
                &tl.tensor,
                &t_go,
                &opts,
                &mut t_loss,
                &mut t_grad,
            )
        }
    });
    assert_eq!(status, CTC_STATUS_SUCCESS, "{}: {}", g.name, last_error());
    cuda::sync(stream);
    let read = |buf: &DeviceBuf, n: usize| -> Vec<f64> {
        match out_half {
            true => buf
                .download::<u16>(n)
                .into_iter()
                .map(|b| half.value(b))
                .collect(),
            false => buf.download::<f32>(n).into_iter().map(f64::from).collect(),
        }
    };
    (read(&loss, nloss), read(&grad, count))
}

/// Half inputs on the device are float32 on the same (widened) values, bit for bit, whether
/// the outputs are float32 or the half type (then rounded once from float32); log-probabilities
/// and logits, every reduction; the alignment's path and scores (float32 or half) likewise.
#[test]
fn half_inputs_compute_in_float32_on_the_widened_values() {
    if driver("half_inputs").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    for half in [Half::F16, Half::BF16] {
        let reductions = [CTC_REDUCTION_NONE, CTC_REDUCTION_SUM, CTC_REDUCTION_MEAN];
        let cases = [false, true]
            .into_iter()
            .flat_map(|l| reductions.map(|r| (l, r)));
        for (logits, reduction) in cases {
            let name = format!("{half:?} logits {logits} reduction {reduction}");
            let mut g = random_case(&name, 17, 4, 11, 1, 6, 21);
            g.reduction = reduction;
            if logits {
                let mut rng = Rng(5);
                g.log_probs = g.log_probs.iter().map(|_| 3.0 * rng.normal()).collect();
                g.input = CTC_INPUT_LOGITS;
            }
            g.grad_out = match reduction == CTC_REDUCTION_NONE {
                true => (0..g.n).map(|b| 0.5 + 0.25 * b as f64).collect(),
                false => vec![0.75],
            };
            if reduction != CTC_REDUCTION_NONE {
                g.loss.truncate(1); // one loss (run_case sizes its output by it)
            }
            g.log_probs = g
                .log_probs
                .iter()
                .map(|&v| half.value(half.bits(v)))
                .collect();
            let want = ok_case::<f32>(&g, Setup::new(stream.0));
            let (loss, grad) = run_half(&g, half, false, stream.0);
            assert_eq!(bits(&loss), bits(&want.loss), "{name}: float32 loss");
            assert_eq!(bits(&grad), bits(&want.grad), "{name}: float32 gradient");
            let (loss, grad) = run_half(&g, half, true, stream.0);
            let rounded = |v: &[f64]| -> Vec<u64> {
                let r = v.iter().map(|&x| half.value(half.round(x as f32)));
                r.map(f64::to_bits).collect()
            };
            assert_eq!(bits(&loss), rounded(&want.loss), "{name}: half loss");
            assert_eq!(bits(&grad), rounded(&want.grad), "{name}: half gradient");
            assert!(grad.iter().any(|&v| v != 0.0), "{name}: a gradient");
        }
        let a = half_align_case(half);
        let want = gpu_align::<f32>(&a, AlignSetup::new(stream.0));
        assert_eq!(want.status, CTC_STATUS_SUCCESS, "{}", want.message);
        let (path, scores) = run_half_align(&a, half, false, stream.0);
        assert_eq!(path, want.path, "{half:?}: alignment path");
        assert_eq!(bits(&scores), want.score_bits(), "{half:?}: scores");
        let (path, scores) = run_half_align(&a, half, true, stream.0);
        assert_eq!(path, want.path, "{half:?}: alignment path, half scores");
        let rounded: Vec<f64> = want
            .scores
            .iter()
            .map(|&s| half.value(half.round(s as f32)))
            .collect();
        assert_eq!(bits(&scores), bits(&rounded), "{half:?}: half scores");
    }
    no_violations();
}

/// Random logits rounded to `half` for an alignment (normalized on the device).
fn half_align_case(half: Half) -> AlignCase {
    let (t, c) = (30, 9);
    let samples: Vec<(Vec<i64>, i64)> = vec![
        (vec![1, 2, 2, 3], 30),
        (vec![4, 5, 6, 7, 8, 1], 24),
        (vec![], 9),
    ];
    let mut rng = Rng(77);
    let lp: Vec<f64> = (0..t * samples.len() * c)
        .map(|_| half.value(half.bits(2.0 * rng.normal())))
        .collect();
    let mut a = AlignCase::new(&format!("{half:?} align"), t, c, 0, lp, &samples);
    a.logits = true;
    a
}

/// `ctc_align` of `a` from half logits on the device: the (T, N) path and the scores, in `half`
/// (`scores_half`) or float32.
fn run_half_align(
    a: &AlignCase,
    half: Half,
    scores_half: bool,
    stream: cu::CUstream,
) -> (Vec<i64>, Vec<f64>) {
    let lp_bits: Vec<u16> = a.lp.iter().map(|&v| half.bits(v)).collect();
    let lp = DeviceBuf::upload(&lp_bits);
    let shape = [a.t as i64, a.n as i64, a.c as i64];
    let t_lp = dev_tensor(lp.ptr, half.dtype(), &shape, &contiguous(&shape));
    let path = filled(a.t * a.n, 77i64);
    let (scores, sdtype) = match scores_half {
        true => (filled(a.n, 0x7777u16), half.dtype()),
        false => (filled(a.n, 12345f32), CTC_DTYPE_FLOAT32),
    };
    let nshape = [a.n as i64];
    let mut t_path = dev_tensor(path.ptr, CTC_DTYPE_INT64, &shape[..2], &[a.n as i64, 1]);
    let mut t_scores = dev_tensor(scores.ptr, sdtype, &nshape, &[1]);
    let (targets, tshape) = a.targets(true);
    let tg = int_tensor(&targets, true, Place::Device, &tshape);
    let il = int_tensor(&a.input_lengths, true, Place::Device, &nshape);
    let tl = int_tensor(&a.target_lengths, true, Place::Device, &nshape);
    let mut opts = ctc_options_default();
    opts.blank = a.blank;
    opts.input = CTC_INPUT_LOGITS;
    opts.cuda_stream = stream.cast();
    let status = checked_call(stream, false, || {
        // SAFETY: device tensors alive for the call; the stream orders everything.
        unsafe {
            ctc_align(
                &t_lp,
                &tg.tensor,
                &il.tensor,
                &tl.tensor,
                &opts,
                &mut t_path,
                &mut t_scores,
            )
        }
    });
    assert_eq!(status, CTC_STATUS_SUCCESS, "{}", last_error());
    cuda::sync(stream);
    let s: Vec<f64> = match scores_half {
        true => scores
            .download::<u16>(a.n)
            .into_iter()
            .map(|b| half.value(b))
            .collect(),
        false => scores
            .download::<f32>(a.n)
            .into_iter()
            .map(f64::from)
            .collect(),
    };
    (path.download::<i64>(a.t * a.n), s)
}

/// Alignment of logits on the device: the CPU's path, and its score within float rounding (the
/// frames' log-sum-exp is summed in another order).
#[test]
fn align_logits_agree_with_the_cpu() {
    if driver("align_logits").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    for (k, segment_test) in [false, true].into_iter().enumerate() {
        let t = if segment_test { 400 } else { 40 };
        let c = 12;
        let samples: Vec<(Vec<i64>, i64)> = (0..3)
            .map(|b| {
                let labels = (0..(5 + 7 * b))
                    .map(|i| 1 + (i * 5 + b) as i64 % 11)
                    .collect();
                (labels, t as i64 - 3 * b as i64)
            })
            .collect();
        let mut rng = Rng(31 + k as u64);
        let lp: Vec<f64> = (0..t * 3 * c).map(|_| 4.0 * rng.normal() + 100.0).collect();
        let mut a = AlignCase::new("align_logits", t, c, 0, lp, &samples);
        a.logits = true;
        for f64_case in [false, true] {
            let (cpu, gpu, tol) = match f64_case {
                false => (
                    cpu_align::<f32>(&a, false),
                    gpu_align::<f32>(&a, AlignSetup::new(stream.0)),
                    1e-5,
                ),
                true => (
                    cpu_align::<f64>(&a, false),
                    gpu_align::<f64>(&a, AlignSetup::new(stream.0)),
                    1e-12,
                ),
            };
            assert_eq!(cpu.status, CTC_STATUS_SUCCESS, "{}", cpu.message);
            assert_eq!(gpu.status, CTC_STATUS_SUCCESS, "{}", gpu.message);
            assert_eq!(gpu.path, cpu.path, "T = {t}, f64 {f64_case}");
            for (x, y) in gpu.scores.iter().zip(&cpu.scores) {
                assert!((x - y).abs() <= tol * y.abs(), "score {x}, CPU {y}");
            }
        }
    }
    no_violations();
}

/// Logits with masked (-inf) classes, a frame holding a NaN, one holding +inf and one of only
/// -inf (their samples NaN, the others unharmed), over more frames than `ctc_shift` has blocks
/// (each block then normalizes several frames), against the CPU.
#[test]
fn logits_with_non_finite_frames_over_many_frames_per_block() {
    if driver("logits_non_finite").is_none() {
        return;
    }
    let stream = Stream::non_blocking();
    let (t, n, c) = (300, 8, 7);
    let mut g = random_case("logits_non_finite", t, n, c, 1, 20, 41);
    let mut rng = Rng(9);
    g.log_probs = g.log_probs.iter().map(|_| 2.0 * rng.normal()).collect();
    g.input = CTC_INPUT_LOGITS;
    assert!(t * n > 2048, "more frames than ctc_shift's blocks");
    // Class 6 is made no label, then masked everywhere.
    for k in g.targets.iter_mut().filter(|k| **k == 6) {
        *k = 5;
    }
    let at = |t: usize, b: usize, k: usize| (t * n + b) * c + k;
    for t in 0..t {
        for b in 0..n {
            g.log_probs[at(t, b, 6)] = f64::NEG_INFINITY;
        }
    }
    g.log_probs[at(5, 1, 2)] = f64::NAN;
    g.log_probs[at(7, 2, 0)] = f64::INFINITY;
    for k in 0..c {
        g.log_probs[at(9, 3, k)] = f64::NEG_INFINITY;
    }
    agrees_with_the_cpu(&g, Setup::new(stream.0));
    let gpu = ok_case::<f64>(&g, Setup::new(stream.0));
    for b in 0..n {
        assert_eq!(
            gpu.loss[b].is_nan(),
            (1..=3).contains(&b),
            "sample {b}: {}",
            gpu.loss[b]
        );
    }
    no_violations();
}
