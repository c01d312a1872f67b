//! The CUDA call path: context and stream, module cache, workspace, staging of host-resident
//! targets and lengths, and the four kernel launches of `kernels/ctc.cu`.
//!
//! It runs in the caller's context on the caller's stream: the context of `options.cuda_stream`
//! (or the calling thread's current context when it belongs to `log_probs`' device, else that
//! device's primary context) is made current only for the duration of the call and the caller's
//! is restored. Nothing synchronizes the device or the stream; the only waiting is the driver's
//! own for copies from pageable host memory (host-resident targets and lengths): pass them on the
//! device to avoid it.

use super::driver::{self, check, nvrtc_check};
use crate::error::{invalid, Error};
use crate::problem::Lengths as IndexCheck;
use crate::types::{DType, Options, Reduction};
use crate::workspace::{DeviceDims, DeviceLayout, DEVICE_ALIGN};
use cudarc::driver::sys as cu;
use cudarc::nvrtc::sys as nv;
use std::collections::HashMap;
use std::ffi::{c_void, CString};
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
    pub loss: Option<(u64, i64)>,
    pub grad: Option<(u64, [i64; 3])>,
    pub grad_loss: Option<(u64, i64)>,
    pub options: Options,
    pub stream: *mut c_void,
    pub workspace: Option<(u64, usize)>,
}

fn to_i32(v: usize, what: &str) -> Result<i32, Error> {
    i32::try_from(v).map_err(|_| {
        Error::Unsupported(format!(
            "{what} = {v} is larger than the CUDA kernels take (2^31 - 1)"
        ))
    })
}

impl Request<'_> {
    /// (label capacity, alpha rows) of the workspace for the gradient pass or the loss alone.
    fn sizes(&self, gradient: bool) -> (usize, usize) {
        let lmax = match self.checked {
            Some(c) => c.max_target,
            None => usize::try_from(self.targets_size.max(0)).unwrap_or(usize::MAX),
        };
        let alpha_rows = if gradient {
            self.checked.map_or(self.dims.0, |c| c.max_input).max(1)
        } else {
            2
        };
        (lmax, alpha_rows)
    }

    /// The workspace layout for this request (gradient pass when `gradient`).
    fn layout(&self, gradient: bool) -> Result<DeviceLayout, Error> {
        let (_, batch, classes) = self.dims;
        let (lmax, alpha_rows) = self.sizes(gradient);
        let staged = |a: &IntArg<'_>| match a.source {
            IntSource::Host(b) => b.len(),
            IntSource::Device(_) => 0,
        };
        DeviceLayout::new(DeviceDims {
            batch,
            classes,
            lmax,
            alpha_rows,
            elem: self.dtype.size(),
            gradient,
            staging: [
                staged(&self.targets),
                staged(&self.input_lengths),
                staged(&self.target_lengths),
            ],
        })
    }
}

