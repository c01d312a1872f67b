//! Installs libctc into a temporary prefix with scripts/install.sh and builds a tiny consumer
//! project (tests/consumer: C and C++) against it both ways: pkg-config and CMake
//! (`find_package(ctc)`, target `ctc::ctc` and `ctc::ctc_static`). Each half is skipped, with the
//! reason printed, when its tool (pkg-config, cmake) or a compiler is missing.

mod common;
use common::native::{
    available, manifest_dir, native_builds_possible, run_ok, run_program, tmp_dir, tool,
};
use common::skip::skip;
use std::path::Path;
use std::process::Command;

fn install(prefix: &Path) {
    let _ = std::fs::remove_dir_all(prefix);
    let mut cmd = Command::new("bash");
    cmd.arg(manifest_dir().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(prefix);
    run_ok(cmd);
    for f in [
        "include/ctc.h",
        "include/ctc.hpp",
        "lib/libctc.a",
        "lib/libctc.so",
        "lib/pkgconfig/ctc.pc",
        "lib/cmake/ctc/ctcConfig.cmake",
        "lib/cmake/ctc/ctcConfigVersion.cmake",
        "share/doc/libctc/LICENSE-MIT",
        "share/doc/libctc/LICENSE-APACHE",
        "share/doc/libctc/CHANGELOG.md",
    ] {
        assert!(prefix.join(f).exists(), "{f} installed");
    }
    let version = env!("CARGO_PKG_VERSION");
    assert!(prefix.join(format!("lib/libctc.so.{version}")).is_file());
    // The soname: libctc.so.MAJOR, or libctc.so.0.MINOR while the major version is 0 (each 0.x
    // minor release may change the ABI).
    let (major, minor) = (
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
    );
    let soname = if major == "0" {
        format!("libctc.so.0.{minor}")
    } else {
        format!("libctc.so.{major}")
    };
    assert!(
        prefix.join("lib").join(&soname).exists(),
        "{soname} installed"
    );
    if available("readelf") {
        let mut cmd = Command::new("readelf");
        cmd.arg("-d")
            .arg(prefix.join(format!("lib/libctc.so.{version}")));
        let out = String::from_utf8_lossy(&run_ok(cmd).stdout).into_owned();
        assert!(
            out.contains(&format!("Library soname: [{soname}]")),
            "{out}"
        );
    }
}

#[test]
fn installed_package_builds_consumers_with_pkg_config_and_cmake() {
    let cc = tool("CC", "cc");
    let cxx = tool("CXX", "c++");
    if !native_builds_possible("install", &cc) || !native_builds_possible("install", &cxx) {
        return;
    }
    if !available("cargo") {
        skip("install", "cargo is not on PATH for scripts/install.sh");
        return;
    }
    let work = tmp_dir("install");
    let prefix = work.join("prefix");
    install(&prefix);
    let consumer = manifest_dir().join("tests/consumer");

    if available("pkg-config") {
        let pc = |arg: &str| -> Vec<String> {
            let mut cmd = Command::new("pkg-config");
            cmd.arg(arg)
                .arg("ctc")
                .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"));
            String::from_utf8_lossy(&run_ok(cmd).stdout)
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        assert_eq!(pc("--modversion"), [env!("CARGO_PKG_VERSION")]);
        let (cflags, libs) = (pc("--cflags"), pc("--libs"));
        let obj = work.join("consumer_cpp.o");
        let mut cmd = Command::new(&cxx);
        cmd.args(["-std=c++17", "-c"])
            .args(&cflags)
            .arg(consumer.join("consumer.cpp"))
            .arg("-o")
            .arg(&obj);
        run_ok(cmd);
        let exe = work.join("consumer_pkg_config");
        let mut cmd = Command::new(&cxx);
        cmd.args(&cflags)
            .args(["-x", "c"])
            .arg(consumer.join("main.c"))
            .args(["-x", "none"])
            .arg(&obj)
            .args(&libs)
            .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()))
            .arg("-lm")
            .arg("-o")
            .arg(&exe);
        run_ok(cmd);
        let (ok, out) = run_program(&exe, &[]);
        assert!(ok && out.contains(": ok"), "pkg-config consumer: {out}");
    } else {
        skip(
            "install, the pkg-config consumer",
            "pkg-config is not installed",
        );
    }

    if available("cmake") {
        let build = work.join("cmake-build");
        let _ = std::fs::remove_dir_all(&build);
        let mut cmd = Command::new("cmake");
        cmd.arg("-S")
            .arg(&consumer)
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg(format!("-DCMAKE_C_COMPILER={cc}"))
            .arg(format!("-DCMAKE_CXX_COMPILER={cxx}"));
        run_ok(cmd);
        let mut cmd = Command::new("cmake");
        cmd.arg("--build").arg(&build);
        run_ok(cmd);
        for exe in ["consumer", "consumer_static"] {
            let (ok, out) = run_program(&build.join(exe), &[]);
            assert!(ok && out.contains(": ok"), "CMake {exe}: {out}");
        }
    } else {
        skip(
            "install, the CMake consumer",
            "cmake is not installed (.ci/run installs it)",
        );
    }
}
