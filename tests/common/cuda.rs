//! The CUDA driver of tests/cuda_gpu.rs, and small owners of driver objects for the tests.
//!
//! [`driver`] picks the real driver when `libcuda.so.1` loads and is not the stand-in, else
//! builds the stand-in of tests/cuda_driver/ (a `libcuda.so.1` that runs the kernels on the CPU)
//! and loads it by its full path before libctc looks for a driver: libctc, which opens
//! `libcuda.so.1` by name, then gets the loaded stand-in (the dynamic loader matches the name to
//! its soname). The AddressSanitizer variant re-runs the test binary with the sanitized stand-in
//! found through `LD_LIBRARY_PATH` instead (and the sanitizer runtime preloaded).
//!
//! NVRTC: with the stand-in, a real libnvrtc (the `nvidia-cuda-nvrtc-cu12` wheel in the
//! repository's `.venv`, or one the loader finds) is loaded when there is one, so the stand-in
//! gets real cubins; else the NVRTC stand-in of tests/cuda_driver/.

use super::native::{manifest_dir, run_ok, tmp_dir, tool, STRICT};
use cudarc::driver::sys as cu;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Set in the environment of the test binary re-run against the sanitized stand-in.
pub const CHILD_ENV: &str = "CTC_CUDA_STANDIN_CHILD";

/// The driver the tests run against.
pub enum Driver {
    /// A real CUDA driver.
    Real,
    /// The stand-in (sanitized or not), and the NVRTC in use.
    StandIn {
        asan: bool,
        nvrtc: String,
        controls: Controls,
    },
}

/// The stand-in's test functions.
pub struct Controls {
    pub thread_syncs: unsafe extern "C" fn() -> i64,
    pub take_thread_ops: unsafe extern "C" fn(*mut u64, i32) -> i32,
    pub context_depth: unsafe extern "C" fn() -> i32,
    pub set_memory_pools: unsafe extern "C" fn(i32),
    pub set_capturing: unsafe extern "C" fn(*mut c_void, i32) -> i32,
    pub violations: unsafe extern "C" fn() -> i64,
    pub live_device_allocations: unsafe extern "C" fn() -> i64,
    pub pools: unsafe extern "C" fn() -> i32,
    pub pool_release_threshold: unsafe extern "C" fn(i32) -> i64,
}

/// The sources of the stand-ins (a build older than any of them is redone).
fn sources() -> Vec<PathBuf> {
    let root = manifest_dir();
    [
        "tests/cuda_driver/standin.cpp",
        "tests/cuda_driver/nvrtc_standin.cpp",
        "tests/cuda_emu/emu.h",
        "src/cuda/kernels/ctc.cu",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect()
}

fn newer_than_sources(out: &Path) -> bool {
    let Ok(built) = out.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    sources().iter().all(|s| {
        s.metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t <= built)
    })
}

/// Flags of the sanitized stand-in.
pub const ASAN_FLAGS: [&str; 3] = [
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];

/// Builds `source` (under tests/cuda_driver/) into `dir/soname` unless an up-to-date build is
/// there; returns its path.
pub fn build(source: &str, soname: &str, dir: &str, extra: &[&str]) -> PathBuf {
    let dir = tmp_dir(dir);
    let out = dir.join(soname);
    if newer_than_sources(&out) {
        return out;
    }
    // Unique per process and per call: tests of one binary may build the same file at once.
    static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{soname}.{}.{n}.tmp", std::process::id()));
    let mut cmd = Command::new(tool("CXX", "c++"));
    cmd.args(["-std=c++20", "-O2", "-g", "-fPIC", "-shared", "-pthread"])
        .args(STRICT)
        .args(extra)
        .arg(format!("-Wl,-soname,{soname}"))
        .arg(manifest_dir().join("tests/cuda_driver").join(source))
        .arg("-o")
        .arg(&tmp);
    let started = std::time::Instant::now();
    run_ok(cmd);
    std::fs::rename(&tmp, &out).unwrap();
    println!(
        "built {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    out
}

/// Opens `name` (a path or a library name) and keeps it loaded for the life of
/// the process.
fn load_forever(name: &std::ffi::OsStr) -> Option<&'static libloading::Library> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading a driver library runs its initializers, which have no preconditions.
    let lib = unsafe { Library::open(Some(name), RTLD_NOW | RTLD_LOCAL) }.ok()?;
    Some(Box::leak(Box::new(libloading::Library::from(lib))))
}

