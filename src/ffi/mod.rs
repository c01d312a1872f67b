//! The C ABI: every `extern "C"` item of the library. cbindgen turns this module (types,
//! constants, functions and their doc comments) into `include/ctc.h`.
//!
//! Each function validates its arguments completely (through `tensor::RawTensor` and the safe
//! core's `crate::problem`) before it reads a tensor element or writes an output, runs inside
//! `guard::guard` so that no panic crosses into C, and leaves a message in the thread's
//! last-error slot.
//!
//! The items' doc comments are C documentation (cbindgen copies them into the header), where
//! `loss[n]` is an index, not a Rust link: rustdoc's link check is off for this module.
#![allow(rustdoc::broken_intra_doc_links)]

mod args;
pub(crate) mod guard;
pub(crate) mod tensor;

use crate::dispatch;
use crate::error::{invalid, Error, Status};
use crate::types::{enum_from_c, Call};
use args::{Args, Pointers, Want};
use std::ffi::{c_char, c_void};

/// Status of a call (a 32-bit integer in the ABI). `CTC_STATUS_SUCCESS` is 0; every other value
/// means nothing was written to the outputs and `ctc_last_error_message()` says why.
pub type CtcStatus = i32;
/// The call succeeded.
pub const CTC_STATUS_SUCCESS: CtcStatus = 0;
/// A bad pointer, shape, stride, length, label or option.
pub const CTC_STATUS_INVALID_ARGUMENT: CtcStatus = 1;
/// A valid request this build or machine cannot serve (no CUDA driver, a dtype not implemented).
pub const CTC_STATUS_UNSUPPORTED: CtcStatus = 2;
/// Memory (or a worker thread) could not be obtained.
pub const CTC_STATUS_OUT_OF_MEMORY: CtcStatus = 3;
/// A CUDA driver or NVRTC call failed.
pub const CTC_STATUS_DEVICE_ERROR: CtcStatus = 4;
/// A bug in libctc, such as a caught panic; never a crash. Please report it.
pub const CTC_STATUS_INTERNAL_ERROR: CtcStatus = 5;

/// Element type of a tensor (a 32-bit integer in the ABI; unknown values are rejected).
pub type CtcDType = i32;
/// IEEE binary32.
pub const CTC_DTYPE_FLOAT32: CtcDType = 0;
/// IEEE binary64.
pub const CTC_DTYPE_FLOAT64: CtcDType = 1;
/// IEEE binary16: log_probs and the outputs of a half computation (accumulated in float32, on
/// the host and on CUDA).
pub const CTC_DTYPE_FLOAT16: CtcDType = 2;
/// bfloat16 (as float16).
pub const CTC_DTYPE_BFLOAT16: CtcDType = 3;
/// Signed 32-bit integer (targets and lengths).
pub const CTC_DTYPE_INT32: CtcDType = 4;
/// Signed 64-bit integer (targets and lengths).
pub const CTC_DTYPE_INT64: CtcDType = 5;

/// Where a tensor's memory lives (a 32-bit integer in the ABI; unknown values are rejected).
pub type CtcDevice = i32;
/// Host memory.
pub const CTC_DEVICE_CPU: CtcDevice = 0;
/// Memory of CUDA device `device_index` (`CTC_STATUS_UNSUPPORTED` where no CUDA driver or NVRTC
/// is found; see ctc_cuda_device_count).
pub const CTC_DEVICE_CUDA: CtcDevice = 1;

/// How per-sample losses are combined (a 32-bit integer in the ABI; unknown values are rejected).
pub type CtcReduction = i32;
/// One loss per sample: `loss` has shape (N,).
pub const CTC_REDUCTION_NONE: CtcReduction = 0;
/// `mean_b(loss_b / max(target_lengths[b], 1))`: `loss` has shape ().
pub const CTC_REDUCTION_MEAN: CtcReduction = 1;
/// `sum_b(loss_b)`: `loss` has shape ().
pub const CTC_REDUCTION_SUM: CtcReduction = 2;

/// The most host scratch memory, in bytes, that libctc keeps cached between calls without a
/// caller workspace, for the whole process (see ctc_release_cached_memory).
pub const CTC_CACHED_WORKSPACE_LIMIT: usize = 268_435_456;

