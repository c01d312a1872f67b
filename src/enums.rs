//! The one table of the C enumerations: every value with its C name and its word. The ABI
//! constants of `src/ffi` are checked against it at compile time, messages list the allowed
//! values from it, and the bindings' tables are tested against the header it feeds.

use std::ffi::CStr;

/// A C enumeration of the table: received as an `i32`, listed in messages.
pub trait CEnum: TryFrom<i32, Error = i32> + Copy {
    /// The allowed values for a message: `CTC_X_A (0), CTC_X_B (1)`.
    fn allowed() -> String;
}

/// Defines a C enumeration received as an `i32`: the Rust enum, `TryFrom<i32>` (an unknown
/// value is the `Err`), the C name and the word of each value, and the list of allowed values
/// for messages.
macro_rules! c_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $c_name:literal, $word:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// Every value, in the table's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The C name of the value (`CTC_..._...`).
            pub fn c_name(self) -> &'static str {
                match self { $($name::$variant => $c_name),+ }
            }

            /// The value in a word, as messages and `ctc_status_string` say it.
            pub fn word(self) -> &'static str {
                self.c_word().to_str().unwrap_or("")
            }

            /// [`Self::word`] as a static C string.
            pub fn c_word(self) -> &'static CStr {
                match self {
                    $($name::$variant => match CStr::from_bytes_with_nul(concat!($word, "\0").as_bytes()) {
                        Ok(s) => s,
                        Err(_) => panic!("a word holds no NUL"),
                    }),+
                }
            }

        }

        impl CEnum for $name {
            fn allowed() -> String {
                let all: Vec<String> = Self::ALL
                    .iter()
                    .map(|v| format!("{} ({})", v.c_name(), *v as i32))
                    .collect();
                all.join(", ")
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v as i32
            }
        }

        impl TryFrom<i32> for $name {
            type Error = i32;
            fn try_from(v: i32) -> Result<Self, i32> {
                match v {
                    $($value => Ok($name::$variant),)+
                    _ => Err(v),
                }
            }
        }
    };
}

c_enum! {
    /// What kind of failure a call ended in: the C enumeration `CtcStatus`.
    pub enum Status {
        /// The call succeeded.
        Success = 0 => "CTC_STATUS_SUCCESS", "success";
        /// A bad pointer, shape, stride, length, label or option.
        InvalidArgument = 1 => "CTC_STATUS_INVALID_ARGUMENT", "invalid argument";
        /// A valid request this build or machine cannot serve (no CUDA driver, for instance).
        Unsupported = 2 => "CTC_STATUS_UNSUPPORTED", "unsupported";
        /// Memory (or a worker thread) could not be obtained.
        OutOfMemory = 3 => "CTC_STATUS_OUT_OF_MEMORY", "out of memory";
        /// A CUDA driver or NVRTC call failed.
        DeviceError = 4 => "CTC_STATUS_DEVICE_ERROR", "device error";
        /// A bug in the library, such as a caught panic. Never a crash.
        InternalError = 5 => "CTC_STATUS_INTERNAL_ERROR", "internal error";
    }
}

c_enum! {
    /// The element type of a tensor: the C enumeration `CtcDType`.
    pub enum DType {
        /// IEEE binary32.
        Float32 = 0 => "CTC_DTYPE_FLOAT32", "float32";
        /// IEEE binary64.
        Float64 = 1 => "CTC_DTYPE_FLOAT64", "float64";
        /// IEEE binary16.
        Float16 = 2 => "CTC_DTYPE_FLOAT16", "float16";
        /// bfloat16.
        BFloat16 = 3 => "CTC_DTYPE_BFLOAT16", "bfloat16";
        /// Signed 32-bit integer (targets, lengths, paths).
        Int32 = 4 => "CTC_DTYPE_INT32", "int32";
        /// Signed 64-bit integer (targets, lengths, paths).
        Int64 = 5 => "CTC_DTYPE_INT64", "int64";
    }
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
        self.word()
    }

    /// Whether this is one of the floating types.
    pub fn is_float(self) -> bool {
        !matches!(self, DType::Int32 | DType::Int64)
    }
}

c_enum! {
    /// Where a tensor's memory lives: the C enumeration `CtcDevice`.
    pub enum Device {
        /// Host memory.
        Cpu = 0 => "CTC_DEVICE_CPU", "cpu";
        /// Memory of a CUDA device.
        Cuda = 1 => "CTC_DEVICE_CUDA", "cuda";
    }
}

c_enum! {
    /// How per-sample losses are combined, as in `torch.nn.functional.ctc_loss`: the C
    /// enumeration `CtcReduction`.
    #[derive(Default)]
    pub enum Reduction {
        /// One loss per sample, shape (N,).
        None = 0 => "CTC_REDUCTION_NONE", "none";
        /// Each loss divided by max(target_length, 1), then the mean over the batch.
        #[default]
        Mean = 1 => "CTC_REDUCTION_MEAN", "mean";
        /// The sum over the batch.
        Sum = 2 => "CTC_REDUCTION_SUM", "sum";
    }
}

c_enum! {
    /// Which computation a workspace is for (the size query): the C enumeration `CtcCall`.
    #[derive(Default)]
    pub enum Call {
        /// The loss alone (`ctc_loss_forward`): two rows of the forward variable per sample.
        Forward = 0 => "CTC_CALL_FORWARD", "forward";
        /// The gradient (`ctc_loss_backward`): the whole forward table.
        Backward = 1 => "CTC_CALL_BACKWARD", "backward";
        /// The loss and the gradient (`ctc_loss_forward_backward`); also what any of the three
        /// needs.
        #[default]
        ForwardBackward = 2 => "CTC_CALL_FORWARD_BACKWARD", "forward and backward";
        /// A forced alignment (`ctc_align`).
        Align = 3 => "CTC_CALL_ALIGN", "align";
    }
}

c_enum! {
    /// What the first tensor holds: the C enumeration `CtcInput` (`CtcOptions.input`).
    #[derive(Default)]
    pub enum Input {
        /// Log-probabilities (log_softmax over the classes already applied), as torch takes.
        #[default]
        LogProbs = 0 => "CTC_INPUT_LOG_PROBS", "log-probabilities";
        /// Unnormalized scores: the library applies log_softmax over the classes itself.
        Logits = 1 => "CTC_INPUT_LOGITS", "logits";
    }
}

c_enum! {
    /// Which derivative the gradient output receives: the C enumeration `CtcGradient`
    /// (`CtcOptions.gradient`).
    #[derive(Default)]
    pub enum Gradient {
        /// torch's `(exp(lp) - posterior) * grad_loss`: the derivative through a log_softmax
        /// right before the loss.
        #[default]
        Torch = 0 => "CTC_GRADIENT_TORCH", "torch's";
        /// The true derivative of the loss with respect to arbitrary log-scores:
        /// `-posterior * grad_loss`.
        Exact = 1 => "CTC_GRADIENT_EXACT", "exact";
    }
}
