//! The arguments of one C call: read, checked as far as they can be without reading tensor
//! contents, and turned into the backend-neutral [`Problem`] (and its outputs and workspace)
//! that [`crate::dispatch`] runs.

use super::tensor::RawTensor;
use super::{CtcOptions, CtcTensor};
use crate::error::{invalid, Error};
use crate::problem::{
    AlignOutputs, DeviceArray, In1, IntView1, IntView2, Ints, LogProbs, Operands, Out1, Out3,
    Outputs, PathOut, PathViewMut, Place, Problem, Targets, TargetsArg, Workspace,
};
use crate::types::{
    enum_from_c, DType, Device, Floats1, Floats1Mut, Floats3, Floats3Mut, Gradient, Input, Options,
    Reduction,
};
use std::ffi::c_void;

/// The largest `struct_size` accepted from a caller built against a newer header.
const MAX_OPTIONS_SIZE: u32 = 4096;

/// Options as the core understands them, plus the caller's workspace and stream.
pub(super) struct CallOptions {
    pub options: Options,
    pub workspace: Option<(*mut c_void, usize)>,
    /// The caller's CUDA stream (NULL: the default stream); unused on the CPU.
    pub cuda_stream: *mut c_void,
}

/// Reads `*ptr` whole, checking `struct_size` and that every byte past this version's fields is
/// zero (see the doc of [`CtcOptions`]).
///
/// # Safety
/// `ptr` is NULL or points to at least `ptr->struct_size` readable bytes.
unsafe fn read_options_struct(ptr: *const CtcOptions) -> Result<CtcOptions, Error> {
    if ptr.is_null() {
        return Ok(CtcOptions::default());
    }
    let ours = std::mem::size_of::<CtcOptions>();
    // SAFETY: non-null and readable for at least 4 bytes per the contract; any alignment.
    let size = unsafe { ptr.cast::<u32>().read_unaligned() };
    if size as usize == V01_OPTIONS_SIZE {
        // SAFETY: the caller promises struct_size readable bytes at ptr; the prefix of 0.1's
        // fields is laid out as ours (tests/header.rs checks the offsets).
        return Ok(unsafe { read_v01_options(ptr) });
    }
    if (size as usize) < ours {
        return Err(invalid!(
            "options.struct_size = {size} is neither sizeof(CtcOptions) = {ours} of libctc {} nor {V01_OPTIONS_SIZE} of version 0.1",
            env!("CARGO_PKG_VERSION")
        ));
    }
    if size > MAX_OPTIONS_SIZE {
        return Err(invalid!(
            "options.struct_size = {size} is larger than {MAX_OPTIONS_SIZE}, the most libctc accepts"
        ));
    }
    // SAFETY: the caller promises struct_size readable bytes at ptr; bytes are valid for any
    // bit pattern.
    let tail =
        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>().add(ours), size as usize - ours) };
    if let Some(i) = tail.iter().position(|&b| b != 0) {
        return Err(invalid!(
            "options byte {} (past the {ours} bytes of CtcOptions in libctc {}) is {}, not 0: the caller sets an option this version does not know",
            ours + i,
            env!("CARGO_PKG_VERSION"),
            tail[i]
        ));
    }
    // SAFETY: at least sizeof(CtcOptions) readable bytes; every field is an integer, a pointer
    // or a byte wrapper, valid for any bit pattern.
    Ok(unsafe { ptr.read_unaligned() })
}

/// `sizeof(CtcOptions)` of version 0.1, whose layout ends before `input` and `gradient`.
pub(super) const V01_OPTIONS_SIZE: usize = 48;

/// The options of a caller built against 0.1's header: its 48 bytes, the fields 0.2 appended
/// zero (their defaults).
///
/// # Safety
/// `ptr` points to at least [`V01_OPTIONS_SIZE`] readable bytes.
unsafe fn read_v01_options(ptr: *const CtcOptions) -> CtcOptions {
    let mut o = CtcOptions {
        input: 0,
        gradient: 0,
        ..CtcOptions::default()
    };
    // SAFETY: `o` is a plain C struct valid for any bytes of its integer, pointer and byte
    // fields; `ptr` has V01_OPTIONS_SIZE readable bytes, fewer than sizeof(CtcOptions).
    unsafe {
        std::ptr::copy_nonoverlapping(
            ptr.cast::<u8>(),
            (&mut o as *mut CtcOptions).cast::<u8>(),
            V01_OPTIONS_SIZE,
        )
    };
    o
}

