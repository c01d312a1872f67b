//! The CPU workspace layout: the one function that decides which scratch buffers a call needs
//! and where they lie. [`Layout::new`] is called both by the size query and by the carve-up of
//! the workspace a computation runs in, so the two can never disagree.
//!
//! Regions, each starting on a [`ALIGN`]-byte boundary of an aligned base (W = [`row_width`]: a
//! plane of Lmax + 1 blank states and a plane of Lmax label states between two -inf pads, each
//! plane with [`VECTOR_WIDTH`] spare entries for rounding to whole vectors; see `planar`):
//!
//! | region | element | count | holds |
//! |---|---|---|---|
//! | `labels` | u32 | N * max(Lmax, 1) | the validated labels of each sample |
//! | `skip` | u8 | N * W | whether the skip rule allows label k - 1 -> label k (k < W / 2) |
//! | `pending` | u8 | N | whether the deferred gradient pass has rows to write for the sample |
//! | `nll` | Acc | N | the negative log-likelihood of each sample |
//! | `log_alpha` | Acc | N * rows * W | rows = max(Tmax, 1) with a gradient, 2 without |
//! | `log_beta` | Acc | N * 2 * W | two rows of beta (1 element per sample without a gradient) |
//! | `scratch` | Acc | N * (3 W + 2 C) | per frame: gathered log-probs, their exponentials, state posteriors, class posteriors, a row copy |
//! | `lanes` | Acc | ceil(N / 8) * 8 (4 W + 2 C) when samples run in groups of 8 (`lanes.rs`), else 0 | the group's emissions of two frames, posteriors, skip mask, losses, class posteriors and upstream factors |
//! | `shifts` | Acc | N * 2 Tmax for logits input, else 0 | each frame's max and log-sum-exp (`logits::Shift`) |
//!
//! `Lmax` and `Tmax` are the largest target and input lengths of the batch (not S and T). A
//! caller's workspace may have any alignment: the size includes `ALIGN - 1` bytes of slack.

use super::lanes;
use crate::error::Error;
use std::ops::Range;

/// Alignment of the base and of every region, in bytes.
pub(crate) const ALIGN: usize = 64;

/// Elements of a vector of the planar kernel: computed ranges of a plane are rounded up to a
/// whole number of them (one AVX-512 vector of float32).
pub(crate) const VECTOR_WIDTH: usize = 16;

/// Entries of a plane beyond its states: the -inf pad before the labels (`l_{-1}`), the one
/// after them (`l_L`), and the blank plane's extra state `b_L`.
const PLANE_PADS: usize = 3;

/// The row width W of the planar layout for targets of at most `max_target` labels: two planes
/// of `max_target + PLANE_PADS + VECTOR_WIDTH` entries.
pub(crate) fn row_width(max_target: usize) -> Option<usize> {
    max_target
        .checked_add(PLANE_PADS + VECTOR_WIDTH)?
        .checked_mul(2)
}

/// Which outputs a computation produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Loss only: two rows of alpha per sample.
    Forward,
    /// Gradient (with or without the loss): the full alpha table.
    Gradient,
}

/// The sizes a layout depends on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub batch: usize,
    pub classes: usize,
    pub max_input_length: usize,
    pub max_target_length: usize,
    /// The first tensor holds logits (`CTC_INPUT_LOGITS`).
    pub logits: bool,
}

/// Byte ranges of the regions relative to an [`ALIGN`]-aligned base, and per-sample strides (in
/// elements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub labels: Range<usize>,
    pub skip: Range<usize>,
    pub pending: Range<usize>,
    pub nll: Range<usize>,
    pub log_alpha: Range<usize>,
    pub log_beta: Range<usize>,
    pub scratch: Range<usize>,
    pub lanes: Range<usize>,
    pub shifts: Range<usize>,
    /// Labels per sample.
    pub labels_stride: usize,
    /// Row width W ([`row_width`]; also the per-sample stride of skip).
    pub width: usize,
    /// Rows of alpha kept per sample.
    pub alpha_rows: usize,
    /// Accumulator elements of alpha per sample.
    pub alpha_stride: usize,
    /// Accumulator elements of beta per sample.
    pub beta_stride: usize,
    /// Accumulator elements of scratch per sample.
    pub scratch_stride: usize,
    /// Accumulator elements of `lanes` per group of [`lanes::GROUP`] samples; 0 when the batch does
    /// not run in groups.
    pub lanes_stride: usize,
    /// Accumulator elements of `shifts` per sample (0 for log-probabilities).
    pub shifts_stride: usize,
    /// Bytes a caller must provide (the regions plus alignment slack).
    pub bytes: usize,
}

