//! The CUDA workspace layout (see `cuda/kernels/ctc.cu`, "Workspace"). The CPU's is in
//! `cpu/layout.rs`.

use crate::error::Error;
use std::ops::Range;

fn overflow() -> Error {
    Error::OutOfMemory("the workspace size overflows the address space".into())
}

fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or_else(overflow)
}

/// Sizes of the CUDA workspace (see `cuda/kernels/ctc.cu`, "Workspace").
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeviceDims {
    pub batch: usize,
    pub classes: usize,
    /// Label capacity per sample.
    pub lmax: usize,
    /// Rows of alpha per sample: the largest input length for a gradient, 2 for the loss alone.
    pub alpha_rows: usize,
    /// Bytes of the floating type.
    pub elem: usize,
    /// Whether beta rows are needed (a gradient).
    pub gradient: bool,
    /// Bytes of host-resident targets, input lengths and target lengths to stage on the device.
    pub staging: [usize; 3],
}

/// Byte ranges of the CUDA workspace regions relative to a 256-byte-aligned base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeviceLayout {
    pub labels: Range<usize>,
    pub next_same: Range<usize>,
    pub is_first: Range<usize>,
    pub class_head: Range<usize>,
    pub in_len: Range<usize>,
    pub tgt_len: Range<usize>,
    pub log_alpha: Range<usize>,
    pub work: Range<usize>,
    pub nll: Range<usize>,
    /// Staged copies of host targets, input lengths, target lengths.
    pub staging: [Range<usize>; 3],
    /// Row width of alpha and beta (2 lmax + 1).
    pub width: usize,
    /// Bytes a caller must provide (the regions plus alignment slack).
    pub bytes: usize,
}

/// Alignment of the CUDA workspace base and regions.
pub(crate) const DEVICE_ALIGN: usize = 256;

impl DeviceLayout {
    /// The layout for these sizes; `OutOfMemory` when it does not fit in `usize`.
    pub fn new(d: DeviceDims) -> Result<DeviceLayout, Error> {
        let width = mul(d.lmax, 2)?.checked_add(1).ok_or_else(overflow)?;
        let mut end = 0usize;
        let mut reg = |count: usize, size: usize| -> Result<Range<usize>, Error> {
            let start = end
                .checked_next_multiple_of(DEVICE_ALIGN)
                .ok_or_else(overflow)?;
            let stop = start.checked_add(mul(count, size)?).ok_or_else(overflow)?;
            end = stop;
            Ok(start..stop)
        };
        let per_label = mul(d.batch, d.lmax)?;
        let labels = reg(per_label, 4)?;
        let next_same = reg(per_label, 4)?;
        let is_first = reg(per_label, 4)?;
        let class_head = reg(mul(d.batch, d.classes)?, 4)?;
        let in_len = reg(d.batch, 4)?;
        let tgt_len = reg(d.batch, 4)?;
        let log_alpha = reg(mul(mul(d.batch, d.alpha_rows)?, width)?, d.elem)?;
        let work = reg(
            if d.gradient {
                mul(mul(d.batch, 2)?, width)?
            } else {
                0
            },
            d.elem,
        )?;
        let nll = reg(d.batch, d.elem)?;
        let staging = [
            reg(d.staging[0], 1)?,
            reg(d.staging[1], 1)?,
            reg(d.staging[2], 1)?,
        ];
        let bytes = end.checked_add(DEVICE_ALIGN - 1).ok_or_else(overflow)?;
        Ok(DeviceLayout {
            labels,
            next_same,
            is_first,
            class_head,
            in_len,
            tgt_len,
            log_alpha,
            work,
            nll,
            staging,
            width,
            bytes,
        })
    }
}
