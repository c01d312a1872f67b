//! Helpers for tests that build and run native programs against the library (C, C++, the
//! installed package, Python through ctypes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Warnings that fail every C and C++ build of the tests.
pub const STRICT: [&str; 4] = ["-Wall", "-Wextra", "-pedantic", "-Werror"];

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh-or-reused directory `name` under CARGO_TARGET_TMPDIR.
pub fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("create a directory in CARGO_TARGET_TMPDIR");
    dir
}

/// `$var` from the environment, or `default`.
pub fn tool(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Whether `program --version` runs.
pub fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The command line of `cmd`, for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd`, panicking with its command line and output unless it succeeds.
pub fn run_ok(mut cmd: Command) -> Output {
    let line = show(&cmd);
    println!("$ {line}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
    assert!(
        out.status.success(),
        "{line} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The directory holding the libctc (`file`: libctc.so or libctc.a) this test executable was
/// built against.
///
/// The test executable is `target/<profile>/deps/<test>-<hash>`. Cargo writes the library's
/// `libctc.so` and `libctc.a` to `deps/` next to it, and copies them up to `target/<profile>/`
/// only when the library itself is a requested target (`cargo build`), so the copies there can be
/// stale after `cargo test`: `deps/` comes first.
pub fn library_dir(file: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe
        .parent()
        .expect("the test executable lies in a directory");
    let candidates = [
        deps.to_path_buf(),
        deps.parent().expect("deps/ has a parent").to_path_buf(),
    ];
    candidates
        .iter()
        .find(|d| d.join(file).is_file())
        .unwrap_or_else(|| panic!("{file} is in none of {candidates:?}"))
        .clone()
}

/// Linker arguments for a program using the shared library found by [`library_dir`], with an
/// rpath so that it runs without LD_LIBRARY_PATH.
pub fn shared_link_args() -> Vec<String> {
    let dir = library_dir("libctc.so");
    vec![
        format!("-L{}", dir.display()),
        "-lctc".into(),
        format!("-Wl,-rpath,{}", dir.display()),
        "-lm".into(),
    ]
}

/// (passed, failed) from a last line "`prefix`: P passed, F failed".
pub fn summary(stdout: &str, prefix: &str) -> (u32, u32) {
    let last = stdout.lines().last().unwrap_or_default();
    let rest = last
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix(": "))
        .unwrap_or_else(|| panic!("last line {last:?} is not the {prefix} summary"));
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        [p, "passed,", f, "failed"] => (p.parse().unwrap(), f.parse().unwrap()),
        _ => panic!("last line {last:?} is not the {prefix} summary"),
    }
}

/// Whether native builds of the tests can run here: Linux with `compiler`. Prints why not.
pub fn native_builds_possible(test: &str, compiler: &str) -> bool {
    if !cfg!(target_os = "linux") {
        super::skip::skip(
            test,
            "the native builds are written for Linux (ELF, -Wl,-rpath, libctc.so)",
        );
        return false;
    }
    if !available(compiler) {
        super::skip::skip(
            test,
            &format!("`{compiler} --version` does not run (install it or set CC/CXX)"),
        );
        return false;
    }
    true
}

/// Runs `exe` without LD_LIBRARY_PATH; returns (success, stdout), echoing its output.
pub fn run_program(exe: &Path, args: &[&Path]) -> (bool, String) {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    cmd.env_remove("LD_LIBRARY_PATH");
    let line = show(&cmd);
    println!("$ {line}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout)
}

/// A Python that can `import modules` (e.g. "numpy, pytest"): `$CTC_PYTHON`, else the
/// repository's `.venv` (which `.ci/run` creates), else `python3`.
pub fn python_with(modules: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("CTC_PYTHON").map(PathBuf::from),
        Some(manifest_dir().join(".venv/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", &format!("import {modules}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[allow(unused_imports)] // not every test binary uses them
pub use super::skip::{require_all, skip};
