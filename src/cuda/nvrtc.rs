//! NVRTC, opened directly with libloading (the ten functions the backend calls), so that both
//! CUDA 13's `libnvrtc.so.13` and CUDA 12's `libnvrtc.so.12` are found, by the usual library
//! search or in the PyPI wheels of the active Python environment.
//!
//! Where several load, the newest one whose major version the driver supports is kept: code
//! from a newer NVRTC than the driver does not load.

use crate::error::Error;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

type Program = *mut c_void;
type Status = c_int;

/// The NVRTC functions the backend calls, resolved once.
struct Functions {
    version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> Status,
    num_supported_archs: unsafe extern "C" fn(*mut c_int) -> Status,
    supported_archs: unsafe extern "C" fn(*mut c_int) -> Status,
    error_string: unsafe extern "C" fn(Status) -> *const c_char,
    create_program: unsafe extern "C" fn(
        *mut Program,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> Status,
    compile_program: unsafe extern "C" fn(Program, c_int, *const *const c_char) -> Status,
    program_log_size: unsafe extern "C" fn(Program, *mut usize) -> Status,
    program_log: unsafe extern "C" fn(Program, *mut c_char) -> Status,
    cubin_size: unsafe extern "C" fn(Program, *mut usize) -> Status,
    cubin: unsafe extern "C" fn(Program, *mut c_char) -> Status,
    ptx_size: unsafe extern "C" fn(Program, *mut usize) -> Status,
    ptx: unsafe extern "C" fn(Program, *mut c_char) -> Status,
    destroy_program: unsafe extern "C" fn(*mut Program) -> Status,
}

/// One loaded NVRTC.
pub(crate) struct Nvrtc {
    f: Functions,
    /// (major, minor).
    pub version: (i32, i32),
    /// Where it was loaded from (a path or a library name).
    pub origin: String,
    /// The real architectures it compiles for (e.g. 75, 80, 90), increasing.
    archs: Vec<i32>,
    _lib: libloading::Library,
}

/// A compiled kernel image for `cuModuleLoadData`.
pub(crate) struct Image {
    /// A cubin, or NUL-terminated PTX.
    pub bytes: Vec<u8>,
    /// What was asked of NVRTC (`sm_90`, or `compute_90` for PTX).
    pub target: String,
    /// The NVRTC that compiled it: (major, minor) and where it was loaded from.
    pub nvrtc_version: (i32, i32),
    pub nvrtc_origin: String,
}

/// Library names and paths to try, in this order.
fn candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("CTC_NVRTC_LIBRARY") {
        out.push(p.into());
    }
    for name in ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"] {
        out.push(name.into());
    }
    // The wheels: nvidia-cuda-nvrtc (CUDA 13: nvidia/cu13/lib) and nvidia-cuda-nvrtc-cu12.
    let wheel_files = [
        "nvidia/cu13/lib/libnvrtc.so.13",
        "nvidia/cuda_nvrtc/lib/libnvrtc.so.13",
        "nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
    ];
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        let Some(prefix) = std::env::var_os(var) else {
            continue;
        };
        let lib = std::path::Path::new(&prefix).join("lib");
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("python") {
                let site = e.path().join("site-packages");
                out.extend(wheel_files.iter().map(|f| site.join(f)));
            }
        }
    }
    out
}