/// Bytes of device workspace the call needs (`gradient`: backward or fused, which is also
/// what any of the three needs).
pub(crate) fn workspace_size(r: &Request<'_>, gradient: bool) -> Result<usize, Error> {
    Ok(r.layout(gradient)?.bytes)
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
            if !stream.is_null() {
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

/// The primary context of `ordinal`, retained once for the life of the process.
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

/// The kernels loaded in one context.
struct Module {
    functions: HashMap<&'static str, usize>,
}

const KERNELS: [&str; 7] = [
    "ctc_prepare",
    "ctc_alpha_f32",
    "ctc_alpha_f64",
    "ctc_backward_f32",
    "ctc_backward_f64",
    "ctc_reduce_f32",
    "ctc_reduce_f64",
];

/// Compiles the kernels for `arch` ("sm_90" gives a cubin, "compute_90" PTX) with NVRTC.
fn compile(arch: &str) -> Result<Vec<u8>, Error> {
    let src = CString::new(super::KERNEL_SOURCE)
        .map_err(|_| Error::Internal("the kernel source holds a NUL byte".into()))?;
    let name = c"ctc.cu";
    let options: Vec<CString> = [
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_owned(),
    ]
    .into_iter()
    .map(|o| CString::new(o).expect("options hold no NUL"))
    .collect();
    let option_ptrs: Vec<*const std::ffi::c_char> = options.iter().map(|o| o.as_ptr()).collect();
    let mut prog: nv::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: NVRTC is present (checked by the caller); every pointer is valid for the calls and
    // the program is destroyed on every path after creation.
    unsafe {
        nvrtc_check(
            nv::nvrtcCreateProgram(
                &mut prog,
                src.as_ptr(),
                name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            ),
            "nvrtcCreateProgram",
        )?;
        let result = (|| {
            let r = nv::nvrtcCompileProgram(prog, option_ptrs.len() as i32, option_ptrs.as_ptr());
            if r != nv::nvrtcResult::NVRTC_SUCCESS {
                let mut size = 0usize;
                let _ = nv::nvrtcGetProgramLogSize(prog, &mut size);
                let mut log = vec![0u8; size.max(1)];
                let _ = nv::nvrtcGetProgramLog(prog, log.as_mut_ptr().cast());
                return Err(Error::Device(format!(
                    "NVRTC could not compile the kernels for {arch}: {}",
                    String::from_utf8_lossy(&log).trim_end_matches('\0')
                )));
            }
            let cubin = arch.starts_with("sm_");
            let mut size = 0usize;
            if cubin {
                nvrtc_check(nv::nvrtcGetCUBINSize(prog, &mut size), "nvrtcGetCUBINSize")?;
            } else {
                nvrtc_check(nv::nvrtcGetPTXSize(prog, &mut size), "nvrtcGetPTXSize")?;
            }
            let mut image = vec![0u8; size];
            if cubin {
                nvrtc_check(
                    nv::nvrtcGetCUBIN(prog, image.as_mut_ptr().cast()),
                    "nvrtcGetCUBIN",
                )?;
            } else {
                nvrtc_check(
                    nv::nvrtcGetPTX(prog, image.as_mut_ptr().cast()),
                    "nvrtcGetPTX",
                )?;
            }
            Ok(image)
        })();
        let _ = nv::nvrtcDestroyProgram(&mut prog);
        result
    }
}

/// The kernels of the current context (compiled for `ordinal`'s architecture at first use and
/// kept for the life of the process).
fn kernels(ordinal: i32) -> Result<HashMap<&'static str, usize>, Error> {
    static MODULES: OnceLock<Mutex<HashMap<usize, Module>>> = OnceLock::new();
    let mut ctx: cu::CUcontext = std::ptr::null_mut();
    // The context's unique id, not its address: a destroyed context's address can come back
    // for a new context (a primary context released and retained again) without our modules.
    let mut ctx_id: std::ffi::c_ulonglong = 0;
    // SAFETY: the driver is initialized; valid out-pointers.
    unsafe {
        check(cu::cuCtxGetCurrent(&mut ctx), "cuCtxGetCurrent")?;
        check(cu::cuCtxGetId(ctx, &mut ctx_id), "cuCtxGetId")?;
    }
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(m) = modules.get(&(ctx_id as usize)) {
        return Ok(m.functions.clone());
    }
    if !driver::nvrtc_present() {
        return Err(Error::Unsupported(
            "NVRTC (libnvrtc.so.12) not found: install the CUDA toolkit's NVRTC, `pip install \
             nvidia-cuda-nvrtc-cu12` in the active Python environment, or set CTC_NVRTC_LIBRARY"
                .into(),
        ));
    }
    let (major, minor) = driver::compute_capability(ordinal)?;
    // A cubin for the device's own architecture; PTX for the driver to compile when this NVRTC
    // does not know the architecture yet.
    let image = compile(&format!("sm_{major}{minor}"))
        .or_else(|_| compile(&format!("compute_{major}{minor}")))?;
    let mut module: cu::CUmodule = std::ptr::null_mut();
    let mut functions = HashMap::new();
    // SAFETY: a current context exists (ContextGuard); the image is a complete cubin or a
    // NUL-terminated PTX text produced by NVRTC; names are NUL-terminated.
    unsafe {
        let mut image = image;
        image.push(0);
        check(
            cu::cuModuleLoadData(&mut module, image.as_ptr().cast()),
            "cuModuleLoadData",
        )?;
        for name in KERNELS {
            let cname = CString::new(name).expect("kernel names hold no NUL");
            let mut f: cu::CUfunction = std::ptr::null_mut();
            check(
                cu::cuModuleGetFunction(&mut f, module, cname.as_ptr()),
                "cuModuleGetFunction",
            )?;
            functions.insert(name, f as usize);
        }
    }
    modules.insert(
        ctx_id as usize,
        Module {
            functions: functions.clone(),
        },
    );
    Ok(functions)
}

/// Launches `f` on `grid` blocks of `block` threads with the given parameter pointers.
///
/// # Safety
/// `args` point to values of exactly the kernel's parameter types, in order, alive for the call;
/// every device address among them is valid for what the kernel does with it.
unsafe fn launch(
    f: usize,
    grid: u32,
    block: u32,
    stream: cu::CUstream,
    args: &mut [*mut c_void],
) -> Result<(), Error> {
    // SAFETY: forwarded from this function's contract.
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

/// A parameter pointer for `cuLaunchKernel`.
fn arg<T>(v: &T) -> *mut c_void {
    v as *const T as *mut c_void
}

/// Runs the request: the loss and/or the gradient, on the caller's stream.
pub(crate) fn run(r: &Request<'_>) -> Result<(), Error> {
    let (max_time, batch, classes) = r.dims;
    let n = to_i32(batch, "N")?;
    let t = to_i32(max_time, "T")?;
    let c = to_i32(classes, "C")?;
    let blank = i32::try_from(r.options.blank)
        .map_err(|_| invalid!("options.blank = {} is out of range", r.options.blank))?;
    let gradient = r.grad.is_some();
    let layout = r.layout(gradient)?;
    let (lmax, alpha_rows) = r.sizes(gradient);
    let lmax = to_i32(lmax, "the label capacity")?;
    let alpha_rows = to_i32(alpha_rows, "alpha rows")?;
    let width = layout.width as i64;
    let stream = r.stream as cu::CUstream;

    let _context = ContextGuard::enter(r.device_index, stream)?;
    let kernels = kernels(r.device_index)?;
    let suffix = if r.dtype == DType::Float64 {
        "f64"
    } else {
        "f32"
    };
    let function = |name: &str| kernels[format!("{name}_{suffix}").as_str()];

    // The workspace: the caller's, or a stream-ordered allocation freed after the launches.
    let (raw, owned) = match r.workspace {
        Some((ptr, bytes)) => {
            if bytes < layout.bytes {
                return Err(invalid!(
                    "options.workspace_bytes = {bytes} is smaller than the {} bytes this call needs (see ctc_workspace_size)",
                    layout.bytes
                ));
            }
            (ptr, false)
        }
        None => {
            let mut ptr: cu::CUdeviceptr = 0;
            // SAFETY: a current context exists; valid out-pointer.
            unsafe {
                check(
                    cu::cuMemAllocAsync(&mut ptr, layout.bytes, stream),
                    "cuMemAllocAsync",
                )?
            };
            (ptr, true)
        }
    };
    let base = raw.next_multiple_of(DEVICE_ALIGN as u64);
    let at = |range: &std::ops::Range<usize>| base + range.start as u64;

    let result = (|| -> Result<(), Error> {
        // Host-resident targets and lengths: copy their bytes, keep their strides.
        let mut staged = [0u64; 3];
        for (k, a) in [&r.targets, &r.input_lengths, &r.target_lengths]
            .into_iter()
            .enumerate()
        {
            staged[k] = match a.source {
                IntSource::Device(p) => p,
                IntSource::Host(bytes) => {
                    let dst = at(&layout.staging[k]);
                    if !bytes.is_empty() {
                        // SAFETY: `dst` lies in the workspace with room for `bytes` (layout);
                        // the host bytes are readable for the call.
                        unsafe {
                            check(
                                cu::cuMemcpyHtoDAsync_v2(
                                    dst,
                                    bytes.as_ptr().cast(),
                                    bytes.len(),
                                    stream,
                                ),
                                "cuMemcpyHtoDAsync",
                            )?
                        };
                    }
                    dst
                }
            };
        }
        let threads = (layout.width.next_power_of_two()).clamp(32, 256) as u32;
        let grid = batch as u32;
        let [labels, next_same, is_first, class_head, in_len, tgt_len, log_alpha, work, nll] = [
            &layout.labels,
            &layout.next_same,
            &layout.is_first,
            &layout.class_head,
            &layout.in_len,
            &layout.tgt_len,
            &layout.log_alpha,
            &layout.work,
            &layout.nll,
        ]
        .map(at);
        let padded = r.padded as i32;
        let [tn, ts] = r.targets.strides;
        let il_stride = r.input_lengths.strides[0];
        let tl_stride = r.target_lengths.strides[0];
        let [st, sn, sc] = r.log_probs_strides;
        let reduction = match r.options.reduction {
            Reduction::None => 0i32,
            Reduction::Mean => 1,
            Reduction::Sum => 2,
        };
        let zero_infinity = r.options.zero_infinity as i32;
        if batch > 0 {
            // SAFETY (launches): every argument has the kernel's exact type (ctc.cu's parameter
            // lists), device addresses are the caller's validated tensors or workspace regions
            // sized by DeviceLayout for these sizes, and the kernels never go past them.
            unsafe {
                launch(
                    kernels["ctc_prepare"],
                    grid,
                    threads,
                    stream,
                    &mut [
                        arg(&staged[0]),
                        arg(&r.targets.bytes),
                        arg(&padded),
                        arg(&r.targets_size),
                        arg(&tn),
                        arg(&ts),
                        arg(&staged[1]),
                        arg(&r.input_lengths.bytes),
                        arg(&il_stride),
                        arg(&staged[2]),
                        arg(&r.target_lengths.bytes),
                        arg(&tl_stride),
                        arg(&n),
                        arg(&t),
                        arg(&c),
                        arg(&blank),
                        arg(&lmax),
                        arg(&labels),
                        arg(&next_same),
                        arg(&is_first),
                        arg(&class_head),
                        arg(&in_len),
                        arg(&tgt_len),
                    ],
                )?;
                launch(
                    function("ctc_alpha"),
                    grid,
                    threads,
                    stream,
                    &mut [
                        arg(&r.log_probs),
                        arg(&st),
                        arg(&sn),
                        arg(&sc),
                        arg(&n),
                        arg(&t),
                        arg(&blank),
                        arg(&labels),
                        arg(&in_len),
                        arg(&tgt_len),
                        arg(&lmax),
                        arg(&log_alpha),
                        arg(&alpha_rows),
                        arg(&width),
                        arg(&nll),
                    ],
                )?;
                if let Some((grad, [gt, gn, gc])) = r.grad {
                    let (grad_loss, grad_loss_stride) = r.grad_loss.unwrap_or((0, 0));
                    launch(
                        function("ctc_backward"),
                        grid,
                        threads,
                        stream,
                        &mut [
                            arg(&r.log_probs),
                            arg(&st),
                            arg(&sn),
                            arg(&sc),
                            arg(&n),
                            arg(&t),
                            arg(&c),
                            arg(&blank),
                            arg(&labels),
                            arg(&next_same),
                            arg(&class_head),
                            arg(&in_len),
                            arg(&tgt_len),
                            arg(&lmax),
                            arg(&log_alpha),
                            arg(&alpha_rows),
                            arg(&width),
                            arg(&work),
                            arg(&nll),
                            arg(&grad_loss),
                            arg(&grad_loss_stride),
                            arg(&reduction),
                            arg(&zero_infinity),
                            arg(&grad),
                            arg(&gt),
                            arg(&gn),
                            arg(&gc),
                        ],
                    )?;
                }
            }
        }
        if let Some((loss, loss_stride)) = r.loss {
            // SAFETY: as above.
            unsafe {
                launch(
                    function("ctc_reduce"),
                    1,
                    32,
                    stream,
                    &mut [
                        arg(&nll),
                        arg(&tgt_len),
                        arg(&n),
                        arg(&reduction),
                        arg(&zero_infinity),
                        arg(&loss),
                        arg(&loss_stride),
                    ],
                )?;
            }
        }
        Ok(())
    })();
    if owned {
        // SAFETY: frees, in stream order after the launches, the allocation made above.
        let freed = unsafe { cu::cuMemFreeAsync(raw, stream) };
        result?;
        check(freed, "cuMemFreeAsync")?;
        return Ok(());
    }
    result
}