fn overflow() -> Error {
    Error::OutOfMemory("the workspace size overflows the address space".into())
}

fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or_else(overflow)
}

/// Appends a region of `count` elements of `size` bytes at the next aligned offset.
fn region(end: &mut usize, count: usize, size: usize) -> Result<Range<usize>, Error> {
    let start = end.checked_next_multiple_of(ALIGN).ok_or_else(overflow)?;
    let stop = start.checked_add(mul(count, size)?).ok_or_else(overflow)?;
    *end = stop;
    Ok(start..stop)
}

impl Layout {
    /// The layout for these sizes, accumulator size `acc` (bytes) and pass. Fails with
    /// `OutOfMemory` when the size does not fit in `usize` (or in `isize`, the most Rust can
    /// allocate).
    pub fn new(d: Dims, acc: usize, pass: Pass) -> Result<Layout, Error> {
        let width = row_width(d.max_target_length).ok_or_else(overflow)?;
        let labels_stride = d.max_target_length.max(1);
        let classes = d.classes.max(1);
        let (alpha_rows, beta_stride) = match pass {
            Pass::Forward => (2, 1),
            Pass::Gradient => (d.max_input_length.max(1), mul(width, 2)?),
        };
        let alpha_stride = mul(alpha_rows, width)?;
        let scratch_stride = mul(width, 3)?
            .checked_add(mul(classes, 2)?)
            .ok_or_else(overflow)?;
        let mut end = 0usize;
        let labels = region(&mut end, mul(d.batch, labels_stride)?, 4)?;
        let skip = region(&mut end, mul(d.batch, width)?, 1)?;
        let pending = region(&mut end, d.batch, 1)?;
        let nll = region(&mut end, d.batch, acc)?;
        let log_alpha = region(&mut end, mul(d.batch, alpha_stride)?, acc)?;
        let log_beta = region(&mut end, mul(d.batch, beta_stride)?, acc)?;
        let scratch = region(&mut end, mul(d.batch, scratch_stride)?, acc)?;
        // The lanes kernel reads log-probabilities only; logits take the planar kernel.
        let grouped = !d.logits && lanes::applies(d.batch, d.classes, d.max_target_length);
        let lanes_stride = if grouped {
            lanes::work_stride(width, d.classes).ok_or_else(overflow)?
        } else {
            0
        };
        let groups = d.batch.div_ceil(lanes::GROUP);
        let lanes = region(&mut end, mul(groups, lanes_stride)?, acc)?;
        // Two accumulators a frame: the shift's max and lse (`logits::Shift`).
        let shifts_stride = if d.logits { 2 * d.max_input_length } else { 0 };
        let shifts = region(&mut end, mul(d.batch, shifts_stride)?, acc)?;
        let bytes = end.checked_add(ALIGN - 1).ok_or_else(overflow)?;
        if bytes > isize::MAX as usize {
            return Err(overflow());
        }
        Ok(Layout {
            labels,
            skip,
            pending,
            nll,
            log_alpha,
            log_beta,
            scratch,
            lanes,
            shifts,
            labels_stride,
            width,
            alpha_rows,
            alpha_stride,
            beta_stride,
            scratch_stride,
            lanes_stride,
            shifts_stride,
            bytes,
        })
    }
}

/// The typed regions of a carved workspace.
pub(crate) struct Parts<'w, A> {
    pub labels: &'w mut [u32],
    pub skip: &'w mut [u8],
    pub pending: &'w mut [u8],
    pub nll: &'w mut [A],
    pub log_alpha: &'w mut [A],
    pub log_beta: &'w mut [A],
    pub scratch: &'w mut [A],
    pub lanes: &'w mut [A],
    pub shifts: &'w mut [A],
}

/// Cuts the regions of a layout off an aligned base of a workspace, in increasing order.
struct Cutter<'w> {
    rest: &'w mut [u8],
    /// Offset of `rest` from the aligned base.
    at: usize,
}