/// Which computation a workspace is for (a 32-bit integer in the ABI; unknown values are
/// rejected): the `call` argument of `ctc_workspace_size_for_call`.
pub type CtcCall = i32;
/// `ctc_loss_forward`: the loss alone needs two rows of the forward variable per sample.
pub const CTC_CALL_FORWARD: CtcCall = 0;
/// `ctc_loss_backward`: the whole forward table.
pub const CTC_CALL_BACKWARD: CtcCall = 1;
/// `ctc_loss_forward_backward` (what `ctc_workspace_size` answers: enough for any of the three).
pub const CTC_CALL_FORWARD_BACKWARD: CtcCall = 2;
/// `ctc_align`: checkpoint rows and one segment's back-pointers, O(N (L + C) sqrt(T)).
pub const CTC_CALL_ALIGN: CtcCall = 3;

/// What `log_probs` holds (`CtcOptions.input`; a 32-bit integer in the ABI; unknown values are
/// rejected).
pub type CtcInput = i32;
/// Log-probabilities: log_softmax over the classes already applied (torch's convention).
pub const CTC_INPUT_LOG_PROBS: CtcInput = 0;
/// Unnormalized scores x: the library applies log_softmax over C itself, without storing it;
/// the loss is that of log_softmax(x) and the gradient is d loss / d x =
/// (softmax(x) - posterior) * grad_loss (finite at x = -inf; a frame of NaN, +inf or only -inf
/// scores gives its sample NaN; ctc_align aligns them as their log_softmax). On the CPU and on
/// CUDA (where each frame's log-sum-exp is summed in another fixed order than on the CPU, so
/// results agree to rounding, not bit for bit).
pub const CTC_INPUT_LOGITS: CtcInput = 1;

/// Which derivative `grad_log_probs` receives (`CtcOptions.gradient`; a 32-bit integer in the
/// ABI; unknown values are rejected).
pub type CtcGradient = i32;
/// torch's `(exp(lp) - posterior) * grad_loss`: the derivative only when a log_softmax sits
/// right before the loss.
pub const CTC_GRADIENT_TORCH: CtcGradient = 0;
/// The true derivative with respect to arbitrary log-scores: `-posterior * grad_loss` (finite
/// wherever the loss is finite, also where an input is -inf). With `CTC_INPUT_LOGITS` both
/// modes give the same (true) gradient.
pub const CTC_GRADIENT_EXACT: CtcGradient = 1;

// The constants above are the values of the one table of enumerations (`src/enums.rs`);
// cbindgen needs them as literals, so they are checked against it when the library compiles.
const _: () = {
    use crate::enums::{Call as K, DType as D, Device as V, Reduction as R, Status as S};
    use crate::enums::{Gradient as G, Input as I};
    let pairs = [
        (CTC_STATUS_SUCCESS, S::Success as i32),
        (CTC_STATUS_INVALID_ARGUMENT, S::InvalidArgument as i32),
        (CTC_STATUS_UNSUPPORTED, S::Unsupported as i32),
        (CTC_STATUS_OUT_OF_MEMORY, S::OutOfMemory as i32),
        (CTC_STATUS_DEVICE_ERROR, S::DeviceError as i32),
        (CTC_STATUS_INTERNAL_ERROR, S::InternalError as i32),
        (CTC_DTYPE_FLOAT32, D::Float32 as i32),
        (CTC_DTYPE_FLOAT64, D::Float64 as i32),
        (CTC_DTYPE_FLOAT16, D::Float16 as i32),
        (CTC_DTYPE_BFLOAT16, D::BFloat16 as i32),
        (CTC_DTYPE_INT32, D::Int32 as i32),
        (CTC_DTYPE_INT64, D::Int64 as i32),
        (CTC_DEVICE_CPU, V::Cpu as i32),
        (CTC_DEVICE_CUDA, V::Cuda as i32),
        (CTC_REDUCTION_NONE, R::None as i32),
        (CTC_REDUCTION_MEAN, R::Mean as i32),
        (CTC_REDUCTION_SUM, R::Sum as i32),
        (CTC_CALL_FORWARD, K::Forward as i32),
        (CTC_CALL_BACKWARD, K::Backward as i32),
        (CTC_CALL_FORWARD_BACKWARD, K::ForwardBackward as i32),
        (CTC_CALL_ALIGN, K::Align as i32),
        (CTC_INPUT_LOG_PROBS, I::LogProbs as i32),
        (CTC_INPUT_LOGITS, I::Logits as i32),
        (CTC_GRADIENT_TORCH, G::Torch as i32),
        (CTC_GRADIENT_EXACT, G::Exact as i32),
    ];
    let mut i = 0;
    while i < pairs.len() {
        assert!(
            pairs[i].0 == pairs[i].1,
            "an ABI constant differs from the table"
        );
        i += 1;
    }
    assert!(CTC_CACHED_WORKSPACE_LIMIT == crate::cpu::scratch::CACHED_WORKSPACE_LIMIT);
};

