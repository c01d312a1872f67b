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
    opts.cuda_stream = setup.stream.cast();
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
    assert!(
        stdout.lines().any(|l| l.starts_with("| seed | 128 |")),
        "its table is printed"
    );
}
