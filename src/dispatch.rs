//! The one place that decides where a computation runs: `log_probs`'s device picks the backend.

use crate::error::Error;
use crate::types::Device;

/// A compute backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `src/cpu/`: the library's helper threads over the batch.
    Cpu,
    /// `src/cuda/`: NVRTC-compiled kernels on the caller's stream.
    Cuda,
}

/// The backend for tensors on `device` (`index`: the CUDA ordinal).
pub(crate) fn backend(device: Device, index: i32) -> Result<Backend, Error> {
    match device {
        Device::Cpu => Ok(Backend::Cpu),
        Device::Cuda => {
            crate::cuda::driver::init().map_err(|e| match e {
                Error::Unsupported(why) => {
                    Error::Unsupported(format!("log_probs is on CUDA device {index}, but {why}"))
                }
                other => other,
            })?;
            let count = crate::cuda::device_count();
            if index < 0 || index >= count {
                return Err(Error::InvalidArgument(format!(
                    "log_probs.device_index = {index} but {count} CUDA device(s) are present"
                )));
            }
            Ok(Backend::Cuda)
        }
    }
}

/// CUDA devices the library can use: 0 without a driver or a device.
pub(crate) fn cuda_device_count() -> i32 {
    crate::cuda::device_count()
}
