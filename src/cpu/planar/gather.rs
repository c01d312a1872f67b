//! Reading a frame's emissions: the gathered log-probabilities of a sample's labels (from
//! memory, or from registers for short float32 rows), and prefetches of what later frames read.

use crate::cpu::isa::{Avx512, F16c, Isa};
use crate::cpu::math::{CpuElement, FastReal};
use crate::types::{DType, Element};

/// `e[i] = row[labels[first + i]]`; returns `row[blank]`. One scalar load per label (a vector
/// gather is no faster than that on current x86); with a `table` token (see [`table_gather`]), a
/// row of at most 64 float32 classes is held in registers and 16 labels are looked up at once
/// (a half row is widened first, with F16C when `f16c` is given: a few instructions for the
/// row instead of a dozen for each label).
#[inline(always)]
pub(super) fn gather<R: CpuElement<Fast = A>, A: FastReal + CpuElement<Fast = A>>(
    row: &[R],
    labels: &[u32],
    blank: u32,
    first: usize,
    e: &mut [A],
    table: Option<Avx512>,
    f16c: Option<F16c>,
) -> A {
    let labels = &labels[first.min(labels.len())..];
    let n = e.len().min(labels.len());
    if let Some(token) = table.filter(|_| R::NARROW && row.len() <= TABLE_CLASSES) {
        let mut wide = [A::zero(); TABLE_CLASSES];
        let wide = &mut wide[..row.len()];
        R::widen(row, wide, f16c);
        if table_gather(token, wide, &labels[..n], &mut e[..n]) {
            return wide[blank as usize];
        }
    }
    let looked_up = table.is_some_and(|t| table_gather(t, row, &labels[..n], &mut e[..n]));
    if !looked_up {
        for (d, &c) in e.iter_mut().zip(labels) {
            *d = row[c as usize].to_acc();
        }
    }
    row[blank as usize].to_acc()
}

/// Row length up to which [`gather`] looks float32 labels up in registers: four 16-lane
/// registers.
const TABLE_CLASSES: usize = 64;

/// The token with which [`gather`] looks labels up in registers for rows of `classes` classes of
/// `R`: a float32, float16 or bfloat16 row of at most [`TABLE_CLASSES`] classes, on a CPU with
/// AVX-512.
pub(crate) fn table_lookup<R: Element>(isa: Isa, classes: usize) -> Option<Avx512> {
    let narrow = matches!(R::DTYPE, DType::Float16 | DType::BFloat16);
    isa.avx512()
        .filter(|_| (R::DTYPE == DType::Float32 || narrow) && classes <= TABLE_CLASSES)
}

/// `out[i] = row[labels[i]]` for a float32 row of at most [`TABLE_CLASSES`] classes: the row in
/// four 16-lane registers, each 16 labels by two two-register permutes and a blend (about 5
/// instructions where the scalar loop takes 8 a label). Returns false, having written nothing,
/// where that does not apply (not float32, more classes, not x86-64).
#[inline(always)]
fn table_gather<R: Element<Acc = A>, A: FastReal>(
    token: Avx512,
    row: &[R],
    labels: &[u32],
    out: &mut [A],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if R::DTYPE == DType::Float32 && row.len() <= TABLE_CLASSES {
        let _ = token;
        // SAFETY: R is f32 (its dtype says so), and so is A (f32 accumulates in f32); `token`
        // proves that this CPU has AVX-512F; `table_gather_avx512` reads `row` only through
        // masked loads within its length, `labels` and `out` only within their common length.
        unsafe {
            table_gather_avx512(
                row.as_ptr() as *const f32,
                row.len(),
                labels,
                out.as_mut_ptr() as *mut f32,
                out.len(),
            )
        };
        return true;
    }
    let _ = (token, row, labels, out);
    false
}

/// The AVX-512 body of [`table_gather`]: `out[i] = row[labels[i] % 64]` (a label is below the
/// row's length, at most 64; the permutes never touch memory whatever the value), for
/// `i < min(labels.len(), out_len)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn table_gather_avx512(
    row: *const f32,
    len: usize,
    labels: &[u32],
    out: *mut f32,
    out_len: usize,
) {
    use std::arch::x86_64::{
        __mmask16, _mm512_mask_blend_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_epi32,
        _mm512_maskz_loadu_ps, _mm512_permutex2var_ps, _mm512_set1_epi32, _mm512_test_epi32_mask,
    };
    let mask = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as __mmask16 };
    // SAFETY (the whole body): each masked load reads only the lanes of its mask, which lie
    // within `row[..len]`, `labels` or (stores) `out[..out_len]`; masked-off lanes touch no
    // memory, so pointers past the end are never dereferenced (`wrapping_add` forms them).
    unsafe {
        let part = |k: usize| {
            _mm512_maskz_loadu_ps(mask(len.saturating_sub(16 * k)), row.wrapping_add(16 * k))
        };
        let (t0, t1, t2, t3) = (part(0), part(1), part(2), part(3));
        let high = _mm512_set1_epi32(32);
        let n = labels.len().min(out_len);
        let mut i = 0;
        while i < n {
            let m = mask(n - i);
            let idx = _mm512_maskz_loadu_epi32(m, labels.as_ptr().wrapping_add(i) as *const i32);
            let lo = _mm512_permutex2var_ps(t0, idx, t1);
            let hi = _mm512_permutex2var_ps(t2, idx, t3);
            let v = _mm512_mask_blend_ps(_mm512_test_epi32_mask(idx, high), lo, hi);
            _mm512_mask_storeu_ps(out.wrapping_add(i), m, v);
            i += 16;
        }
    }
}

/// Asks the cache for the lines of `row` holding the classes that frame's states `lo..hi` emit,
/// into L2 (`T1`): a frame of a wide row is tens of lines, and with the L1 hint the prefetches of
/// the frames in flight exhausted its miss buffers (docs/benchmarks.md).
#[inline(always)]
pub(super) fn prefetch_classes<R>(row: &[R], labels: &[u32], blank: u32, lo: usize, hi: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let base = row.as_ptr();
        let touch = |c: u32| {
            // SAFETY: a prefetch never faults and changes no architectural state, whatever the
            // address; `wrapping_add` computes it without claiming it is in bounds.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(base.wrapping_add(c as usize) as *const i8) }
        };
        touch(blank);
        for &c in &labels[(lo / 2).min(labels.len())..(hi / 2).min(labels.len())] {
            touch(c);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (row, labels, blank, lo, hi);
}

/// Asks the cache for every line of `x`.
#[inline(always)]
pub(super) fn prefetch_lines<A>(x: &[A]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let step = (64 / std::mem::size_of::<A>()).max(1);
        for i in (0..x.len()).step_by(step) {
            // SAFETY: `i` is within `x`; a prefetch never faults and changes no architectural
            // state.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(x.as_ptr().add(i) as *const i8) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}