impl Nvrtc {
    /// Opens `path` and resolves the functions; None when it is not a usable NVRTC.
    fn open(path: &std::path::Path) -> Option<Nvrtc> {
        // SAFETY: loading libnvrtc runs its initializers, which have no preconditions; every
        // symbol is given the signature of NVRTC's C header (nvrtc.h, CUDA 12 and 13 alike).
        unsafe {
            let lib = libloading::Library::new(path).ok()?;
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes()).ok()?
                };
            }
            let f = Functions {
                version: sym!("nvrtcVersion"),
                num_supported_archs: sym!("nvrtcGetNumSupportedArchs"),
                supported_archs: sym!("nvrtcGetSupportedArchs"),
                error_string: sym!("nvrtcGetErrorString"),
                create_program: sym!("nvrtcCreateProgram"),
                compile_program: sym!("nvrtcCompileProgram"),
                program_log_size: sym!("nvrtcGetProgramLogSize"),
                program_log: sym!("nvrtcGetProgramLog"),
                cubin_size: sym!("nvrtcGetCUBINSize"),
                cubin: sym!("nvrtcGetCUBIN"),
                ptx_size: sym!("nvrtcGetPTXSize"),
                ptx: sym!("nvrtcGetPTX"),
                destroy_program: sym!("nvrtcDestroyProgram"),
            };
            let (mut major, mut minor) = (0, 0);
            if (f.version)(&mut major, &mut minor) != 0 {
                return None;
            }
            let mut count = 0;
            let mut archs = Vec::new();
            if (f.num_supported_archs)(&mut count) == 0 && count > 0 {
                archs = vec![0; count as usize];
                if (f.supported_archs)(archs.as_mut_ptr()) != 0 {
                    archs.clear();
                }
            }
            archs.sort_unstable();
            Some(Nvrtc {
                f,
                version: (major, minor),
                origin: path.display().to_string(),
                archs,
                _lib: lib,
            })
        }
    }

    /// NVRTC's text for `status`.
    fn describe(&self, status: Status) -> String {
        // SAFETY: returns a static NUL-terminated string (or NULL).
        let p = unsafe { (self.f.error_string)(status) };
        if p.is_null() {
            format!("NVRTC error {status}")
        } else {
            // SAFETY: a static NUL-terminated string owned by NVRTC.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }

    fn check(&self, status: Status, call: &str) -> Result<(), Error> {
        if status == 0 {
            Ok(())
        } else {
            Err(Error::Device(format!(
                "{call} failed: {}",
                self.describe(status)
            )))
        }
    }

    /// What to ask for a device of compute capability `arch` (e.g. 90): a cubin when this NVRTC
    /// knows the architecture, else PTX of the largest architecture it knows below it, which
    /// the driver compiles. None when it knows none at or below `arch`.
    fn target(&self, arch: i32) -> Option<String> {
        target_for(&self.archs, arch)
    }

    /// Compiles `source` for a device of compute capability `arch` (major * 10 + minor).
    pub(crate) fn compile(&self, source: &str, arch: i32) -> Result<Image, Error> {
        let target = self.target(arch).ok_or_else(|| {
            Error::Unsupported(format!(
                "NVRTC {}.{} ({}) compiles for none of the architectures up to sm_{arch} of this \
                 device (it knows {:?})",
                self.version.0, self.version.1, self.origin, self.archs
            ))
        })?;
        let src = CString::new(source)
            .map_err(|_| Error::Internal("the kernel source holds a NUL byte".into()))?;
        let options = [
            CString::new(format!("--gpu-architecture={target}")).expect("no NUL"),
            CString::new("--std=c++17").expect("no NUL"),
        ];
        let option_ptrs = options.each_ref().map(|o| o.as_ptr());
        let mut prog: Program = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the calls; the program is destroyed on every path
        // after its creation.
        unsafe {
            self.check(
                (self.f.create_program)(
                    &mut prog,
                    src.as_ptr(),
                    c"ctc.cu".as_ptr(),
                    0,
                    std::ptr::null(),
                    std::ptr::null(),
                ),
                "nvrtcCreateProgram",
            )?;
            let result = self.build(prog, &option_ptrs, &target);
            (self.f.destroy_program)(&mut prog);
            result.map(|bytes| Image {
                bytes,
                target,
                nvrtc_version: self.version,
                nvrtc_origin: self.origin.clone(),
            })
        }
    }

    /// Compiles the created program `prog` and returns its cubin or PTX (NUL-terminated).
    ///
    /// # Safety
    /// `prog` is a live program of this NVRTC; `options` are NUL-terminated strings.
    unsafe fn build(
        &self,
        prog: Program,
        options: &[*const c_char],
        target: &str,
    ) -> Result<Vec<u8>, Error> {
        // SAFETY: per this function's contract; out-pointers and buffers are sized as NVRTC
        // reported.
        unsafe {
            let status = (self.f.compile_program)(prog, options.len() as c_int, options.as_ptr());
            if status != 0 {
                let mut size = 0usize;
                let _ = (self.f.program_log_size)(prog, &mut size);
                let mut log = vec![0u8; size.max(1)];
                let _ = (self.f.program_log)(prog, log.as_mut_ptr().cast());
                return Err(Error::Device(format!(
                    "NVRTC {}.{} could not compile the kernels for {target}: {}",
                    self.version.0,
                    self.version.1,
                    String::from_utf8_lossy(&log).trim_end_matches('\0')
                )));
            }
            let cubin = target.starts_with("sm_");
            let (size_fn, get_fn, what) = if cubin {
                (self.f.cubin_size, self.f.cubin, "nvrtcGetCUBIN")
            } else {
                (self.f.ptx_size, self.f.ptx, "nvrtcGetPTX")
            };
            let mut size = 0usize;
            self.check(size_fn(prog, &mut size), what)?;
            let mut image = vec![0u8; size + 1];
            self.check(get_fn(prog, image.as_mut_ptr().cast()), what)?;
            Ok(image)
        }
    }
}

/// [`Nvrtc::target`] for an NVRTC knowing the real architectures `archs` (increasing; empty when
/// it cannot say, then a cubin is asked for).
fn target_for(archs: &[i32], arch: i32) -> Option<String> {
    if archs.is_empty() || archs.contains(&arch) {
        return Some(format!("sm_{arch}"));
    }
    let below = archs.iter().rev().find(|&&a| a <= arch)?;
    Some(format!("compute_{below}"))
}

/// Of NVRTC versions sorted increasing, the index of the one to use with a driver of CUDA major
/// version `driver_major`: the newest the driver supports, else the oldest (whose images the
/// driver may still load); None when there is none.
fn pick(versions: &[(i32, i32)], driver_major: i32) -> Option<usize> {
    let fits = versions.iter().rposition(|v| v.0 <= driver_major);
    fits.or(if versions.is_empty() { None } else { Some(0) })
}

/// The NVRTC to use with a driver of CUDA major version `driver_major` (cached for the
/// process), or why none.
pub(crate) fn get(driver_major: i32) -> Result<&'static Nvrtc, Error> {
    static CHOSEN: OnceLock<Result<Nvrtc, String>> = OnceLock::new();
    CHOSEN
        .get_or_init(|| choose(driver_major))
        .as_ref()
        .map_err(|why| Error::Unsupported(why.clone()))
}

