//! The workspace layout: the one function that decides which scratch buffers a call needs and
//! where they lie. [`Layout::new`] is called both by the size query (`ctc_workspace_size`,
//! [`crate::workspace_size`]) and by the carve-up of the workspace a computation runs in, so the
//! two can never disagree.
//!
//! Regions, each starting on a [`ALIGN`]-byte boundary of an aligned base (W = 2 (Lmax + 19), the
//! row width of the kernel: a plane of Lmax + 1 blank states and a plane of Lmax label states
//! between two -inf pads, each plane with 16 spare entries for rounding to whole vectors; see
//! `cpu/fast.rs`):
//!
//! | region | element | count | holds |
//! |---|---|---|---|
//! | `labels` | u32 | N * max(Lmax, 1) | the validated labels of each sample |
//! | `skip` | u8 | N * W | whether the skip rule allows label k - 1 -> label k (k < W / 2); at W / 2, whether the deferred gradient pass has rows to write for the sample |
//! | `nll` | Acc | N | the negative log-likelihood of each sample |
//! | `log_alpha` | Acc | N * rows * W | rows = max(Tmax, 1) with a gradient, 2 without |
//! | `log_beta` | Acc | N * 2 * W | two rows of beta (1 element per sample without a gradient) |
//! | `scratch` | Acc | N * (3 W + 2 C) | per frame: gathered log-probs, their exponentials, state posteriors, class posteriors, a row copy |
//! | `lanes` | Acc | ceil(N / 8) * 8 (4 W + 2 C) when samples run in groups of 8 (`cpu/lanes.rs`), else 0 | the group's emissions of two frames, posteriors, skip mask, losses, class posteriors and upstream factors |
//!
//! `Lmax` and `Tmax` are the largest target and input lengths of the batch (not S and T). A
//! caller's workspace may have any alignment: the size includes `ALIGN - 1` bytes of slack.

use crate::error::Error;
use std::ops::Range;

/// Alignment of the base and of every region, in bytes.
pub(crate) const ALIGN: usize = 64;

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
}

/// Byte ranges of the regions relative to an [`ALIGN`]-aligned base, and per-sample strides (in
/// elements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub labels: Range<usize>,
    pub skip: Range<usize>,
    pub nll: Range<usize>,
    pub log_alpha: Range<usize>,
    pub log_beta: Range<usize>,
    pub scratch: Range<usize>,
    pub lanes: Range<usize>,
    /// Labels per sample.
    pub labels_stride: usize,
    /// Row width W = 2 (Lmax + 19) (also the per-sample stride of skip).
    pub width: usize,
    /// Rows of alpha kept per sample.
    pub alpha_rows: usize,
    /// Accumulator elements of alpha per sample.
    pub alpha_stride: usize,
    /// Accumulator elements of beta per sample.
    pub beta_stride: usize,
    /// Accumulator elements of scratch per sample.
    pub scratch_stride: usize,
    /// Accumulator elements of `lanes` per group of `cpu::LANES` samples; 0 when the batch does
    /// not run in groups.
    pub lanes_stride: usize,
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
        let width = mul(d.max_target_length.checked_add(19).ok_or_else(overflow)?, 2)?;
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
        let nll = region(&mut end, d.batch, acc)?;
        let log_alpha = region(&mut end, mul(d.batch, alpha_stride)?, acc)?;
        let log_beta = region(&mut end, mul(d.batch, beta_stride)?, acc)?;
        let scratch = region(&mut end, mul(d.batch, scratch_stride)?, acc)?;
        let lanes_stride = if crate::cpu::lanes_apply(d.batch, d.classes, d.max_target_length) {
            crate::cpu::lanes_work_stride(width, d.classes).ok_or_else(overflow)?
        } else {
            0
        };
        let groups = d.batch.div_ceil(crate::cpu::LANES);
        let lanes = region(&mut end, mul(groups, lanes_stride)?, acc)?;
        let bytes = end.checked_add(ALIGN - 1).ok_or_else(overflow)?;
        if bytes > isize::MAX as usize {
            return Err(overflow());
        }
        Ok(Layout {
            labels,
            skip,
            nll,
            log_alpha,
            log_beta,
            scratch,
            lanes,
            labels_stride,
            width,
            alpha_rows,
            alpha_stride,
            beta_stride,
            scratch_stride,
            lanes_stride,
            bytes,
        })
    }
}

/// The typed regions of a carved workspace.
pub(crate) struct Parts<'w, A> {
    pub labels: &'w mut [u32],
    pub skip: &'w mut [u8],
    pub nll: &'w mut [A],
    pub log_alpha: &'w mut [A],
    pub log_beta: &'w mut [A],
    pub scratch: &'w mut [A],
    pub lanes: &'w mut [A],
}

/// Splits `workspace` (at least `layout.bytes` long, any alignment) into the layout's regions.
pub(crate) fn carve<'w, A: bytemuck::Pod>(
    workspace: &'w mut [u8],
    layout: &Layout,
) -> Result<Parts<'w, A>, Error> {
    if workspace.len() < layout.bytes {
        return Err(Error::InvalidArgument(format!(
            "options.workspace_bytes = {} is smaller than the {} bytes this call needs (see ctc_workspace_size)",
            workspace.len(),
            layout.bytes
        )));
    }
    // `layout.bytes` includes ALIGN - 1 bytes of slack, so the aligned base leaves room for all.
    let skew = workspace.as_ptr().align_offset(ALIGN);
    let mut rest = &mut workspace[skew..];
    let mut at = 0usize;
    // The regions are in increasing order: cut each off the front of what is left.
    let mut cut = |r: &Range<usize>| -> &'w mut [u8] {
        let tail = std::mem::take(&mut rest);
        let (_, tail) = tail.split_at_mut(r.start - at);
        let (mine, tail) = tail.split_at_mut(r.len());
        at = r.end;
        rest = tail;
        mine
    };
    fn cast<T: bytemuck::Pod>(bytes: &mut [u8]) -> Result<&mut [T], Error> {
        bytemuck::try_cast_slice_mut(bytes)
            .map_err(|e| Error::Internal(format!("workspace region cast failed: {e:?}")))
    }
    Ok(Parts {
        labels: cast(cut(&layout.labels))?,
        skip: cut(&layout.skip),
        nll: cast(cut(&layout.nll))?,
        log_alpha: cast(cut(&layout.log_alpha))?,
        log_beta: cast(cut(&layout.log_beta))?,
        scratch: cast(cut(&layout.scratch))?,
        lanes: cast(cut(&layout.lanes))?,
    })
}
