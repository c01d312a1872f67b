//! The CUDA call path: context and stream, workspace, staging of host-resident targets and
//! lengths, and the kernel launches of `kernels/ctc.cu`, each with its typed parameter struct.
//!
//! It runs in the caller's context on the caller's stream: the context of `options.cuda_stream`
//! (or, for NULL and the special handles `CU_STREAM_LEGACY` / `CU_STREAM_PER_THREAD`, the
//! calling thread's current context when it belongs to `log_probs`' device, else that device's
//! primary context, retained once for the life of the process) is made current only for the
//! duration of the call and the caller's is restored. Nothing synchronizes the device or the
//! stream, except the fallback for devices without memory pools when no workspace is given.

use super::driver::{self, check};
use super::layout::{Checkpoints, DeviceDims, DeviceLayout, DEVICE_ALIGN};
use super::memory;
use super::module::{self, Kernels};
use super::params::*;
use crate::error::{invalid, Error};
use crate::problem::Lengths as IndexCheck;
use crate::types::{DType, Gradient, Input, Options, Reduction};
use cudarc::driver::sys as cu;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Mutex, OnceLock};

/// Where an integer tensor lives: host bytes (to be staged) or a device address.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IntSource<'h> {
    /// The tensor's bytes, from its first element to one past its last.
    Host(&'h [u8]),
    /// A device address (on log_probs' device).
    Device(u64),
}

/// An integer tensor argument of the kernels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IntArg<'h> {
    pub source: IntSource<'h>,
    /// 4 (int32) or 8 (int64).
    pub bytes: i32,
    /// Element strides (outer, inner); only padded targets use both.
    pub strides: [i64; 2],
}

impl IntArg<'_> {
    /// Element `i` of a host-resident one-dimensional tensor (None on the device, or outside
    /// the bytes).
    fn host_value(&self, i: usize) -> Option<i64> {
        let IntSource::Host(bytes) = self.source else {
            return None;
        };
        let at = usize::try_from(self.strides[0])
            .ok()?
            .checked_mul(i)?
            .checked_mul(self.bytes as usize)?;
        let raw = bytes.get(at..at.checked_add(self.bytes as usize)?)?;
        Some(match *raw {
            [a, b, c, d] => i32::from_ne_bytes([a, b, c, d]) as i64,
            _ => i64::from_ne_bytes(raw.try_into().ok()?),
        })
    }

    /// The largest of the first `n` host-resident values, clamped to `[0, bound]`; `bound`
    /// when the values are on the device.
    fn host_max(&self, n: usize, bound: usize) -> usize {
        if !matches!(self.source, IntSource::Host(_)) {
            return bound;
        }
        let mut max = 0usize;
        for i in 0..n {
            match self.host_value(i) {
                Some(v) => max = max.max(usize::try_from(v.max(0)).unwrap_or(usize::MAX)),
                None => return bound,
            }
        }
        max.min(bound)
    }
}

/// Where a forced alignment writes (device addresses on log_probs' device).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AlignOut {
    /// (T, N) int32 or int64: address, element strides (t, n), bytes of an element (4 or 8).
    pub path: (u64, [i64; 2], i32),
    /// (N,) float32 or log_probs' type: address, element stride, type; None: not written.
    pub scores: Option<(u64, i64, Real)>,
}

/// What a call computes, which decides its workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    /// The loss alone.
    Forward,
    /// The gradient (with or without the loss).
    Gradient,
    /// A forced alignment.
    Align,
}

/// A validated request for the CUDA backend (built by the FFI layer).
#[derive(Debug)]
pub(crate) struct Request<'h> {
    pub dtype: DType,
    pub device_index: i32,
    /// (T, N, C).
    pub dims: (usize, usize, usize),
    pub log_probs: u64,
    pub log_probs_strides: [i64; 3],
    pub targets: IntArg<'h>,
    /// Padded (N, S) targets, else concatenated.
    pub padded: bool,
    /// S (padded) or the number of labels (concatenated).
    pub targets_size: i64,
    pub input_lengths: IntArg<'h>,
    pub target_lengths: IntArg<'h>,
    /// The sizes a host-side check established, when targets and lengths are all on the host.
    pub checked: Option<IndexCheck>,
    /// Address, element stride(s) and type of each floating operand (float32 or log_probs' type).
    pub loss: Option<(u64, i64, Real)>,
    pub grad: Option<(u64, [i64; 3], Real)>,
    pub grad_loss: Option<(u64, i64, Real)>,
    /// A forced alignment's outputs (then loss, grad and grad_loss are None).
    pub align: Option<AlignOut>,
    pub options: Options,
    pub stream: *mut c_void,
    pub workspace: Option<(u64, usize)>,
}

