//! Element types and options shared by the safe API, the backends and the C ABI (the
//! enumerations come from the table in `enums.rs`).

use crate::enums::CEnum;
pub use crate::enums::{Call, DType, Device, Gradient, Input, Reduction};
use crate::error::{invalid, Error};
use ndarray::{ArrayView1, ArrayView3, ArrayViewMut1, ArrayViewMut3};
use std::fmt::Debug;

/// Options of a CTC computation (the safe counterpart of the C `CtcOptions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Index of the blank class, in [0, C).
    pub blank: i64,
    /// How per-sample losses are combined.
    pub reduction: Reduction,
    /// Replace infinite losses (impossible alignments) and their gradients by zero.
    pub zero_infinity: bool,
    /// The most CPU threads a call uses, the calling thread included; 0 = one per available CPU
    /// (the size of the library's shared pool, which also caps larger values). Results do not
    /// depend on it.
    pub num_threads: usize,
    /// What the first tensor holds: log-probabilities (default) or logits.
    pub input: Input,
    /// Which derivative the gradient receives: torch's (default) or the exact one.
    pub gradient: Gradient,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            blank: 0,
            reduction: Reduction::Mean,
            zero_infinity: false,
            num_threads: 0,
            input: Input::LogProbs,
            gradient: Gradient::Torch,
        }
    }
}

