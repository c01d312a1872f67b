//! Element types, enumerations and options shared by the safe API, the backends and the C ABI.

use crate::error::{invalid, Error};
use std::fmt::Debug;

/// The element type of a tensor, as in the C enumeration `CtcDType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum DType {
    /// IEEE binary32.
    Float32 = 0,
    /// IEEE binary64.
    Float64 = 1,
    /// IEEE binary16 (not computed yet: `Unsupported`).
    Float16 = 2,
    /// bfloat16 (not computed yet: `Unsupported`).
    BFloat16 = 3,
    /// Signed 32-bit integer (targets and lengths).
    Int32 = 4,
    /// Signed 64-bit integer (targets and lengths).
    Int64 = 5,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Float16 | DType::BFloat16 => 2,
            DType::Float32 | DType::Int32 => 4,
            DType::Float64 | DType::Int64 => 8,
        }
    }

    /// The lower-case name used in messages (`float32`, `int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Float16 => "float16",
            DType::BFloat16 => "bfloat16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
        }
    }
}

impl TryFrom<i32> for DType {
    type Error = i32;
    fn try_from(v: i32) -> Result<Self, i32> {
        Ok(match v {
            0 => DType::Float32,
            1 => DType::Float64,
            2 => DType::Float16,
            3 => DType::BFloat16,
            4 => DType::Int32,
            5 => DType::Int64,
            _ => return Err(v),
        })
    }
}

/// Where a tensor's memory lives, as in the C enumeration `CtcDevice`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Device {
    /// Host memory.
    Cpu = 0,
    /// Memory of a CUDA device.
    Cuda = 1,
}

impl TryFrom<i32> for Device {
    type Error = i32;
    fn try_from(v: i32) -> Result<Self, i32> {
        match v {
            0 => Ok(Device::Cpu),
            1 => Ok(Device::Cuda),
            _ => Err(v),
        }
    }
}

/// How per-sample losses are combined, as in `torch.nn.functional.ctc_loss`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Reduction {
    /// One loss per sample, shape (N,).
    None = 0,
    /// Each loss divided by max(target_length, 1), then the mean over the batch.
    #[default]
    Mean = 1,
    /// The sum over the batch.
    Sum = 2,
}

impl TryFrom<i32> for Reduction {
    type Error = i32;
    fn try_from(v: i32) -> Result<Self, i32> {
        match v {
            0 => Ok(Reduction::None),
            1 => Ok(Reduction::Mean),
            2 => Ok(Reduction::Sum),
            _ => Err(v),
        }
    }
}

/// Which computation a workspace is for, as in the C enumeration `CtcCall` (the size query).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Call {
    /// The loss alone (`ctc_loss_forward`): two rows of the forward variable per sample.
    Forward = 0,
    /// The gradient (`ctc_loss_backward`): the whole forward table.
    Backward = 1,
    /// The loss and the gradient (`ctc_loss_forward_backward`); also what any of the three needs.
    #[default]
    ForwardBackward = 2,
}

impl TryFrom<i32> for Call {
    type Error = i32;
    fn try_from(v: i32) -> Result<Self, i32> {
        match v {
            0 => Ok(Call::Forward),
            1 => Ok(Call::Backward),
            2 => Ok(Call::ForwardBackward),
            _ => Err(v),
        }
    }
}

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            blank: 0,
            reduction: Reduction::Mean,
            zero_infinity: false,
            num_threads: 0,
        }
    }
}

/// The scalar type the recurrences are computed in.
pub trait Real:
    num_traits::Float + bytemuck::Pod + Send + Sync + Debug + Default + std::iter::Sum + 'static
{
    /// Converts from f64 (rounding).
    fn from_f64(v: f64) -> Self;
    /// Converts to f64 (exact).
    fn to_f64(self) -> f64;
    /// e^x as the vectorized CPU kernel computes it (see `cpu/math.rs`); `FMA` only in code
    /// compiled with the fma target feature.
    #[doc(hidden)]
    fn fexp<const FMA: bool>(self) -> Self;
    /// e^x for x <= 0, as the kernel computes it where the result is added to 1.
    #[doc(hidden)]
    fn fexp_nonpositive<const FMA: bool>(self) -> Self;
    /// ln x for x in [1, 3], as the vectorized CPU kernel computes it.
    #[doc(hidden)]
    fn fln_1_3<const FMA: bool>(self) -> Self;
    /// `self * b + c`, fused when `FMA` (only in code compiled with the fma target feature).
    #[doc(hidden)]
    #[inline(always)]
    fn fmad<const FMA: bool>(self, b: Self, c: Self) -> Self {
        if FMA {
            self.mul_add(b, c)
        } else {
            self * b + c
        }
    }
}

impl Real for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn fexp<const FMA: bool>(self) -> f32 {
        crate::cpu::math::exp_f32::<FMA>(self)
    }
    #[inline(always)]
    fn fexp_nonpositive<const FMA: bool>(self) -> f32 {
        crate::cpu::math::exp_nonpositive_f32::<FMA>(self)
    }
    #[inline(always)]
    fn fln_1_3<const FMA: bool>(self) -> f32 {
        crate::cpu::math::ln_1_3_f32::<FMA>(self)
    }
}

impl Real for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn fexp<const FMA: bool>(self) -> f64 {
        self.exp()
    }
    #[inline(always)]
    fn fexp_nonpositive<const FMA: bool>(self) -> f64 {
        self.exp()
    }
    #[inline(always)]
    fn fln_1_3<const FMA: bool>(self) -> f64 {
        self.ln()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
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
}

/// Converts a C integer to a crate enumeration, naming the argument in the error.
pub(crate) fn enum_from_c<E: TryFrom<i32, Error = i32>>(
    what: &str,
    value: i32,
    allowed: &str,
) -> Result<E, Error> {
    E::try_from(value).map_err(|v| invalid!("{what} = {v} is not one of {allowed}"))
}