/// Label capacities from 2^30 on would overflow the kernels' `int` state indices (2 L + 3).
const MAX_LABELS: usize = (1 << 30) - 1;
/// Class counts beyond 2^30 are refused likewise (`int` class indices and loops).
const MAX_CLASSES: usize = 1 << 30;
/// Gradient elements a block of `ctc_grad` aims at (frames per block = this / C, at least 1).
const GRAD_BLOCK_ELEMENTS: usize = 2048;
/// Blocks of `ctc_shift` at most (each loops over frames with the grid's stride): enough to fill
/// the largest GPUs (about 2,000 resident blocks of 128 threads on an H100).
const SHIFT_BLOCKS: usize = 2048;

fn to_i32(v: usize, what: &str) -> Result<i32, Error> {
    i32::try_from(v).map_err(|_| {
        Error::Unsupported(format!(
            "{what} = {v} is larger than the CUDA kernels take (2^31 - 1)"
        ))
    })
}

impl Request<'_> {
    /// The label capacity per sample: the largest target length when the lengths are on the
    /// host, else S (padded) or the number of labels (concatenated); never more than T, as a
    /// longer target has no alignment (the kernels give it loss +inf without storing it).
    fn lmax(&self) -> usize {
        let (max_time, batch, _) = self.dims;
        let size = usize::try_from(self.targets_size.max(0)).unwrap_or(usize::MAX);
        let longest = match self.checked {
            Some(c) => c.max_target,
            None => self.target_lengths.host_max(batch, size),
        };
        longest.min(max_time)
    }

    /// What this request computes.
    fn pass(&self) -> Pass {
        match (self.align, self.grad) {
            (Some(_), _) => Pass::Align,
            (None, Some(_)) => Pass::Gradient,
            (None, None) => Pass::Forward,
        }
    }

    /// The longest input length: the host's when it knows the lengths, else T.
    fn max_input(&self) -> usize {
        let (max_time, batch, _) = self.dims;
        match self.checked {
            Some(c) => c.max_input,
            None => self.input_lengths.host_max(batch, max_time),
        }
    }

    /// Rows of alpha per sample: the largest input length (T when unknown) for a gradient, a
    /// ring of 2 for the loss alone and for an alignment's delta.
    fn alpha_rows(&self, pass: Pass) -> usize {
        match pass {
            Pass::Gradient => self.max_input().max(1),
            Pass::Forward | Pass::Align => 2,
        }
    }

    /// An alignment's checkpoints, sized for the longest input.
    fn checkpoints(&self, pass: Pass) -> Option<Checkpoints> {
        (pass == Pass::Align).then(|| Checkpoints::new(self.max_input(), self.compute_size()))
    }

    /// Bytes of the type the kernels compute in: float64 for float64, else float32.
    fn compute_size(&self) -> usize {
        if self.dtype == DType::Float64 {
            8
        } else {
            4
        }
    }

    /// Whether log_probs holds logits (each frame shifted by ctc_shift's max and lse).
    fn logits(&self) -> bool {
        self.options.input == Input::Logits
    }

    /// The workspace layout for this request computing `pass`.
    fn layout(&self, pass: Pass) -> Result<DeviceLayout, Error> {
        let (_, batch, classes) = self.dims;
        let lmax = self.lmax();
        if lmax > MAX_LABELS {
            return Err(Error::Unsupported(format!(
                "targets of up to {lmax} labels (a bound from the target lengths, S and T) are \
                 more than the CUDA kernels take ({MAX_LABELS})"
            )));
        }
        if classes > MAX_CLASSES {
            return Err(Error::Unsupported(format!(
                "log_probs has C = {classes} classes, more than the CUDA kernels take \
                 ({MAX_CLASSES})"
            )));
        }
        let staged = |a: &IntArg<'_>| match a.source {
            IntSource::Host(b) => b.len(),
            IntSource::Device(_) => 0,
        };
        DeviceLayout::new(DeviceDims {
            batch,
            classes,
            lmax,
            alpha_rows: self.alpha_rows(pass),
            elem: self.compute_size(),
            shifted_frames: if self.logits() {
                batch.checked_mul(self.dims.0).ok_or_else(|| {
                    Error::OutOfMemory("N T frame shifts overflow the address space".into())
                })?
            } else {
                0
            },
            gradient: pass == Pass::Gradient,
            concatenated: !self.padded,
            staging: [
                staged(&self.targets),
                staged(&self.input_lengths),
                staged(&self.target_lengths),
            ],
            align: self.checkpoints(pass),
        })
    }
}

