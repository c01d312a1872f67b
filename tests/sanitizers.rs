//! The C and C++ tests under checkers:
//!
//! - `tests/c/test_ctc.c` and `tests/cpp/test_ctc_hpp.cpp` + `tests/cpp/other_tu.cpp` built with
//!   `-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all` against
//!   `libctc.so` and run with LeakSanitizer on (`detect_leaks=1`): any heap error in the test
//!   programs, any undefined behaviour in them or in the header-only C++ binding, any misuse of the
//!   C ABI's memory (an interceptor sees a bad free, a double free, a leak of anything the
//!   library allocated with malloc) stops the program with a report. libctc.so itself is not
//!   instrumented (that is the fuzzer's job, `scripts/fuzz.sh`): its loads and stores are not
//!   checked, its allocations are.
//! - `test_ctc.c` built plainly and run under `valgrind --error-exitcode=99 --leak-check=full`,
//!   which checks the uninstrumented library's memory accesses too (the library's SIMD path is
//!   picked at run time; valgrind emulates a CPU without AVX-512, so the AVX2 path runs).
//!
//! Each part prints "SKIPPED ..." with the reason and passes when its tool is missing or the
//! sanitizer runtime cannot be linked (and fails then under `CTC_REQUIRE_ALL=1`).

mod common;

use common::c_data::{golden_cases, write_data};
use common::native::{
    available, manifest_dir, native_builds_possible, run_ok, shared_link_args, show, summary,
    tmp_dir, tool, STRICT,
};
use common::skip::skip;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const SANITIZE: [&str; 4] = [
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
    "-g",
];

fn dir() -> PathBuf {
    tmp_dir("sanitizers")
}

/// Whether `compiler` can build and run a sanitized program here; prints why not.
fn sanitizers_work(test: &str, compiler: &str, lang: &str) -> bool {
    let (src, code) = if lang == "c" {
        (
            "probe.c",
            "#include <stdlib.h>\nint main(void) { free(malloc(8)); return 0; }\n",
        )
    } else {
        (
            "probe.cpp",
            "#include <vector>\nint main() { std::vector<int> v(8); return v[1]; }\n",
        )
    };
    let src = dir().join(src);
    let exe = dir().join(format!("probe_{lang}"));
    std::fs::write(&src, code).unwrap();
    let out = Command::new(compiler)
        .args(SANITIZE)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            skip(
                test,
                &format!(
                    "{compiler} cannot link the ASan/UBSan runtime: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            );
            return false;
        }
        Err(e) => {
            skip(test, &format!("cannot run {compiler}: {e}"));
            return false;
        }
    }
    match sanitized(&exe).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            // E.g. ASan cannot reserve its shadow memory under a small address-space limit, or
            // LeakSanitizer cannot ptrace under some container seccomp profiles.
            skip(
                test,
                &format!(
                    "a trivial sanitized program fails here ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            );
            false
        }
        Err(e) => {
            skip(test, &format!("cannot run a sanitized program: {e}"));
            false
        }
    }
}

/// The suppressions for LeakSanitizer (see the file for why each one is there).
fn lsan_suppressions() -> PathBuf {
    manifest_dir().join("tests/data/lsan.supp")
}

/// A command running `exe` with the sanitizers' options: leaks checked, every report fatal.
fn sanitized(exe: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.env_remove("LD_LIBRARY_PATH")
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:exitcode=86:strict_string_checks=1:\
             detect_stack_use_after_return=1:check_initialization_order=1",
        )
        .env(
            "LSAN_OPTIONS",
            format!(
                "suppressions={}:print_suppressions=1",
                lsan_suppressions().display()
            ),
        )
        .env(
            "UBSAN_OPTIONS",
            "print_stacktrace=1:halt_on_error=1:exitcode=87",
        );
    cmd
}

/// Runs `cmd`; returns (success, stdout), echoing both streams.
fn run(mut cmd: Command) -> (bool, String, String) {
    let line = show(&cmd);
    println!("$ {line}");
    let start = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    print!("{stdout}");
    eprint!("{stderr}");
    println!("({} in {:.1} s)", out.status, start.elapsed().as_secs_f64());
    (out.status.success(), stdout, stderr)
}

fn build_c(cc: &str, extra: &[&str], exe: &Path) {
    let root = manifest_dir();
    let mut cmd = Command::new(cc);
    cmd.arg("-std=c99")
        .args(STRICT)
        .args(extra)
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("tests/c/test_ctc.c"))
        .arg("-o")
        .arg(exe)
        .args(shared_link_args());
    run_ok(cmd);
}

fn expect_c_pass(what: &str, ok: bool, stdout: &str, stderr: &str) {
    assert!(
        !stderr.contains("ERROR: AddressSanitizer")
            && !stderr.contains("ERROR: LeakSanitizer")
            && !stderr.contains("runtime error:"),
        "{what}: a sanitizer reported an error:\n{stderr}"
    );
    let (passed, failed) = summary(stdout, "C tests");
    assert!(ok && failed == 0, "{what}: {failed} C checks failed");
    assert!(passed >= 50, "{what}: only {passed} C checks ran");
}

