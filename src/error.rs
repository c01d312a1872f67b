//! The one error type of the library and its mapping to the C status codes.
//!
//! Every fallible function of the crate returns [`Result<T, Error>`](Error). The C ABI turns an
//! error into a [`Status`] with [`Error::status`] and stores [`Error::message`] in the calling
//! thread's last-error slot; nothing is ever printed.

use std::fmt;

pub use crate::enums::Status;

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
        write!(f, "{}: {}", self.status().word(), self.message())
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