/// Bytes of device workspace a call computing `pass` needs (the gradient's is also what any of
/// the three loss calls needs).
pub(crate) fn workspace_size(r: &Request<'_>, pass: Pass) -> Result<usize, Error> {
    Ok(r.layout(pass)?.bytes)
}

/// Whether `stream` names no particular stream's context: NULL (the legacy default stream) or
/// the special handles `CU_STREAM_LEGACY` (0x1) and `CU_STREAM_PER_THREAD` (0x2), which are
/// valid in any context and must not reach `cuStreamGetCtx`.
fn context_free(stream: cu::CUstream) -> bool {
    (stream as usize) <= 2
}

/// Makes a context current for the call and restores the caller's on drop.
struct ContextGuard {
    pushed: bool,
}

impl ContextGuard {
    fn enter(device_index: i32, stream: cu::CUstream) -> Result<ContextGuard, Error> {
        let mut current: cu::CUcontext = std::ptr::null_mut();
        // SAFETY: the driver is initialized; out-pointers are valid for the calls below.
        unsafe {
            check(cu::cuCtxGetCurrent(&mut current), "cuCtxGetCurrent")?;
            let mut want: cu::CUcontext = std::ptr::null_mut();
            if !context_free(stream) {
                check(cu::cuStreamGetCtx(stream, &mut want), "cuStreamGetCtx")?;
            }
            if want.is_null() && !current.is_null() {
                let mut dev: cu::CUdevice = -1;
                if cu::cuCtxGetDevice(&mut dev) == cu::CUresult::CUDA_SUCCESS && dev == device_index
                {
                    want = current;
                }
            }
            if want.is_null() {
                want = primary_context(device_index)?;
            }
            let pushed = want != current;
            if pushed {
                check(cu::cuCtxPushCurrent_v2(want), "cuCtxPushCurrent")?;
            }
            let guard = ContextGuard { pushed };
            let mut dev: cu::CUdevice = -1;
            check(cu::cuCtxGetDevice(&mut dev), "cuCtxGetDevice")?;
            if dev != device_index {
                return Err(invalid!(
                    "options.cuda_stream belongs to CUDA device {dev} but log_probs is on CUDA device {device_index}"
                ));
            }
            Ok(guard)
        }
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        if self.pushed {
            let mut popped: cu::CUcontext = std::ptr::null_mut();
            // SAFETY: pops the context this guard pushed; the driver is initialized.
            unsafe {
                let _ = cu::cuCtxPopCurrent_v2(&mut popped);
            }
        }
    }
}

/// The primary context of `ordinal`, retained once and kept for the life of the process
/// (released, it could be destroyed under work still queued on its streams).
fn primary_context(ordinal: i32) -> Result<cu::CUcontext, Error> {
    static RETAINED: OnceLock<Mutex<HashMap<i32, usize>>> = OnceLock::new();
    let mut map = RETAINED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&ctx) = map.get(&ordinal) {
        return Ok(ctx as cu::CUcontext);
    }
    let mut dev: cu::CUdevice = 0;
    let mut ctx: cu::CUcontext = std::ptr::null_mut();
    // SAFETY: the driver is initialized; out-pointers are valid.
    unsafe {
        check(cu::cuDeviceGet(&mut dev, ordinal), "cuDeviceGet")?;
        check(
            cu::cuDevicePrimaryCtxRetain(&mut ctx, dev),
            "cuDevicePrimaryCtxRetain",
        )?;
    }
    map.insert(ordinal, ctx as usize);
    Ok(ctx)
}

