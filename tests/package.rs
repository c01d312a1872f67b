//! The crate as published (`cargo package --list`): what a crate user builds from (sources, the
//! build script and its config, the C header and C++ binding, the licenses, the README and
//! changelog, the doc example and the one golden case it reads), and nothing else: no tests,
//! fuzz corpora, scripts, CI files or benchmark images. `.ci/run` also builds the package.

use std::process::Command;

#[test]
fn the_package_holds_what_a_crate_user_needs_and_nothing_else() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["package", "--list", "--allow-dirty", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo package --list");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo package --list failed:\n{stderr}"
    );
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    for needed in [
        "Cargo.toml",
        "build.rs",
        "cbindgen.toml",
        "src/lib.rs",
        "src/ffi/mod.rs",
        "src/cuda/kernels/ctc.cu",
        "include/ctc.h",
        "bindings/cpp/ctc.hpp",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "README.md",
        "CHANGELOG.md",
        "examples/doc_example.rs",
        "tests/data/golden/seed_padded_mean.json",
    ] {
        assert!(
            files.iter().any(|f| f == needed),
            "{needed} is missing: {files:?}"
        );
    }
    let allowed = |f: &str| {
        f.starts_with("src/")
            || [".cargo_vcs_info.json", "Cargo.toml.orig", "Cargo.lock"].contains(&f)
            || f == "benches/ctc_bench.rs"
            || f.starts_with("tests/data/golden/seed_padded_mean")
            || [
                "Cargo.toml",
                "build.rs",
                "cbindgen.toml",
                "README.md",
                "CHANGELOG.md",
                "LICENSE-MIT",
                "LICENSE-APACHE",
            ]
            .contains(&f)
            || f == "include/ctc.h"
            || f == "bindings/cpp/ctc.hpp"
            || f == "examples/doc_example.rs"
    };
    let extra: Vec<&String> = files.iter().filter(|f| !allowed(f)).collect();
    assert!(extra.is_empty(), "not for crate users: {extra:?}");
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with(".png") || f.starts_with("fuzz/")),
        "images or fuzz corpora in the package"
    );
}
