//! The one place that decides where a computation runs: `log_probs`'s device picks the backend.

use crate::error::Error;
use crate::types::Device;

/// A compute backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `src/cpu/`: rayon over the batch.
    Cpu,
}

/// The backend for tensors on `device` (`index` is the CUDA ordinal).
pub(crate) fn backend(device: Device, index: i32) -> Result<Backend, Error> {
    match device {
        Device::Cpu => Ok(Backend::Cpu),
        Device::Cuda => Err(Error::Unsupported(format!(
            "log_probs is on CUDA device {index}, but libctc {} has no CUDA backend yet; pass CPU tensors",
            env!("CARGO_PKG_VERSION")
        ))),
    }
}

/// CUDA devices the library can use: none until the CUDA backend exists.
pub(crate) fn cuda_device_count() -> i32 {
    0
}