/// Launches `f` on `grid` blocks of `block` threads with its parameter struct.
///
/// # Safety
/// `P` is the parameter struct of kernel `f` (params.rs mirrors ctc.cu); every device address
/// in it is valid for what the kernel does with it.
unsafe fn launch<P>(
    f: usize,
    grid: u32,
    block: u32,
    stream: cu::CUstream,
    params: &P,
) -> Result<(), Error> {
    let mut args = [params as *const P as *mut c_void];
    // SAFETY: forwarded from this function's contract; the driver copies the struct at the
    // call.
    unsafe {
        check(
            cu::cuLaunchKernel(
                f as cu::CUfunction,
                grid.max(1),
                1,
                1,
                block,
                1,
                1,
                0,
                stream,
                args.as_mut_ptr(),
                std::ptr::null_mut(),
            ),
            "cuLaunchKernel",
        )
    }
}

/// Threads for `work` items a round, a power of two in [32, max].
fn threads(work: usize, max: u32) -> u32 {
    (work.max(1).next_power_of_two() as u64).clamp(32, max as u64) as u32
}

thread_local! {
    /// The library's own pageable copy of host-resident targets and lengths, reused by the
    /// thread's next call: a copy from pageable memory is done when `cuMemcpyHtoDAsync`
    /// returns, while one from the caller's page-locked memory would be deferred in stream
    /// order, reading it after the call returned.
    static STAGING: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A staging buffer larger than this is given back after the call.
const STAGING_KEEP: usize = 1 << 24;

/// Copies the host-resident targets and lengths into the workspace's staging region, in one
/// copy through the library's pageable buffer; returns each tensor's device address.
fn stage(
    r: &Request<'_>,
    layout: &DeviceLayout,
    base: u64,
    stream: cu::CUstream,
) -> Result<[u64; 3], Error> {
    let args = [&r.targets, &r.input_lengths, &r.target_lengths];
    let mut at = [0u64; 3];
    for (k, a) in args.iter().enumerate() {
        at[k] = match a.source {
            IntSource::Device(p) => p,
            IntSource::Host(_) => base + layout.staged[k].start as u64,
        };
    }
    if layout.staging.is_empty() {
        return Ok(at);
    }
    STAGING.with_borrow_mut(|buf| {
        buf.clear();
        buf.resize(layout.staging.len(), 0);
        for (k, a) in args.iter().enumerate() {
            if let IntSource::Host(bytes) = a.source {
                let from = layout.staged[k].start - layout.staging.start;
                buf[from..from + bytes.len()].copy_from_slice(bytes);
            }
        }
        // SAFETY: the staging region lies in the workspace with room for `buf` (layout); the
        // buffer is pageable memory the driver has read when the call returns.
        let r = unsafe {
            cu::cuMemcpyHtoDAsync_v2(
                base + layout.staging.start as u64,
                buf.as_ptr().cast(),
                buf.len(),
                stream,
            )
        };
        if buf.capacity() > STAGING_KEEP {
            *buf = Vec::new();
        }
        check(r, "cuMemcpyHtoDAsync")
    })?;
    Ok(at)
}

/// How the workspace was obtained, to give it back after the launches.
enum Workspace {
    Caller,
    /// Stream-ordered, from the library's pool (`memory.rs`), freed in stream order.
    Pool(u64),
    /// `cuMemAlloc` on a device without memory pools: freed after a stream synchronization.
    Plain(u64),
}

impl Workspace {
    /// The caller's workspace, or a new allocation of `bytes` on `stream`.
    fn obtain(r: &Request<'_>, bytes: usize, stream: cu::CUstream) -> Result<(u64, Self), Error> {
        if let Some((ptr, given)) = r.workspace {
            if given < bytes {
                return Err(invalid!(
                    "options.workspace_bytes = {given} is smaller than the {bytes} bytes this call needs (see ctc_workspace_size)"
                ));
            }
            return Ok((ptr, Workspace::Caller));
        }
        if driver::memory_pools_supported(r.device_index)? {
            let ptr = memory::alloc_async(r.device_index, bytes, stream)?;
            Ok((ptr, Workspace::Pool(ptr)))
        } else {
            let mut ptr: cu::CUdeviceptr = 0;
            // SAFETY: a current context exists; valid out-pointer.
            check(unsafe { cu::cuMemAlloc_v2(&mut ptr, bytes) }, "cuMemAlloc")?;
            Ok((ptr, Workspace::Plain(ptr)))
        }
    }

    /// Gives the allocation back once the launches on `stream` no longer need it.
    fn release(self, stream: cu::CUstream) -> Result<(), Error> {
        // SAFETY: frees the allocation made by `obtain`, after every use on `stream`: in stream
        // order, or once the stream has finished.
        unsafe {
            match self {
                Workspace::Caller => Ok(()),
                Workspace::Pool(p) => check(cu::cuMemFreeAsync(p, stream), "cuMemFreeAsync"),
                Workspace::Plain(p) => {
                    let synced = check(cu::cuStreamSynchronize(stream), "cuStreamSynchronize");
                    let freed = check(cu::cuMemFree_v2(p), "cuMemFree");
                    synced.and(freed)
                }
            }
        }
    }
}

/// Refuses a call that a stream capture (CUDA graph) could not record: the staging copy from
/// pageable memory and the first call in a context (NVRTC, module load) are not capturable.
fn check_capture(r: &Request<'_>, stream: cu::CUstream) -> Result<(), Error> {
    let mut status = cu::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE;
    // SAFETY: a current context exists; valid out-pointer.
    check(
        unsafe { cu::cuStreamIsCapturing(stream, &mut status) },
        "cuStreamIsCapturing",
    )?;
    if status == cu::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE {
        return Ok(());
    }
    let host = [&r.targets, &r.input_lengths, &r.target_lengths]
        .iter()
        .any(|a| matches!(a.source, IntSource::Host(_)));
    if host {
        return Err(Error::Unsupported(
            "options.cuda_stream is being captured into a CUDA graph, and host-resident targets \
             or lengths need a copy that cannot be captured: pass them on the device"
                .into(),
        ));
    }
    if !module::ready() {
        return Err(Error::Unsupported(
            "options.cuda_stream is being captured into a CUDA graph, and the kernels are not \
             loaded in this context yet (compiling and loading them cannot be captured): make \
             one call outside the capture first"
                .into(),
        ));
    }
    Ok(())
}

/// Runs the request: the loss and/or the gradient, or an alignment, on the caller's stream.
pub(crate) fn run(r: &Request<'_>) -> Result<(), Error> {
    let pass = r.pass();
    let layout = r.layout(pass)?;
    let stream = r.stream as cu::CUstream;
    let _context = ContextGuard::enter(r.device_index, stream)?;
    check_capture(r, stream)?;
    let kernels = module::kernels(r.device_index)?;
    let (raw, workspace) = Workspace::obtain(r, layout.bytes, stream)?;
    let base = raw.next_multiple_of(DEVICE_ALIGN as u64);
    let result = stage(r, &layout, base, stream).and_then(|ints| {
        let args = Args::new(r, pass, &layout, base, ints)?;
        match pass {
            Pass::Align => enqueue_align(&args, &kernels, stream),
            Pass::Forward | Pass::Gradient => enqueue(&args, &kernels, stream),
        }
    });
    let released = workspace.release(stream);
    result.and(released)
}

/// The values every parameter struct of one call is built from.
struct Args<'r> {
    r: &'r Request<'r>,
    /// Device addresses of the targets, input lengths and target lengths (staged or the
    /// caller's).
    ints: [u64; 3],
    /// Device addresses of the workspace regions.
    ws: Regions,
    /// Threads of a block of the sweeps (alpha, beta, align), from the row width.
    sweep: u32,
    n: i32,
    t: i32,
    c: i32,
    blank: i32,
    lmax: i32,
    alpha_rows: i32,
    width: i64,
    code_row: i64,
    /// An alignment's checkpoint scheme (None for the loss).
    checkpoints: Option<Checkpoints>,
    reduction: i32,
    zero_infinity: i32,
    /// CTC_GRADIENT_EXACT.
    exact: i32,
}

