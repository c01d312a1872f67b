//! The C ABI: every `extern "C"` item of the library. cbindgen turns this module (types,
//! constants, functions and their doc comments) into `include/ctc.h`.
//!
//! Each function validates its arguments completely (through [`tensor::RawTensor`] and the safe
//! core's [`crate::problem`]) before it reads a tensor element or writes an output, runs inside
//! [`guard::guard`] so that no panic crosses into C, and leaves a message in the thread's
//! last-error slot.

pub(crate) mod guard;
pub(crate) mod tensor;

use crate::cuda;
use crate::dispatch::{self, Backend};
use crate::error::{invalid, Error, Status};
use crate::problem::{check_indices, Inputs, IntView1, IntView2, Targets};
use crate::types::{enum_from_c, Call, DType, Device, Element, Options, Reduction};
use ndarray::{ArrayView1, ArrayView3};
use std::ffi::{c_char, c_void};
use tensor::RawTensor;

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
/// IEEE binary16 (not computed yet: `CTC_STATUS_UNSUPPORTED`).
pub const CTC_DTYPE_FLOAT16: CtcDType = 2;
/// bfloat16 (not computed yet: `CTC_STATUS_UNSUPPORTED`).
pub const CTC_DTYPE_BFLOAT16: CtcDType = 3;
/// Signed 32-bit integer (targets and lengths).
pub const CTC_DTYPE_INT32: CtcDType = 4;
/// Signed 64-bit integer (targets and lengths).
pub const CTC_DTYPE_INT64: CtcDType = 5;

/// Where a tensor's memory lives (a 32-bit integer in the ABI; unknown values are rejected).
pub type CtcDevice = i32;
/// Host memory.
pub const CTC_DEVICE_CPU: CtcDevice = 0;
/// Memory of CUDA device `device_index` (not served by this version: `CTC_STATUS_UNSUPPORTED`).
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
/// `struct_size` must be `sizeof(CtcOptions)` of the header the caller was built with: smaller
/// than this version's is an error; larger (a newer header, at most 4096 bytes) is accepted only
/// when every byte past this version's fields is zero, so an option this version does not know is
/// refused rather than silently ignored.
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
    /// `CUstream` / `cudaStream_t` for CUDA tensors; NULL = the default stream. Ignored on the CPU.
    pub cuda_stream: *mut c_void,
    /// Optional caller-owned scratch memory on the compute device (host memory for CPU tensors),
    /// any alignment, at least `ctc_workspace_size()` bytes. NULL = the library allocates.
    pub workspace: *mut c_void,
    /// Size of `workspace` in bytes; must be 0 when `workspace` is NULL.
    pub workspace_bytes: usize,
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
        }
    }
}

/// The largest `struct_size` accepted from a caller built against a newer header.
const MAX_OPTIONS_SIZE: u32 = 4096;

/// Options as the core understands them, plus the caller's workspace.
struct CallOptions {
    options: Options,
    workspace: Option<(*mut c_void, usize)>,
    /// The caller's CUDA stream (NULL: the default stream); unused on the CPU.
    cuda_stream: *mut c_void,
}