/// The scalar type the recurrences are computed in (float32 or float64).
pub trait Real:
    num_traits::Float + bytemuck::Pod + Send + Sync + Debug + Default + std::iter::Sum + 'static
{
    /// Converts from f64 (rounding).
    fn from_f64(v: f64) -> Self;
    /// Converts to f64 (exact).
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// A floating element type of `log_probs`, the loss and the gradient.
///
/// The storage type and the accumulation type are separate so that float16 and bfloat16 inputs
/// can be added with float32 accumulation (`Acc = f32`) without touching the algorithm.
pub trait Element: sealed::Sealed + Copy + Send + Sync + Debug + 'static {
    /// The type the recurrences run in (itself an element type, so that rows can be staged in it).
    type Acc: Real + Element<Acc = Self::Acc>;
    /// The C dtype of this element type.
    const DTYPE: DType;
    /// Widens a stored value to the accumulation type.
    fn to_acc(self) -> Self::Acc;
    /// Narrows an accumulated value to the stored type.
    fn from_acc(a: Self::Acc) -> Self;
    /// The view with its element type as a value.
    #[doc(hidden)]
    fn floats3(v: ArrayView3<'_, Self>) -> Floats3<'_>;
    /// The view with its element type as a value.
    #[doc(hidden)]
    fn floats3_mut(v: ArrayViewMut3<'_, Self>) -> Floats3Mut<'_>;
    /// The view with its element type as a value.
    #[doc(hidden)]
    fn floats1(v: ArrayView1<'_, Self>) -> Floats1<'_>;
    /// The view with its element type as a value.
    #[doc(hidden)]
    fn floats1_mut(v: ArrayViewMut1<'_, Self>) -> Floats1Mut<'_>;
}

impl Element for f32 {
    type Acc = f32;
    const DTYPE: DType = DType::Float32;
    #[inline(always)]
    fn to_acc(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_acc(a: f32) -> f32 {
        a
    }
    fn floats3(v: ArrayView3<'_, Self>) -> Floats3<'_> {
        Floats3::F32(v)
    }
    fn floats3_mut(v: ArrayViewMut3<'_, Self>) -> Floats3Mut<'_> {
        Floats3Mut::F32(v)
    }
    fn floats1(v: ArrayView1<'_, Self>) -> Floats1<'_> {
        Floats1::F32(v)
    }
    fn floats1_mut(v: ArrayViewMut1<'_, Self>) -> Floats1Mut<'_> {
        Floats1Mut::F32(v)
    }
}

impl Element for f64 {
    type Acc = f64;
    const DTYPE: DType = DType::Float64;
    #[inline(always)]
    fn to_acc(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_acc(a: f64) -> f64 {
        a
    }
    fn floats3(v: ArrayView3<'_, Self>) -> Floats3<'_> {
        Floats3::F64(v)
    }
    fn floats3_mut(v: ArrayViewMut3<'_, Self>) -> Floats3Mut<'_> {
        Floats3Mut::F64(v)
    }
    fn floats1(v: ArrayView1<'_, Self>) -> Floats1<'_> {
        Floats1::F64(v)
    }
    fn floats1_mut(v: ArrayViewMut1<'_, Self>) -> Floats1Mut<'_> {
        Floats1Mut::F64(v)
    }
}

/// float16 (`half::f16`): accumulated in float32.
impl Element for half::f16 {
    type Acc = f32;
    const DTYPE: DType = DType::Float16;
    #[inline(always)]
    fn to_acc(self) -> f32 {
        crate::halfconv::f16_to_f32(self.to_bits())
    }
    #[inline(always)]
    fn from_acc(a: f32) -> half::f16 {
        half::f16::from_bits(crate::halfconv::f32_to_f16(a))
    }
    fn floats3(v: ArrayView3<'_, Self>) -> Floats3<'_> {
        Floats3::F16(v)
    }
    fn floats3_mut(v: ArrayViewMut3<'_, Self>) -> Floats3Mut<'_> {
        Floats3Mut::F16(v)
    }
    fn floats1(v: ArrayView1<'_, Self>) -> Floats1<'_> {
        Floats1::F16(v)
    }
    fn floats1_mut(v: ArrayViewMut1<'_, Self>) -> Floats1Mut<'_> {
        Floats1Mut::F16(v)
    }
}

/// bfloat16 (`half::bf16`): accumulated in float32.
impl Element for half::bf16 {
    type Acc = f32;
    const DTYPE: DType = DType::BFloat16;
    #[inline(always)]
    fn to_acc(self) -> f32 {
        crate::halfconv::bf16_to_f32(self.to_bits())
    }
    #[inline(always)]
    fn from_acc(a: f32) -> half::bf16 {
        half::bf16::from_bits(crate::halfconv::f32_to_bf16(a))
    }
    fn floats3(v: ArrayView3<'_, Self>) -> Floats3<'_> {
        Floats3::BF16(v)
    }
    fn floats3_mut(v: ArrayViewMut3<'_, Self>) -> Floats3Mut<'_> {
        Floats3Mut::BF16(v)
    }
    fn floats1(v: ArrayView1<'_, Self>) -> Floats1<'_> {
        Floats1::BF16(v)
    }
    fn floats1_mut(v: ArrayViewMut1<'_, Self>) -> Floats1Mut<'_> {
        Floats1Mut::BF16(v)
    }
}

/// Converts a C integer to an enumeration of the table, naming the argument in the error.
pub(crate) fn enum_from_c<E: CEnum>(what: &str, value: i32) -> Result<E, Error> {
    E::try_from(value).map_err(|v| invalid!("{what} = {v} is not one of {}", E::allowed()))
}

/// A floating (T, N, C) view of any element type.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Floats3<'a> {
    /// float32.
    F32(ArrayView3<'a, f32>),
    /// float64.
    F64(ArrayView3<'a, f64>),
    /// float16.
    F16(ArrayView3<'a, half::f16>),
    /// bfloat16.
    BF16(ArrayView3<'a, half::bf16>),
}

/// A mutable floating (T, N, C) view of any element type.
#[doc(hidden)]
#[derive(Debug)]
pub enum Floats3Mut<'a> {
    /// float32.
    F32(ArrayViewMut3<'a, f32>),
    /// float64.
    F64(ArrayViewMut3<'a, f64>),
    /// float16.
    F16(ArrayViewMut3<'a, half::f16>),
    /// bfloat16.
    BF16(ArrayViewMut3<'a, half::bf16>),
}

/// A floating (n,) view of any element type (losses and their upstream gradient: few values,
/// read and written as f64).
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Floats1<'a> {
    /// float32.
    F32(ArrayView1<'a, f32>),
    /// float64.
    F64(ArrayView1<'a, f64>),
    /// float16.
    F16(ArrayView1<'a, half::f16>),
    /// bfloat16.
    BF16(ArrayView1<'a, half::bf16>),
}

/// A mutable floating (n,) view of any element type.
#[doc(hidden)]
#[derive(Debug)]
pub enum Floats1Mut<'a> {
    /// float32.
    F32(ArrayViewMut1<'a, f32>),
    /// float64.
    F64(ArrayViewMut1<'a, f64>),
    /// float16.
    F16(ArrayViewMut1<'a, half::f16>),
    /// bfloat16.
    BF16(ArrayViewMut1<'a, half::bf16>),
}

impl Floats3Mut<'_> {
    /// (T, N, C).
    pub(crate) fn dim(&self) -> (usize, usize, usize) {
        match self {
            Floats3Mut::F32(v) => v.dim(),
            Floats3Mut::F64(v) => v.dim(),
            Floats3Mut::F16(v) => v.dim(),
            Floats3Mut::BF16(v) => v.dim(),
        }
    }
}

impl Floats1<'_> {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Floats1::F32(v) => v.len(),
            Floats1::F64(v) => v.len(),
            Floats1::F16(v) => v.len(),
            Floats1::BF16(v) => v.len(),
        }
    }

    /// Element `i` as f64 (exact for every element type).
    pub(crate) fn get(&self, i: usize) -> f64 {
        match self {
            Floats1::F32(v) => v[i] as f64,
            Floats1::F64(v) => v[i],
            Floats1::F16(v) => v[i].to_acc() as f64,
            Floats1::BF16(v) => v[i].to_acc() as f64,
        }
    }
}

impl Floats1Mut<'_> {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Floats1Mut::F32(v) => v.len(),
            Floats1Mut::F64(v) => v.len(),
            Floats1Mut::F16(v) => v.len(),
            Floats1Mut::BF16(v) => v.len(),
        }
    }

    /// Stores `value` at `i`, rounded to the element type (a half type through float32: the
    /// value is a float32 accumulation's result).
    pub(crate) fn set(&mut self, i: usize, value: f64) {
        match self {
            Floats1Mut::F32(v) => v[i] = value as f32,
            Floats1Mut::F64(v) => v[i] = value,
            Floats1Mut::F16(v) => v[i] = half::f16::from_acc(value as f32),
            Floats1Mut::BF16(v) => v[i] = half::bf16::from_acc(value as f32),
        }
    }
}
