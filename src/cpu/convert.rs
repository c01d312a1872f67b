//! Rows of half elements widened to float32 and narrowed back in blocks: with the F16C
//! instructions where the CPU has them (eight values an instruction), else with the portable
//! conversions of `crate::halfconv`, which give the same bits (tested over every value).
//! Converting one element at a time in the kernels' loops costs a dozen vector operations an
//! element for float16, more than the `exp` beside it (docs/benchmarks.md).

use super::isa::F16c;
use crate::halfconv;
use half::{bf16, f16};

/// `dst[i] = src[i]` widened, for `i < min(len)`.
#[inline(always)]
pub(crate) fn widen_f16(src: &[f16], dst: &mut [f32], f16c: Option<F16c>) {
    let n = src.len().min(dst.len());
    #[cfg(target_arch = "x86_64")]
    if let Some(token) = f16c {
        return hw::widen(token, &src[..n], &mut dst[..n]);
    }
    let _ = f16c;
    for (d, s) in dst[..n].iter_mut().zip(&src[..n]) {
        *d = halfconv::f16_to_f32(s.to_bits());
    }
}

/// `dst[i] = src[i]` rounded to float16 (nearest even), for `i < min(len)`.
#[inline(always)]
pub(crate) fn narrow_f16(src: &[f32], dst: &mut [f16], f16c: Option<F16c>) {
    let n = src.len().min(dst.len());
    #[cfg(target_arch = "x86_64")]
    if let Some(token) = f16c {
        return hw::narrow(token, &src[..n], &mut dst[..n]);
    }
    let _ = f16c;
    for (d, &s) in dst[..n].iter_mut().zip(&src[..n]) {
        *d = f16::from_bits(halfconv::f32_to_f16(s));
    }
}

/// `dst[i] = src[i]` widened (a shift: no instruction needed), for `i < min(len)`.
#[inline(always)]
pub(crate) fn widen_bf16(src: &[bf16], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = halfconv::bf16_to_f32(s.to_bits());
    }
}

/// `dst[i] = src[i]` rounded to bfloat16 (nearest even), for `i < min(len)`. (The AVX-512 BF16
/// conversion flushes subnormals to zero, so the portable one, which vectorizes, is kept.)
#[inline(always)]
pub(crate) fn narrow_bf16(src: &[f32], dst: &mut [bf16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = bf16::from_bits(halfconv::f32_to_bf16(s));
    }
}

#[cfg(target_arch = "x86_64")]
mod hw {
    use super::F16c;
    use crate::halfconv;
    use half::f16;
    use std::arch::asm;
    use std::arch::x86_64::{
        __m128i, _mm256_cvtph_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm_loadu_si128,
        _mm_storeu_si128,
    };

    /// Values an instruction converts.
    const STEP: usize = 8;

    #[inline(always)]
    pub(super) fn widen(_: F16c, src: &[f16], dst: &mut [f32]) {
        // SAFETY: the token proves AVX and F16C on this CPU.
        unsafe { widen_f16c(src, dst) }
    }

    #[inline(always)]
    pub(super) fn narrow(_: F16c, src: &[f32], dst: &mut [f16]) {
        // SAFETY: the token proves AVX and F16C on this CPU.
        unsafe { narrow_f16c(src, dst) }
    }

    /// # Safety
    /// The CPU has AVX and F16C; `src.len() == dst.len()`.
    #[target_feature(enable = "avx,f16c")]
    #[inline]
    unsafe fn widen_f16c(src: &[f16], dst: &mut [f32]) {
        let whole = src.len() - src.len() % STEP;
        for i in (0..whole).step_by(STEP) {
            // SAFETY: i + STEP <= whole <= both lengths; both accesses are unaligned ones.
            unsafe {
                let h = _mm_loadu_si128(src.as_ptr().add(i).cast::<__m128i>());
                _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
            }
        }
        for (d, s) in dst[whole..].iter_mut().zip(&src[whole..]) {
            *d = halfconv::f16_to_f32(s.to_bits());
        }
    }