/// Reads and checks `*ptr`.
///
/// # Safety
/// As [`read_options_struct`].
pub(super) unsafe fn read_options(ptr: *const CtcOptions) -> Result<CallOptions, Error> {
    // SAFETY: forwarded from this function's contract.
    let o = unsafe { read_options_struct(ptr) }?;
    let reduction: Reduction = enum_from_c("options.reduction", o.reduction)?;
    let input: Input = enum_from_c("options.input", o.input)?;
    let gradient: Gradient = enum_from_c("options.gradient", o.gradient)?;
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
            input,
            gradient,
        },
        workspace,
        cuda_stream: o.cuda_stream,
    })
}

/// Which outputs a C entry point produces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    Loss,
    Grad,
    Both,
    /// The workspace size (no output tensor).
    Size,
    /// A forced alignment: `path` and, when not NULL, `path_scores`.
    Align,
}

/// The raw pointers of one call, as the entry points receive them.
pub(super) struct Pointers {
    pub log_probs: *const CtcTensor,
    pub targets: *const CtcTensor,
    pub input_lengths: *const CtcTensor,
    pub target_lengths: *const CtcTensor,
    pub grad_loss: *const CtcTensor,
    pub options: *const CtcOptions,
    pub loss: *const CtcTensor,
    pub grad: *const CtcTensor,
    pub path: *const CtcTensor,
    pub path_scores: *const CtcTensor,
}

/// The arguments of one call, read and checked.
pub(super) struct Args {
    log_probs: RawTensor,
    targets: RawTensor,
    input_lengths: RawTensor,
    target_lengths: RawTensor,
    grad_loss: Option<RawTensor>,
    loss: Option<RawTensor>,
    grad: Option<RawTensor>,
    path: Option<RawTensor>,
    path_scores: Option<RawTensor>,
    options: CallOptions,
    /// log_probs is (T, N, C), not unbatched (T, C).
    batched: bool,
}

/// Whether two tensors live in the same memory space (`device_index` counts only on CUDA).
fn same_place(a: &RawTensor, b: &RawTensor) -> bool {
    a.device == b.device && (a.device == Device::Cpu || a.device_index == b.device_index)
}

impl Args {
    /// Reads every argument `want` uses and checks everything that does not need tensor
    /// contents: dtypes, devices, ndims, overlap.
    ///
    /// # Safety
    /// Every non-NULL pointer points to a readable object of its type (options: see
    /// [`read_options`]).
    pub unsafe fn read(p: &Pointers, want: Want) -> Result<Args, Error> {
        // SAFETY (all reads below): forwarded from this function's contract.
        let options = unsafe { read_options(p.options) }?;
        let read = |name, ptr| unsafe { RawTensor::read(name, ptr) };
        let log_probs = read("log_probs", p.log_probs)?;
        let targets = read("targets", p.targets)?;
        let input_lengths = read("input_lengths", p.input_lengths)?;
        let target_lengths = read("target_lengths", p.target_lengths)?;
        let with_grad = matches!(want, Want::Grad | Want::Both);
        let with_loss = matches!(want, Want::Loss | Want::Both);
        let grad_loss = match with_grad && !p.grad_loss.is_null() {
            true => Some(read("grad_loss", p.grad_loss)?),
            false => None,
        };
        let loss = with_loss.then(|| read("loss", p.loss)).transpose()?;
        let grad = with_grad
            .then(|| read("grad_log_probs", p.grad))
            .transpose()?;
        let aligning = want == Want::Align;
        let path = aligning.then(|| read("path", p.path)).transpose()?;
        let path_scores = match aligning && !p.path_scores.is_null() {
            true => Some(read("path_scores", p.path_scores)?),
            false => None,
        };
        let batched = check_log_probs(&log_probs)?;
        let args = Args {
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            grad_loss,
            loss,
            grad,
            path,
            path_scores,
            options,
            batched,
        };
        args.check_dtypes_and_places()?;
        args.check_ndims()?;
        args.check_overlap(want)?;
        Ok(args)
    }

