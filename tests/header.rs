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

#[test]
fn header_constants_equal_the_rust_enumerations() {
    use ctc::ffi::*;
    use ctc::{DType, Device, Reduction, Status};
    for s in Status::ALL {
        assert_eq!(Status::try_from(s as i32), Ok(s));
    }
    let statuses = [
        (CTC_STATUS_SUCCESS, Status::Success),
        (CTC_STATUS_INVALID_ARGUMENT, Status::InvalidArgument),
        (CTC_STATUS_UNSUPPORTED, Status::Unsupported),
        (CTC_STATUS_OUT_OF_MEMORY, Status::OutOfMemory),
        (CTC_STATUS_DEVICE_ERROR, Status::DeviceError),
        (CTC_STATUS_INTERNAL_ERROR, Status::InternalError),
    ];
    for (c, r) in statuses {
        assert_eq!(c, r as i32);
    }
    let dtypes = [
        (CTC_DTYPE_FLOAT32, DType::Float32),
        (CTC_DTYPE_FLOAT64, DType::Float64),
        (CTC_DTYPE_FLOAT16, DType::Float16),
        (CTC_DTYPE_BFLOAT16, DType::BFloat16),
        (CTC_DTYPE_INT32, DType::Int32),
        (CTC_DTYPE_INT64, DType::Int64),
    ];
    for (c, r) in dtypes {
        assert_eq!(DType::try_from(c), Ok(r));
    }
    assert_eq!(Device::try_from(CTC_DEVICE_CPU), Ok(Device::Cpu));
    assert_eq!(Device::try_from(CTC_DEVICE_CUDA), Ok(Device::Cuda));
    assert_eq!(Reduction::try_from(CTC_REDUCTION_NONE), Ok(Reduction::None));
    assert_eq!(Reduction::try_from(CTC_REDUCTION_MEAN), Ok(Reduction::Mean));
    assert_eq!(Reduction::try_from(CTC_REDUCTION_SUM), Ok(Reduction::Sum));
    assert!(
        Reduction::try_from(3).is_err()
            && DType::try_from(6).is_err()
            && Device::try_from(2).is_err()
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
