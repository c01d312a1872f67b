//! Inputs of a CTC computation as ndarray views, and their validation.
//!
//! [`Problem::new`] checks every rule of the contract (shapes, lengths, labels, blank, outputs)
//! before anything is computed or written; a backend only ever sees a validated [`Problem`].

use crate::error::{invalid, Error};
use crate::types::{Element, Options, Reduction};
use ndarray::{ArrayView1, ArrayView2, ArrayView3, Axis};

/// A one-dimensional integer view (targets or lengths), int32 or int64.
#[derive(Clone, Copy, Debug)]
pub enum IntView1<'a> {
    /// 32-bit integers.
    I32(ArrayView1<'a, i32>),
    /// 64-bit integers.
    I64(ArrayView1<'a, i64>),
}

impl IntView1<'_> {
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

/// The targets of a batch, in either of torch's two layouts.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// (N, S): row `b` holds the labels of sample `b` in its first `target_lengths[b]` entries;
    /// the rest is padding and is never read.
    Padded(IntView2<'a>),
    /// (sum(target_lengths),): the labels of all samples one after the other.
    Concatenated(IntView1<'a>),
}

/// The inputs of a batched CTC computation. Unbatched (T, C) input is the batch of one obtained
/// with `log_probs.insert_axis(Axis(1))`.
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

/// A validated problem: the inputs and the sizes every backend needs.
#[derive(Debug)]
pub(crate) struct Problem<'v, 'a, E> {
    pub inputs: &'v Inputs<'a, E>,
    pub options: Options,
    /// Batch size N.
    pub batch: usize,
    /// Classes C.
    pub classes: usize,
    /// The blank class.
    pub blank: u32,
    /// max over b of input_lengths[b].
    pub max_input_length: usize,
    /// max over b of target_lengths[b].
    pub max_target_length: usize,
}

/// Sizes established by [`check_indices`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct IndexCheck {
    /// Batch size N.
    pub batch: usize,
    /// Classes C.
    pub classes: usize,
    /// The blank class.
    pub blank: u32,
    /// max over b of input_lengths[b].
    pub max_input_length: usize,
    /// max over b of target_lengths[b].
    pub max_target_length: usize,
}

/// Checks every rule of the contract about targets, lengths and the blank against the sizes
/// (T, N, C) of log_probs. Reads each length once and each label once; reads no padding (and no
/// log-probability, so that it also serves device-resident log_probs).
pub(crate) fn check_indices<'a>(
    (max_time, batch, classes): (usize, usize, usize),
    targets: &Targets<'a>,
    input_lengths: &IntView1<'a>,
    target_lengths: &IntView1<'a>,
    options: &Options,
) -> Result<IndexCheck, Error> {
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
    if options.blank < 0 || options.blank as u64 >= classes as u64 {
        return Err(invalid!(
            "options.blank = {} is out of range [0, {classes})",
            options.blank
        ));
    }
    let blank = options.blank as u32;
    for (name, v) in [
        ("input_lengths", input_lengths),
        ("target_lengths", target_lengths),
    ] {
        if v.len() != batch {
            return Err(invalid!(
                "{name} has {} elements but log_probs has batch size N = {batch}",
                v.len()
            ));
        }
    }
    let mut max_input_length = 0usize;
    let mut max_target_length = 0usize;
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
        max_input_length = max_input_length.max(il as usize);
        max_target_length = max_target_length.max(tl as usize);
    }
    match targets {
        Targets::Padded(t) => {
            let (rows, _) = t.dim();
            if rows != batch {
                return Err(invalid!(
                    "targets has {rows} rows but log_probs has batch size N = {batch}"
                ));
            }
        }
        Targets::Concatenated(t) => {
            if t.len() as u64 != total_target_length {
                return Err(invalid!(
                    "concatenated targets has {} labels but sum(target_lengths) = {total_target_length}",
                    t.len()
                ));
            }
        }
    }
    for_each_label(targets, target_lengths, batch, |b, j, offset, label| {
        if label < 0 || label as u64 >= classes as u64 {
            return Err(match targets {
                Targets::Padded(_) => {
                    invalid!("targets[{b}][{j}] = {label} is out of range [0, {classes})")
                }
                Targets::Concatenated(_) => invalid!(
                    "targets[{offset}] = {label} (label {j} of sample {b}) is out of range [0, {classes})"
                ),
            });
        }
        if label == options.blank {
            return Err(match targets {
                Targets::Padded(_) => invalid!(
                    "targets[{b}][{j}] = {label} is the blank class (options.blank = {label})"
                ),
                Targets::Concatenated(_) => invalid!(
                    "targets[{offset}] = {label} (label {j} of sample {b}) is the blank class (options.blank = {label})"
                ),
            });
        }
        Ok(())
    })?;
    Ok(IndexCheck {
        batch,
        classes,
        blank,
        max_input_length,
        max_target_length,
    })
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

impl<'v, 'a, E: Element> Problem<'v, 'a, E> {
    /// Checks every input rule of the contract (see [`check_indices`]).
    pub fn new(inputs: &'v Inputs<'a, E>, options: &Options) -> Result<Self, Error> {
        let c = check_indices(
            inputs.log_probs.dim(),
            &inputs.targets,
            &inputs.input_lengths,
            &inputs.target_lengths,
            options,
        )?;
        Ok(Problem {
            inputs,
            options: *options,
            batch: c.batch,
            classes: c.classes,
            blank: c.blank,
            max_input_length: c.max_input_length,
            max_target_length: c.max_target_length,
        })
    }

    /// Calls `f(b, j, offset, label)` for label `j` of every sample `b` (see [`for_each_label`]).
    pub fn for_each_label(
        &self,
        f: impl FnMut(usize, usize, usize, i64) -> Result<(), Error>,
    ) -> Result<(), Error> {
        for_each_label(
            &self.inputs.targets,
            &self.inputs.target_lengths,
            self.batch,
            f,
        )
    }

    /// `input_lengths[b]`, validated.
    #[inline]
    pub fn input_length(&self, b: usize) -> usize {
        self.inputs.input_lengths.get(b) as usize
    }

    /// `target_lengths[b]`, validated.
    #[inline]
    pub fn target_length(&self, b: usize) -> usize {
        self.inputs.target_lengths.get(b) as usize
    }

    /// Number of loss values: N for `Reduction::None`, else 1.
    pub fn loss_len(&self) -> usize {
        match self.options.reduction {
            Reduction::None => self.batch,
            Reduction::Mean | Reduction::Sum => 1,
        }
    }

    /// Checks that an output or upstream-gradient view has the shape this problem needs.
    pub fn check_loss_shape(&self, name: &str, len: usize) -> Result<(), Error> {
        if len != self.loss_len() {
            return Err(match self.options.reduction {
                Reduction::None => invalid!(
                    "{name} has {len} elements but reduction none needs N = {}",
                    self.batch
                ),
                _ => invalid!("{name} has {len} elements but a reduced loss is one element"),
            });
        }
        Ok(())
    }

    /// Checks that a gradient view has the shape of log_probs.
    pub fn check_grad_shape(&self, dim: (usize, usize, usize)) -> Result<(), Error> {
        let want = self.inputs.log_probs.dim();
        if dim != want {
            return Err(invalid!(
                "grad_log_probs has shape {dim:?} but log_probs has shape {want:?}"
            ));
        }
        Ok(())
    }

    /// The log-probabilities of sample `b`, (T, C).
    pub fn sample_log_probs(&self, b: usize) -> ArrayView2<'a, E> {
        self.inputs.log_probs.index_axis_move(Axis(1), b)
    }
}
