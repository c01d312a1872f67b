//! Runs the Python binding's pytest suite (tests/python/) against the library this `cargo test`
//! built. Needs a Python with numpy and pytest: `$CTC_PYTHON`, else the repository's `.venv`
//! (which `.ci/run` creates), else `python3`. Without one it prints why and skips. The torch tests
//! inside skip themselves (with a printed reason) when torch is absent.

mod common;
use common::native::library_dir;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("CTC_PYTHON").map(PathBuf::from),
        Some(root.join(".venv/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import numpy, pytest"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn python_binding_pytest_suite() {
    let Some(python) = python() else {
        println!("SKIPPED python_binding_pytest_suite: no Python with numpy and pytest (set CTC_PYTHON or run .ci/run, which creates .venv)");
        return;
    };
    let library = library_dir("libctc.so").join("libctc.so");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/python",
        ])
        .current_dir(root)
        .env("CTC_LIBRARY", &library)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .expect("pytest runs");
    assert!(
        status.success(),
        "pytest failed ({status}); python {}",
        python.display()
    );
}