/// A one-byte C `bool`, received as a byte so that a value other than 0 or 1 is an error
/// rather than undefined behaviour. Spelled `bool` in the header.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CBool(pub u8);

/// A view of caller-owned memory.
///
/// Element `[i][j][k]` is at
/// `(char *)data + (i * strides[0] + j * strides[1] + k * strides[2]) * element_size`
/// (fewer indices for smaller `ndim`; a 0-dimensional tensor is one element at `data`).
/// Strides are in elements, not bytes, and must be non-negative; `shape` and `strides` entries
/// past `ndim` are ignored. `data` may be NULL only when the tensor has no elements, and must be
/// aligned to its element size. The library never keeps the pointer after a call returns.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CtcTensor {
    /// First element, in the memory space given by `device`.
    pub data: *mut c_void,
    /// One of `CTC_DTYPE_*`.
    pub dtype: CtcDType,
    /// One of `CTC_DEVICE_*`.
    pub device: CtcDevice,
    /// CUDA device ordinal; ignored on the CPU.
    pub device_index: i32,
    /// Number of dimensions, 0 to 3.
    pub ndim: i32,
    /// Extent of each dimension, >= 0.
    pub shape: [i64; 3],
    /// Distance in elements between neighbours along each dimension, >= 0.
    pub strides: [i64; 3],
}

/// Options of a call. Obtain defaults from `ctc_options_default()` and change fields; a NULL
/// options pointer means the defaults.
///
/// `struct_size` must be `sizeof(CtcOptions)` of the header the caller was built with: 48, the
/// size of version 0.1's layout (without `input` and `gradient`, which then mean 0), or this
/// version's size; any other smaller size is an error; larger (a newer header, at most 4096
/// bytes) is accepted only when every byte past this version's fields is zero, so an option this
/// version does not know is refused rather than silently ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CtcOptions {
    /// `sizeof(CtcOptions)`.
    pub struct_size: u32,
    /// Index of the blank class, in [0, C). Default 0.
    pub blank: i32,
    /// One of `CTC_REDUCTION_*`. Default `CTC_REDUCTION_MEAN`.
    pub reduction: CtcReduction,
    /// Replace infinite losses (impossible alignments) and their gradients by zero. Must be 0 or 1.
    /// Default false.
    pub zero_infinity: CBool,
    /// The most CPU threads a call uses, the calling thread included; 0 = one per CPU available
    /// to the process. The other threads come from one pool that libctc creates on first use
    /// (one thread per available CPU) and shares among all callers, so larger values are served
    /// by the pool's size and no value creates threads. Results are bitwise identical for every
    /// value. Default 0.
    pub num_threads: u32,
    /// `CUstream` / `cudaStream_t` for CUDA tensors, in the context of log_probs' device; NULL =
    /// the legacy default stream. Ignored on the CPU.
    pub cuda_stream: *mut c_void,
    /// Optional caller-owned scratch memory on the compute device (host memory for CPU tensors),
    /// any alignment, at least `ctc_workspace_size()` bytes. NULL = the library allocates.
    pub workspace: *mut c_void,
    /// Size of `workspace` in bytes; must be 0 when `workspace` is NULL.
    pub workspace_bytes: usize,
    /// One of `CTC_INPUT_*`: what the first tensor holds. Default `CTC_INPUT_LOG_PROBS`. (0.2)
    pub input: CtcInput,
    /// One of `CTC_GRADIENT_*`: which derivative the gradient output receives. Default
    /// `CTC_GRADIENT_TORCH`. Ignored by `ctc_loss_forward` and `ctc_align`. (0.2)
    pub gradient: CtcGradient,
}

