//! What only a fresh process shows of the CUDA backend's dealings with the driver and NVRTC:
//! which NVRTC it picks (CUDA 13's `libnvrtc.so.13` or CUDA 12's `libnvrtc.so.12`, by the
//! driver's version), that a failed compile and a module missing a kernel are remembered (not
//! redone per call) and leave no module loaded, and that a failed `cuInit` is retried.
//!
//! The library caches these per process, so each test re-runs this test binary for itself alone
//! (the child runs the test's body) with `LD_LIBRARY_PATH` on a directory holding the driver
//! stand-in (`libcuda.so.1`, tests/cuda_driver/standin.cpp) and two builds of the NVRTC stand-in
//! (`libnvrtc.so.12` and `libnvrtc.so.13`, tests/cuda_driver/nvrtc_standin.cpp), and without
//! the variables that point libctc at another NVRTC. The stand-ins' `ctc_standin_*` and
//! `ctc_nvrtc_standin_*` functions set the faults and count what happened. It runs the same on a
//! machine with a GPU (the loader finds the stand-ins first).

mod common;
use common::cuda::{self, DeviceBuf};
use common::native::{self, skip};
use common::*;
use ctc::ffi::*;
use std::path::PathBuf;
use std::process::Command;

/// Set in a child's environment to the name of the test it runs.
const CHILD: &str = "CTC_CUDA_FAULTS_CHILD";

/// The directory of stand-ins, built once per process (None when there is no C++ compiler).
fn stand_ins() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(build_stand_ins).clone()
}

fn build_stand_ins() -> Option<PathBuf> {
    if !cfg!(target_os = "linux") || !native::available(&native::tool("CXX", "c++")) {
        return None;
    }
    let dir = "cuda_standin/faults";
    let driver = cuda::build("standin.cpp", "libcuda.so.1", dir, &[]);
    cuda::build("nvrtc_standin.cpp", "libnvrtc.so.12", dir, &[]);
    let v13 = ["-DSTANDIN_NVRTC_MAJOR=13"];
    cuda::build("nvrtc_standin.cpp", "libnvrtc.so.13", dir, &v13);
    let dir = driver.parent().unwrap().to_path_buf();
    // Whichever name the driver is opened by.
    let link = dir.join("libcuda.so");
    if !link.exists() {
        let _ = std::os::unix::fs::symlink("libcuda.so.1", &link);
    }
    Some(dir)
}

/// Runs `body` in a child process of its own (see the module doc); in that child, runs it.
fn in_fresh_process(test: &str, body: impl FnOnce()) {
    if std::env::var(CHILD).as_deref() == Ok(test) {
        body();
        return;
    }
    let Some(dir) = stand_ins() else {
        skip(
            &format!("cuda_faults::{test}"),
            "no C++ compiler to build the driver and NVRTC stand-ins",
        );
        return;
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, test)
        .env("LD_LIBRARY_PATH", &dir)
        .env_remove("VIRTUAL_ENV")
        .env_remove("CONDA_PREFIX")
        .env_remove("CTC_NVRTC_LIBRARY")
        .output()
        .expect("re-run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{test} in a fresh process failed:\n{text}"
    );
    assert!(
        text.contains("1 passed"),
        "{test}: the child did not run it:\n{text}"
    );
    println!(
        "{test}: passed in a fresh process with the stand-ins of {}",
        dir.display()
    );
}

/// A stand-in function of `library` (opened by name, so the copy the loader already has).
fn control<T: Copy>(library: &str, name: &str) -> T {
    // SAFETY: the stand-ins' functions have the signatures the callers give them.
    unsafe {
        let lib = Box::leak(Box::new(
            libloading::Library::new(library).expect("the stand-in loads"),
        ));
        *lib.get::<T>(name.as_bytes())
            .expect("the stand-in exports it")
    }
}

fn driver_fn<T: Copy>(name: &str) -> T {
    control("libcuda.so.1", name)
}

/// Compilations by the NVRTC stand-in `library`.
fn compiles(library: &str) -> i64 {
    let f: unsafe extern "C" fn() -> i64 = control(library, "ctc_nvrtc_standin_compiles");
    // SAFETY: a stand-in function without arguments.
    unsafe { f() }
}

/// One small loss on device 0 (log_probs and loss on the device, targets and lengths on the
/// host): the status and message.
fn device_call() -> (CtcStatus, String) {
    cuda::use_primary_context();
    let lp = DeviceBuf::upload(&[(1.0f32 / 3.0).ln(); 6]);
    let loss = DeviceBuf::new(4);
    let targets = [1i64];
    let (il, tl) = ([2i64], [1i64]);
    let t_lp = CtcTensor {
        data: lp.ptr as *mut _,
        dtype: CTC_DTYPE_FLOAT32,
        device: CTC_DEVICE_CUDA,
        device_index: 0,
        ndim: 3,
        shape: [2, 1, 3],
        strides: [3, 3, 1],
    };
    let host = |v: &[i64], shape: i64| CtcTensor {
        data: v.as_ptr() as *mut _,
        dtype: CTC_DTYPE_INT64,
        device: CTC_DEVICE_CPU,
        device_index: 0,
        ndim: 1,
        shape: [shape, 0, 0],
        strides: [1, 0, 0],
    };
    let (t_tg, t_il, t_tl) = (host(&targets, 1), host(&il, 1), host(&tl, 1));
    let mut t_loss = CtcTensor {
        data: loss.ptr as *mut _,
        dtype: CTC_DTYPE_FLOAT32,
        device: CTC_DEVICE_CUDA,
        device_index: 0,
        ndim: 0,
        shape: [0; 3],
        strides: [0; 3],
    };
    let opts = ctc_options_default();
    // SAFETY: live tensors; the stream is the legacy default stream.
    let s = unsafe { ctc_loss_forward(&t_lp, &t_tg, &t_il, &t_tl, &opts, &mut t_loss) };
    let message = last_error();
    if s == CTC_STATUS_SUCCESS {
        let got = loss.download::<f32>(1)[0];
        // Two frames, label 1: paths (1,1), (0,1), (1,0) of (1/3)^2 each.
        let want = -(3.0f32 / 9.0).ln() / 1.0;
        assert!((got - want).abs() < 1e-5, "loss {got}, want {want}");
    }
    (s, message)
}

