//! The header-only C++ binding (bindings/cpp/ctc.hpp): tests/cpp/ built from two translation
//! units with -Wall -Wextra -pedantic -Werror, again without exceptions (-fno-exceptions), and the Kaldi-style example
//! (examples/kaldi_nnet3_step.cpp), whose strided results must equal the contiguous computation.
//! Skipped, with the reason printed, without a C++ compiler (`$CXX`, default `c++`).

mod common;
use common::native::{
    manifest_dir, native_builds_possible, run_ok, run_program, shared_link_args, summary, tmp_dir,
    tool, STRICT,
};
use std::path::Path;
use std::process::Command;

fn build(cxx: &str, sources: &[&str], exe: &Path) {
    build_with(cxx, sources, &[], exe);
}

fn build_with(cxx: &str, sources: &[&str], flags: &[&str], exe: &Path) {
    let root = manifest_dir();
    let mut cmd = Command::new(cxx);
    cmd.arg("-std=c++17")
        .args(STRICT)
        .args(flags)
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("bindings/cpp"));
    for s in sources {
        cmd.arg(root.join(s));
    }
    cmd.arg("-o").arg(exe).args(shared_link_args());
    run_ok(cmd);
}

#[test]
fn cpp_binding_two_translation_units() {
    let cxx = tool("CXX", "c++");
    if !native_builds_possible("cpp_binding_two_translation_units", &cxx) {
        return;
    }
    let exe = tmp_dir("cpp_api").join("test_ctc_hpp");
    build(
        &cxx,
        &["tests/cpp/test_ctc_hpp.cpp", "tests/cpp/other_tu.cpp"],
        &exe,
    );
    let (ok, stdout) = run_program(&exe, &[]);
    let (passed, failed) = summary(&stdout, "C++ tests");
    assert!(ok && failed == 0, "{failed} C++ checks failed");
    assert!(passed >= 15, "only {passed} C++ checks ran");
}

/// The binding in a build without exceptions (inference engines, embedded builds): the try_
/// functions return a ctc::Status; the throwing ones are absent.
#[test]
fn cpp_binding_without_exceptions() {
    let cxx = tool("CXX", "c++");
    if !native_builds_possible("cpp_binding_without_exceptions", &cxx) {
        return;
    }
    let exe = tmp_dir("cpp_api").join("test_nothrow");
    build_with(
        &cxx,
        &["tests/cpp/test_nothrow.cpp"],
        &["-fno-exceptions"],
        &exe,
    );
    let (ok, stdout) = run_program(&exe, &[]);
    let (passed, failed) = summary(&stdout, "C++ no-exceptions tests");
    assert!(ok && failed == 0, "{failed} C++ checks failed");
    assert!(passed >= 15, "only {passed} C++ checks ran");
}

#[test]
fn kaldi_style_example_matches_contiguous_computation() {
    let cxx = tool("CXX", "c++");
    if !native_builds_possible("kaldi_style_example", &cxx) {
        return;
    }
    let exe = tmp_dir("cpp_api").join("kaldi_nnet3_step");
    build(&cxx, &["examples/kaldi_nnet3_step.cpp"], &exe);
    let (ok, stdout) = run_program(&exe, &[]);
    assert!(ok, "the example reports a difference");
    assert!(stdout.contains("max |strided - contiguous| = 0, derivative padding untouched: yes"));
    let losses: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split("loss ").nth(1))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(losses.len(), 4);
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
}