impl Default for CtcOptions {
    fn default() -> Self {
        CtcOptions {
            struct_size: std::mem::size_of::<CtcOptions>() as u32,
            blank: 0,
            reduction: CTC_REDUCTION_MEAN,
            zero_infinity: CBool(0),
            num_threads: 0,
            cuda_stream: std::ptr::null_mut(),
            workspace: std::ptr::null_mut(),
            workspace_bytes: 0,
            input: CTC_INPUT_LOG_PROBS,
            gradient: CTC_GRADIENT_TORCH,
        }
    }
}

/// Reads the arguments, builds the problem and computes what `want` asks for.
///
/// # Safety
/// As the entry points: every non-NULL pointer points to a valid object of its type, and every
/// tensor describes live memory of its shape, strides, dtype and device for the call.
unsafe fn compute(pointers: Pointers, want: Want) -> Result<(), Error> {
    // SAFETY (all three): forwarded from this function's contract.
    let args = unsafe { Args::read(&pointers, want) }?;
    let problem = unsafe { args.problem() }?;
    let (outputs, workspace) = unsafe { args.outputs() }?;
    dispatch::run(&problem, outputs, workspace)
}

/// Reads the arguments, builds the problem and aligns it.
///
/// # Safety
/// As [`compute`].
unsafe fn align(pointers: Pointers) -> Result<(), Error> {
    // SAFETY (all three): forwarded from this function's contract.
    let args = unsafe { Args::read(&pointers, Want::Align) }?;
    let problem = unsafe { args.problem() }?;
    let (outputs, workspace) = unsafe { args.align_outputs() }?;
    dispatch::align(&problem, outputs, workspace)
}

/// Runs the size query for `call` and writes the size to `*bytes` on success.
///
/// # Safety
/// As [`compute`], and `bytes` is NULL or points to a writable size_t.
unsafe fn size_query(call: Call, pointers: Pointers, bytes: *mut usize) -> Result<(), Error> {
    if bytes.is_null() {
        return Err(invalid!("bytes is NULL"));
    }
    // SAFETY (both): forwarded from this function's contract.
    let args = unsafe { Args::read(&pointers, Want::Size) }?;
    let problem = unsafe { args.problem() }?;
    let size = dispatch::workspace_size(&problem, call)?;
    // SAFETY: non-null and writable per this function's contract; any alignment.
    unsafe { bytes.write_unaligned(size) };
    Ok(())
}

/// The pointers of a call that takes no gradient arguments.
fn loss_pointers(
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    options: *const CtcOptions,
) -> Pointers {
    Pointers {
        log_probs,
        targets,
        input_lengths,
        target_lengths,
        grad_loss: std::ptr::null(),
        options,
        loss: std::ptr::null(),
        grad: std::ptr::null(),
        path: std::ptr::null(),
        path_scores: std::ptr::null(),
    }
}

/// Returns the default options: `struct_size = sizeof(CtcOptions)`, blank 0,
/// `CTC_REDUCTION_MEAN`, zero_infinity false, default thread count, default stream, no workspace,
/// `CTC_INPUT_LOG_PROBS`, `CTC_GRADIENT_TORCH`.
///
/// Thread safety: may be called from any thread at any time. Never fails.
#[no_mangle]
pub extern "C" fn ctc_options_default() -> CtcOptions {
    CtcOptions::default()
}

