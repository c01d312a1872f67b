//! The committed include/ctc.h equals what cbindgen (pinned) generates from the source, and its
//! version macros equal the crate version. `CTC_UPDATE_HEADER=1 cargo test --test header`
//! rewrites the committed copy.

use std::ffi::CStr;
use std::path::Path;

fn committed_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include/ctc.h")
}

#[test]
fn committed_header_matches_cbindgen_output() {
    let generated = std::fs::read_to_string(ctc::GENERATED_HEADER_PATH)
        .expect("build.rs writes the generated header");
    let path = committed_path();
    if std::env::var_os("CTC_UPDATE_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        eprintln!("rewrote {}", path.display());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                committed.lines().count().min(generated.lines().count()),
                |i| i,
            );
        panic!(
            "include/ctc.h differs from the cbindgen output (first difference at line {}). \
             Run `CTC_UPDATE_HEADER=1 cargo test --test header` and commit the result.",
            line + 1
        );
    }
}

fn macro_value(header: &str, name: &str) -> String {
    let prefix = format!("#define {name} ");
    header
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} is not defined in include/ctc.h"))
        .trim()
        .to_owned()
}

#[test]
fn version_macros_equal_the_crate_version() {
    let header = std::fs::read_to_string(committed_path()).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        macro_value(&header, "CTC_VERSION_STRING"),
        format!("\"{version}\"")
    );
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(
        macro_value(&header, "CTC_VERSION_MAJOR"),
        parts[0].to_string()
    );
    assert_eq!(
        macro_value(&header, "CTC_VERSION_MINOR"),
        parts[1].to_string()
    );
    assert_eq!(
        macro_value(&header, "CTC_VERSION_PATCH"),
        parts[2].to_string()
    );
    assert_eq!(
        ctc::VERSION_NUMBER,
        parts[0] * 10000 + parts[1] * 100 + parts[2]
    );
    assert_eq!(ctc::ffi::ctc_version_number(), ctc::VERSION_NUMBER);
    // SAFETY: a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(ctc::ffi::ctc_version_string()) };
    assert_eq!(s.to_str().unwrap(), version);
}

/// Every `#define NAME VALUE` of the committed header whose name starts with `prefix`.
fn defines(header: &str, prefix: &str) -> Vec<(String, i32)> {
    header
        .lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn header_constants_are_the_enumeration_table() {
    use ctc::{Call, DType, Device, Gradient, Input, Reduction, Status};
    let header = std::fs::read_to_string(committed_path()).unwrap();
    fn table<E: Copy + Into<i32>>(
        all: &[E],
        name: impl Fn(E) -> &'static str,
    ) -> Vec<(String, i32)> {
        all.iter()
            .map(|&v| (name(v).to_owned(), v.into()))
            .collect()
    }
    let families = [
        ("CTC_STATUS_", table(Status::ALL, Status::c_name)),
        ("CTC_DTYPE_", table(DType::ALL, DType::c_name)),
        ("CTC_DEVICE_", table(Device::ALL, Device::c_name)),
        ("CTC_REDUCTION_", table(Reduction::ALL, Reduction::c_name)),
        ("CTC_CALL_", table(Call::ALL, Call::c_name)),
        ("CTC_INPUT_", table(Input::ALL, Input::c_name)),
        ("CTC_GRADIENT_", table(Gradient::ALL, Gradient::c_name)),
    ];
    for (prefix, want) in families {
        assert_eq!(
            defines(&header, prefix),
            want,
            "the {prefix}* constants of ctc.h"
        );
    }
    // The status words of ctc_status_string come from the same table.
    for &s in Status::ALL {
        // SAFETY: a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(ctc::ffi::ctc_status_string(s as i32)) };
        assert_eq!(text.to_str().unwrap(), s.word());
        assert_eq!(Status::try_from(s as i32), Ok(s));
    }
    assert!(
        Reduction::try_from(3).is_err()
            && DType::try_from(6).is_err()
            && Device::try_from(2).is_err()
            && Call::try_from(4).is_err()
    );
}

#[test]
fn struct_layouts_match_the_contract() {
    use ctc::ffi::{CtcOptions, CtcTensor};
    use std::mem::{offset_of, size_of};
    // API.md field orders; sizes on LP64 targets.
    assert_eq!(offset_of!(CtcTensor, data), 0);
    assert_eq!(offset_of!(CtcTensor, dtype), size_of::<usize>());
    assert_eq!(offset_of!(CtcTensor, ndim), size_of::<usize>() + 12);
    assert_eq!(offset_of!(CtcTensor, shape), size_of::<usize>() + 16);
    assert_eq!(offset_of!(CtcTensor, strides), size_of::<usize>() + 40);
    assert_eq!(offset_of!(CtcOptions, struct_size), 0);
    assert_eq!(offset_of!(CtcOptions, blank), 4);
    assert_eq!(offset_of!(CtcOptions, reduction), 8);
    assert_eq!(offset_of!(CtcOptions, zero_infinity), 12);
    assert_eq!(offset_of!(CtcOptions, num_threads), 16);
    assert!(offset_of!(CtcOptions, cuda_stream) < offset_of!(CtcOptions, workspace));
    assert!(offset_of!(CtcOptions, workspace) < offset_of!(CtcOptions, workspace_bytes));
    let d = ctc::ffi::ctc_options_default();
    assert_eq!(d.struct_size as usize, size_of::<CtcOptions>());
    assert_eq!(
        (d.blank, d.reduction, d.zero_infinity.0, d.num_threads),
        (0, ctc::ffi::CTC_REDUCTION_MEAN, 0, 0)
    );
    assert!(d.cuda_stream.is_null() && d.workspace.is_null() && d.workspace_bytes == 0);
}