/// Device addresses of the workspace regions of one call.
struct Regions {
    offsets: u64,
    labels: u64,
    next_same: u64,
    class_head: u64,
    in_len: u64,
    tgt_len: u64,
    log_alpha: u64,
    work: u64,
    nll: u64,
    checkpoints: u64,
    codes: u64,
    /// Each frame's (max, lse) for logits; 0 (NULL) for log-probabilities.
    shift: u64,
}

impl<'r> Args<'r> {
    fn new(
        r: &'r Request<'r>,
        pass: Pass,
        layout: &DeviceLayout,
        base: u64,
        ints: [u64; 3],
    ) -> Result<Self, Error> {
        let (max_time, batch, classes) = r.dims;
        let at = |range: &std::ops::Range<usize>| base + range.start as u64;
        Ok(Args {
            r,
            ints,
            ws: Regions {
                offsets: at(&layout.offsets),
                labels: at(&layout.labels),
                next_same: at(&layout.next_same),
                class_head: at(&layout.class_head),
                in_len: at(&layout.in_len),
                tgt_len: at(&layout.tgt_len),
                log_alpha: at(&layout.log_alpha),
                work: at(&layout.work),
                nll: at(&layout.nll),
                checkpoints: at(&layout.checkpoints),
                codes: at(&layout.codes),
                shift: if r.logits() { at(&layout.shifts) } else { 0 },
            },
            sweep: threads(layout.width, SWEEP_THREADS),
            n: to_i32(batch, "N")?,
            t: to_i32(max_time, "T")?,
            c: to_i32(classes, "C")?,
            blank: i32::try_from(r.options.blank)
                .map_err(|_| invalid!("options.blank = {} is out of range", r.options.blank))?,
            lmax: to_i32(r.lmax(), "the label capacity")?,
            alpha_rows: to_i32(r.alpha_rows(pass), "alpha rows")?,
            width: layout.width as i64,
            code_row: layout.code_row as i64,
            checkpoints: r.checkpoints(pass),
            reduction: match r.options.reduction {
                Reduction::None => 0,
                Reduction::Mean => 1,
                Reduction::Sum => 2,
            },
            zero_infinity: i32::from(r.options.zero_infinity),
            exact: i32::from(r.options.gradient == Gradient::Exact),
        })
    }