/// Reads and checks `*ptr` (module doc of [`CtcOptions`]).
///
/// # Safety
/// `ptr` is NULL or points to at least `ptr->struct_size` readable bytes.
unsafe fn read_options(ptr: *const CtcOptions) -> Result<CallOptions, Error> {
    let ours = std::mem::size_of::<CtcOptions>();
    let o = if ptr.is_null() {
        CtcOptions::default()
    } else {
        // SAFETY: non-null and readable for at least 4 bytes per the contract; any alignment.
        let size = unsafe { ptr.cast::<u32>().read_unaligned() };
        if (size as usize) < ours {
            return Err(invalid!(
                "options.struct_size = {size} is smaller than sizeof(CtcOptions) = {ours} of libctc {}",
                env!("CARGO_PKG_VERSION")
            ));
        }
        if size > MAX_OPTIONS_SIZE {
            return Err(invalid!(
                "options.struct_size = {size} is larger than {MAX_OPTIONS_SIZE}, the most libctc accepts"
            ));
        }
        let extra = size as usize - ours;
        // SAFETY: the caller promises struct_size readable bytes at ptr; bytes are valid for any
        // bit pattern.
        let tail = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>().add(ours), extra) };
        if let Some(i) = tail.iter().position(|&b| b != 0) {
            return Err(invalid!(
                "options byte {} (past the {ours} bytes of CtcOptions in libctc {}) is {}, not 0: the caller sets an option this version does not know",
                ours + i,
                env!("CARGO_PKG_VERSION"),
                tail[i]
            ));
        }
        // SAFETY: at least sizeof(CtcOptions) readable bytes; every field is an integer, a
        // pointer or a byte wrapper, valid for any bit pattern.
        unsafe { ptr.read_unaligned() }
    };
    let reduction: Reduction = enum_from_c(
        "options.reduction",
        o.reduction,
        "CTC_REDUCTION_NONE (0), CTC_REDUCTION_MEAN (1), CTC_REDUCTION_SUM (2)",
    )?;
    let zero_infinity = match o.zero_infinity.0 {
        0 => false,
        1 => true,
        v => {
            return Err(invalid!(
                "options.zero_infinity = {v} is not a bool (0 or 1)"
            ))
        }
    };
    let workspace = match (o.workspace.is_null(), o.workspace_bytes) {
        (true, 0) => None,
        (true, n) => {
            return Err(invalid!(
                "options.workspace is NULL but options.workspace_bytes = {n}"
            ))
        }
        (false, n) => {
            if n > isize::MAX as usize || (o.workspace as usize).checked_add(n).is_none() {
                return Err(invalid!(
                    "options.workspace_bytes = {n} runs past the end of the address space"
                ));
            }
            Some((o.workspace, n))
        }
    };
    Ok(CallOptions {
        options: Options {
            blank: o.blank as i64,
            reduction,
            zero_infinity,
            num_threads: o.num_threads as usize,
        },
        workspace,
        cuda_stream: o.cuda_stream,
    })
}

/// The arguments of one call, read and checked, with the batched shapes of every tensor.
struct Args {
    log_probs: RawTensor,
    targets: RawTensor,
    input_lengths: RawTensor,
    target_lengths: RawTensor,
    grad_loss: Option<RawTensor>,
    loss: Option<RawTensor>,
    grad: Option<RawTensor>,
    options: CallOptions,
    batched: bool,
}

/// Whether two tensors live in the same memory space (`device_index` counts only on CUDA).
fn same_place(a: &RawTensor, b: &RawTensor) -> bool {
    a.device == b.device && (a.device == Device::Cpu || a.device_index == b.device_index)
}

/// Which outputs a C entry point produces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Loss,
    Grad,
    Both,
    /// The workspace size for this call.
    Size(Call),
}