/// With the driver reporting CUDA `version`, the kernels are compiled by `used` and not by
/// `unused` (both installed).
fn nvrtc_for_driver(version: i32, used: &str, unused: &str) {
    let set: unsafe extern "C" fn(i32) = driver_fn("ctc_standin_set_driver_version");
    // SAFETY: a stand-in function.
    unsafe { set(version) };
    let (s, m) = device_call();
    assert_eq!(s, CTC_STATUS_SUCCESS, "{m}");
    assert_eq!(
        (compiles(used), compiles(unused)),
        (1, 0),
        "{used} vs {unused}"
    );
}

/// A CUDA 13 driver: libnvrtc.so.13 compiles the kernels, libnvrtc.so.12 is not used.
#[test]
fn nvrtc_13_for_a_cuda_13_driver() {
    in_fresh_process("nvrtc_13_for_a_cuda_13_driver", || {
        nvrtc_for_driver(13000, "libnvrtc.so.13", "libnvrtc.so.12")
    });
}

/// A CUDA 12 driver: libnvrtc.so.12, although a newer NVRTC is installed (its code would not
/// load).
#[test]
fn nvrtc_12_for_a_cuda_12_driver() {
    in_fresh_process("nvrtc_12_for_a_cuda_12_driver", || {
        nvrtc_for_driver(12080, "libnvrtc.so.12", "libnvrtc.so.13")
    });
}

/// A compile that fails is an error naming NVRTC's log, and it is remembered: later calls give
/// the same error without compiling again.
#[test]
fn a_failed_compile_is_kept() {
    in_fresh_process("a_failed_compile_is_kept", || {
        for lib in ["libnvrtc.so.12", "libnvrtc.so.13"] {
            let fail: unsafe extern "C" fn(i32) = control(lib, "ctc_nvrtc_standin_fail");
            // SAFETY: a stand-in function.
            unsafe { fail(1) };
        }
        let (s, m) = device_call();
        assert_eq!(s, CTC_STATUS_DEVICE_ERROR, "{m}");
        assert!(m.contains("told to fail"), "{m}");
        let again = device_call();
        assert_eq!(again, (s, m));
        assert_eq!(compiles("libnvrtc.so.12") + compiles("libnvrtc.so.13"), 1);
    });
}

/// A module without one of the kernels is unloaded again, and the failure is kept for the
/// context: no second load.
#[test]
fn a_module_missing_a_kernel_is_unloaded() {
    in_fresh_process("a_module_missing_a_kernel_is_unloaded", || {
        let hide: unsafe extern "C" fn(*const std::ffi::c_char) =
            driver_fn("ctc_standin_hide_function");
        let loads: unsafe extern "C" fn() -> i64 = driver_fn("ctc_standin_module_loads");
        let loaded: unsafe extern "C" fn() -> i64 = driver_fn("ctc_standin_loaded_modules");
        // SAFETY: stand-in functions.
        unsafe { hide(c"ctc_align_f64".as_ptr()) };
        let (s, m) = device_call();
        assert_eq!(s, CTC_STATUS_DEVICE_ERROR, "{m}");
        assert!(m.contains("cuModuleGetFunction"), "{m}");
        // SAFETY: as above.
        unsafe {
            assert_eq!((loads(), loaded()), (1, 0), "loads, modules still loaded");
            hide(std::ptr::null());
        }
        assert_eq!(device_call(), (s, m));
        // SAFETY: as above.
        assert_eq!(unsafe { loads() }, 1);
    });
}

/// A `cuInit` that fails (a driver not ready yet) is tried again by the next call: no device
/// while it fails, then the device and a working call.
#[test]
fn a_failed_cuinit_is_retried() {
    in_fresh_process("a_failed_cuinit_is_retried", || {
        let fail: unsafe extern "C" fn(i32) = driver_fn("ctc_standin_fail_init");
        // SAFETY: a stand-in function.
        unsafe { fail(2) };
        assert_eq!(ctc_cuda_device_count(), 0);
        assert_eq!(ctc_cuda_device_count(), 0);
        assert_eq!(ctc_cuda_device_count(), 1);
        let (s, m) = device_call();
        assert_eq!(s, CTC_STATUS_SUCCESS, "{m}");
    });
}
