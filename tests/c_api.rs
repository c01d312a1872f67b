//! The C ABI from C: compiles `include/ctc.h` alone as C99, C11 and C++17, then builds
//! `tests/c/test_ctc.c` twice, against `libctc.so` (with an rpath) and against `libctc.a`, and
//! runs both on the torch documentation example (golden cases `seed_padded_mean` and
//! `seed_concat_mean`, converted here to a plain text file the C program reads).
//!
//! Skipped, with the reason printed, when no C compiler (`$CC`, default `cc`) is found or the
//! platform is not Linux.

mod common;

use common::native::{
    available, library_dir, manifest_dir, run_ok, run_program, shared_link_args, summary, tool,
    STRICT,
};
use common::{golden_dir, load_golden, Golden};
use std::fmt::Write as _;
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

/// Appends one golden case in the format `tests/c/test_ctc.c` reads.
fn write_case(out: &mut String, g: &Golden) {
    assert!(g.batched, "{}: the C program takes batched cases", g.name);
    assert_eq!(
        g.reduction,
        ctc::ffi::CTC_REDUCTION_MEAN,
        "{}: mean reduction",
        g.name
    );
    assert_eq!(g.blank, 0, "{}: blank 0", g.name);
    assert!(!g.zero_infinity, "{}: zero_infinity false", g.name);
    assert_eq!(g.grad_out, [1.0], "{}: upstream gradient 1", g.name);
    assert_eq!(g.loss.len(), 1, "{}: one reduced loss", g.name);
    let n = g.t * g.n * g.c;
    assert_eq!(g.log_probs.len(), n);
    assert_eq!(g.grad.len(), n);
    let s = if g.padded { g.s } else { 0 };
    writeln!(
        out,
        "{} {} {} {} {} {} {}",
        g.name,
        g.t,
        g.n,
        g.c,
        u8::from(g.padded),
        s,
        g.targets.len()
    )
    .unwrap();
    let ints = |out: &mut String, v: &[i64]| {
        let line: Vec<String> = v.iter().map(i64::to_string).collect();
        writeln!(out, "{}", line.join(" ")).unwrap();
    };
    // `{:e}` prints the shortest text that reads back as the same f64 (strtod rounds exactly).
    let reals = |out: &mut String, v: &[f64]| {
        for row in v.chunks(g.c.max(1)) {
            let line: Vec<String> = row.iter().map(|x| format!("{x:e}")).collect();
            writeln!(out, "{}", line.join(" ")).unwrap();
        }
    };
    ints(out, &g.targets);
    ints(out, &g.input_lengths);
    ints(out, &g.target_lengths);
    reals(out, &g.log_probs);
    reals(out, &g.loss);
    reals(out, &g.grad);
}

/// Writes the data file of the given cases and returns its path.
fn write_data(name: &str, cases: &[Golden]) -> PathBuf {
    let mut text = format!("ctc-c-test-data 1\n{}\n", cases.len());
    for g in cases {
        write_case(&mut text, g);
    }
    let path = tmp_dir().join(name);
    std::fs::write(&path, text).expect("write the data file");
    path
}

fn golden_cases() -> Vec<Golden> {
    let cases: Vec<Golden> = ["seed_padded_mean.json", "seed_concat_mean.json"]
        .iter()
        .map(|f| load_golden(&golden_dir().join(f)))
        .collect();
    for g in &cases {
        assert_eq!(
            (g.t, g.n, g.c),
            (50, 16, 20),
            "{}: the torch documentation example",
            g.name
        );
    }
    assert!(
        cases[0].padded && cases[0].s == 30,
        "seed_padded_mean has (16, 30) targets"
    );
    assert!(
        !cases[1].padded,
        "seed_concat_mean has concatenated targets"
    );
    cases
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
        println!(
            "SKIPPED c_api: the C build below is written for Linux (ELF, -Wl,-rpath, libctc.so)"
        );
        return;
    }
    let cc = tool("CC", "cc");
    if !available(&cc) {
        println!("SKIPPED c_api: no C compiler: `{cc} --version` does not run (set CC to one)");
        return;
    }
    let cxx = tool("CXX", "c++");

    // The header on its own, in every language the contract serves.
    check_header(&cc, "c", "c99");
    check_header(&cc, "c", "c11");
    if available(&cxx) {
        check_header(&cxx, "c++", "c++17");
    } else {
        println!("SKIPPED the C++17 header check: `{cxx} --version` does not run (set CXX to one)");
    }

    let data = write_data("seed_cases.txt", &golden_cases());
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
    let bad = write_data("seed_cases_wrong_loss.txt", &wrong);
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