impl Args {
    /// Reads every argument and checks everything that does not need tensor contents: dtypes,
    /// devices, ndims, overlap.
    ///
    /// # Safety
    /// Every non-NULL pointer points to a readable object of its type (options: see
    /// [`read_options`]).
    #[allow(clippy::too_many_arguments)]
    unsafe fn read(
        log_probs: *const CtcTensor,
        targets: *const CtcTensor,
        input_lengths: *const CtcTensor,
        target_lengths: *const CtcTensor,
        grad_loss: *const CtcTensor,
        options: *const CtcOptions,
        loss: *const CtcTensor,
        grad: *const CtcTensor,
        want: Want,
    ) -> Result<Args, Error> {
        // SAFETY (all reads below): forwarded from this function's contract.
        let options = unsafe { read_options(options) }?;
        let log_probs = unsafe { RawTensor::read("log_probs", log_probs) }?;
        let targets = unsafe { RawTensor::read("targets", targets) }?;
        let input_lengths = unsafe { RawTensor::read("input_lengths", input_lengths) }?;
        let target_lengths = unsafe { RawTensor::read("target_lengths", target_lengths) }?;
        let grad_loss = if grad_loss.is_null() || !matches!(want, Want::Grad | Want::Both) {
            None
        } else {
            Some(unsafe { RawTensor::read("grad_loss", grad_loss) }?)
        };
        let loss = match want {
            Want::Loss | Want::Both => Some(unsafe { RawTensor::read("loss", loss) }?),
            _ => None,
        };
        let grad = match want {
            Want::Grad | Want::Both => Some(unsafe { RawTensor::read("grad_log_probs", grad) }?),
            _ => None,
        };

        match log_probs.dtype {
            DType::Float32 | DType::Float64 => {}
            DType::Float16 | DType::BFloat16 => {
                return Err(Error::Unsupported(format!(
                "log_probs.dtype = {} is not computed by libctc {} yet (float32 and float64 are)",
                log_probs.dtype.name(),
                env!("CARGO_PKG_VERSION")
            )))
            }
            DType::Int32 | DType::Int64 => {
                return Err(invalid!(
                    "log_probs.dtype = {} but log_probs must be floating point",
                    log_probs.dtype.name()
                ))
            }
        }
        let batched = match log_probs.ndim {
            3 => true,
            2 => false,
            n => {
                return Err(invalid!(
                    "log_probs.ndim = {n} but log_probs must be (T, N, C) or unbatched (T, C)"
                ))
            }
        };
        for t in [&targets, &input_lengths, &target_lengths] {
            if !matches!(t.dtype, DType::Int32 | DType::Int64) {
                return Err(invalid!(
                    "{}.dtype = {} but {} must be int32 or int64",
                    t.name,
                    t.dtype.name(),
                    t.name
                ));
            }
            // Targets and lengths may stay on the host when log_probs is on a device.
            if t.device != Device::Cpu && !same_place(t, &log_probs) {
                return Err(invalid!(
                    "{} is on {} but log_probs is on {}: targets and lengths must be on the host or on log_probs' device",
                    t.name,
                    t.place(),
                    log_probs.place()
                ));
            }
        }
        for t in [&grad_loss, &loss, &grad].into_iter().flatten() {
            if t.dtype != log_probs.dtype {
                return Err(invalid!(
                    "{}.dtype = {} but log_probs.dtype = {}: they must match",
                    t.name,
                    t.dtype.name(),
                    log_probs.dtype.name()
                ));
            }
            if !same_place(t, &log_probs) {
                return Err(invalid!(
                    "{} is on {} but log_probs is on {}: they must match",
                    t.name,
                    t.place(),
                    log_probs.place()
                ));
            }
        }

        let reduced = options.options.reduction != Reduction::None;
        if batched {
            targets.expect_ndim(
                &[1, 2],
                "targets must be padded (N, S) or concatenated (sum(target_lengths),)",
            )?;
            input_lengths.expect_ndim(&[1], "input_lengths must be (N,)")?;
            target_lengths.expect_ndim(&[1], "target_lengths must be (N,)")?;
        } else {
            targets.expect_ndim(&[1], "unbatched targets must be (S,)")?;
            input_lengths.expect_ndim(&[0, 1], "unbatched input_lengths must be () or (1,)")?;
            target_lengths.expect_ndim(&[0, 1], "unbatched target_lengths must be () or (1,)")?;
        }
        let loss_ndim = if batched && !reduced { 1 } else { 0 };
        let loss_shape = if loss_ndim == 1 {
            "reduction none on a batch gives loss of shape (N,)"
        } else {
            "a reduced or unbatched loss has shape ()"
        };
        for t in [&loss, &grad_loss].into_iter().flatten() {
            t.expect_ndim(&[loss_ndim], loss_shape)?;
        }
        if let Some(g) = &grad {
            g.expect_ndim(
                &[log_probs.ndim],
                "grad_log_probs must have the shape of log_probs",
            )?;
            g.expect_non_overlapping()?;
        }
        if let Some(l) = &loss {
            l.expect_non_overlapping()?;
        }

        // Outputs (and the workspace) must not share a byte with each other or with any input.
        let mut written: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
        for t in [&loss, &grad].into_iter().flatten() {
            written.push((t.name, t.byte_range()));
        }
        if let Some((ptr, n)) = options.workspace.filter(|_| !matches!(want, Want::Size(_))) {
            written.push(("options.workspace", ptr as usize..ptr as usize + n));
        }
        let mut all = written.clone();
        for t in [
            Some(&log_probs),
            Some(&targets),
            Some(&input_lengths),
            Some(&target_lengths),
            grad_loss.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            all.push((t.name, t.byte_range()));
        }
        for (i, (wname, w)) in written.iter().enumerate() {
            for (j, (name, r)) in all.iter().enumerate() {
                if i != j && !w.is_empty() && !r.is_empty() && w.start < r.end && r.start < w.end {
                    return Err(invalid!("{wname} overlaps {name} in memory"));
                }
            }
        }

        Ok(Args {
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            grad_loss,
            loss,
            grad,
            options,
            batched,
        })
    }