/// Opens every candidate and keeps the newest whose major version the driver supports (else
/// the oldest found, whose images the driver may still load).
fn choose(driver_major: i32) -> Result<Nvrtc, String> {
    let mut found: Vec<Nvrtc> = Vec::new();
    for path in candidates() {
        if let Some(n) = Nvrtc::open(&path) {
            if !found.iter().any(|f| f.version == n.version) {
                found.push(n);
            }
        }
    }
    found.sort_by_key(|n| n.version);
    let versions: Vec<(i32, i32)> = found.iter().map(|n| n.version).collect();
    match pick(&versions, driver_major) {
        Some(i) => Ok(found.swap_remove(i)),
        None => Err(
            "NVRTC (libnvrtc.so.13 or libnvrtc.so.12) not found: install the CUDA toolkit's \
             NVRTC, `pip install nvidia-cuda-nvrtc` (CUDA 13) or `nvidia-cuda-nvrtc-cu12` in the \
             active Python environment, or set CTC_NVRTC_LIBRARY to its path"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cubin_for_a_known_architecture_else_ptx_of_the_largest_below() {
        let archs = [75, 80, 86, 89, 90];
        assert_eq!(target_for(&archs, 90).as_deref(), Some("sm_90"));
        assert_eq!(target_for(&archs, 86).as_deref(), Some("sm_86"));
        // A newer device than this NVRTC knows: PTX the driver compiles.
        assert_eq!(target_for(&archs, 100).as_deref(), Some("compute_90"));
        assert_eq!(target_for(&archs, 87).as_deref(), Some("compute_86"));
        // Older than anything it knows: nothing to ask for.
        assert_eq!(target_for(&archs, 70), None);
        // An NVRTC that cannot list its architectures: a cubin.
        assert_eq!(target_for(&[], 120).as_deref(), Some("sm_120"));
    }

    #[test]
    fn the_newest_nvrtc_the_driver_supports_else_the_oldest() {
        let found = [(12, 4), (12, 9), (13, 0)];
        assert_eq!(pick(&found, 13), Some(2));
        assert_eq!(pick(&found, 14), Some(2));
        assert_eq!(pick(&found, 12), Some(1));
        assert_eq!(pick(&found, 11), Some(0));
        assert_eq!(pick(&[], 13), None);
    }
}
