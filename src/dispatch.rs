//! The one place that decides where a computation runs: the problem's place picks the backend.

use crate::cpu;
use crate::cuda;
use crate::error::Error;
use crate::problem::{AlignOutputs, Outputs, Place, Problem, Workspace};
use crate::types::Call;

/// Computes what `out` asks for, on the backend where the problem's tensors live.
pub(crate) fn run(
    p: &Problem<'_>,
    out: Outputs<'_>,
    workspace: Workspace<'_>,
) -> Result<(), Error> {
    out.check(p)?;
    test_hooks::panic_if_asked();
    match p.place {
        Place::Host => cpu::run(p, out, workspace),
        Place::Cuda(ordinal) => {
            cuda_ready(ordinal)?;
            cuda::run(p, out, workspace)
        }
    }
}

/// The best alignment of each sample, on the backend where the problem's tensors live.
pub(crate) fn align(
    p: &Problem<'_>,
    out: AlignOutputs<'_>,
    workspace: Workspace<'_>,
) -> Result<(), Error> {
    out.check(p)?;
    match p.place {
        Place::Host => cpu::align(p, out, workspace),
        Place::Cuda(ordinal) => {
            cuda_ready(ordinal)?;
            cuda::align(p, out, workspace)
        }
    }
}

/// Bytes of workspace the computation `call` needs on the problem's backend.
pub(crate) fn workspace_size(p: &Problem<'_>, call: Call) -> Result<usize, Error> {
    match (p.place, call) {
        (Place::Host, _) => cpu::workspace_size(p, call),
        (Place::Cuda(ordinal), _) => {
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

#[doc(hidden)]
pub mod test_hooks {
    //! A way for the test suite to reach the panic guard of the C ABI: a panic inside a
    //! computation, after validation, must come back as `CTC_STATUS_INTERNAL_ERROR` with a
    //! message and nothing written. Not part of the API.

    use std::cell::Cell;

    thread_local! {
        static PANIC_NEXT: Cell<bool> = const { Cell::new(false) };
    }

    /// Makes this thread's next computation panic once its arguments are validated.
    pub fn panic_in_next_call() {
        PANIC_NEXT.with(|p| p.set(true));
    }

    pub(crate) fn panic_if_asked() {
        if PANIC_NEXT.with(|p| p.replace(false)) {
            panic!("a panic the test suite asked for");
        }
    }
}
