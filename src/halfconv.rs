//! float16 and bfloat16 to and from float32, bit for bit as IEEE 754, the `half` crate and the
//! x86 F16C instructions (round to nearest, ties to even; infinities and subnormals exact; a NaN
//! keeps its sign and the top bits of its payload and comes out quiet, except that bfloat16
//! widens by a shift as torch's does), written
//! with selects only so that the kernels' loops over them vectorize (the `half` crate converts
//! one value at a time, through run-time feature detection without the `std` feature's
//! intrinsics). After F. Giesen's branch-free conversions (public domain).

/// float16 bits to float32 (exact).
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let magic = f32::from_bits(113 << 23);
    let shifted_exp: u32 = 0x7c00 << 13;
    let bits = ((h & 0x7fff) as u32) << 13;
    let exp = shifted_exp & bits;
    let normal = bits + ((127 - 15) << 23);
    let special = normal + ((128 - 16) << 23); // infinity or NaN
                                               // A NaN (payload bits set) comes out quiet.
    let quiet = if bits & 0x007f_e000 != 0 { 1 << 22 } else { 0 };
    let subnormal = (f32::from_bits(normal + (1 << 23)) - magic).to_bits();
    let o = if exp == shifted_exp {
        special | quiet
    } else if exp == 0 {
        subnormal
    } else {
        normal
    };
    f32::from_bits(o | (((h & 0x8000) as u32) << 16))
}

/// float32 to float16 bits, rounded to nearest even; overflow gives infinity, NaN a quiet NaN
/// with the top 10 bits of its payload.
#[inline(always)]
pub(crate) fn f32_to_f16(f: f32) -> u16 {
    const F32_INFINITY: u32 = 255 << 23;
    const F16_OVERFLOW: u32 = (127 + 16) << 23;
    const DENORM_MAGIC: u32 = ((127 - 15) + (23 - 10) + 1) << 23;
    let bits = f.to_bits();
    let sign = ((bits & 0x8000_0000) >> 16) as u16;
    let u = bits & 0x7fff_ffff;
    let overflow = if u > F32_INFINITY {
        0x7e00 | ((u >> 13) & 0x3ff) as u16
    } else {
        0x7c00
    };
    let small = (f32::from_bits(u) + f32::from_bits(DENORM_MAGIC))
        .to_bits()
        .wrapping_sub(DENORM_MAGIC) as u16;
    let mant_odd = (u >> 13) & 1;
    let normal = (u
        .wrapping_add((15u32.wrapping_sub(127) << 23).wrapping_add(0xfff))
        .wrapping_add(mant_odd)
        >> 13) as u16;
    let o = if u >= F16_OVERFLOW {
        overflow
    } else if u < (113 << 23) {
        small
    } else {
        normal
    };
    o | sign
}

/// bfloat16 bits to float32 (exact: a shift, as torch's, so a signalling NaN stays one).
#[inline(always)]
pub(crate) fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// float32 to bfloat16 bits, rounded to nearest even; NaN gives a quiet NaN.
#[inline(always)]
pub(crate) fn f32_to_bf16(f: f32) -> u16 {
    let u = f.to_bits();
    let rounded = (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16;
    if f.is_nan() {
        ((u >> 16) as u16) | 0x40
    } else {
        rounded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_half_value_widens_as_the_half_crate() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32().to_bits();
            assert_eq!(f16_to_f32(h).to_bits(), want, "f16 {h:#06x}");
            // bfloat16 widens by a shift, as torch's does: a signalling NaN stays signalling
            // (the half crate quiets it).
            let b = half::bf16::from_bits(h);
            let want = if b.is_nan() {
                (h as u32) << 16
            } else {
                b.to_f32().to_bits()
            };
            assert_eq!(bf16_to_f32(h).to_bits(), want, "bf16 {h:#06x}");
        }
    }

    #[test]
    fn narrowing_rounds_as_the_half_crate() {
        // Every float32 whose top 20 bits vary (all exponents, signs and rounding cases near
        // each half value), plus the low bits that decide ties.
        for hi in 0..(1u32 << 20) {
            for lo in [0u32, 1, 0x7ff, 0x800, 0x801, 0xfff] {
                let f = f32::from_bits((hi << 12) | lo);
                let want = half::f16::from_f32(f).to_bits();
                let got = f32_to_f16(f);
                assert_eq!(got, want, "f16 of {f:e} ({:#010x})", f.to_bits());
                let want = half::bf16::from_f32(f).to_bits();
                assert_eq!(
                    f32_to_bf16(f),
                    want,
                    "bf16 of {f:e} ({:#010x})",
                    f.to_bits()
                );
            }
        }
    }
}