fn controls(lib: &libloading::Library) -> Option<Controls> {
    // SAFETY: the stand-in's functions have exactly these signatures (standin.cpp).
    unsafe {
        Some(Controls {
            thread_syncs: *lib.get(b"ctc_standin_thread_syncs\0").ok()?,
            take_thread_ops: *lib.get(b"ctc_standin_take_thread_ops\0").ok()?,
            context_depth: *lib.get(b"ctc_standin_context_depth\0").ok()?,
            set_memory_pools: *lib.get(b"ctc_standin_set_memory_pools\0").ok()?,
            set_capturing: *lib.get(b"ctc_standin_set_capturing\0").ok()?,
            violations: *lib.get(b"ctc_standin_violations\0").ok()?,
            live_device_allocations: *lib.get(b"ctc_standin_live_device_allocations\0").ok()?,
            pools: *lib.get(b"ctc_standin_pools\0").ok()?,
            pool_release_threshold: *lib.get(b"ctc_standin_pool_release_threshold\0").ok()?,
        })
    }
}

/// The wheel's libnvrtc in the repository's `.venv`, if installed.
pub fn venv_nvrtc() -> Option<PathBuf> {
    let lib = manifest_dir().join(".venv/lib");
    std::fs::read_dir(lib).ok()?.flatten().find_map(|e| {
        let p = e
            .path()
            .join("site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12");
        p.is_file().then_some(p)
    })
}

/// Loads a real NVRTC if there is one, else the NVRTC stand-in; returns what was loaded.
fn load_nvrtc() -> String {
    if let Some(p) = venv_nvrtc() {
        if load_forever(p.as_os_str()).is_some() {
            return format!("NVRTC from {}", p.display());
        }
    }
    for name in ["libnvrtc.so.13", "libnvrtc.so.12"] {
        if load_forever(name.as_ref()).is_some() {
            return format!("NVRTC {name} from the library search path");
        }
    }
    let fake = build(
        "nvrtc_standin.cpp",
        "libnvrtc.so.12",
        "cuda_standin/nvrtc",
        &[],
    );
    load_forever(fake.as_os_str()).expect("the NVRTC stand-in loads");
    "the NVRTC stand-in (no real NVRTC found: `pip install nvidia-cuda-nvrtc-cu12` into .venv)"
        .into()
}

fn select() -> Option<Driver> {
    let child = std::env::var_os(CHILD_ENV).is_some();
    if let Some(lib) = load_forever("libcuda.so.1".as_ref()) {
        return Some(match controls(lib) {
            None => Driver::Real,
            Some(controls) => {
                // SAFETY: a function of the stand-in without arguments.
                let version: libloading::Symbol<unsafe extern "C" fn() -> i32> =
                    unsafe { lib.get(b"ctc_standin_version\0") }.unwrap();
                Driver::StandIn {
                    // SAFETY: as above.
                    asan: unsafe { version() } == 2,
                    nvrtc: load_nvrtc(),
                    controls,
                }
            }
        });
    }
    assert!(
        !child,
        "the re-run test binary finds the stand-in on LD_LIBRARY_PATH"
    );
    if !cfg!(target_os = "linux") || !super::native::available(&tool("CXX", "c++")) {
        return None;
    }
    let path = build("standin.cpp", "libcuda.so.1", "cuda_standin/plain", &[]);
    let lib = load_forever(path.as_os_str()).expect("the stand-in loads");
    Some(Driver::StandIn {
        asan: false,
        nvrtc: load_nvrtc(),
        controls: controls(lib).expect("the stand-in has its test functions"),
    })
}

/// The driver, chosen once per process before libctc's first CUDA call; None when there is
/// neither a driver nor a C++ compiler to build the stand-in.
pub fn driver() -> Option<&'static Driver> {
    static DRIVER: OnceLock<Option<Driver>> = OnceLock::new();
    DRIVER.get_or_init(select).as_ref()
}

impl Driver {
    pub fn controls(&self) -> Option<&Controls> {
        match self {
            Driver::Real => None,
            Driver::StandIn { controls, .. } => Some(controls),
        }
    }
}

/// Panics with the driver's error name unless `r` is success.
pub fn ok(r: cu::CUresult, what: &str) {
    assert_eq!(r, cu::CUresult::CUDA_SUCCESS, "{what}");
}

/// Retains device 0's primary context (once) and makes it current on this thread.
pub fn use_primary_context() -> cu::CUcontext {
    static PRIMARY: OnceLock<usize> = OnceLock::new();
    let ctx = *PRIMARY.get_or_init(|| {
        let mut ctx: cu::CUcontext = std::ptr::null_mut();
        // SAFETY: plain driver calls with valid out-pointers.
        unsafe {
            ok(cu::cuInit(0), "cuInit");
            ok(
                cu::cuDevicePrimaryCtxRetain(&mut ctx, 0),
                "cuDevicePrimaryCtxRetain",
            );
        }
        ctx as usize
    }) as cu::CUcontext;
    // SAFETY: a live context.
    ok(unsafe { cu::cuCtxSetCurrent(ctx) }, "cuCtxSetCurrent");
    ctx
}