    fn offsets(&self) -> OffsetsParams {
        OffsetsParams {
            target_lengths: self.ints[2],
            offsets: self.ws.offsets,
            tl_stride: self.r.target_lengths.strides[0],
            target_lengths_bytes: self.r.target_lengths.bytes,
            n: self.n,
        }
    }

    fn prepare(&self) -> PrepareParams {
        let r = self.r;
        PrepareParams {
            targets: self.ints[0],
            input_lengths: self.ints[1],
            target_lengths: self.ints[2],
            offsets: if r.padded { 0 } else { self.ws.offsets },
            labels: self.ws.labels,
            next_same: self.ws.next_same,
            class_head: self.ws.class_head,
            in_len: self.ws.in_len,
            tgt_len: self.ws.tgt_len,
            targets_size: r.targets_size,
            tn: r.targets.strides[0],
            ts: r.targets.strides[1],
            il_stride: r.input_lengths.strides[0],
            tl_stride: r.target_lengths.strides[0],
            targets_bytes: r.targets.bytes,
            input_lengths_bytes: r.input_lengths.bytes,
            target_lengths_bytes: r.target_lengths.bytes,
            padded: i32::from(r.padded),
            n: self.n,
            max_time: self.t,
            c: self.c,
            blank: self.blank,
            lmax: self.lmax,
        }
    }

    fn shift(&self) -> ShiftParams {
        let [st, sn, sc] = self.r.log_probs_strides;
        ShiftParams {
            logits: self.r.log_probs,
            shift: self.ws.shift,
            st,
            sn,
            sc,
            n: self.n,
            max_time: self.t,
            c: self.c,
        }
    }

    fn alpha(&self) -> AlphaParams {
        let [st, sn, sc] = self.r.log_probs_strides;
        AlphaParams {
            log_probs: self.r.log_probs,
            shift: self.ws.shift,
            labels: self.ws.labels,
            in_len: self.ws.in_len,
            tgt_len: self.ws.tgt_len,
            log_alpha: self.ws.log_alpha,
            nll: self.ws.nll,
            st,
            sn,
            sc,
            width: self.width,
            n: self.n,
            max_time: self.t,
            blank: self.blank,
            lmax: self.lmax,
            alpha_rows: self.alpha_rows,
        }
    }

