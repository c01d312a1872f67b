//! The one place that decides where a computation runs: the problem's place picks the backend.

use crate::cpu;
use crate::cuda;
use crate::error::Error;
use crate::problem::{Outputs, Place, Problem, Workspace};
use crate::types::Call;

/// Computes what `out` asks for, on the backend where the problem's tensors live.
pub(crate) fn run(
    p: &Problem<'_>,
    out: Outputs<'_>,
    workspace: Workspace<'_>,
) -> Result<(), Error> {
    out.check(p)?;
    match p.place {
        Place::Host => cpu::run(p, out, workspace),
        Place::Cuda(ordinal) => {
            cuda_ready(ordinal)?;
            cuda::run(p, out, workspace)
        }
    }
}

/// Bytes of workspace the computation `call` needs on the problem's backend.
pub(crate) fn workspace_size(p: &Problem<'_>, call: Call) -> Result<usize, Error> {
    match p.place {
        Place::Host => cpu::workspace_size(p, call),
        Place::Cuda(ordinal) => {
            cuda_ready(ordinal)?;
            cuda::workspace_size(p, call)
        }
    }
}

/// Checks that the CUDA backend can serve device `ordinal`.
fn cuda_ready(ordinal: i32) -> Result<(), Error> {
    cuda::driver::init().map_err(|e| match e {
        Error::Unsupported(why) => {
            Error::Unsupported(format!("log_probs is on CUDA device {ordinal}, but {why}"))
        }
        other => other,
    })?;
    let count = cuda::device_count();
    if ordinal < 0 || ordinal >= count {
        return Err(Error::InvalidArgument(format!(
            "log_probs.device_index = {ordinal} but {count} CUDA device(s) are present"
        )));
    }
    Ok(())
}

/// CUDA devices the library can use: 0 without a driver or a device.
pub(crate) fn cuda_device_count() -> i32 {
    cuda::device_count()
}
