//! The one error type of the library and its mapping to the C status codes.
//!
//! Every fallible function of the crate returns [`Result<T, Error>`](Error). The C ABI turns an
//! error into a [`Status`] with [`Error::status`] and stores [`Error::message`] in the calling
//! thread's last-error slot; nothing is ever printed.

use std::fmt;

/// What kind of failure a call ended in. The discriminants are the values of the C enumeration
/// `CtcStatus` (see `include/ctc.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Status {
    /// The call succeeded.
    Success = 0,
    /// A bad pointer, shape, stride, length, label or option.
    InvalidArgument = 1,
    /// A valid request this build or machine cannot serve (no CUDA driver, a dtype not implemented).
    Unsupported = 2,
    /// Memory (or a worker thread) could not be obtained.
    OutOfMemory = 3,
    /// A CUDA driver or NVRTC call failed.
    DeviceError = 4,
    /// A bug in the library, such as a caught panic. Never a crash.
    InternalError = 5,
}

impl Status {
    /// Every status, in discriminant order.
    pub const ALL: [Status; 6] = [
        Status::Success,
        Status::InvalidArgument,
        Status::Unsupported,
        Status::OutOfMemory,
        Status::DeviceError,
        Status::InternalError,
    ];

    /// A short, static description of the status.
    pub fn description(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::InvalidArgument => "invalid argument",
            Status::Unsupported => "unsupported",
            Status::OutOfMemory => "out of memory",
            Status::DeviceError => "device error",
            Status::InternalError => "internal error",
        }
    }
}

impl TryFrom<i32> for Status {
    type Error = i32;
    fn try_from(value: i32) -> Result<Self, i32> {
        Status::ALL
            .into_iter()
            .find(|s| *s as i32 == value)
            .ok_or(value)
    }
}

/// A failed call: the kind of failure and a message that names the argument and the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// See [`Status::InvalidArgument`].
    InvalidArgument(String),
    /// See [`Status::Unsupported`].
    Unsupported(String),
    /// See [`Status::OutOfMemory`].
    OutOfMemory(String),
    /// See [`Status::DeviceError`].
    Device(String),
    /// See [`Status::InternalError`].
    Internal(String),
}

impl Error {
    /// The C status this error maps to.
    pub fn status(&self) -> Status {
        match self {
            Error::InvalidArgument(_) => Status::InvalidArgument,
            Error::Unsupported(_) => Status::Unsupported,
            Error::OutOfMemory(_) => Status::OutOfMemory,
            Error::Device(_) => Status::DeviceError,
            Error::Internal(_) => Status::InternalError,
        }
    }

    /// The message, without the status.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArgument(m)
            | Error::Unsupported(m)
            | Error::OutOfMemory(m)
            | Error::Device(m)
            | Error::Internal(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status().description(), self.message())
    }
}

impl std::error::Error for Error {}

/// `Err(Error::InvalidArgument(format!(...)))`, the most common failure.
macro_rules! invalid {
    ($($arg:tt)*) => {
        $crate::error::Error::InvalidArgument(format!($($arg)*))
    };
}
pub(crate) use invalid;
