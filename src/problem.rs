//! One validated, backend-neutral problem: what a call computes, on which operands, where they
//! live.
//!
//! The C ABI (`src/ffi`) and the safe Rust API (`src/api.rs`) both describe their arguments as
//! operands (host views, or device addresses with extents and strides) and call
//! [`Problem::new`], which checks every rule of the contract that does not need device memory:
//! shapes, counts, the blank, and, when they are on the host, every length and label. The
//! outputs are checked against the problem by [`Outputs::check`]. A backend only ever sees a
//! problem that passed both.

use crate::error::{invalid, Error};
use crate::types::{DType, Element, Floats1, Floats1Mut, Floats3, Floats3Mut, Options, Reduction};
use ndarray::{ArrayView1, ArrayView2, ArrayView3};

/// A one-dimensional integer view (targets or lengths), int32 or int64.
#[derive(Clone, Copy, Debug)]
pub enum IntView1<'a> {
    /// 32-bit integers.
    I32(ArrayView1<'a, i32>),
    /// 64-bit integers.
    I64(ArrayView1<'a, i64>),
}

impl IntView1<'_> {
    /// The same view with a shorter lifetime (ndarray views are invariant in theirs).
    pub(crate) fn reborrow<'b>(self) -> IntView1<'b>
    where
        Self: 'b,
    {
        match self {
            IntView1::I32(v) => IntView1::I32(v.reborrow()),
            IntView1::I64(v) => IntView1::I64(v.reborrow()),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            IntView1::I32(v) => v.len(),
            IntView1::I64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i`, widened to i64. Panics when out of bounds (callers check `len` first).
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        match self {
            IntView1::I32(v) => v[i] as i64,
            IntView1::I64(v) => v[i],
        }
    }
}

impl<'a> From<ArrayView1<'a, i32>> for IntView1<'a> {
    fn from(v: ArrayView1<'a, i32>) -> Self {
        IntView1::I32(v)
    }
}

impl<'a> From<ArrayView1<'a, i64>> for IntView1<'a> {
    fn from(v: ArrayView1<'a, i64>) -> Self {
        IntView1::I64(v)
    }
}

/// A two-dimensional integer view (padded targets), int32 or int64.
#[derive(Clone, Copy, Debug)]
pub enum IntView2<'a> {
    /// 32-bit integers.
    I32(ArrayView2<'a, i32>),
    /// 64-bit integers.
    I64(ArrayView2<'a, i64>),
}

impl IntView2<'_> {
    /// The same view with a shorter lifetime (ndarray views are invariant in theirs).
    pub(crate) fn reborrow<'b>(self) -> IntView2<'b>
    where
        Self: 'b,
    {
        match self {
            IntView2::I32(v) => IntView2::I32(v.reborrow()),
            IntView2::I64(v) => IntView2::I64(v.reborrow()),
        }
    }

    /// (rows, columns).
    pub fn dim(&self) -> (usize, usize) {
        match self {
            IntView2::I32(v) => v.dim(),
            IntView2::I64(v) => v.dim(),
        }
    }

    /// Element `[i, j]`, widened to i64. Panics when out of bounds.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> i64 {
        match self {
            IntView2::I32(v) => v[[i, j]] as i64,
            IntView2::I64(v) => v[[i, j]],
        }
    }
}

impl<'a> From<ArrayView2<'a, i32>> for IntView2<'a> {
    fn from(v: ArrayView2<'a, i32>) -> Self {
        IntView2::I32(v)
    }
}

impl<'a> From<ArrayView2<'a, i64>> for IntView2<'a> {
    fn from(v: ArrayView2<'a, i64>) -> Self {
        IntView2::I64(v)
    }
}

/// A mutable two-dimensional integer view (alignment paths, (T, N)), int32 or int64.
#[derive(Debug)]
pub enum PathViewMut<'a> {
    /// 32-bit integers.
    I32(ndarray::ArrayViewMut2<'a, i32>),
    /// 64-bit integers.
    I64(ndarray::ArrayViewMut2<'a, i64>),
}

impl PathViewMut<'_> {
    /// (T, N).
    pub fn dim(&self) -> (usize, usize) {
        match self {
            PathViewMut::I32(v) => v.dim(),
            PathViewMut::I64(v) => v.dim(),
        }
    }
}

impl<'a> From<ndarray::ArrayViewMut2<'a, i32>> for PathViewMut<'a> {
    fn from(v: ndarray::ArrayViewMut2<'a, i32>) -> Self {
        PathViewMut::I32(v)
    }
}

impl<'a> From<ndarray::ArrayViewMut2<'a, i64>> for PathViewMut<'a> {
    fn from(v: ndarray::ArrayViewMut2<'a, i64>) -> Self {
        PathViewMut::I64(v)
    }
}

/// The targets of a batch, in either of torch's two layouts.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// (N, S): row `b` holds the labels of sample `b` in its first `target_lengths[b]` entries;
    /// the rest is padding and is never read.
    Padded(IntView2<'a>),
    /// (sum(target_lengths),): the labels of all samples one after the other.
    Concatenated(IntView1<'a>),
}

impl Targets<'_> {
    /// The same targets with a shorter lifetime.
    pub(crate) fn reborrow<'b>(self) -> Targets<'b>
    where
        Self: 'b,
    {
        match self {
            Targets::Padded(v) => Targets::Padded(v.reborrow()),
            Targets::Concatenated(v) => Targets::Concatenated(v.reborrow()),
        }
    }
}

/// The inputs of a batched CTC computation on the host. Unbatched (T, C) input is the batch of
/// one obtained with `log_probs.insert_axis(Axis(1))`.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a, E> {
    /// (T, N, C) log-probabilities, any strides.
    pub log_probs: ArrayView3<'a, E>,
    /// The labels.
    pub targets: Targets<'a>,
    /// (N,) frames of each sample, in [0, T].
    pub input_lengths: IntView1<'a>,
    /// (N,) labels of each sample, >= 0.
    pub target_lengths: IntView1<'a>,
}

/// Where a call's tensors live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    Host,
    /// The CUDA device of this ordinal.
    Cuda(i32),
}

/// A tensor in device memory: its address, element type, and extents and element strides in
/// batched form ((T, N, C), (N, S), (n,) with unit extents and zero strides past its rank). The
/// library cannot read it; only kernels do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeviceArray {
    pub addr: u64,
    pub dtype: DType,
    pub shape: [usize; 3],
    pub strides: [usize; 3],
}

/// An integer operand: a host view, or a device tensor of int32 or int64.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ints<'a> {
    Host(IntView1<'a>),
    Device(DeviceArray),
}

impl Ints<'_> {
    fn len(&self) -> usize {
        match self {
            Ints::Host(v) => v.len(),
            Ints::Device(a) => a.shape[0],
        }
    }
}

/// The targets operand.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TargetsArg<'a> {
    Host(Targets<'a>),
    /// A device tensor: padded (N, S) when `padded`, else concatenated (total,).
    Device {
        padded: bool,
        array: DeviceArray,
    },
}

/// The log-probabilities operand.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LogProbs<'a> {
    Host(Floats3<'a>),
    Device(DeviceArray),
}

/// The sizes of a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// T: frames of log_probs.
    pub max_time: usize,
    /// N: samples.
    pub batch: usize,
    /// C: classes.
    pub classes: usize,
    /// The blank class, in [0, C).
    pub blank: u32,
}

/// What reading host-resident targets and lengths established (each checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lengths {
    /// max over b of input_lengths[b].
    pub max_input: usize,
    /// max over b of target_lengths[b].
    pub max_target: usize,
}

/// A validated problem (see the module doc).
#[derive(Debug)]
pub(crate) struct Problem<'a> {
    pub place: Place,
    /// The floating type of log_probs.
    pub dtype: DType,
    pub sizes: Sizes,
    pub options: Options,
    pub log_probs: LogProbs<'a>,
    pub targets: TargetsArg<'a>,
    pub input_lengths: Ints<'a>,
    pub target_lengths: Ints<'a>,
    /// Set when targets and both lengths are on the host (then every value was checked).
    pub lengths: Option<Lengths>,
    /// The caller's CUDA stream (`CUstream`; 0 is the legacy default stream); unused on the host.
    pub cuda_stream: usize,
}

/// The operands of a problem, as [`Problem::new`] takes them.
pub(crate) struct Operands<'a> {
    pub place: Place,
    pub dtype: DType,
    /// (T, N, C).
    pub dims: (usize, usize, usize),
    pub log_probs: LogProbs<'a>,
    pub targets: TargetsArg<'a>,
    pub input_lengths: Ints<'a>,
    pub target_lengths: Ints<'a>,
    pub cuda_stream: usize,
}

impl<'a> Problem<'a> {
    /// Checks every rule of the contract that needs no device memory (see the module doc).
    pub fn new(ops: Operands<'a>, options: &Options) -> Result<Problem<'a>, Error> {
        let (max_time, batch, classes) = ops.dims;
        let sizes = Sizes {
            max_time,
            batch,
            classes,
            blank: check_classes_and_blank(classes, options.blank)?,
        };
        for (name, v) in [
            ("input_lengths", &ops.input_lengths),
            ("target_lengths", &ops.target_lengths),
        ] {
            if v.len() != batch {
                return Err(invalid!(
                    "{name} has {} elements but log_probs has batch size N = {batch}",
                    v.len()
                ));
            }
        }
        if let Some(rows) = padded_rows(&ops.targets) {
            if rows != batch {
                return Err(invalid!(
                    "targets has {rows} rows but log_probs has batch size N = {batch}"
                ));
            }
        }
        let lengths = match (ops.targets, ops.input_lengths, ops.target_lengths) {
            (TargetsArg::Host(t), Ints::Host(il), Ints::Host(tl)) => {
                Some(check_host_values(&sizes, &t, &il, &tl)?)
            }
            _ => None,
        };
        Ok(Problem {
            place: ops.place,
            dtype: ops.dtype,
            sizes,
            options: *options,
            log_probs: ops.log_probs,
            targets: ops.targets,
            input_lengths: ops.input_lengths,
            target_lengths: ops.target_lengths,
            lengths,
            cuda_stream: ops.cuda_stream,
        })
    }

    /// A problem on host views (the safe Rust API's).
    pub fn host<E: Element>(inputs: &Inputs<'a, E>, options: &Options) -> Result<Self, Error> {
        let ops = Operands {
            place: Place::Host,
            dtype: E::DTYPE,
            dims: inputs.log_probs.dim(),
            log_probs: LogProbs::Host(E::floats3(inputs.log_probs)),
            targets: TargetsArg::Host(inputs.targets),
            input_lengths: Ints::Host(inputs.input_lengths),
            target_lengths: Ints::Host(inputs.target_lengths),
            cuda_stream: 0,
        };
        Problem::new(ops, options)
    }

    /// Number of loss values: N for `Reduction::None`, else 1.
    pub fn loss_len(&self) -> usize {
        match self.options.reduction {
            Reduction::None => self.sizes.batch,
            Reduction::Mean | Reduction::Sum => 1,
        }
    }

    /// (T, N, C).
    pub fn dims(&self) -> (usize, usize, usize) {
        let s = &self.sizes;
        (s.max_time, s.batch, s.classes)
    }
}

/// Checks `C >= 1` (and that it fits the label type) and `0 <= blank < C`; returns the blank.
fn check_classes_and_blank(classes: usize, blank: i64) -> Result<u32, Error> {
    if classes == 0 {
        return Err(invalid!(
            "log_probs has C = 0 classes; at least one (the blank) is needed"
        ));
    }
    if classes > u32::MAX as usize {
        return Err(invalid!(
            "log_probs has C = {classes} classes, more than the {} supported",
            u32::MAX
        ));
    }
    if blank < 0 || blank as u64 >= classes as u64 {
        return Err(invalid!(
            "options.blank = {blank} is out of range [0, {classes})"
        ));
    }
    Ok(blank as u32)
}

/// The rows of padded targets.
fn padded_rows(targets: &TargetsArg<'_>) -> Option<usize> {
    match targets {
        TargetsArg::Host(Targets::Padded(t)) => Some(t.dim().0),
        TargetsArg::Device {
            padded: true,
            array,
        } => Some(array.shape[0]),
        _ => None,
    }
}

/// Checks every length and every label of host-resident targets and lengths against the sizes.
/// Reads each length once and each label once; reads no padding.
fn check_host_values(
    sizes: &Sizes,
    targets: &Targets<'_>,
    input_lengths: &IntView1<'_>,
    target_lengths: &IntView1<'_>,
) -> Result<Lengths, Error> {
    let (max_time, batch) = (sizes.max_time, sizes.batch);
    let mut facts = Lengths {
        max_input: 0,
        max_target: 0,
    };
    let mut total_target_length = 0u64;
    for b in 0..batch {
        let il = input_lengths.get(b);
        if il < 0 || il as u64 > max_time as u64 {
            return Err(invalid!(
                "input_lengths[{b}] = {il} is out of range [0, T = {max_time}]"
            ));
        }
        let tl = target_lengths.get(b);
        if tl < 0 {
            return Err(invalid!("target_lengths[{b}] = {tl} is negative"));
        }
        if let Targets::Padded(t) = targets {
            let s = t.dim().1;
            if tl as u64 > s as u64 {
                return Err(invalid!(
                    "target_lengths[{b}] = {tl} exceeds the padded targets' row length S = {s}"
                ));
            }
        }
        // Each length is below 2^63, so the saturating sum is exact until it exceeds any real
        // tensor's length, which is all the comparison below needs.
        total_target_length = total_target_length.saturating_add(tl as u64);
        facts.max_input = facts.max_input.max(il as usize);
        facts.max_target = facts.max_target.max(tl as usize);
    }
    if let Targets::Concatenated(t) = targets {
        if t.len() as u64 != total_target_length {
            return Err(invalid!(
                "concatenated targets has {} labels but sum(target_lengths) = {total_target_length}",
                t.len()
            ));
        }
    }
    for_each_label(targets, target_lengths, batch, |b, j, offset, label| {
        check_label(targets, sizes, (b, j, offset), label)
    })?;
    Ok(facts)
}

/// Checks that a label is a class and not the blank.
fn check_label(
    targets: &Targets<'_>,
    sizes: &Sizes,
    (b, j, offset): (usize, usize, usize),
    label: i64,
) -> Result<(), Error> {
    let classes = sizes.classes;
    // Formatted only for a message: this runs once per label of every call.
    let at = || match targets {
        Targets::Padded(_) => format!("targets[{b}][{j}] = {label}"),
        Targets::Concatenated(_) => {
            format!("targets[{offset}] = {label} (label {j} of sample {b})")
        }
    };
    if label < 0 || label as u64 >= classes as u64 {
        return Err(invalid!("{} is out of range [0, {classes})", at()));
    }
    if label == sizes.blank as i64 {
        return Err(invalid!(
            "{} is the blank class (options.blank = {label})",
            at()
        ));
    }
    Ok(())
}

/// Calls `f(b, j, offset, label)` for label `j` of every sample `b`, in order; `offset` is the
/// position in concatenated targets (`j` for padded ones). Lengths must have been checked.
pub(crate) fn for_each_label(
    targets: &Targets<'_>,
    target_lengths: &IntView1<'_>,
    batch: usize,
    mut f: impl FnMut(usize, usize, usize, i64) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut offset = 0usize;
    for b in 0..batch {
        let len = target_lengths.get(b) as usize;
        for j in 0..len {
            let (label, at) = match targets {
                Targets::Padded(t) => (t.get(b, j), j),
                Targets::Concatenated(t) => (t.get(offset + j), offset + j),
            };
            f(b, j, at, label)?;
        }
        offset += len;
    }
    Ok(())
}

/// A floating output or input of the loss's shape: a host view, or a device tensor.
#[derive(Debug)]
pub(crate) enum Out1<'o> {
    Host(Floats1Mut<'o>),
    Device(DeviceArray),
}

/// The gradient output: a host view, or a device tensor.
#[derive(Debug)]
pub(crate) enum Out3<'o> {
    Host(Floats3Mut<'o>),
    Device(DeviceArray),
}

/// The upstream gradient: a host view, or a device tensor.
#[derive(Clone, Copy, Debug)]
pub(crate) enum In1<'o> {
    Host(Floats1<'o>),
    Device(DeviceArray),
}

/// Where a call writes, and the upstream gradient of the loss.
#[derive(Debug, Default)]
pub(crate) struct Outputs<'o> {
    /// Per-sample (N) or reduced (1) loss.
    pub loss: Option<Out1<'o>>,
    /// Gradient with respect to log_probs, (T, N, C).
    pub grad: Option<Out3<'o>>,
    /// Upstream gradient, shaped like the loss; `None` means ones.
    pub grad_loss: Option<In1<'o>>,
}

impl Outputs<'_> {
    /// Checks the outputs' shapes against the problem.
    pub fn check(&self, p: &Problem<'_>) -> Result<(), Error> {
        if let Some(l) = &self.loss {
            let len = match l {
                Out1::Host(v) => v.len(),
                Out1::Device(a) => a.shape[0],
            };
            check_loss_len(p, "loss", len)?;
        }
        if let Some(g) = &self.grad_loss {
            let len = match g {
                In1::Host(v) => v.len(),
                In1::Device(a) => a.shape[0],
            };
            check_loss_len(p, "grad_loss", len)?;
        }
        if let Some(g) = &self.grad {
            let dim = match g {
                Out3::Host(v) => v.dim(),
                Out3::Device(a) => (a.shape[0], a.shape[1], a.shape[2]),
            };
            let want = p.dims();
            if dim != want {
                return Err(invalid!(
                    "grad_log_probs has shape {dim:?} but log_probs has shape {want:?}"
                ));
            }
        }
        if self.loss.is_none() && self.grad.is_none() {
            return Err(invalid!("neither loss nor grad_log_probs was asked for"));
        }
        Ok(())
    }
}

/// Checks that an output or upstream-gradient view has the loss's number of elements.
fn check_loss_len(p: &Problem<'_>, name: &str, len: usize) -> Result<(), Error> {
    if len == p.loss_len() {
        return Ok(());
    }
    Err(match p.options.reduction {
        Reduction::None => invalid!(
            "{name} has {len} elements but reduction none needs N = {}",
            p.sizes.batch
        ),
        _ => invalid!("{name} has {len} elements but a reduced loss is one element"),
    })
}

/// The alignment paths: a host view or a device tensor, (T, N).
#[derive(Debug)]
pub(crate) enum PathOut<'o> {
    Host(PathViewMut<'o>),
    Device(DeviceArray),
}

/// Where an alignment writes.
#[derive(Debug)]
pub(crate) struct AlignOutputs<'o> {
    /// (T, N): the class of each frame, -1 past the input length and for samples with no
    /// alignment.
    pub path: PathOut<'o>,
    /// (N,): the best alignment's total log-score; `None` to skip.
    pub scores: Option<Out1<'o>>,
}

impl AlignOutputs<'_> {
    /// Checks the outputs' shapes against the problem.
    pub fn check(&self, p: &Problem<'_>) -> Result<(), Error> {
        let (t, n, _) = p.dims();
        let dim = match &self.path {
            PathOut::Host(v) => v.dim(),
            PathOut::Device(a) => (a.shape[0], a.shape[1]),
        };
        if dim != (t, n) {
            return Err(invalid!(
                "path has shape {dim:?} but log_probs has (T, N) = {:?}",
                (t, n)
            ));
        }
        if let Some(s) = &self.scores {
            let len = match s {
                Out1::Host(v) => v.len(),
                Out1::Device(a) => a.shape[0],
            };
            if len != n {
                return Err(invalid!(
                    "path_scores has {len} elements but log_probs has batch size N = {n}"
                ));
            }
        }
        Ok(())
    }
}

/// Scratch memory a call runs in.
#[derive(Debug)]
pub(crate) enum Workspace<'w> {
    /// The library's own.
    Library,
    /// The caller's host memory, any alignment.
    Host(&'w mut [u8]),
    /// The caller's device memory: address and size.
    Device { addr: u64, bytes: usize },
}