/// The calling thread's current context.
pub fn current_context() -> cu::CUcontext {
    let mut ctx: cu::CUcontext = std::ptr::null_mut();
    // SAFETY: valid out-pointer.
    ok(unsafe { cu::cuCtxGetCurrent(&mut ctx) }, "cuCtxGetCurrent");
    ctx
}

/// Device memory of the current context, freed on drop.
pub struct DeviceBuf {
    pub ptr: u64,
    pub bytes: usize,
}

impl DeviceBuf {
    /// `bytes` bytes (at least 1: some drivers refuse empty allocations).
    pub fn new(bytes: usize) -> DeviceBuf {
        let mut ptr = 0;
        // SAFETY: valid out-pointer; a current context exists.
        ok(
            unsafe { cu::cuMemAlloc_v2(&mut ptr, bytes.max(1)) },
            "cuMemAlloc",
        );
        DeviceBuf { ptr, bytes }
    }

    /// A copy of `values` on the device (synchronous).
    pub fn upload<T: Copy>(values: &[T]) -> DeviceBuf {
        let bytes = std::mem::size_of_val(values);
        let b = DeviceBuf::new(bytes);
        if bytes > 0 {
            // SAFETY: the allocation holds `bytes` bytes; the source is readable.
            ok(
                unsafe { cu::cuMemcpyHtoD_v2(b.ptr, values.as_ptr().cast(), bytes) },
                "cuMemcpyHtoD",
            );
        }
        b
    }

    /// The first `n` elements (synchronous: the legacy stream, which waits for blocking
    /// streams only; synchronize a non-blocking stream first).
    pub fn download<T: Copy + Default>(&self, n: usize) -> Vec<T> {
        let mut out = vec![T::default(); n];
        let bytes = std::mem::size_of_val(&out[..]);
        assert!(bytes <= self.bytes);
        if bytes > 0 {
            // SAFETY: as in upload, the other way.
            ok(
                unsafe { cu::cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), self.ptr, bytes) },
                "cuMemcpyDtoH",
            );
        }
        out
    }
}

impl Drop for DeviceBuf {
    fn drop(&mut self) {
        // SAFETY: frees this allocation once.
        unsafe {
            cu::cuMemFree_v2(self.ptr);
        }
    }
}

/// Page-locked host memory, freed on drop.
pub struct PinnedBuf {
    pub ptr: *mut c_void,
    pub bytes: usize,
}

impl PinnedBuf {
    pub fn copy_of(bytes: &[u8]) -> PinnedBuf {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid out-pointer; the copy stays inside the allocation.
        unsafe {
            ok(
                cu::cuMemHostAlloc(&mut ptr, bytes.len().max(1), 0),
                "cuMemHostAlloc",
            );
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.cast(), bytes.len());
        }
        PinnedBuf {
            ptr,
            bytes: bytes.len(),
        }
    }

    /// Overwrites the whole buffer with `byte`.
    pub fn scribble(&self, byte: u8) {
        // SAFETY: the buffer's own bytes.
        unsafe { std::ptr::write_bytes(self.ptr.cast::<u8>(), byte, self.bytes) };
    }
}

impl Drop for PinnedBuf {
    fn drop(&mut self) {
        // SAFETY: frees this allocation once.
        unsafe {
            cu::cuMemFreeHost(self.ptr);
        }
    }
}

/// A stream of the current context, destroyed on drop.
pub struct Stream(pub cu::CUstream);

impl Stream {
    /// A stream that does not synchronize with the legacy default stream.
    pub fn non_blocking() -> Stream {
        let mut s = std::ptr::null_mut();
        // SAFETY: valid out-pointer; flag 1 is CU_STREAM_NON_BLOCKING.
        ok(unsafe { cu::cuStreamCreate(&mut s, 1) }, "cuStreamCreate");
        Stream(s)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // SAFETY: destroys this stream once.
        unsafe {
            cu::cuStreamDestroy_v2(self.0);
        }
    }
}

/// Waits for `stream` (any handle, NULL and the special ones included).
pub fn sync(stream: cu::CUstream) {
    // SAFETY: a stream handle valid in the current context.
    ok(
        unsafe { cu::cuStreamSynchronize(stream) },
        "cuStreamSynchronize",
    );
}
