//! The kernels of each context: compiled by NVRTC once per device architecture (outside any
//! global lock, so that devices of other architectures do not wait), loaded once per context
//! (keyed by `cuCtxGetId`, which is never reused, unlike a context's address), failures kept
//! like successes. A call copies out a small table of function handles: no allocation.

use super::driver::{self, check};
use super::nvrtc;
use crate::error::Error;
use crate::types::DType;
use cudarc::driver::sys as cu;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex, OnceLock};

/// The suffixes of the kernels that read log_probs, one per element type, in [`input_index`]
/// order.
const INPUT_SUFFIXES: [&str; 4] = ["f32", "f64", "f16", "bf16"];

/// Function handles of one context: per element type of log_probs where the kernel reads it,
/// per type of the computation (float32 for the half types) for `ctc_reduce`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernels {
    pub offsets: usize,
    pub prepare: usize,
    shift: [usize; 4],
    alpha: [usize; 4],
    beta: [usize; 4],
    grad: [usize; 4],
    align: [usize; 4],
    reduce: [usize; 2],
}

/// The kernels of one element type of log_probs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Typed {
    pub shift: usize,
    pub alpha: usize,
    pub beta: usize,
    pub grad: usize,
    pub reduce: usize,
    pub align: usize,
}

/// Where `dtype`'s kernels are in [`INPUT_SUFFIXES`].
fn input_index(dtype: DType) -> usize {
    match dtype {
        DType::Float64 => 1,
        DType::Float16 => 2,
        DType::BFloat16 => 3,
        _ => 0,
    }
}

impl Kernels {
    pub(crate) fn typed(&self, dtype: DType) -> Typed {
        let i = input_index(dtype);
        Typed {
            shift: self.shift[i],
            alpha: self.alpha[i],
            beta: self.beta[i],
            grad: self.grad[i],
            reduce: self.reduce[usize::from(dtype == DType::Float64)],
            align: self.align[i],
        }
    }
}

/// A compiled image, or why there is none (kept, so a failing compile is not retried per call).
type Compiled = Result<Arc<nvrtc::Image>, Error>;

/// The image for compute capability `arch`, compiled at its first request.
fn image(arch: i32) -> Compiled {
    static IMAGES: OnceLock<Mutex<HashMap<i32, Arc<OnceLock<Compiled>>>>> = OnceLock::new();
    let cell = IMAGES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(arch)
        .or_default()
        .clone();
    // Outside the map's lock: only requests for the same architecture wait for this compile.
    cell.get_or_init(|| {
        let major = driver::driver_version()? / 1000;
        let nvrtc = nvrtc::get(major)?;
        nvrtc.compile(super::KERNEL_SOURCE, arch).map(Arc::new)
    })
    .clone()
}

/// Kernels (or the load failure) per context id.
fn loaded() -> &'static Mutex<HashMap<u64, Result<Kernels, Error>>> {
    static LOADED: OnceLock<Mutex<HashMap<u64, Result<Kernels, Error>>>> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

/// The unique id of the current context.
fn current_context_id() -> Result<u64, Error> {
    let mut ctx: cu::CUcontext = std::ptr::null_mut();
    let mut id: std::ffi::c_ulonglong = 0;
    // SAFETY: the driver is initialized; valid out-pointers.
    unsafe {
        check(cu::cuCtxGetCurrent(&mut ctx), "cuCtxGetCurrent")?;
        check(cu::cuCtxGetId(ctx, &mut id), "cuCtxGetId")?;
    }
    Ok(id)
}

/// The kernels of the current context, on device `ordinal`.
pub(crate) fn kernels(ordinal: i32) -> Result<Kernels, Error> {
    let id = current_context_id()?;
    if let Some(k) = loaded().lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return k.clone();
    }
    let image = image(driver::compute_capability(ordinal)?)?;
    let mut map = loaded().lock().unwrap_or_else(|e| e.into_inner());
    // Another thread may have loaded it meanwhile; else load it under the lock, once.
    map.entry(id).or_insert_with(|| load(&image)).clone()
}

/// Whether the current context has its kernels already (a call would neither compile nor
/// load a module).
pub(crate) fn ready() -> bool {
    current_context_id().is_ok_and(|id| {
        loaded()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .is_some_and(Result::is_ok)
    })
}

/// Loads `image` into the current context and looks up every kernel; the module is unloaded
/// again when a lookup fails.
fn load(image: &nvrtc::Image) -> Result<Kernels, Error> {
    let mut module: cu::CUmodule = std::ptr::null_mut();
    // SAFETY: a current context exists (the caller's ContextGuard); the image is a complete
    // cubin or NUL-terminated PTX produced by NVRTC.
    let r = unsafe { cu::cuModuleLoadData(&mut module, image.bytes.as_ptr().cast()) };
    check(r, "cuModuleLoadData").map_err(|e| explain_load_failure(e, image))?;
    let get = |name: &CStr| -> Result<usize, Error> {
        let mut f: cu::CUfunction = std::ptr::null_mut();
        // SAFETY: `module` is loaded; the name is NUL-terminated.
        check(
            unsafe { cu::cuModuleGetFunction(&mut f, module, name.as_ptr()) },
            "cuModuleGetFunction",
        )?;
        Ok(f as usize)
    };
    let per_input = |kernel: &str| -> Result<[usize; 4], Error> {
        let mut handles = [0; 4];
        for (h, suffix) in handles.iter_mut().zip(INPUT_SUFFIXES) {
            let name = CString::new(format!("ctc_{kernel}_{suffix}"))
                .map_err(|_| Error::Internal("a kernel name with a NUL".into()))?;
            *h = get(&name)?;
        }
        Ok(handles)
    };
    let kernels = (|| {
        Ok(Kernels {
            offsets: get(c"ctc_offsets")?,
            prepare: get(c"ctc_prepare")?,
            shift: per_input("shift")?,
            alpha: per_input("alpha")?,
            beta: per_input("beta")?,
            grad: per_input("grad")?,
            align: per_input("align")?,
            reduce: [get(c"ctc_reduce_f32")?, get(c"ctc_reduce_f64")?],
        })
    })();
    if kernels.is_err() {
        // SAFETY: the module loaded above, used by nothing yet.
        unsafe {
            let _ = cu::cuModuleUnload(module);
        }
    }
    kernels
}

/// A load failure, with the NVRTC and driver versions involved (code from an NVRTC newer than
/// the driver does not load).
fn explain_load_failure(e: Error, image: &nvrtc::Image) -> Error {
    let Error::Device(why) = e else { return e };
    let driver = driver::driver_version().unwrap_or(0);
    Error::Device(format!(
        "{why} (kernels compiled for {} by NVRTC {}.{} from {}; the driver supports CUDA {}.{})",
        image.target,
        image.nvrtc_version.0,
        image.nvrtc_version.1,
        image.nvrtc_origin,
        driver / 1000,
        driver % 1000 / 10
    ))
}
