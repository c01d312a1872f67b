//! Instruction sets: run-time detection, and the one trampoline that runs a kernel compiled for
//! the best set this CPU has.
//!
//! A kernel implements [`Kernel`] with `#[inline(always)]` code generic over `FMA`; [`run`]
//! calls it from a function compiled with the chosen target features, so that LLVM vectorizes
//! (and fuses multiply-adds in) everything it inlines for that set. An [`Isa`] is only made by
//! [`detect`], so holding one proves the CPU runs its set, and code that needs AVX-512 takes an
//! [`Avx512`] token obtained from it.

/// An instruction set this CPU supports (only [`detect`] makes one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Isa(Level);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// AVX-512 F, BW and VL, with AVX2, FMA and F16C.
    Avx512,
    /// AVX2, FMA and F16C.
    Avx2,
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
}

/// Proof that this CPU has AVX-512F (see [`Isa::avx512`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

/// Proof that this CPU has AVX and F16C, the float16 conversions (see [`Isa::f16c`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct F16c(());

impl Isa {
    /// The AVX-512 token, when this is the AVX-512 set.
    pub fn avx512(self) -> Option<Avx512> {
        (self.0 == Level::Avx512).then_some(Avx512(()))
    }

    /// The F16C token, when this set includes F16C (both vector sets do).
    pub fn f16c(self) -> Option<F16c> {
        (self.0 != Level::Baseline).then_some(F16c(()))
    }

    /// The name of the set, for tests and benchmarks.
    #[cfg(test)]
    pub fn name(self) -> &'static str {
        match self.0 {
            Level::Avx512 => "avx512",
            Level::Avx2 => "avx2",
            Level::Baseline => "baseline",
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Tests run the kernels compiled for a chosen set (never one the CPU lacks: see
    /// [`supported`]).
    pub(crate) static FORCED: std::cell::Cell<Option<Isa>> = const { std::cell::Cell::new(None) };
}

/// Every instruction set this CPU can run, best first.
#[cfg(test)]
pub(crate) fn supported() -> Vec<Isa> {
    let top = best();
    [Level::Avx512, Level::Avx2, Level::Baseline]
        .into_iter()
        .skip_while(|&l| l != top.0)
        .map(Isa)
        .collect()
}

/// The best instruction set this CPU supports (or, in tests, the one forced).
pub(crate) fn detect() -> Isa {
    #[cfg(test)]
    if let Some(isa) = FORCED.with(|f| f.get()) {
        return isa;
    }
    best()
}

fn best() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        // Every CPU with AVX2 and FMA has F16C; it is checked all the same.
        let avx2 = has!("avx2") && has!("fma") && has!("f16c");
        if avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl") {
            return Isa(Level::Avx512);
        }
        if avx2 {
            return Isa(Level::Avx2);
        }
    }
    Isa(Level::Baseline)
}

/// A computation compiled once per instruction set.
pub(crate) trait Kernel {
    type Output;
    /// The computation, with fused multiply-adds when `FMA`; `#[inline(always)]` so that it is
    /// compiled inside [`run`]'s target-feature functions.
    fn run<const FMA: bool>(self, isa: Isa) -> Self::Output;
}

/// Runs `kernel` compiled for `isa`.
pub(crate) fn run<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    match isa.0 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Isa` of this level is only made by `detect`, which found avx512f,
        // avx512bw, avx512vl, avx2, fma and f16c on this CPU.
        Level::Avx512 => unsafe { run_avx512(isa, kernel) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, avx2, fma and f16c.
        Level::Avx2 => unsafe { run_avx2(isa, kernel) },
        _ => kernel.run::<false>(isa),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn run_avx512<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    kernel.run::<true>(isa)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn run_avx2<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    kernel.run::<true>(isa)
}
