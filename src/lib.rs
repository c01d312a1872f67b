//! # libctc: CTC loss with a C ABI
//!
//! Connectionist Temporal Classification loss and its gradient with exactly the semantics of
//! `torch.nn.functional.ctc_loss`, stricter validation, and a stable C ABI (`include/ctc.h`).
//!
//! - The algorithm is written down once in [`algorithm`]; the backends follow it name for name.
//! - The safe Rust API ([`ctc_loss`], [`ctc_loss_grad`], [`ctc_loss_and_grad`],
//!   [`ctc_loss_into`], [`workspace_size`]) takes ndarray views and returns owned arrays or writes
//!   into caller views. Rust users never touch a raw pointer.
//! - [`ffi`] holds every `extern "C"` function; it converts raw `CtcTensor`s into checked views and
//!   calls the safe API.
//!
//! ```
//! use ctc::{ctc_loss_and_grad, Inputs, IntView1, IntView2, Options, Reduction, Targets};
//! use ndarray::{array, Array3};
//!
//! // T = 2 frames, N = 1 sample, C = 2 classes (blank 0), uniform probabilities, target [1].
//! let log_probs = Array3::from_elem((2, 1, 2), 0.5f64.ln());
//! let targets = array![[1i64]];
//! let input_lengths = array![2i64];
//! let target_lengths = array![1i64];
//! let inputs = Inputs {
//!     log_probs: log_probs.view(),
//!     targets: Targets::Padded(IntView2::from(targets.view())),
//!     input_lengths: IntView1::from(input_lengths.view()),
//!     target_lengths: IntView1::from(target_lengths.view()),
//! };
//! let options = Options { reduction: Reduction::None, ..Options::default() };
//! let (loss, grad) = ctc_loss_and_grad(&inputs, &options, None).unwrap();
//! // Paths "1 1", "0 1", "1 0" each have probability 1/4.
//! assert!((loss[0] - (-(0.75f64).ln())).abs() < 1e-12);
//! assert_eq!(grad.dim(), (2, 1, 2));
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod algorithm;
mod api;
mod cpu;
mod cuda;
mod dispatch;
mod enums;
pub mod error;
pub mod ffi;
mod halfconv;
mod problem;
mod types;

pub use api::{
    ctc_align, ctc_align_into, ctc_loss, ctc_loss_and_grad, ctc_loss_grad, ctc_loss_into,
    release_cached_memory, workspace_size, workspace_size_for, CACHED_WORKSPACE_LIMIT,
};
#[doc(hidden)]
pub use dispatch::test_hooks;
pub use error::{Error, Status};
/// The float16 and bfloat16 element types (from the `half` crate), accumulated in float32.
pub use half::{bf16, f16};
pub use problem::{Inputs, IntView1, IntView2, PathViewMut, Targets};
pub use types::{Call, DType, Device, Element, Gradient, Input, Options, Real, Reduction};

/// Parses one decimal component of the crate version at compile time.
const fn parse_component(s: &str) -> u32 {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "version components are decimal");
        n = n * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    n
}

/// The version as MAJOR * 10000 + MINOR * 100 + PATCH (the header's `CTC_VERSION_NUMBER`).
pub const VERSION_NUMBER: u32 = parse_component(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
    + parse_component(env!("CARGO_PKG_VERSION_MINOR")) * 100
    + parse_component(env!("CARGO_PKG_VERSION_PATCH"));

/// Where `build.rs` wrote the header cbindgen generates from this source; the test suite compares
/// it with the committed `include/ctc.h`.
#[doc(hidden)]
pub const GENERATED_HEADER_PATH: &str = concat!(env!("OUT_DIR"), "/ctc.h");
