//! The workspace layout: the one function that decides which scratch buffers a call needs and
//! where they lie. [`Layout::new`] is called both by the size query (`ctc_workspace_size`,
//! [`crate::workspace_size`]) and by the carve-up of the workspace a computation runs in, so the
//! two can never disagree.
//!
//! Regions, each starting on a [`ALIGN`]-byte boundary of an aligned base:
//!
//! | region | element | count | used by |
//! |---|---|---|---|
//! | `labels` | u32 | N * max(Lmax, 1) | all passes: the validated labels of each sample |
//! | `nll` | Acc | N | all passes: the negative log-likelihood of each sample |
//! | `log_alpha` | Acc | N * rows * (2 Lmax + 1) | rows = Tmax with a gradient, 2 without |
//! | `log_beta` | Acc | N * 2 * (2 Lmax + 1) | gradient passes: two rows of beta |
//! | `lcab` | Acc | N * C | gradient passes: one row of per-class posteriors |
//!
//! `Lmax` and `Tmax` are the largest target and input lengths of the batch (not S and T), and
//! every per-sample stride is at least 1. A caller's workspace may have any alignment: the size
//! includes `ALIGN - 1` bytes of slack.

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
    pub nll: Range<usize>,
    pub log_alpha: Range<usize>,
    pub log_beta: Range<usize>,
    pub lcab: Range<usize>,
    /// Labels per sample.
    pub labels_stride: usize,
    /// States per row, 2 Lmax + 1.
    pub states: usize,
    /// Rows of alpha kept per sample.
    pub alpha_rows: usize,
    /// Accumulator elements of alpha per sample.
    pub alpha_stride: usize,
    /// Accumulator elements of beta per sample.
    pub beta_stride: usize,
    /// Accumulator elements of lcab per sample.
    pub lcab_stride: usize,
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
        let states = mul(d.max_target_length, 2)?
            .checked_add(1)
            .ok_or_else(overflow)?;
        let labels_stride = d.max_target_length.max(1);
        let (alpha_rows, beta_stride, lcab_stride) = match pass {
            Pass::Forward => (2, 1, 1),
            Pass::Gradient => (d.max_input_length.max(1), mul(states, 2)?, d.classes.max(1)),
        };
        let alpha_stride = mul(alpha_rows, states)?;
        let mut end = 0usize;
        let labels = region(&mut end, mul(d.batch, labels_stride)?, 4)?;
        let nll = region(&mut end, d.batch, acc)?;
        let log_alpha = region(&mut end, mul(d.batch, alpha_stride)?, acc)?;
        let log_beta = region(&mut end, mul(d.batch, beta_stride)?, acc)?;
        let lcab = region(&mut end, mul(d.batch, lcab_stride)?, acc)?;
        let bytes = end.checked_add(ALIGN - 1).ok_or_else(overflow)?;
        if bytes > isize::MAX as usize {
            return Err(overflow());
        }
        Ok(Layout {
            labels,
            nll,
            log_alpha,
            log_beta,
            lcab,
            labels_stride,
            states,
            alpha_rows,
            alpha_stride,
            beta_stride,
            lcab_stride,
            bytes,
        })
    }
}

/// The typed regions of a carved workspace.
pub(crate) struct Parts<'w, A> {
    pub labels: &'w mut [u32],
    pub nll: &'w mut [A],
    pub log_alpha: &'w mut [A],
    pub log_beta: &'w mut [A],
    pub lcab: &'w mut [A],
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
        nll: cast(cut(&layout.nll))?,
        log_alpha: cast(cut(&layout.log_alpha))?,
        log_beta: cast(cut(&layout.log_beta))?,
        lcab: cast(cut(&layout.lcab))?,
    })
}