    fn beta(&self) -> BetaParams {
        let [st, sn, sc] = self.r.log_probs_strides;
        BetaParams {
            log_probs: self.r.log_probs,
            shift: self.ws.shift,
            labels: self.ws.labels,
            in_len: self.ws.in_len,
            tgt_len: self.ws.tgt_len,
            log_alpha: self.ws.log_alpha,
            work: self.ws.work,
            nll: self.ws.nll,
            st,
            sn,
            sc,
            width: self.width,
            n: self.n,
            max_time: self.t,
            blank: self.blank,
            lmax: self.lmax,
            alpha_rows: self.alpha_rows,
        }
    }

    /// `ctc_grad`'s struct for the gradient `(grad, strides)` in chunks of `frames` frames.
    fn grad(
        &self,
        (grad, [gt, gn, gc], grad_type): (u64, [i64; 3], Real),
        frames: usize,
        chunks: usize,
    ) -> GradParams {
        let [st, sn, sc] = self.r.log_probs_strides;
        let (grad_loss, grad_loss_stride, grad_loss_type) =
            self.r.grad_loss.unwrap_or((0, 0, Real::F32));
        GradParams {
            log_probs: self.r.log_probs,
            shift: self.ws.shift,
            next_same: self.ws.next_same,
            class_head: self.ws.class_head,
            in_len: self.ws.in_len,
            tgt_len: self.ws.tgt_len,
            log_alpha: self.ws.log_alpha,
            nll: self.ws.nll,
            grad_loss,
            grad,
            st,
            sn,
            sc,
            width: self.width,
            grad_loss_stride,
            gt,
            gn,
            gc,
            n: self.n,
            max_time: self.t,
            c: self.c,
            blank: self.blank,
            lmax: self.lmax,
            alpha_rows: self.alpha_rows,
            reduction: self.reduction,
            zero_infinity: self.zero_infinity,
            frames: frames as i32,
            chunks: chunks as i32,
            exact: self.exact,
            grad_dtype: grad_type as i32,
            grad_loss_dtype: grad_loss_type as i32,
        }
    }

    /// `ctc_align`'s struct for the outputs `out`.
    fn align(&self, out: AlignOut) -> Result<AlignParams, Error> {
        let Some(checkpoints) = self.checkpoints else {
            return Err(Error::Internal("an alignment without checkpoints".into()));
        };
        let [st, sn, sc] = self.r.log_probs_strides;
        let (path, [path_st, path_sn], path_bytes) = out.path;
        let (scores, scores_stride, scores_type) = out.scores.unwrap_or((0, 0, Real::F32));
        Ok(AlignParams {
            log_probs: self.r.log_probs,
            shift: self.ws.shift,
            labels: self.ws.labels,
            in_len: self.ws.in_len,
            tgt_len: self.ws.tgt_len,
            rows: self.ws.log_alpha,
            checkpoints: self.ws.checkpoints,
            codes: self.ws.codes,
            path,
            scores,
            st,
            sn,
            sc,
            width: self.width,
            code_row: self.code_row,
            path_st,
            path_sn,
            scores_stride,
            n: self.n,
            max_time: self.t,
            blank: self.blank,
            lmax: self.lmax,
            segment: to_i32(checkpoints.segment, "the alignment's segment length")?,
            checkpoint_rows: to_i32(checkpoints.rows, "the alignment's checkpoint rows")?,
            path_bytes,
            scores_dtype: scores_type as i32,
        })
    }

    fn reduce(&self, (loss, loss_stride, loss_type): (u64, i64, Real)) -> ReduceParams {
        ReduceParams {
            nll: self.ws.nll,
            tgt_len: self.ws.tgt_len,
            loss,
            loss_stride,
            n: self.n,
            reduction: self.reduction,
            zero_infinity: self.zero_infinity,
            loss_dtype: loss_type as i32,
        }
    }
}