    /// (T, N, C) extents and strides of log_probs (or of the gradient), unbatched input seen as
    /// a batch of one.
    fn batched_dims(&self, t: &RawTensor) -> ([usize; 3], [usize; 3]) {
        if self.batched {
            (t.shape, t.strides)
        } else {
            ([t.shape[0], 1, t.shape[1]], [t.strides[0], 0, t.strides[1]])
        }
    }

    /// Runs the call on the backend `log_probs` selects.
    fn run(&self, want: Want) -> Result<Option<usize>, Error> {
        match dispatch::backend(self.log_probs.device, self.log_probs.device_index)? {
            Backend::Cpu => match self.log_probs.dtype {
                // SAFETY: the contracts of the entry points make every tensor's memory readable
                // (outputs writable) host memory for the call, as validated in Call::read.
                DType::Float32 => unsafe { self.run_cpu::<f32>(want) },
                DType::Float64 => unsafe { self.run_cpu::<f64>(want) },
                d => Err(Error::Internal(format!(
                    "dtype {d:?} reached the CPU backend"
                ))),
            },
            // SAFETY: as above, with device memory for the device-resident tensors.
            Backend::Cuda => unsafe { self.run_cuda(want) },
        }
    }

    /// Whether the targets' padded (N, S) form applies (unbatched targets are one padded row).
    fn padded(&self) -> bool {
        !(self.targets.ndim == 1 && self.batched)
    }