    /// Integer tensors on the host or on log_probs' device; floating ones like log_probs.
    fn check_dtypes_and_places(&self) -> Result<(), Error> {
        let lp = &self.log_probs;
        for t in [&self.targets, &self.input_lengths, &self.target_lengths] {
            if !matches!(t.dtype, DType::Int32 | DType::Int64) {
                return Err(invalid!(
                    "{}.dtype = {} but {} must be int32 or int64",
                    t.name,
                    t.dtype.name(),
                    t.name
                ));
            }
            if t.device != Device::Cpu && !same_place(t, lp) {
                return Err(invalid!(
                    "{} is on {} but log_probs is on {}: targets and lengths must be on the host or on log_probs' device",
                    t.name,
                    t.place(),
                    lp.place()
                ));
            }
        }
        for t in [&self.path, &self.path_scores].into_iter().flatten() {
            let int = matches!(t.dtype, DType::Int32 | DType::Int64);
            if t.name == "path" && !int {
                return Err(invalid!(
                    "path.dtype = {} but path must be int32 or int64",
                    t.dtype.name()
                ));
            }
            if t.name == "path_scores" && !(t.dtype == lp.dtype || t.dtype == DType::Float32) {
                return Err(invalid!(
                    "path_scores.dtype = {} but log_probs.dtype = {}: path_scores must be float32 or log_probs' dtype",
                    t.dtype.name(),
                    lp.dtype.name()
                ));
            }
            if !same_place(t, lp) {
                return Err(invalid!(
                    "{} is on {} but log_probs is on {}: they must match",
                    t.name,
                    t.place(),
                    lp.place()
                ));
            }
        }
        let half = matches!(lp.dtype, DType::Float16 | DType::BFloat16);
        for t in [&self.grad_loss, &self.loss, &self.grad]
            .into_iter()
            .flatten()
        {
            // Half inputs: float32 or their own dtype (a half loss overflows past 65504).
            let float32_for_half = half && t.dtype == DType::Float32;
            if t.dtype != lp.dtype && !float32_for_half {
                let rule = if half {
                    "it must be float32 or log_probs' dtype"
                } else {
                    "they must match"
                };
                return Err(invalid!(
                    "{}.dtype = {} but log_probs.dtype = {}: {rule}",
                    t.name,
                    t.dtype.name(),
                    lp.dtype.name()
                ));
            }
            if !same_place(t, lp) {
                return Err(invalid!(
                    "{} is on {} but log_probs is on {}: they must match",
                    t.name,
                    t.place(),
                    lp.place()
                ));
            }
        }
        Ok(())
    }

    /// The ranks of targets, lengths and outputs for a batched or unbatched call.
    fn check_ndims(&self) -> Result<(), Error> {
        if self.batched {
            self.targets.expect_ndim(
                &[1, 2],
                "targets must be padded (N, S) or concatenated (sum(target_lengths),)",
            )?;
            self.input_lengths
                .expect_ndim(&[1], "input_lengths must be (N,)")?;
            self.target_lengths
                .expect_ndim(&[1], "target_lengths must be (N,)")?;
        } else {
            self.targets
                .expect_ndim(&[1], "unbatched targets must be (S,)")?;
            self.input_lengths
                .expect_ndim(&[0, 1], "unbatched input_lengths must be () or (1,)")?;
            self.target_lengths
                .expect_ndim(&[0, 1], "unbatched target_lengths must be () or (1,)")?;
        }
        let per_sample = self.batched && self.options.options.reduction == Reduction::None;
        let (loss_ndim, loss_shape) = if per_sample {
            (1, "reduction none on a batch gives loss of shape (N,)")
        } else {
            (0, "a reduced or unbatched loss has shape ()")
        };
        for t in [&self.loss, &self.grad_loss].into_iter().flatten() {
            t.expect_ndim(&[loss_ndim], loss_shape)?;
        }
        if let Some(g) = &self.grad {
            g.expect_ndim(
                &[self.log_probs.ndim],
                "grad_log_probs must have the shape of log_probs",
            )?;
            g.expect_non_overlapping()?;
        }
        if let Some(l) = &self.loss {
            l.expect_non_overlapping()?;
        }
        if let Some(path) = &self.path {
            let (ndim, shape) = match self.batched {
                true => (2, "path must be (T, N)"),
                false => (1, "an unbatched path must be (T,)"),
            };
            path.expect_ndim(&[ndim], shape)?;
            path.expect_non_overlapping()?;
        }
        if let Some(s) = &self.path_scores {
            let (ndim, shape) = match self.batched {
                true => (1, "path_scores must be (N,)"),
                false => (0, "unbatched path_scores has shape ()"),
            };
            s.expect_ndim(&[ndim], shape)?;
            s.expect_non_overlapping()?;
        }
        Ok(())
    }

