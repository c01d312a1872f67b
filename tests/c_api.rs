//! The C ABI from C: compiles `include/ctc.h` alone as C99, C11 and C++17, then builds
//! `tests/c/test_ctc.c` twice, against `libctc.so` (with an rpath) and against `libctc.a`, and
//! runs both on the torch documentation example (golden cases `seed_padded_mean` and
//! `seed_concat_mean`, converted here to a plain text file the C program reads).
//!
//! Skipped, with the reason printed, when no C compiler (`$CC`, default `cc`) is found or the
//! platform is not Linux.

mod common;

use common::c_data::{golden_cases, write_data};
use common::native::{
    available, library_dir, manifest_dir, run_ok, run_program, shared_link_args, summary, tool,
    STRICT,
};
use common::skip::skip;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp_dir() -> PathBuf {
    common::native::tmp_dir("c_api")
}

/// The shared libraries `exe` loads, as `ldd` lists them (without `LD_LIBRARY_PATH`, so only the
/// rpath and the system directories count); None when `ldd` is not available.
fn ldd(exe: &Path) -> Option<String> {
    if !available("ldd") {
        println!("(ldd not available: the libraries the builds load are not listed)");
        return None;
    }
    let mut cmd = Command::new("ldd");
    cmd.arg(exe).env_remove("LD_LIBRARY_PATH");
    let out = run_ok(cmd);
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Compiles the header on its own with `compiler` in `std`.
fn check_header(compiler: &str, lang: &str, std: &str) {
    let mut cmd = Command::new(compiler);
    cmd.arg(format!("-std={std}"))
        .args(STRICT)
        .args(["-x", lang, "-fsyntax-only"])
        .arg(manifest_dir().join("include/ctc.h"));
    run_ok(cmd);
}

/// Compiles `tests/c/test_ctc.c` into `exe`, linked with `link` (arguments after the source).
fn build_program(cc: &str, exe: &Path, link: &[String]) {
    let dir = manifest_dir();
    let mut cmd = Command::new(cc);
    cmd.arg("-std=c99")
        .args(STRICT)
        .arg("-I")
        .arg(dir.join("include"))
        .arg(dir.join("tests/c/test_ctc.c"))
        .arg("-o")
        .arg(exe)
        .args(link);
    run_ok(cmd);
}

/// Checks a run that must pass; returns its number of checks.
fn expect_pass(what: &str, exe: &Path, data: &Path) -> u32 {
    let (ok, stdout) = run_program(exe, &[data]);
    let (passed, failed) = summary(&stdout, "C tests");
    let fails: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        ok && failed == 0 && fails.is_empty(),
        "{what}: {failed} C checks failed:\n{}",
        fails.join("\n")
    );
    assert!(passed >= 50, "{what}: only {passed} C checks ran");
    assert_eq!(
        passed as usize,
        stdout.lines().filter(|l| l.starts_with("ok")).count(),
        "{what}: the summary counts every ok line"
    );
    passed
}

#[test]
fn c_program_against_shared_and_static_library() {
    if !cfg!(target_os = "linux") {
        skip(
            "c_api",
            "the C build below is written for Linux (ELF, -Wl,-rpath, libctc.so)",
        );
        return;
    }
    let cc = tool("CC", "cc");
    if !available(&cc) {
        skip(
            "c_api",
            &format!("no C compiler: `{cc} --version` does not run (set CC to one)"),
        );
        return;
    }
    let cxx = tool("CXX", "c++");

    // The header on its own, in every language the contract serves.
    check_header(&cc, "c", "c99");
    check_header(&cc, "c", "c11");
    if available(&cxx) {
        check_header(&cxx, "c++", "c++17");
    } else {
        skip(
            "c_api, the C++17 header check",
            &format!("`{cxx} --version` does not run (set CXX to one)"),
        );
    }

    let data = write_data(&tmp_dir(), "seed_cases.txt", &golden_cases());
    let tmp = tmp_dir();

    // Against libctc.so, found through an rpath.
    let so_dir = library_dir("libctc.so");
    let shared = tmp.join("test_ctc_shared");
    build_program(&cc, &shared, &shared_link_args());
    if let Some(deps) = ldd(&shared) {
        let so = so_dir.join("libctc.so");
        assert!(
            deps.lines()
                .any(|l| l.contains("libctc.so") && l.contains(&*so.to_string_lossy())),
            "the shared build resolves libctc.so to {}:\n{deps}",
            so.display()
        );
    }
    let n_shared = expect_pass("libctc.so", &shared, &data);

    // Against libctc.a: the Rust standard library inside needs these system libraries.
    let a_dir = library_dir("libctc.a");
    let static_exe = tmp.join("test_ctc_static");
    let mut link = vec![a_dir.join("libctc.a").display().to_string()];
    link.extend(
        [
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ]
        .map(String::from),
    );
    build_program(&cc, &static_exe, &link);
    if let Some(deps) = ldd(&static_exe) {
        assert!(
            !deps.contains("libctc"),
            "the static build does not load libctc dynamically:\n{deps}"
        );
    }
    let n_static = expect_pass("libctc.a", &static_exe, &data);
    assert_eq!(n_shared, n_static, "both builds run the same checks");

    // The checks bite: a golden loss off by 1e-6 relative fails the float64 comparison (and only it).
    let mut wrong = golden_cases();
    wrong[1].loss[0] *= 1.0 + 1e-6;
    let bad = write_data(&tmp_dir(), "seed_cases_wrong_loss.txt", &wrong);
    let (ok, stdout) = run_program(&shared, &[&bad]);
    let (_, failed) = summary(&stdout, "C tests");
    let fails: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(!ok, "the C program exits non-zero when a check fails");
    assert_eq!(failed as usize, fails.len());
    assert!(
        fails.len() == 2
            && fails
                .iter()
                .all(|l| l.contains("seed_concat_mean") && l.contains(": loss ")),
        "exactly the float64 loss checks of seed_concat_mean fail:\n{}",
        fails.join("\n")
    );
}