/// Computes the CTC loss (torch.nn.functional.ctc_loss semantics).
///
/// Inputs (read only, never kept after the call):
/// - `log_probs`: (T, N, C) or unbatched (T, C), float32, float64, float16 or bfloat16 (the
///   half types read as they are and accumulated in float32),
///   any non-negative strides:
///   element [t][n][c] at `data + t*strides[0] + n*strides[1] + c*strides[2]` (elements), so
///   (N, T, C) memory, transposed views and padded rows all work without a copy. Its device
///   decides where the call runs.
/// - `targets`: padded (N, S) (only the first target_lengths[n] entries of row n are read, so the
///   padding may hold anything), concatenated (sum(target_lengths),), or unbatched (S,) with
///   S >= target_length; int32 or int64. Every label must be in [0, C) and differ from the blank.
/// - `input_lengths`: (N,) (unbatched: () or (1,)), int32 or int64, each in [0, T].
/// - `target_lengths`: (N,) (unbatched: () or (1,)), int32 or int64, each >= 0.
/// - `options`: NULL for the defaults.
///
/// Output (written only on success):
/// - `loss`: same dtype and device as log_probs (float16 or bfloat16 log_probs: float32, the usual
///   choice since a half loss overflows past 65504, or log_probs' dtype; never float64); (N,) for
///   CTC_REDUCTION_NONE on a batch, else (). An impossible alignment gives +inf (0 with
///   zero_infinity).
///
/// Outputs must not overlap each other, any input or the workspace. No pointer may be NULL except
/// `options` (and a `data` of a tensor with no elements).
///
/// Returns CTC_STATUS_SUCCESS; CTC_STATUS_INVALID_ARGUMENT for any rule above broken (message names
/// the argument and value); CTC_STATUS_UNSUPPORTED for CUDA tensors where no CUDA driver or NVRTC
/// is usable; CTC_STATUS_OUT_OF_MEMORY when scratch
/// memory or worker threads cannot be had; CTC_STATUS_DEVICE_ERROR when a CUDA driver or NVRTC
/// call fails; CTC_STATUS_INTERNAL_ERROR for a library bug (a caught panic).
///
/// Thread safety: any number of threads may call any function at once on distinct outputs.
///
/// # Safety
/// Every non-NULL pointer must point to a valid object of its type, and every tensor's `data`
/// must describe live memory of the given shape, strides, dtype and device for the whole call.
#[no_mangle]
pub unsafe extern "C" fn ctc_loss_forward(
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    options: *const CtcOptions,
    loss: *mut CtcTensor,
) -> CtcStatus {
    guard::guard(|| {
        // SAFETY: forwarded from this function's contract.
        let pointers = Pointers {
            loss,
            ..loss_pointers(log_probs, targets, input_lengths, target_lengths, options)
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { compute(pointers, Want::Loss) }
    })
}

/// Computes the gradient of `sum(loss * grad_loss)` with respect to log_probs, recomputing what it
/// needs (the caller keeps no state between forward and backward).
///
/// Arguments as ctc_loss_forward, and:
/// - `grad_loss`: upstream gradient shaped like the loss ((N,) for CTC_REDUCTION_NONE on a batch,
///   else ()), same dtype and device as log_probs (half log_probs: also float32); NULL means ones.
/// - `grad_log_probs` (output): same shape, dtype and device as log_probs (half log_probs: also
///   float32, computed on a float32 copy of log_probs in library-owned memory, T * N * C floats
///   kept between calls like the scratch of calls without a workspace), any strides that do not
///   make two elements share memory. Torch's convention: `exp(lp) - posterior`, times the upstream
///   gradient; zero for frames at or past input_lengths[n]; NaN below input_lengths[n] for an
///   impossible sample without zero_infinity, zero with it.
///
/// Returns the statuses of ctc_loss_forward. Thread safety: as ctc_loss_forward.
///
/// # Safety
/// As ctc_loss_forward.
#[no_mangle]
pub unsafe extern "C" fn ctc_loss_backward(
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    grad_loss: *const CtcTensor,
    options: *const CtcOptions,
    grad_log_probs: *mut CtcTensor,
) -> CtcStatus {
    guard::guard(|| {
        // SAFETY: forwarded from this function's contract.
        let pointers = Pointers {
            grad_loss,
            grad: grad_log_probs,
            ..loss_pointers(log_probs, targets, input_lengths, target_lengths, options)
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { compute(pointers, Want::Grad) }
    })
}

/// Computes the loss and its gradient in one pass: what a training step calls. Arguments, outputs
/// and statuses as ctc_loss_forward and ctc_loss_backward; `loss` and `grad_log_probs` are both
/// required and must not overlap.
///
/// Thread safety: as ctc_loss_forward.
///
/// # Safety
/// As ctc_loss_forward.
#[no_mangle]
pub unsafe extern "C" fn ctc_loss_forward_backward(
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    grad_loss: *const CtcTensor,
    options: *const CtcOptions,
    loss: *mut CtcTensor,
    grad_log_probs: *mut CtcTensor,
) -> CtcStatus {
    guard::guard(|| {
        // SAFETY: forwarded from this function's contract.
        let pointers = Pointers {
            grad_loss,
            loss,
            grad: grad_log_probs,
            ..loss_pointers(log_probs, targets, input_lengths, target_lengths, options)
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { compute(pointers, Want::Both) }
    })
}

/// Writes to `*bytes` the size of scratch memory that any of the three compute calls needs with
/// these arguments (alignment slack included), for use as `options.workspace`; the same as
/// `ctc_workspace_size_for_call(CTC_CALL_FORWARD_BACKWARD, ...)`. The inputs are validated (and
/// targets and lengths read) as by the compute calls; `options.workspace` itself is not required.
/// The size depends on N, C, the largest input and target lengths and `options.input` (logits
/// take N * T pairs more of the computation's type, float64 for float64 and float32 otherwise:
/// each frame's maximum and log-sum-exp).
///
/// `bytes` (output, host memory) must not be NULL; it is written only on success.
///
/// Returns the statuses of ctc_loss_forward. Thread safety: as ctc_loss_forward.
///
/// # Safety
/// As ctc_loss_forward, and `bytes` points to a writable size_t.
#[no_mangle]
pub unsafe extern "C" fn ctc_workspace_size(
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    options: *const CtcOptions,
    bytes: *mut usize,
) -> CtcStatus {
    guard::guard(|| {
        // SAFETY: forwarded from this function's contract.
        let pointers = loss_pointers(log_probs, targets, input_lengths, target_lengths, options);
        // SAFETY: forwarded from this function's contract.
        unsafe { size_query(Call::ForwardBackward, pointers, bytes) }
    })
}

/// Writes to `*bytes` the size of scratch memory that the computation `call` needs with these
/// arguments (alignment slack included), for use as `options.workspace` of that call:
/// `CTC_CALL_FORWARD` (`ctc_loss_forward`: the loss alone keeps two rows of the forward variable
/// per sample, O(N (L + C)), where the gradient keeps the whole table, O(T N L)),
/// `CTC_CALL_BACKWARD`, `CTC_CALL_FORWARD_BACKWARD` or `CTC_CALL_ALIGN` (`ctc_align`:
/// O(N (L + C) sqrt(T))). Validation and outputs as
/// ctc_workspace_size; a `call` that is not a CTC_CALL_* value is CTC_STATUS_INVALID_ARGUMENT.
///
/// Returns the statuses of ctc_loss_forward. Thread safety: as ctc_loss_forward.
///
/// # Safety
/// As ctc_workspace_size.
#[no_mangle]
pub unsafe extern "C" fn ctc_workspace_size_for_call(
    call: CtcCall,
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    options: *const CtcOptions,
    bytes: *mut usize,
) -> CtcStatus {
    guard::guard(|| {
        let call: Call = enum_from_c("call", call)?;
        // SAFETY: forwarded from this function's contract.
        let pointers = loss_pointers(log_probs, targets, input_lengths, target_lengths, options);
        // SAFETY: forwarded from this function's contract.
        unsafe { size_query(call, pointers, bytes) }
    })
}

/// Frees the host scratch memory libctc keeps cached between calls that bring no workspace (at
/// most CTC_CACHED_WORKSPACE_LIMIT bytes for the whole process), and lets CPU worker threads be
/// started again after a failed start (see CTC_STATUS_OUT_OF_MEMORY). Returns the bytes freed.
/// Buffers in use by calls running meanwhile are kept and cached again when those calls return.
/// The CPU worker threads (at most one per available CPU) and the compiled CUDA kernels stay.
///
/// Thread safety: any thread, any time. Never fails; does not change the last-error message.
#[no_mangle]
pub extern "C" fn ctc_release_cached_memory() -> usize {
    std::panic::catch_unwind(crate::api::release_cached_memory).unwrap_or(0)
}

/// The most probable (Viterbi) CTC alignment of each sample: forced alignment.
///
/// Inputs as ctc_loss_forward (read only, validated the same way, any strides): `log_probs`
/// (T, N, C) or unbatched (T, C), float32, float64, float16 or bfloat16; `targets` padded (N, S), concatenated or
/// unbatched (S,); `input_lengths` and `target_lengths` (N,) or (), int32 or int64; `options`
/// (NULL for the defaults): `blank`, `num_threads`, `cuda_stream` and `workspace` apply,
/// `reduction`, `zero_infinity` and `gradient` are ignored; with `input` = CTC_INPUT_LOGITS the
/// values are aligned as their log_softmax over C (the same paths; `path_scores` sums
/// log-probabilities).
///
/// Outputs (written only on success; same device as log_probs):
/// - `path`: (T, N) (unbatched: (T,)), int32 or int64, any strides that do not make two
///   elements share memory: `path[t][n]` is the class (the blank included) that sample n's best
///   alignment emits at frame t, for t < input_lengths[n], and -1 for t >= input_lengths[n].
///   Collapsing repeats and removing blanks from a sample's path gives its target.
/// - `path_scores`: (N,) (unbatched: ()), float32 or log_probs' dtype; may be NULL.
///   `path_scores[n]` is the sum over t < input_lengths[n] of `log_probs[t][n][path[t][n]]`: the
///   best alignment's total log-score.
///
/// A sample with no alignment (too few frames for its labels and the blanks between repeats, or
/// every alignment through a -inf log-probability; also a NaN best score) gets -1 at every frame
/// and the score -inf; the other samples are aligned and the call succeeds. Ties between equally
/// probable alignments follow the rule of the crate's `algorithm` module (a path ends in the last
/// label unless the final blank is strictly better; a state stays unless its predecessor one or
/// two states back is strictly better), which always gives a best alignment; results are bitwise
/// identical for every thread count, and on the CPU and on CUDA (the same paths, the same
/// scores; for logits, whose normalizer CUDA sums in another order, scores agree to rounding
/// and only a near-tie can pick another best path). Memory: the forward pass keeps rows at checkpoints about sqrt(T) frames apart and
/// the read-back recomputes one segment at a time
/// (`ctc_workspace_size_for_call(CTC_CALL_ALIGN, ...)` gives the size). On CUDA tensors
/// everything, the read-back included, runs on log_probs' device in one launch sequence on
/// `options.cuda_stream`, as the loss does (no synchronization).
///
/// Returns CTC_STATUS_SUCCESS, or the statuses of ctc_loss_forward. Thread safety: as
/// ctc_loss_forward.
///
/// # Safety
/// As ctc_loss_forward, with `path` (and `path_scores` unless NULL) describing writable memory.
#[no_mangle]
pub unsafe extern "C" fn ctc_align(
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    options: *const CtcOptions,
    path: *mut CtcTensor,
    path_scores: *mut CtcTensor,
) -> CtcStatus {
    guard::guard(|| {
        let pointers = Pointers {
            path,
            path_scores,
            ..loss_pointers(log_probs, targets, input_lengths, target_lengths, options)
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { align(pointers) }
    })
}

/// A static, NUL-terminated description of `status` ("success", "invalid argument", ...;
/// "unknown status" for a value that is not a CtcStatus). Never NULL; never free it.
///
/// Thread safety: any thread, any time. Does not change the last-error message.
#[no_mangle]
pub extern "C" fn ctc_status_string(status: CtcStatus) -> *const c_char {
    match Status::try_from(status) {
        Ok(s) => s.c_word().as_ptr(),
        Err(_) => c"unknown status".as_ptr(),
    }
}

/// The message of the calling thread's last compute or size call: why it failed, naming the
/// argument and the value, or "" after a success (and before any call). Never NULL.
///
/// The text belongs to the library and stays valid until the next compute or size call on the
/// same thread; copy it to keep it. Each thread has its own message.
#[no_mangle]
pub extern "C" fn ctc_last_error_message() -> *const c_char {
    guard::last_error_ptr()
}

/// The library version as a static NUL-terminated string, "MAJOR.MINOR.PATCH"; equals the header's
/// CTC_VERSION_STRING when header and library match. Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn ctc_version_string() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The library version as MAJOR * 10000 + MINOR * 100 + PATCH; equals the header's
/// CTC_VERSION_NUMBER when header and library match. Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn ctc_version_number() -> u32 {
    crate::VERSION_NUMBER
}

/// The number of CUDA devices the driver reports: 0 when there is no CUDA driver or no device.
/// (A CUDA call also needs NVRTC: without it, it returns CTC_STATUS_UNSUPPORTED.) Never fails. Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn ctc_cuda_device_count() -> i32 {
    std::panic::catch_unwind(dispatch::cuda_device_count).unwrap_or(0)
}
