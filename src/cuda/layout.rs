//! The CUDA workspace layout: the one function that places the regions the kernels of
//! `kernels/ctc.cu` use ("Workspace" there), called both by the size query and by the carve-up,
//! so the two can never disagree.

use crate::error::Error;
use std::ops::Range;

/// Alignment of the CUDA workspace base and regions, in bytes.
pub(crate) const DEVICE_ALIGN: usize = 256;

/// Alignment of each staged host array inside the staging region (int64 elements).
const STAGED_ALIGN: usize = 8;

/// Sizes of the CUDA workspace.
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
    /// Whether the targets are concatenated (the offsets region is needed).
    pub concatenated: bool,
    /// Bytes of host-resident targets, input lengths and target lengths to stage on the device.
    pub staging: [usize; 3],
}

/// Byte ranges of the CUDA workspace regions relative to a [`DEVICE_ALIGN`]-aligned base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeviceLayout {
    pub offsets: Range<usize>,
    pub labels: Range<usize>,
    pub next_same: Range<usize>,
    pub class_head: Range<usize>,
    pub in_len: Range<usize>,
    pub tgt_len: Range<usize>,
    pub log_alpha: Range<usize>,
    pub work: Range<usize>,
    pub nll: Range<usize>,
    /// The staged copies of host targets, input lengths and target lengths, together (one
    /// host-to-device copy fills it).
    pub staging: Range<usize>,
    /// Where each of the three lies inside `staging` (absolute, like the other ranges).
    pub staged: [Range<usize>; 3],
    /// Row width of alpha and beta (2 lmax + 1).
    pub width: usize,
    /// Bytes a caller must provide (the regions plus alignment slack).
    pub bytes: usize,
}

fn overflow() -> Error {
    Error::OutOfMemory("the CUDA workspace size overflows the address space".into())
}

fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or_else(overflow)
}

/// Appends a region of `count` elements of `size` bytes at the next `align`-byte offset.
fn region(end: &mut usize, count: usize, size: usize, align: usize) -> Result<Range<usize>, Error> {
    let start = end.checked_next_multiple_of(align).ok_or_else(overflow)?;
    let stop = start.checked_add(mul(count, size)?).ok_or_else(overflow)?;
    *end = stop;
    Ok(start..stop)
}

impl DeviceLayout {
    /// The layout for these sizes; `OutOfMemory` when it does not fit in `usize`.
    pub fn new(d: DeviceDims) -> Result<DeviceLayout, Error> {
        let width = mul(d.lmax, 2)?.checked_add(1).ok_or_else(overflow)?;
        let mut end = 0usize;
        let mut reg = |count: usize, size: usize| region(&mut end, count, size, DEVICE_ALIGN);
        let offsets = reg(if d.concatenated { d.batch } else { 0 }, 8)?;
        let per_label = mul(d.batch, d.lmax)?;
        let labels = reg(per_label, 4)?;
        let next_same = reg(per_label, 4)?;
        let class_head = reg(mul(d.batch, d.classes)?, 4)?;
        let in_len = reg(d.batch, 4)?;
        let tgt_len = reg(d.batch, 4)?;
        let log_alpha = reg(mul(mul(d.batch, d.alpha_rows)?, width)?, d.elem)?;
        let beta_rows = if d.gradient { 2 } else { 0 };
        let work = reg(mul(mul(d.batch, beta_rows)?, width)?, d.elem)?;
        let nll = reg(d.batch, d.elem)?;
        let start = reg(0, 1)?.start;
        let mut inner = start;
        let staged = [
            region(&mut inner, d.staging[0], 1, STAGED_ALIGN)?,
            region(&mut inner, d.staging[1], 1, STAGED_ALIGN)?,
            region(&mut inner, d.staging[2], 1, STAGED_ALIGN)?,
        ];
        let staging = start..inner;
        let bytes = inner.checked_add(DEVICE_ALIGN - 1).ok_or_else(overflow)?;
        Ok(DeviceLayout {
            offsets,
            labels,
            next_same,
            class_head,
            in_len,
            tgt_len,
            log_alpha,
            work,
            nll,
            staging,
            staged,
            width,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_aligned_disjoint_and_in_order() {
        let l = DeviceLayout::new(DeviceDims {
            batch: 3,
            classes: 7,
            lmax: 5,
            alpha_rows: 9,
            elem: 4,
            gradient: true,
            concatenated: true,
            staging: [13, 24, 5],
        })
        .unwrap();
        let regions = [
            &l.offsets,
            &l.labels,
            &l.next_same,
            &l.class_head,
            &l.in_len,
            &l.tgt_len,
            &l.log_alpha,
            &l.work,
            &l.nll,
        ];
        for w in regions.windows(2) {
            assert!(w[0].end <= w[1].start, "{regions:?}");
        }
        assert!(regions.iter().all(|r| r.start % DEVICE_ALIGN == 0));
        assert_eq!(l.log_alpha.len(), 3 * 9 * 11 * 4);
        assert_eq!(l.staged.clone().map(|r| r.len()), [13, 24, 5]);
        assert!(l.staged.iter().all(|r| r.start % STAGED_ALIGN == 0));
        assert!(l.staging.start >= l.nll.end && l.staging.end == l.staged[2].end);
        assert!(l.bytes >= l.staging.end + DEVICE_ALIGN - 1);
    }
}