    /// Views of the targets and lengths.
    ///
    /// # Safety
    /// The three tensors are live host memory of their dtype for the call.
    unsafe fn index_views(&self) -> (Targets<'_>, IntView1<'_>, IntView1<'_>) {
        // SAFETY (all views): validated RawTensors of the right dtype, per the contract; shapes
        // and strides are the tensors' own (a unit dimension inserted for unbatched targets).
        let int1 = |t: &RawTensor| -> IntView1<'_> {
            match t.dtype {
                DType::Int32 => IntView1::I32(unsafe { t.view1() }),
                _ => IntView1::I64(unsafe { t.view1() }),
            }
        };
        let targets = if !self.padded() {
            Targets::Concatenated(int1(&self.targets))
        } else {
            let t = &self.targets;
            let (shape, strides) = if self.batched {
                ([t.shape[0], t.shape[1]], [t.strides[0], t.strides[1]])
            } else {
                ([1, t.shape[0]], [0, t.strides[0]])
            };
            Targets::Padded(match t.dtype {
                DType::Int32 => IntView2::I32(unsafe { t.view2(shape, strides) }),
                _ => IntView2::I64(unsafe { t.view2(shape, strides) }),
            })
        };
        (
            targets,
            int1(&self.input_lengths),
            int1(&self.target_lengths),
        )
    }

    /// Runs the call on the CUDA backend.
    ///
    /// # Safety
    /// Host-resident targets and lengths are live host memory for the call; device pointers are
    /// the caller's device memory as described (the library cannot check them).
    unsafe fn run_cuda(&self, want: Want) -> Result<Option<usize>, Error> {
        let on_host = |t: &RawTensor| t.device == Device::Cpu;
        let checked = if on_host(&self.targets)
            && on_host(&self.input_lengths)
            && on_host(&self.target_lengths)
        {
            // SAFETY: the three tensors are host memory (checked just above).
            let (targets, il, tl) = unsafe { self.index_views() };
            let (shape, _) = self.batched_dims(&self.log_probs);
            Some(check_indices(
                (shape[0], shape[1], shape[2]),
                &targets,
                &il,
                &tl,
                &self.options.options,
            )?)
        } else {
            None
        };
        let int_arg = |t: &RawTensor, strides: [i64; 2]| cuda::launch::IntArg {
            source: if on_host(t) {
                if t.span == 0 {
                    cuda::launch::IntSource::Host(&[])
                } else {
                    // SAFETY: a host tensor whose `span` bytes from `data` are readable for the
                    // call (checked span, per the entry points' contract).
                    cuda::launch::IntSource::Host(unsafe {
                        std::slice::from_raw_parts(t.data.cast::<u8>(), t.span)
                    })
                }
            } else {
                cuda::launch::IntSource::Device(t.data as u64)
            },
            bytes: t.dtype.size() as i32,
            strides,
        };
        let stride = |t: &RawTensor, i: usize| -> i64 {
            if i < t.ndim {
                t.strides[i] as i64
            } else {
                0
            }
        };
        let t = &self.targets;
        let (targets_strides, targets_size) = if !self.padded() {
            ([0, stride(t, 0)], t.shape[0] as i64)
        } else if self.batched {
            ([stride(t, 0), stride(t, 1)], t.shape[1] as i64)
        } else {
            ([0, stride(t, 0)], t.shape[0] as i64)
        };
        let (shape, lp_strides) = self.batched_dims(&self.log_probs);
        let request = cuda::launch::Request {
            dtype: self.log_probs.dtype,
            device_index: self.log_probs.device_index,
            dims: (shape[0], shape[1], shape[2]),
            log_probs: self.log_probs.data as u64,
            log_probs_strides: lp_strides.map(|v| v as i64),
            targets: int_arg(t, targets_strides),
            padded: self.padded(),
            targets_size,
            input_lengths: int_arg(&self.input_lengths, [stride(&self.input_lengths, 0), 0]),
            target_lengths: int_arg(&self.target_lengths, [stride(&self.target_lengths, 0), 0]),
            checked,
            loss: self.loss.as_ref().map(|l| (l.data as u64, stride(l, 0))),
            grad: self.grad.as_ref().map(|g| {
                let (_, s) = self.batched_dims(g);
                (g.data as u64, s.map(|v| v as i64))
            }),
            grad_loss: self
                .grad_loss
                .as_ref()
                .map(|g| (g.data as u64, stride(g, 0))),
            options: self.options.options,
            stream: self.options.cuda_stream,
            workspace: self.options.workspace.map(|(p, n)| (p as u64, n)),
        };
        if let Want::Size(call) = want {
            return cuda::launch::workspace_size(&request, call != Call::Forward).map(Some);
        }
        cuda::launch::run(&request).map(|()| None)
    }

    /// # Safety
    /// Every tensor of the call describes live host memory of its dtype for the duration of the
    /// call (outputs and workspace writable and touched by nobody else), as the entry points'
    /// contracts require.
    unsafe fn run_cpu<E: Element>(&self, want: Want) -> Result<Option<usize>, Error> {
        let (shape, strides) = self.batched_dims(&self.log_probs);
        // SAFETY (all views below): validated RawTensors of the right dtype, per this function's
        // contract; the shapes and strides are the tensors' own (a unit dimension inserted).
        let log_probs: ArrayView3<'_, E> = unsafe { self.log_probs.view3(shape, strides) };
        // SAFETY: host tensors per this function's contract.
        let (targets, input_lengths, target_lengths) = unsafe { self.index_views() };
        let inputs = Inputs {
            log_probs,
            targets,
            input_lengths,
            target_lengths,
        };
        let options = &self.options.options;
        if let Want::Size(call) = want {
            return crate::api::workspace_size_for(call, &inputs, options).map(Some);
        }
        let grad_loss: Option<ArrayView1<'_, E>> =
            self.grad_loss.as_ref().map(|g| unsafe { g.view1() });
        let loss = self.loss.as_ref().map(|l| unsafe { l.view1_mut() });
        let grad = self.grad.as_ref().map(|g| {
            let (shape, strides) = self.batched_dims(g);
            unsafe { g.view3_mut(shape, strides) }
        });
        let workspace = self.options.workspace.map(|(ptr, n)| {
            // SAFETY: the caller lends n writable bytes at ptr (checked not to wrap and not to
            // overlap any tensor) for the duration of the call.
            unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), n) }
        });
        crate::api::ctc_loss_into(&inputs, options, grad_loss, loss, grad, workspace)?;
        Ok(None)
    }
}