/// The checkers bite: a heap overflow, a signed overflow and a leak in small programs built and
/// run exactly like the tests each stop the program with their report.
fn sanitizers_bite(cc: &str) {
    let cases = [
        (
            "heap_overflow",
            "#include <stdlib.h>\nint main(int argc, char **argv) { (void)argv; char *p = malloc(8); \
             p[8 + argc - 1] = 1; free(p); return 0; }\n",
            "ERROR: AddressSanitizer: heap-buffer-overflow",
        ),
        (
            "signed_overflow",
            "#include <limits.h>\n#include <stdio.h>\nint main(void) { volatile int x = INT_MAX; \
             int y = x + 1; printf(\"%d\\n\", y); return 0; }\n",
            "runtime error: signed integer overflow",
        ),
        (
            "leak",
            "#include <stdlib.h>\nvoid *volatile keep;\nint main(void) { keep = malloc(33); keep = 0; \
             return 0; }\n",
            "ERROR: LeakSanitizer: detected memory leaks",
        ),
    ];
    for (name, code, report) in cases {
        let src = dir().join(format!("bite_{name}.c"));
        let exe = dir().join(format!("bite_{name}"));
        std::fs::write(&src, code).unwrap();
        let mut cmd = Command::new(cc);
        cmd.args(SANITIZE).arg(&src).arg("-o").arg(&exe);
        run_ok(cmd);
        let (ok, _, stderr) = run(sanitized(&exe));
        assert!(
            !ok && stderr.contains(report),
            "{name}: the sanitized build does not report {report:?}"
        );
    }
}

#[test]
fn c_test_under_address_and_undefined_behaviour_sanitizers() {
    let cc = tool("CC", "cc");
    let test = "c_test_under_address_and_undefined_behaviour_sanitizers";
    if !native_builds_possible(test, &cc) || !sanitizers_work(test, &cc, "c") {
        return;
    }
    sanitizers_bite(&cc);
    let data = write_data(&dir(), "seed_cases.txt", &golden_cases());
    let exe = dir().join("test_ctc_asan");
    build_c(&cc, &SANITIZE, &exe);
    let mut cmd = sanitized(&exe);
    cmd.arg(&data);
    let (ok, stdout, stderr) = run(cmd);
    expect_c_pass("ASan/UBSan C test", ok, &stdout, &stderr);
}

#[test]
fn cpp_test_under_address_and_undefined_behaviour_sanitizers() {
    let cxx = tool("CXX", "c++");
    let test = "cpp_test_under_address_and_undefined_behaviour_sanitizers";
    if !native_builds_possible(test, &cxx) || !sanitizers_work(test, &cxx, "c++") {
        return;
    }
    let root = manifest_dir();
    let exe = dir().join("test_ctc_hpp_asan");
    let mut cmd = Command::new(&cxx);
    cmd.arg("-std=c++17")
        .args(STRICT)
        .args(SANITIZE)
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("bindings/cpp"))
        .arg(root.join("tests/cpp/test_ctc_hpp.cpp"))
        .arg(root.join("tests/cpp/other_tu.cpp"))
        .arg("-o")
        .arg(&exe)
        .args(shared_link_args());
    run_ok(cmd);
    let (ok, stdout, stderr) = run(sanitized(&exe));
    assert!(
        !stderr.contains("ERROR: AddressSanitizer")
            && !stderr.contains("ERROR: LeakSanitizer")
            && !stderr.contains("runtime error:"),
        "a sanitizer reported an error:\n{stderr}"
    );
    let (passed, failed) = summary(&stdout, "C++ tests");
    assert!(ok && failed == 0, "{failed} C++ checks failed");
    assert!(passed >= 15, "only {passed} C++ checks ran");
}

#[test]
fn c_test_under_valgrind() {
    let cc = tool("CC", "cc");
    let test = "c_test_under_valgrind";
    if !native_builds_possible(test, &cc) {
        return;
    }
    if !available("valgrind") {
        skip(
            test,
            "`valgrind --version` does not run (apt-get install valgrind)",
        );
        return;
    }
    let data = write_data(&dir(), "seed_cases_valgrind.txt", &golden_cases());
    let exe = dir().join("test_ctc_plain");
    build_c(&cc, &["-g", "-O1"], &exe);
    let mut cmd = Command::new("valgrind");
    cmd.env_remove("LD_LIBRARY_PATH")
        .args(["--error-exitcode=99", "--leak-check=full"])
        .arg(format!(
            "--suppressions={}",
            manifest_dir().join("tests/data/valgrind.supp").display()
        ))
        .arg(&exe)
        .arg(&data);
    let (ok, stdout, stderr) = run(cmd);
    if stderr.contains("unrecognised instruction") || stderr.contains("unhandled instruction") {
        panic!(
            "valgrind cannot decode an instruction the library executes (SIGILL under \
             valgrind; the library's run-time SIMD dispatch picked a path valgrind does not \
             emulate):\n{stderr}"
        );
    }
    assert!(
        stderr.contains("ERROR SUMMARY: 0 errors"),
        "valgrind reported errors:\n{stderr}"
    );
    expect_c_pass("valgrind C test", ok, &stdout, &stderr);
}
