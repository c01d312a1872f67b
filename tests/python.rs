//! Runs the Python binding's pytest suite (tests/python/) against the library this `cargo test`
//! built. Needs a Python with numpy and pytest: `$CTC_PYTHON`, else the repository's `.venv`
//! (which `.ci/run` creates), else `python3`. Without one it prints why and skips. The torch tests
//! inside skip themselves (with a printed reason) when torch is absent.

mod common;
use common::native::{library_dir, python_with};
use std::path::Path;
use std::process::Command;

#[test]
fn python_binding_pytest_suite() {
    let Some(python) = python_with("numpy, pytest") else {
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
