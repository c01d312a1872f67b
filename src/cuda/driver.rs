//! The CUDA driver, opened at run time through cudarc's dynamically loaded bindings (NVRTC is
//! opened by `nvrtc.rs`).
//!
//! cudarc panics when the library or a symbol is missing, so every entry point first asks
//! [`driver_present`] (cached), and the FFI guard turns any remaining panic into
//! `CTC_STATUS_INTERNAL_ERROR`. Every driver call goes through [`check`], which turns a
//! `CUresult` into [`Error::Device`] naming the call.

use crate::error::Error;
use cudarc::driver::sys as cu;
use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Whether `libcuda` can be opened (cached for the process).
pub(crate) fn driver_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to open the library by its usual names.
    *PRESENT.get_or_init(|| unsafe { cu::is_culib_present() })
}

/// The driver's text for `r`.
fn describe(r: cu::CUresult) -> String {
    let mut text: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: the driver is present (callers checked); cuGetErrorString writes a pointer to a
    // static string or leaves it NULL.
    let ok = unsafe { cu::cuGetErrorString(r, &mut text) } == cu::CUresult::CUDA_SUCCESS;
    if ok && !text.is_null() {
        // SAFETY: a static NUL-terminated string owned by the driver.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    } else {
        format!("{r:?}")
    }
}

/// `Ok` for `CUDA_SUCCESS`, else a device error naming `call`.
pub(crate) fn check(r: cu::CUresult, call: &str) -> Result<(), Error> {
    if r == cu::CUresult::CUDA_SUCCESS {
        Ok(())
    } else if r == cu::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        Err(Error::OutOfMemory(format!("{call}: {}", describe(r))))
    } else {
        Err(Error::Device(format!("{call} failed: {}", describe(r))))
    }
}

/// `cuInit(0)` until it succeeds (then never again): a failure (e.g. a driver not yet ready) is
/// retried by the next call rather than kept for the life of the process.
pub(crate) fn init() -> Result<(), Error> {
    if !driver_present() {
        return Err(Error::Unsupported(
            "no CUDA driver is installed (libcuda could not be opened)".into(),
        ));
    }
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.load(Ordering::Acquire) {
        return Ok(());
    }
    // SAFETY: the driver library is present; cuInit may be called any number of times.
    check(unsafe { cu::cuInit(0) }, "cuInit")?;
    DONE.store(true, Ordering::Release);
    Ok(())
}

/// The CUDA version of the driver (e.g. 12080 for 12.8).
pub(crate) fn driver_version() -> Result<i32, Error> {
    let mut v: c_int = 0;
    // SAFETY: the driver is initialized; valid out-pointer.
    check(
        unsafe { cu::cuDriverGetVersion(&mut v) },
        "cuDriverGetVersion",
    )?;
    Ok(v)
}

/// Device attribute `attr` of device `ordinal`.
fn attribute(ordinal: i32, attr: cu::CUdevice_attribute) -> Result<i32, Error> {
    let mut dev: cu::CUdevice = 0;
    let mut v: c_int = 0;
    // SAFETY: the driver is initialized (callers ran `init`); out-pointers are valid.
    unsafe {
        check(cu::cuDeviceGet(&mut dev, ordinal), "cuDeviceGet")?;
        check(
            cu::cuDeviceGetAttribute(&mut v, attr, dev),
            "cuDeviceGetAttribute",
        )?;
    }
    Ok(v)
}

/// Whether device `ordinal` has stream-ordered memory pools (`cuMemAllocAsync`); some vGPU and
/// WSL setups do not.
pub(crate) fn memory_pools_supported(ordinal: i32) -> Result<bool, Error> {
    use cu::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED as POOLS;
    Ok(attribute(ordinal, POOLS)? != 0)
}

/// CUDA devices: 0 without a driver, or when the driver reports an error.
pub(crate) fn device_count() -> i32 {
    if init().is_err() {
        return 0;
    }
    let mut n: c_int = 0;
    // SAFETY: the driver is initialized; `n` is a valid out-pointer.
    let r = unsafe { cu::cuDeviceGetCount(&mut n) };
    if r == cu::CUresult::CUDA_SUCCESS {
        n
    } else {
        0
    }
}

/// The compute capability of device `ordinal` as major * 10 + minor (e.g. 90).
pub(crate) fn compute_capability(ordinal: i32) -> Result<i32, Error> {
    use cu::CUdevice_attribute::{
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR as MAJOR,
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR as MINOR,
    };
    Ok(attribute(ordinal, MAJOR)? * 10 + attribute(ordinal, MINOR)?)
}