/// The launches that fill the labels and lengths (offsets for concatenated targets, prepare)
/// and, for logits, each frame's shift.
///
/// # Safety
/// `a` is built from a validated request and the workspace of its layout.
unsafe fn enqueue_prepare(
    a: &Args<'_>,
    kernels: &Kernels,
    stream: cu::CUstream,
) -> Result<(), Error> {
    let (max_time, batch, classes) = a.r.dims;
    if !a.r.padded {
        let block = threads(batch, GRID_THREADS);
        // SAFETY: forwarded from this function's contract (see `enqueue`).
        unsafe { launch(kernels.offsets, 1, block, stream, &a.offsets())? };
    }
    let block = threads((a.lmax as usize).max(classes), GRID_THREADS);
    // SAFETY: as above.
    unsafe { launch(kernels.prepare, batch as u32, block, stream, &a.prepare())? };
    let frames = batch * max_time;
    if a.ws.shift != 0 && frames > 0 {
        let grid = frames.min(SHIFT_BLOCKS) as u32;
        let block = threads(classes, SHIFT_PARTS);
        let shift = kernels.typed(a.r.dtype).shift;
        // SAFETY: as above.
        unsafe { launch(shift, grid, block, stream, &a.shift())? };
    }
    Ok(())
}

/// The kernel launches of one loss call, in stream order.
fn enqueue(a: &Args<'_>, kernels: &Kernels, stream: cu::CUstream) -> Result<(), Error> {
    let r = a.r;
    let (max_time, batch, classes) = r.dims;
    let typed = kernels.typed(r.dtype);
    // SAFETY (every launch below): each struct is its kernel's (params.rs), device addresses
    // are the caller's validated tensors or workspace regions sized by DeviceLayout for these
    // sizes, and the kernels stay inside them (ctc.cu, "Invalid device-side values").
    if batch > 0 {
        // SAFETY: as above.
        unsafe { enqueue_prepare(a, kernels, stream)? };
        // SAFETY: as above.
        unsafe { launch(typed.alpha, batch as u32, a.sweep, stream, &a.alpha())? };
        if let Some(grad) = r.grad {
            // SAFETY: as above.
            unsafe { launch(typed.beta, batch as u32, a.sweep, stream, &a.beta())? };
            let (frames, chunks) = grad_chunks(max_time, batch, classes);
            let block = threads(frames * classes, GRID_THREADS);
            if chunks > 0 {
                let p = a.grad(grad, frames, chunks);
                // SAFETY: as above.
                unsafe { launch(typed.grad, (batch * chunks) as u32, block, stream, &p)? };
            }
        }
    }
    if let Some(loss) = r.loss {
        let block = threads(batch, GRID_THREADS);
        // SAFETY: as above.
        unsafe { launch(typed.reduce, 1, block, stream, &a.reduce(loss))? };
    }
    Ok(())
}

/// The kernel launches of one alignment, in stream order: the labels and lengths, then one
/// block per sample for the whole Viterbi sweep and its read-back.
fn enqueue_align(a: &Args<'_>, kernels: &Kernels, stream: cu::CUstream) -> Result<(), Error> {
    let r = a.r;
    let batch = r.dims.1;
    let Some(out) = r.align else {
        return Err(Error::Internal("an alignment without outputs".into()));
    };
    if batch == 0 {
        return Ok(());
    }
    let p = a.align(out)?;
    let align = kernels.typed(r.dtype).align;
    // SAFETY (both launches): each struct is its kernel's (params.rs); device addresses are the
    // caller's validated tensors (log_probs, path, path_scores, device targets and lengths) or
    // workspace regions sized by DeviceLayout for these sizes (the checkpoints for the longest
    // input), and the kernels stay inside them whatever the device-side values (ctc.cu,
    // "Invalid device-side values", "Forced alignment").
    unsafe { enqueue_prepare(a, kernels, stream)? };
    // SAFETY: as above.
    unsafe { launch(align, batch as u32, a.sweep, stream, &p) }
}

/// (frames per block, chunks per sample) of `ctc_grad`: about [`GRAD_BLOCK_ELEMENTS`] elements
/// a block, so that short targets with many classes still fill the device, and at most
/// 2^31 - 1 blocks in all.
fn grad_chunks(max_time: usize, batch: usize, classes: usize) -> (usize, usize) {
    let limit = i32::MAX as usize / batch.max(1);
    let mut frames = GRAD_BLOCK_ELEMENTS
        .div_ceil(classes.max(1))
        .clamp(1, max_time.max(1));
    if max_time.div_ceil(frames) > limit {
        frames = max_time.div_ceil(limit);
    }
    (frames, max_time.div_ceil(frames))
}
