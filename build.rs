//! Generates the C header from the Rust source with cbindgen (pinned in Cargo.toml) into
//! `$OUT_DIR/ctc.h`. The committed `include/ctc.h` must equal it; `tests/header.rs` checks that
//! and rewrites the committed copy when `CTC_UPDATE_HEADER=1`.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ctc.h");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=build.rs");

    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("version major");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("version minor");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("version patch");

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    config.after_includes = Some(format!(
        "\n/* Version of this header; ctc_version_string() / ctc_version_number() give the library's. */\n\
         #define CTC_VERSION_MAJOR {major}\n\
         #define CTC_VERSION_MINOR {minor}\n\
         #define CTC_VERSION_PATCH {patch}\n\
         #define CTC_VERSION_NUMBER (CTC_VERSION_MAJOR * 10000 + CTC_VERSION_MINOR * 100 + CTC_VERSION_PATCH)\n\
         #define CTC_VERSION_STRING \"{version}\""
    ));
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&out);
}