impl<'w> Cutter<'w> {
    /// Checks that `workspace` holds `bytes` (alignment slack included) and aligns its base.
    fn new(workspace: &'w mut [u8], bytes: usize) -> Result<Cutter<'w>, Error> {
        if workspace.len() < bytes {
            return Err(Error::InvalidArgument(format!(
                "options.workspace_bytes = {} is smaller than the {bytes} bytes this call needs (see ctc_workspace_size)",
                workspace.len()
            )));
        }
        // `bytes` includes ALIGN - 1 bytes of slack, so the aligned base leaves room for all.
        let skew = workspace.as_ptr().align_offset(ALIGN);
        Ok(Cutter {
            rest: &mut workspace[skew..],
            at: 0,
        })
    }

    /// The bytes of region `r` (which starts at or after the previous one's end).
    fn bytes(&mut self, r: &Range<usize>) -> &'w mut [u8] {
        let tail = std::mem::take(&mut self.rest);
        let (_, tail) = tail.split_at_mut(r.start - self.at);
        let (mine, tail) = tail.split_at_mut(r.len());
        self.at = r.end;
        self.rest = tail;
        mine
    }

    /// Region `r` as elements of `T` (aligned by the layout).
    fn typed<T: bytemuck::Pod>(&mut self, r: &Range<usize>) -> Result<&'w mut [T], Error> {
        bytemuck::try_cast_slice_mut(self.bytes(r))
            .map_err(|e| Error::Internal(format!("workspace region cast failed: {e:?}")))
    }
}

/// Splits `workspace` (at least `layout.bytes` long, any alignment) into the layout's regions.
pub(crate) fn carve<'w, A: bytemuck::Pod>(
    workspace: &'w mut [u8],
    layout: &Layout,
) -> Result<Parts<'w, A>, Error> {
    let mut cut = Cutter::new(workspace, layout.bytes)?;
    Ok(Parts {
        labels: cut.typed(&layout.labels)?,
        skip: cut.bytes(&layout.skip),
        pending: cut.bytes(&layout.pending),
        nll: cut.typed(&layout.nll)?,
        log_alpha: cut.typed(&layout.log_alpha)?,
        log_beta: cut.typed(&layout.log_beta)?,
        scratch: cut.typed(&layout.scratch)?,
        lanes: cut.typed(&layout.lanes)?,
        shifts: cut.typed(&layout.shifts)?,
    })
}

/// The workspace of forced alignment (`cpu/align.rs`): per sample, regions of
/// [`AlignLayout::new`]'s strides, each region starting on an [`ALIGN`]-byte boundary.
///
/// | region | element | per sample | holds |
/// |---|---|---|---|
/// | `labels` | u32 | max(Lmax, 1) | the sample's labels |
/// | `skip` | u8 | W | the skip flags, as for the loss |
/// | `choice` | u8 | W | one frame's back-pointers, before packing |
/// | `codes` | u8 | K ceil(W / 4) | a segment's back-pointers, 2 bits a state |
/// | `rows` | Acc | 2 W | two rows of the Viterbi variable |
/// | `checkpoints` | Acc | ceil(Tmax / K) W | the rows at frames 0, K, 2K, ... |
/// | `scratch` | Acc | W + C | the gathered label emissions of a frame, a row copy |
/// | `scores` | f64 | 1 | the sample's path score |
///
/// K = [`segment_frames`] balances the checkpoints against a segment's back-pointers, so the
/// whole grows with N W sqrt(Tmax); but when a sample's back-pointers for every frame take at
/// most [`ONE_SWEEP_CODE_BYTES`], K = Tmax: one segment, kept by the only sweep (no recompute).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AlignLayout {
    pub labels: Range<usize>,
    pub skip: Range<usize>,
    pub choice: Range<usize>,
    pub codes: Range<usize>,
    pub rows: Range<usize>,
    pub checkpoints: Range<usize>,
    pub scratch: Range<usize>,
    pub scores: Range<usize>,
    /// Labels per sample.
    pub labels_stride: usize,
    /// Row width W ([`row_width`]).
    pub width: usize,
    /// K: frames per segment (and between checkpoints).
    pub segment: usize,
    /// Bytes of one frame's packed back-pointers: ceil(W / 4).
    pub code_row: usize,
    /// Checkpoint rows per sample.
    pub checkpoint_rows: usize,
    /// Accumulator elements of `scratch` per sample.
    pub scratch_stride: usize,
    /// Bytes a caller must provide (the regions plus alignment slack).
    pub bytes: usize,
}