    /// # Safety
    /// The CPU has AVX and F16C; `src.len() == dst.len()`.
    #[target_feature(enable = "avx,f16c")]
    #[inline]
    unsafe fn narrow_f16c(src: &[f32], dst: &mut [f16]) {
        // The conversion is written as assembly so that the compiler cannot fold the store into
        // it: the form of `vcvtps2ph` that stores to memory itself is several times slower on
        // AMD Zen 4 (docs/benchmarks.md).
        let whole = src.len() - src.len() % STEP;
        for i in (0..whole).step_by(STEP) {
            // SAFETY: i + STEP <= whole <= both lengths, and both accesses are unaligned ones;
            // the assembly only converts a register to a register (F16C, which the caller has),
            // rounding to nearest even (immediate 0) whatever MXCSR says.
            unsafe {
                let f = _mm256_loadu_ps(src.as_ptr().add(i));
                let h: __m128i;
                asm!(
                    "vcvtps2ph {h}, {f}, 0",
                    h = lateout(xmm_reg) h,
                    f = in(ymm_reg) f,
                    options(pure, nomem, nostack, preserves_flags)
                );
                _mm_storeu_si128(dst.as_mut_ptr().add(i).cast::<__m128i>(), h);
            }
        }
        for (d, &s) in dst[whole..].iter_mut().zip(&src[whole..]) {
            *d = f16::from_bits(halfconv::f32_to_f16(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::isa;

    /// The F16C token of this CPU, or why there is none (a failure under `CTC_REQUIRE_ALL=1`).
    fn f16c() -> Option<F16c> {
        let token = isa::detect().f16c();
        if token.is_none() {
            let why =
                "this CPU has no F16C (or is not x86-64): the hardware conversions are untested";
            assert!(std::env::var_os("CTC_REQUIRE_ALL").is_none(), "{why}");
            eprintln!("SKIPPED: {why}");
        }
        token
    }

    /// Every float16 value widened by F16C and by the portable conversion: the same bits, in
    /// blocks of every length around the instruction's 8 (the scalar tail included).
    #[test]
    fn f16c_widening_gives_the_portable_bits() {
        let Some(token) = f16c() else { return };
        let all: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        for len in [all.len(), 1, 7, 8, 9, 15, 17] {
            let starts = [0, 3, 0x7bf8, 0xfbf8, all.len() - len];
            for start in starts.into_iter().filter(|s| s + len <= all.len()) {
                let src = &all[start..start + len];
                let (mut hw, mut soft) = (vec![0f32; len], vec![0f32; len]);
                widen_f16(src, &mut hw, Some(token));
                widen_f16(src, &mut soft, None);
                for (i, (h, s)) in hw.iter().zip(&soft).enumerate() {
                    assert_eq!(h.to_bits(), s.to_bits(), "{:#06x}", src[i].to_bits());
                }
            }
        }
    }

    /// float32 values narrowed by F16C and by the portable conversion: the same bits for every
    /// float32 whose top 20 bits vary, with the low bits that decide ties (all exponents, signs,
    /// subnormals, overflow and NaN payloads).
    #[test]
    fn f16c_narrowing_gives_the_portable_bits() {
        let Some(token) = f16c() else { return };
        let lows = [0u32, 1, 0x7ff, 0x800, 0x801, 0xfff, 0x1000, 0x1fff];
        let src: Vec<f32> = (0..(1u32 << 20))
            .flat_map(|hi| lows.map(|lo| f32::from_bits((hi << 12) | lo)))
            .collect();
        let (mut hw, mut soft) = (vec![f16::ZERO; src.len()], vec![f16::ZERO; src.len()]);
        narrow_f16(&src, &mut hw, Some(token));
        narrow_f16(&src, &mut soft, None);
        for (i, (h, s)) in hw.iter().zip(&soft).enumerate() {
            assert_eq!(
                h.to_bits(),
                s.to_bits(),
                "{:e} ({:#010x})",
                src[i],
                src[i].to_bits()
            );
        }
        // The scalar tail of a block whose length is not a multiple of the instruction's 8.
        let (mut hw, mut soft) = ([f16::ZERO; 13], [f16::ZERO; 13]);
        narrow_f16(&src[77..90], &mut hw, Some(token));
        narrow_f16(&src[77..90], &mut soft, None);
        assert_eq!(hw, soft);
    }
}