/// Runs one entry point: read and check the arguments, then compute.
///
/// # Safety
/// As the entry points.
#[allow(clippy::too_many_arguments)]
unsafe fn entry(
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    grad_loss: *const CtcTensor,
    options: *const CtcOptions,
    loss: *const CtcTensor,
    grad: *const CtcTensor,
    want: Want,
) -> Result<Option<usize>, Error> {
    // SAFETY: forwarded from the entry point's contract.
    let call = unsafe {
        Args::read(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            grad_loss,
            options,
            loss,
            grad,
            want,
        )
    }?;
    call.run(want)
}

/// Returns the default options: `struct_size = sizeof(CtcOptions)`, blank 0,
/// `CTC_REDUCTION_MEAN`, zero_infinity false, default thread count, default stream, no workspace.
///
/// Thread safety: may be called from any thread at any time. Never fails.
#[no_mangle]
pub extern "C" fn ctc_options_default() -> CtcOptions {
    CtcOptions::default()
}

/// Computes the CTC loss (torch.nn.functional.ctc_loss semantics).
///
/// Inputs (read only, never kept after the call):
/// - `log_probs`: (T, N, C) or unbatched (T, C), float32 or float64, any non-negative strides:
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
/// - `loss`: same dtype and device as log_probs; (N,) for CTC_REDUCTION_NONE on a batch, else ().
///   An impossible alignment gives +inf (0 with zero_infinity).
///
/// Outputs must not overlap each other, any input or the workspace. No pointer may be NULL except
/// `options` (and a `data` of a tensor with no elements).
///
/// Returns CTC_STATUS_SUCCESS; CTC_STATUS_INVALID_ARGUMENT for any rule above broken (message names
/// the argument and value); CTC_STATUS_UNSUPPORTED for CUDA tensors or float16/bfloat16 in this
/// version; CTC_STATUS_OUT_OF_MEMORY when scratch memory or worker threads cannot be had;
/// CTC_STATUS_INTERNAL_ERROR for a library bug (a caught panic).
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
        unsafe {
            entry(
                log_probs,
                targets,
                input_lengths,
                target_lengths,
                std::ptr::null(),
                options,
                loss,
                std::ptr::null(),
                Want::Loss,
            )
        }
        .map(drop)
    })
}

/// Computes the gradient of `sum(loss * grad_loss)` with respect to log_probs, recomputing what it
/// needs (the caller keeps no state between forward and backward).
///
/// Arguments as ctc_loss_forward, and:
/// - `grad_loss`: upstream gradient shaped like the loss ((N,) for CTC_REDUCTION_NONE on a batch,
///   else ()), same dtype and device as log_probs; NULL means ones.
/// - `grad_log_probs` (output): same shape, dtype and device as log_probs, any strides that do not
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
        unsafe {
            entry(
                log_probs,
                targets,
                input_lengths,
                target_lengths,
                grad_loss,
                options,
                std::ptr::null(),
                grad_log_probs,
                Want::Grad,
            )
        }
        .map(drop)
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
        unsafe {
            entry(
                log_probs,
                targets,
                input_lengths,
                target_lengths,
                grad_loss,
                options,
                loss,
                grad_log_probs,
                Want::Both,
            )
        }
        .map(drop)
    })
}

