//! The CUDA kernels compile with NVRTC, as the CUDA backend compiles them at run time:
//! `tests/cuda/nvrtc_compile.py` loads libnvrtc through ctypes (from the PyPI wheel
//! `nvidia-cuda-nvrtc-cu12`, or a CUDA toolkit), compiles `src/cuda/kernels/ctc.cu` to CUBIN for
//! sm_70, sm_80 and sm_90 with ptxas's verbose report, and fails on a compile error, a warning, a
//! missing kernel or a register spill. No GPU is needed.
//!
//! The Python is `$CTC_PYTHON`, else the repository's `.venv/bin/python`, else `python3`.
//! Skipped, with the reason printed, when none runs or when libnvrtc is not found (install it
//! with `pip install nvidia-cuda-nvrtc-cu12` into that Python's environment).

mod common;
use common::native::{python_with, skip};
use std::path::Path;
use std::process::Command;

#[test]
fn kernels_compile_with_nvrtc_without_spills() {
    let Some(python) = python_with("ctypes, re, site") else {
        skip("cuda_nvrtc", "no Python (set CTC_PYTHON or create .venv)");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python)
        .arg(root.join("tests/cuda/nvrtc_compile.py"))
        .current_dir(root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("the NVRTC script runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "nvrtc_compile.py failed ({}) with python {}",
        out.status,
        python.display()
    );
    if let Some(line) = stdout.lines().find(|l| l.starts_with("SKIPPED nvrtc")) {
        skip(
            "cuda_nvrtc",
            &format!("{line} (python {})", python.display()),
        );
        return;
    }
    assert!(
        stdout
            .lines()
            .any(|l| l == "nvrtc: 3 architectures, 24 kernels each, no spills"),
        "the NVRTC script ends with its summary"
    );
    for arch in ["sm_70", "sm_80", "sm_90"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{arch}: CUBIN"))),
            "{arch} compiled"
        );
    }
}
