//! The CUDA driver and NVRTC, opened at run time through cudarc's dynamically loaded bindings.
//!
//! cudarc panics when a library or a symbol is missing, so every entry point first asks
//! [`driver_present`] / [`nvrtc_present`] (cached), and the FFI guard turns any remaining panic
//! into `CTC_STATUS_INTERNAL_ERROR`. Every driver call goes through [`check`], which turns a
//! `CUresult` into [`Error::Device`] naming the call.

use crate::error::Error;
use cudarc::driver::sys as cu;
use cudarc::nvrtc::sys as nv;
use std::ffi::{c_int, CStr};
use std::sync::OnceLock;

/// Whether `libcuda` can be opened (cached for the process).
pub(crate) fn driver_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to open the library by its usual names.
    *PRESENT.get_or_init(|| unsafe { cu::is_culib_present() })
}

/// The places libnvrtc is looked for besides the usual library search: `$CTC_NVRTC_LIBRARY`,
/// then the `nvidia-cuda-nvrtc-cu12` wheel inside the active Python environment
/// (`$VIRTUAL_ENV`, `$CONDA_PREFIX`).
fn nvrtc_wheel_candidates() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("CTC_NVRTC_LIBRARY") {
        out.push(p.into());
    }
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        let Some(prefix) = std::env::var_os(var) else {
            continue;
        };
        let lib = std::path::Path::new(&prefix).join("lib");
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().starts_with("python") {
                out.push(
                    e.path()
                        .join("site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"),
                );
            }
        }
    }
    out
}

/// Whether NVRTC can be opened (cached). A copy from the PyPI wheel is loaded by its full path
/// and kept loaded, so that cudarc's search by name finds it.
pub(crate) fn nvrtc_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    static WHEEL: OnceLock<Option<libloading::Library>> = OnceLock::new();
    *PRESENT.get_or_init(|| {
        // SAFETY: only tries to open the library by its usual names.
        if unsafe { nv::is_culib_present() } {
            return true;
        }
        let wheel = WHEEL.get_or_init(|| {
            nvrtc_wheel_candidates().into_iter().find_map(|p| {
                // SAFETY: loading libnvrtc runs its initializers, which have no preconditions.
                unsafe { libloading::Library::new(&p) }.ok()
            })
        });
        // SAFETY: as above; with the wheel's copy loaded, the soname lookup succeeds.
        wheel.is_some() && unsafe { nv::is_culib_present() }
    })
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

/// `cuInit(0)`, once per process (the driver makes repeated calls cheap, this keeps the error).
pub(crate) fn init() -> Result<(), Error> {
    if !driver_present() {
        return Err(Error::Unsupported(
            "no CUDA driver is installed (libcuda could not be opened)".into(),
        ));
    }
    static INIT: OnceLock<cu::CUresult> = OnceLock::new();
    // SAFETY: the driver library is present.
    let r = *INIT.get_or_init(|| unsafe { cu::cuInit(0) });
    check(r, "cuInit")
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

/// The compute capability (major, minor) of device `ordinal`.
pub(crate) fn compute_capability(ordinal: i32) -> Result<(i32, i32), Error> {
    let mut dev: cu::CUdevice = 0;
    // SAFETY: the driver is initialized (callers ran `init`); out-pointers are valid.
    unsafe {
        check(cu::cuDeviceGet(&mut dev, ordinal), "cuDeviceGet")?;
        let (mut major, mut minor): (c_int, c_int) = (0, 0);
        check(
            cu::cuDeviceGetAttribute(
                &mut major,
                cu::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                dev,
            ),
            "cuDeviceGetAttribute",
        )?;
        check(
            cu::cuDeviceGetAttribute(
                &mut minor,
                cu::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                dev,
            ),
            "cuDeviceGetAttribute",
        )?;
        Ok((major, minor))
    }
}

/// NVRTC's text for `r`.
fn nvrtc_describe(r: nv::nvrtcResult) -> String {
    // SAFETY: NVRTC is present (callers checked); the result is a static string.
    let p = unsafe { nv::nvrtcGetErrorString(r) };
    if p.is_null() {
        format!("{r:?}")
    } else {
        // SAFETY: a static NUL-terminated string owned by NVRTC.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// `Ok` for `NVRTC_SUCCESS`, else a device error naming `call`.
pub(crate) fn nvrtc_check(r: nv::nvrtcResult, call: &str) -> Result<(), Error> {
    if r == nv::nvrtcResult::NVRTC_SUCCESS {
        Ok(())
    } else {
        Err(Error::Device(format!(
            "{call} failed: {}",
            nvrtc_describe(r)
        )))
    }
}
