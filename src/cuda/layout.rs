//! The CUDA workspace layout: the one function that places the regions the kernels of
//! `kernels/ctc.cu` use ("Workspace" there), called both by the size query and by the carve-up,
//! so the two can never disagree.
//!
//! | region | element | count | holds |
//! |---|---|---|---|
//! | `offsets` | i64 | N (concatenated targets) | each sample's first label |
//! | `labels`, `next_same` | i32 | N lmax | labels, chains of repeats |
//! | `class_head` | i32 | N C | first label of each class |
//! | `in_len`, `tgt_len` | i32 | N | T_b and L_b, or -1 for an invalid sample |
//! | `log_alpha` | T | N alpha_rows W | alpha (the loss), or the ring of two delta rows (align) |
//! | `work` | T | N 2 W (gradient) | two beta rows |
//! | `nll` | T | N (loss) | each sample's loss |
//! | `checkpoints` | T | N R W (align) | the delta rows of frames 0, K, 2K, ... |
//! | `codes` | u8 | N K ceil(W / 4) (align) | one segment's back-pointers, 2 bits a state |
//! | `shifts` | T | N Tmax 2 (logits) | each frame's max and log-sum-exp |
//! | `staging` | bytes | | host targets and lengths copied to the device |
//!
//! W = 2 lmax + 1. Forced alignment (`ctc_align`) keeps R = ceil(Tmax / K) checkpoint rows and
//! one segment of K frames of back-pointers, K = [`segment_frames`] as the CPU
//! (`cpu/layout.rs`): its workspace grows with N W sqrt(Tmax), not N W Tmax.

pub(crate) use crate::cpu::layout::segment_frames;
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
    /// Bytes of the type of the computation (float32 for half inputs).
    pub elem: usize,
    /// Frames whose shift (max, lse) is kept: N T for logits, else 0.
    pub shifted_frames: usize,
    /// Whether beta rows are needed (a gradient).
    pub gradient: bool,
    /// Whether the targets are concatenated (the offsets region is needed).
    pub concatenated: bool,
    /// Bytes of host-resident targets, input lengths and target lengths to stage on the device.
    pub staging: [usize; 3],
    /// Forced alignment: its checkpoints (then `alpha_rows` is 2, the ring of delta rows).
    pub align: Option<Checkpoints>,
}

/// The checkpoint scheme of a forced alignment (`ctc_align`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoints {
    /// K: frames per segment, and between checkpoints.
    pub segment: usize,
    /// R: checkpoint rows per sample, ceil(Tmax / K) (at least 1).
    pub rows: usize,
}

impl Checkpoints {
    /// The scheme for inputs of at most `max_input` frames and `elem`-byte values.
    pub fn new(max_input: usize, elem: usize) -> Checkpoints {
        let segment = segment_frames(max_input, elem);
        Checkpoints {
            segment,
            rows: max_input.div_ceil(segment).max(1),
        }
    }
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
    pub checkpoints: Range<usize>,
    pub codes: Range<usize>,
    pub shifts: Range<usize>,
    /// The staged copies of host targets, input lengths and target lengths, together (one
    /// host-to-device copy fills it).
    pub staging: Range<usize>,
    /// Where each of the three lies inside `staging` (absolute, like the other ranges).
    pub staged: [Range<usize>; 3],
    /// Row width of alpha, beta and delta (2 lmax + 1).
    pub width: usize,
    /// Bytes of one frame's back-pointers in `codes`: ceil(width / 4).
    pub code_row: usize,
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
        let nll = reg(if d.align.is_some() { 0 } else { d.batch }, d.elem)?;
        let code_row = width.div_ceil(4);
        let (segment, rows) = d.align.map_or((0, 0), |c| (c.segment, c.rows));
        let checkpoints = reg(mul(mul(d.batch, rows)?, width)?, d.elem)?;
        let codes = reg(mul(mul(d.batch, segment)?, code_row)?, 1)?;
        let shifts = reg(mul(d.shifted_frames, 2)?, d.elem)?;
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
            checkpoints,
            codes,
            shifts,
            staging,
            staged,
            width,
            code_row,
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
            shifted_frames: 3 * 10,
            gradient: true,
            concatenated: true,
            staging: [13, 24, 5],
            align: None,
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
            &l.shifts,
        ];
        for w in regions.windows(2) {
            assert!(w[0].end <= w[1].start, "{regions:?}");
        }
        assert!(regions.iter().all(|r| r.start % DEVICE_ALIGN == 0));
        assert_eq!(l.log_alpha.len(), 3 * 9 * 11 * 4);
        assert_eq!(l.shifts.len(), 3 * 10 * 2 * 4);
        assert_eq!(l.staged.clone().map(|r| r.len()), [13, 24, 5]);
        assert!(l.staged.iter().all(|r| r.start % STAGED_ALIGN == 0));
        assert!(l.staging.start >= l.shifts.end && l.staging.end == l.staged[2].end);
        assert!(l.bytes >= l.staging.end + DEVICE_ALIGN - 1);
        assert!(l.checkpoints.is_empty() && l.codes.is_empty());
    }

    #[test]
    fn an_alignment_keeps_checkpoints_and_one_segment_of_codes() {
        // N = 3, lmax = 5 (W = 11), Tmax = 100, float32: K = ceil(sqrt(16 * 100)) = 40, R = 3.
        let align = Checkpoints::new(100, 4);
        assert_eq!(
            align,
            Checkpoints {
                segment: 40,
                rows: 3
            }
        );
        let l = DeviceLayout::new(DeviceDims {
            batch: 3,
            classes: 7,
            lmax: 5,
            alpha_rows: 2,
            elem: 4,
            shifted_frames: 0,
            gradient: false,
            concatenated: false,
            staging: [0, 0, 0],
            align: Some(align),
        })
        .unwrap();
        assert_eq!(l.code_row, 3);
        assert_eq!(l.log_alpha.len(), 3 * 2 * 11 * 4);
        assert_eq!(l.checkpoints.len(), 3 * 3 * 11 * 4);
        assert_eq!(l.codes.len(), 3 * 40 * 3);
        assert!(l.work.is_empty() && l.nll.is_empty() && l.shifts.is_empty());
        let regions = [&l.log_alpha, &l.nll, &l.checkpoints, &l.codes, &l.staging];
        for w in regions.windows(2) {
            assert!(w[0].end <= w[1].start, "{regions:?}");
        }
        assert!(l.checkpoints.start.is_multiple_of(DEVICE_ALIGN));
        assert!(l.codes.start.is_multiple_of(DEVICE_ALIGN));
        // A sample of any length up to Tmax finds its checkpoints: ceil(T_b / K) <= R.
        for t_b in 1..=100usize {
            assert!(t_b.div_ceil(align.segment) <= align.rows);
        }
        assert_eq!(
            Checkpoints::new(0, 8),
            Checkpoints {
                segment: 1,
                rows: 1
            }
        );
    }
}