/// Runs the size query for `call` and writes the size to `*bytes` on success.
///
/// # Safety
/// As [`ctc_workspace_size`].
unsafe fn size_query(
    call: Call,
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    options: *const CtcOptions,
    bytes: *mut usize,
) -> Result<(), Error> {
    if bytes.is_null() {
        return Err(invalid!("bytes is NULL"));
    }
    // SAFETY: forwarded from the caller's contract.
    let size = unsafe {
        entry(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            std::ptr::null(),
            options,
            std::ptr::null(),
            std::ptr::null(),
            Want::Size(call),
        )
    }?
    .ok_or_else(|| Error::Internal("the size query returned no size".into()))?;
    // SAFETY: non-null and writable per the caller's contract; any alignment.
    unsafe { bytes.write_unaligned(size) };
    Ok(())
}

/// Writes to `*bytes` the size of scratch memory that any of the three compute calls needs with
/// these arguments (alignment slack included), for use as `options.workspace`; the same as
/// `ctc_workspace_size_for_call(CTC_CALL_FORWARD_BACKWARD, ...)`. The inputs are validated (and
/// targets and lengths read) as by the compute calls; `options.workspace` itself is not required.
/// The size depends on N, C and the largest input and target lengths.
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
        unsafe {
            size_query(
                Call::ForwardBackward,
                log_probs,
                targets,
                input_lengths,
                target_lengths,
                options,
                bytes,
            )
        }
    })
}

/// Writes to `*bytes` the size of scratch memory that the computation `call` needs with these
/// arguments (alignment slack included), for use as `options.workspace` of that call:
/// `CTC_CALL_FORWARD` (`ctc_loss_forward`: the loss alone keeps two rows of the forward variable
/// per sample, O(N (L + C)), where the gradient keeps the whole table, O(T N L)),
/// `CTC_CALL_BACKWARD` or `CTC_CALL_FORWARD_BACKWARD`. Validation and outputs as
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
        let call: Call = enum_from_c(
            "call",
            call,
            "CTC_CALL_FORWARD (0), CTC_CALL_BACKWARD (1), CTC_CALL_FORWARD_BACKWARD (2)",
        )?;
        // SAFETY: forwarded from this function's contract.
        unsafe {
            size_query(
                call,
                log_probs,
                targets,
                input_lengths,
                target_lengths,
                options,
                bytes,
            )
        }
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

/// A static, NUL-terminated description of `status` ("success", "invalid argument", ...;
/// "unknown status" for a value that is not a CtcStatus). Never NULL; never free it.
///
/// Thread safety: any thread, any time. Does not change the last-error message.
#[no_mangle]
pub extern "C" fn ctc_status_string(status: CtcStatus) -> *const c_char {
    let text: &'static std::ffi::CStr = match Status::try_from(status) {
        Ok(Status::Success) => c"success",
        Ok(Status::InvalidArgument) => c"invalid argument",
        Ok(Status::Unsupported) => c"unsupported",
        Ok(Status::OutOfMemory) => c"out of memory",
        Ok(Status::DeviceError) => c"device error",
        Ok(Status::InternalError) => c"internal error",
        Err(_) => c"unknown status",
    };
    text.as_ptr()
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

/// The number of CUDA devices usable by libctc: 0 when there is no CUDA driver, no device, or
/// (as in this version) no CUDA backend. Never fails. Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn ctc_cuda_device_count() -> i32 {
    std::panic::catch_unwind(dispatch::cuda_device_count).unwrap_or(0)
}