    /// Outputs (and the workspace) must not share a byte with each other or with any input in
    /// the same memory space.
    fn check_overlap(&self, want: Want) -> Result<(), Error> {
        let place = |t: &RawTensor| (t.device, t.device_index * (t.device == Device::Cuda) as i32);
        let mut written: Vec<(&str, _, std::ops::Range<usize>)> = Vec::new();
        let outputs = [&self.loss, &self.grad, &self.path, &self.path_scores];
        for t in outputs.into_iter().flatten() {
            written.push((t.name, place(t), t.byte_range()));
        }
        if let Some((ptr, n)) = self.options.workspace.filter(|_| want != Want::Size) {
            let at = ptr as usize;
            written.push(("options.workspace", place(&self.log_probs), at..at + n));
        }
        let mut all = written.clone();
        let inputs = [
            Some(&self.log_probs),
            Some(&self.targets),
            Some(&self.input_lengths),
            Some(&self.target_lengths),
            self.grad_loss.as_ref(),
        ];
        for t in inputs.into_iter().flatten() {
            all.push((t.name, place(t), t.byte_range()));
        }
        for (i, (wname, wplace, w)) in written.iter().enumerate() {
            for (j, (name, rplace, r)) in all.iter().enumerate() {
                let meet = !w.is_empty() && !r.is_empty() && w.start < r.end && r.start < w.end;
                if i != j && wplace == rplace && meet {
                    return Err(invalid!("{wname} overlaps {name} in memory"));
                }
            }
        }
        Ok(())
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

    /// Whether the targets' padded (N, S) form applies (unbatched targets are one padded row).
    fn padded(&self) -> bool {
        !(self.targets.ndim == 1 && self.batched)
    }

    /// Where the call runs.
    fn place(&self) -> Place {
        match self.log_probs.device {
            Device::Cpu => Place::Host,
            Device::Cuda => Place::Cuda(self.log_probs.device_index),
        }
    }

    /// The validated problem of this call.
    ///
    /// # Safety
    /// Every host tensor of the call is live memory of its dtype for `'a` (outputs writable and
    /// touched by nobody else), as the entry points' contracts require.
    pub unsafe fn problem<'a>(&'a self) -> Result<Problem<'a>, Error> {
        let (shape, _) = self.batched_dims(&self.log_probs);
        let ops = Operands {
            place: self.place(),
            dtype: self.log_probs.dtype,
            dims: (shape[0], shape[1], shape[2]),
            // SAFETY (the operands): forwarded from this function's contract.
            log_probs: unsafe { self.log_probs_operand() }?,
            targets: unsafe { self.targets_operand() },
            input_lengths: unsafe { self.ints_operand(&self.input_lengths) },
            target_lengths: unsafe { self.ints_operand(&self.target_lengths) },
            cuda_stream: self.options.cuda_stream as usize,
        };
        Problem::new(ops, &self.options.options)
    }

    /// # Safety
    /// As [`Args::problem`].
    unsafe fn log_probs_operand(&self) -> Result<LogProbs<'_>, Error> {
        let (shape, strides) = self.batched_dims(&self.log_probs);
        let t = &self.log_probs;
        if t.device == Device::Cuda {
            return Ok(LogProbs::Device(device_array(t, shape, strides)));
        }
        // SAFETY: a validated host tensor of this dtype, per this function's contract; the
        // shape and strides are its own (a unit dimension inserted).
        Ok(LogProbs::Host(match t.dtype {
            DType::Float32 => Floats3::F32(unsafe { t.view3(shape, strides) }),
            DType::Float64 => Floats3::F64(unsafe { t.view3(shape, strides) }),
            DType::Float16 => Floats3::F16(unsafe { t.view3(shape, strides) }),
            DType::BFloat16 => Floats3::BF16(unsafe { t.view3(shape, strides) }),
            d => return Err(unsupported_dtype(d)),
        }))
    }

    /// # Safety
    /// As [`Args::problem`].
    unsafe fn ints_operand<'a>(&'a self, t: &'a RawTensor) -> Ints<'a> {
        if t.device == Device::Cuda {
            let (n, s) = if t.ndim == 0 {
                (1, 0)
            } else {
                (t.shape[0], t.strides[0])
            };
            return Ints::Device(device_array(t, [n, 1, 1], [s, 0, 0]));
        }
        // SAFETY: a validated host integer tensor of this dtype (checked in `read`), per this
        // function's contract.
        Ints::Host(match t.dtype {
            DType::Int32 => IntView1::I32(unsafe { t.view1() }),
            _ => IntView1::I64(unsafe { t.view1() }),
        })
    }

    /// # Safety
    /// As [`Args::problem`].
    unsafe fn targets_operand(&self) -> TargetsArg<'_> {
        let t = &self.targets;
        let (shape, strides) = match (self.padded(), self.batched) {
            (false, _) => ([t.shape[0], 1], [t.strides[0], 0]),
            (true, true) => ([t.shape[0], t.shape[1]], [t.strides[0], t.strides[1]]),
            (true, false) => ([1, t.shape[0]], [0, t.strides[0]]),
        };
        if t.device == Device::Cuda {
            let array = if self.padded() {
                device_array(t, [shape[0], shape[1], 1], [strides[0], strides[1], 0])
            } else {
                device_array(t, [shape[0], 1, 1], [strides[0], 0, 0])
            };
            return TargetsArg::Device {
                padded: self.padded(),
                array,
            };
        }
        // SAFETY (all views): a validated host integer tensor (checked in `read`), per this
        // function's contract; the shape and strides are its own (a unit dimension inserted).
        TargetsArg::Host(if !self.padded() {
            // SAFETY: as above.
            Targets::Concatenated(unsafe { self.ints_view(t) })
        } else {
            Targets::Padded(match t.dtype {
                DType::Int32 => IntView2::I32(unsafe { t.view2(shape, strides) }),
                _ => IntView2::I64(unsafe { t.view2(shape, strides) }),
            })
        })
    }

    /// # Safety
    /// `t` is a validated host integer tensor of rank 0 or 1, live for `'a`.
    unsafe fn ints_view<'a>(&self, t: &'a RawTensor) -> IntView1<'a> {
        // SAFETY: forwarded from this function's contract.
        match t.dtype {
            DType::Int32 => IntView1::I32(unsafe { t.view1() }),
            _ => IntView1::I64(unsafe { t.view1() }),
        }
    }

    /// The outputs and the workspace of this call.
    ///
    /// # Safety
    /// As [`Args::problem`], and the workspace (checked not to overlap any tensor) is writable
    /// memory of its place for `'a`.
    pub unsafe fn outputs<'a>(&'a self) -> Result<(Outputs<'a>, Workspace<'a>), Error> {
        let on_device = self.log_probs.device == Device::Cuda;
        let vector = |t: &RawTensor| {
            let (n, s) = if t.ndim == 0 {
                (1, 0)
            } else {
                (t.shape[0], t.strides[0])
            };
            device_array(t, [n, 1, 1], [s, 0, 0])
        };
        // SAFETY (all views): validated host tensors of log_probs' dtype, outputs checked not to
        // overlap anything, per this function's contract.
        let loss = match &self.loss {
            None => None,
            Some(t) if on_device => Some(Out1::Device(vector(t))),
            Some(t) => Some(Out1::Host(match t.dtype {
                DType::Float32 => Floats1Mut::F32(unsafe { t.view1_mut() }),
                DType::Float64 => Floats1Mut::F64(unsafe { t.view1_mut() }),
                DType::Float16 => Floats1Mut::F16(unsafe { t.view1_mut() }),
                DType::BFloat16 => Floats1Mut::BF16(unsafe { t.view1_mut() }),
                d => return Err(unsupported_dtype(d)),
            })),
        };
        let grad_loss = match &self.grad_loss {
            None => None,
            Some(t) if on_device => Some(In1::Device(vector(t))),
            Some(t) => Some(In1::Host(match t.dtype {
                DType::Float32 => Floats1::F32(unsafe { t.view1() }),
                DType::Float64 => Floats1::F64(unsafe { t.view1() }),
                DType::Float16 => Floats1::F16(unsafe { t.view1() }),
                DType::BFloat16 => Floats1::BF16(unsafe { t.view1() }),
                d => return Err(unsupported_dtype(d)),
            })),
        };
        let grad = match &self.grad {
            None => None,
            Some(t) => {
                let (shape, strides) = self.batched_dims(t);
                Some(if on_device {
                    Out3::Device(device_array(t, shape, strides))
                } else {
                    Out3::Host(match t.dtype {
                        DType::Float32 => Floats3Mut::F32(unsafe { t.view3_mut(shape, strides) }),
                        DType::Float64 => Floats3Mut::F64(unsafe { t.view3_mut(shape, strides) }),
                        DType::Float16 => Floats3Mut::F16(unsafe { t.view3_mut(shape, strides) }),
                        DType::BFloat16 => Floats3Mut::BF16(unsafe { t.view3_mut(shape, strides) }),
                        d => return Err(unsupported_dtype(d)),
                    })
                })
            }
        };
        let workspace = match self.options.workspace {
            None => Workspace::Library,
            Some((ptr, n)) if on_device => Workspace::Device {
                addr: ptr as u64,
                bytes: n,
            },
            // SAFETY: the caller lends n writable bytes at ptr (checked not to wrap and not to
            // overlap any tensor) for the duration of the call.
            Some((ptr, n)) => {
                Workspace::Host(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), n) })
            }
        };
        let outputs = Outputs {
            loss,
            grad,
            grad_loss,
        };
        Ok((outputs, workspace))
    }
}

