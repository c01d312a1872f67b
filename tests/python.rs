//! Runs the Python binding's pytest suite (tests/python/) against the library this `cargo test`
//! built, with the first Python that has numpy and pytest of `$CTC_PYTHON`, the repository's
//! `.venv` (which `.ci/run` creates, with torch) and `python3`. Without one it prints why and
//! skips, except under `CTC_REQUIRE_ALL=1` (CI), where it fails, as pytest then also fails on any
//! skipped test (tests/python/conftest.py): torch missing, say.

mod common;
use common::native::{library_dir, python_with};
use common::skip::skip;
use std::path::Path;
use std::process::Command;

#[test]
fn python_binding_pytest_suite() {
    let Some(python) = python_with("numpy, pytest") else {
        let why =
            "no Python with numpy and pytest (set CTC_PYTHON or run .ci/run, which creates .venv)";
        skip("python_binding_pytest_suite", why);
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