/// A sample's back-pointers (Tmax ceil(W / 4) bytes) up to this size are kept whole, which
/// saves the second sweep of the checkpointed scheme (a third of the time; docs/benchmarks.md).
pub(crate) const ONE_SWEEP_CODE_BYTES: usize = 8 << 20;

/// K for inputs of at most `max_time` frames and accumulators of `acc` bytes: the checkpoints
/// ((T / K) W acc bytes) and a segment's back-pointers (K W / 4 bytes) are equal at
/// K = sqrt(4 acc T).
pub(crate) fn segment_frames(max_time: usize, acc: usize) -> usize {
    let k = ((4 * acc) as f64 * max_time as f64).sqrt().ceil() as usize;
    k.clamp(1, max_time.max(1))
}

impl AlignLayout {
    /// The layout for these sizes and accumulator size `acc` (bytes); `OutOfMemory` when it does
    /// not fit in `isize`.
    pub fn new(d: Dims, acc: usize) -> Result<AlignLayout, Error> {
        let n = d.batch;
        let width = row_width(d.max_target_length).ok_or_else(overflow)?;
        let labels_stride = d.max_target_length.max(1);
        let code_row = width.div_ceil(4);
        let whole = d.max_input_length.checked_mul(code_row);
        let segment = match whole {
            Some(bytes) if bytes <= ONE_SWEEP_CODE_BYTES => d.max_input_length.max(1),
            _ => segment_frames(d.max_input_length, acc),
        };
        let checkpoint_rows = d.max_input_length.div_ceil(segment).max(1);
        let scratch_stride = width.checked_add(d.classes.max(1)).ok_or_else(overflow)?;
        let mut end = 0usize;
        let labels = region(&mut end, mul(n, labels_stride)?, 4)?;
        let skip = region(&mut end, mul(n, width)?, 1)?;
        let choice = region(&mut end, mul(n, width)?, 1)?;
        let codes = region(&mut end, mul(n, mul(segment, code_row)?)?, 1)?;
        let rows = region(&mut end, mul(n, mul(width, 2)?)?, acc)?;
        let checkpoints = region(&mut end, mul(n, mul(checkpoint_rows, width)?)?, acc)?;
        let scratch = region(&mut end, mul(n, scratch_stride)?, acc)?;
        let scores = region(&mut end, n, 8)?;
        let bytes = end.checked_add(ALIGN - 1).ok_or_else(overflow)?;
        if bytes > isize::MAX as usize {
            return Err(overflow());
        }
        Ok(AlignLayout {
            labels,
            skip,
            choice,
            codes,
            rows,
            checkpoints,
            scratch,
            scores,
            labels_stride,
            width,
            segment,
            code_row,
            checkpoint_rows,
            scratch_stride,
            bytes,
        })
    }
}

/// The typed regions of a carved alignment workspace.
pub(crate) struct AlignParts<'w, A> {
    pub labels: &'w mut [u32],
    pub skip: &'w mut [u8],
    pub choice: &'w mut [u8],
    pub codes: &'w mut [u8],
    pub rows: &'w mut [A],
    pub checkpoints: &'w mut [A],
    pub scratch: &'w mut [A],
    pub scores: &'w mut [f64],
}

/// Splits `workspace` (at least `layout.bytes` long, any alignment) into the regions of an
/// alignment.
pub(crate) fn carve_align<'w, A: bytemuck::Pod>(
    workspace: &'w mut [u8],
    layout: &AlignLayout,
) -> Result<AlignParts<'w, A>, Error> {
    let mut cut = Cutter::new(workspace, layout.bytes)?;
    Ok(AlignParts {
        labels: cut.typed(&layout.labels)?,
        skip: cut.bytes(&layout.skip),
        choice: cut.bytes(&layout.choice),
        codes: cut.bytes(&layout.codes),
        rows: cut.typed(&layout.rows)?,
        checkpoints: cut.typed(&layout.checkpoints)?,
        scratch: cut.typed(&layout.scratch)?,
        scores: cut.typed(&layout.scores)?,
    })
}