impl Args {
    /// The outputs of an alignment and the workspace.
    ///
    /// # Safety
    /// As [`Args::outputs`].
    pub unsafe fn align_outputs<'a>(&'a self) -> Result<(AlignOutputs<'a>, Workspace<'a>), Error> {
        let on_device = self.log_probs.device == Device::Cuda;
        let Some(t) = &self.path else {
            return Err(Error::Internal("an alignment without a path".into()));
        };
        let (shape, strides) = match self.batched {
            true => ([t.shape[0], t.shape[1]], [t.strides[0], t.strides[1]]),
            false => ([t.shape[0], 1], [t.strides[0], 0]),
        };
        // SAFETY (the views): validated host tensors of their dtype, written by nobody else and
        // checked not to overlap anything, per this function's contract.
        let path = if on_device {
            PathOut::Device(device_array(
                t,
                [shape[0], shape[1], 1],
                [strides[0], strides[1], 0],
            ))
        } else {
            PathOut::Host(match t.dtype {
                DType::Int32 => PathViewMut::I32(unsafe { t.view2_mut(shape, strides) }),
                _ => PathViewMut::I64(unsafe { t.view2_mut(shape, strides) }),
            })
        };
        let scores = match &self.path_scores {
            None => None,
            Some(s) if on_device => {
                let (n, st) = if s.ndim == 0 {
                    (1, 0)
                } else {
                    (s.shape[0], s.strides[0])
                };
                Some(Out1::Device(device_array(s, [n, 1, 1], [st, 0, 0])))
            }
            Some(s) => Some(Out1::Host(match s.dtype {
                DType::Float32 => Floats1Mut::F32(unsafe { s.view1_mut() }),
                DType::Float64 => Floats1Mut::F64(unsafe { s.view1_mut() }),
                DType::Float16 => Floats1Mut::F16(unsafe { s.view1_mut() }),
                DType::BFloat16 => Floats1Mut::BF16(unsafe { s.view1_mut() }),
                d => return Err(unsupported_dtype(d)),
            })),
        };
        // SAFETY: forwarded from this function's contract.
        let (_, workspace) = unsafe { self.outputs() }?;
        Ok((AlignOutputs { path, scores }, workspace))
    }
}

/// Checks log_probs' dtype and rank; returns whether it is batched (T, N, C).
fn check_log_probs(t: &RawTensor) -> Result<bool, Error> {
    match t.dtype {
        DType::Float32 | DType::Float64 | DType::Float16 | DType::BFloat16 => {}
        DType::Int32 | DType::Int64 => {
            return Err(invalid!(
                "log_probs.dtype = {} but log_probs must be floating point",
                t.dtype.name()
            ))
        }
    }
    match t.ndim {
        3 => Ok(true),
        2 => Ok(false),
        n => Err(invalid!(
            "log_probs.ndim = {n} but log_probs must be (T, N, C) or unbatched (T, C)"
        )),
    }
}

fn unsupported_dtype(d: DType) -> Error {
    Error::Unsupported(format!(
        "log_probs.dtype = {} is not computed by libctc {} (float32, float64, float16 and bfloat16 are)",
        d.name(),
        env!("CARGO_PKG_VERSION")
    ))
}

/// A device tensor with the given batched extents and strides.
fn device_array(t: &RawTensor, shape: [usize; 3], strides: [usize; 3]) -> DeviceArray {
    DeviceArray {
        addr: t.data as u64,
        dtype: t.dtype,
        shape,
        strides,
    }
}
