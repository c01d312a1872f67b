//! The CUDA backend: the kernels of `kernels/ctc.cu` (the recurrence of [`crate::algorithm`],
//! same names), compiled by NVRTC at first use for each device's own architecture, launched on
//! the caller's stream in the caller's context.

pub(crate) mod driver;
pub(crate) mod launch;
pub(crate) mod layout;
mod memory;
mod module;
mod nvrtc;
mod params;

use crate::error::Error;
use crate::problem::{
    AlignOutputs, DeviceArray, In1, IntView2, Ints, LogProbs, Out1, Out3, Outputs, PathOut, Place,
    Problem, Targets, TargetsArg, Workspace,
};
use crate::types::{Call, DType};
use launch::{AlignOut, IntArg, IntSource, Pass, Request};
use params::Real;

/// The kernel source, compiled at run time.
pub(crate) const KERNEL_SOURCE: &str = include_str!("kernels/ctc.cu");

/// CUDA devices the library can use: 0 when there is no driver or no device.
pub(crate) fn device_count() -> i32 {
    driver::device_count()
}

/// Bytes of device workspace the computation `call` needs on this problem.
pub(crate) fn workspace_size(p: &Problem<'_>, call: Call) -> Result<usize, Error> {
    let staged = Staged::of(p);
    let pass = match call {
        Call::Forward => Pass::Forward,
        Call::Backward | Call::ForwardBackward => Pass::Gradient,
        Call::Align => Pass::Align,
    };
    let request = request(p, &staged, Outputs::default(), &Workspace::Library)?;
    launch::workspace_size(&request, pass)
}

/// Runs a validated problem whose log-probabilities are on a CUDA device.
pub(crate) fn run(
    p: &Problem<'_>,
    out: Outputs<'_>,
    workspace: Workspace<'_>,
) -> Result<(), Error> {
    let staged = Staged::of(p);
    launch::run(&request(p, &staged, out, &workspace)?)
}

/// Forced alignment of a validated problem whose log-probabilities are on a CUDA device.
pub(crate) fn align(
    p: &Problem<'_>,
    out: AlignOutputs<'_>,
    workspace: Workspace<'_>,
) -> Result<(), Error> {
    let staged = Staged::of(p);
    let mut request = request(p, &staged, Outputs::default(), &workspace)?;
    request.align = Some(align_out(out)?);
    launch::run(&request)
}

/// The device addresses, strides and element sizes of an alignment's outputs.
fn align_out(out: AlignOutputs<'_>) -> Result<AlignOut, Error> {
    let host = |what: &str| Error::Internal(format!("a host {what} reached the CUDA backend"));
    let PathOut::Device(path) = out.path else {
        return Err(host("path"));
    };
    let scores = match out.scores {
        None => None,
        Some(Out1::Device(a)) => Some((a.addr, a.strides[0] as i64, Real::of(a.dtype))),
        Some(Out1::Host(_)) => return Err(host("path_scores")),
    };
    let bytes = match path.dtype {
        DType::Int32 => 4,
        _ => 8,
    };
    Ok(AlignOut {
        path: (
            path.addr,
            [path.strides[0] as i64, path.strides[1] as i64],
            bytes,
        ),
        scores,
    })
}

/// Library-owned copies of host-resident targets and lengths, as int64 in (N, S) or (n,)
/// row-major order, for the launch to copy to the device (the caller's buffers are not read
/// after the call returns, even when the copy is deferred in stream order).
struct Staged {
    targets: Option<Vec<i64>>,
    input_lengths: Option<Vec<i64>>,
    target_lengths: Option<Vec<i64>>,
}

impl Staged {
    fn of(p: &Problem<'_>) -> Staged {
        let ints = |v: &Ints<'_>| match v {
            Ints::Host(view) => Some((0..view.len()).map(|i| view.get(i)).collect()),
            Ints::Device(_) => None,
        };
        let targets = match &p.targets {
            TargetsArg::Host(Targets::Concatenated(v)) => {
                Some((0..v.len()).map(|i| v.get(i)).collect())
            }
            TargetsArg::Host(Targets::Padded(v)) => Some(padded_copy(v)),
            TargetsArg::Device { .. } => None,
        };
        Staged {
            targets,
            input_lengths: ints(&p.input_lengths),
            target_lengths: ints(&p.target_lengths),
        }
    }
}

/// Padded targets (N, S) as int64 row-major, whole: the lengths that say which entries are
/// labels may be on the device (or unchecked on the host when the other lengths are on the
/// device), and the kernels validate what they read.
fn padded_copy(v: &IntView2<'_>) -> Vec<i64> {
    let (rows, cols) = v.dim();
    let mut out = Vec::with_capacity(rows * cols);
    for b in 0..rows {
        out.extend((0..cols).map(|j| v.get(b, j)));
    }
    out
}

/// The launch request of a problem (an alignment's outputs are added by [`align`]).
fn request<'s>(
    p: &Problem<'_>,
    staged: &'s Staged,
    out: Outputs<'_>,
    workspace: &Workspace<'_>,
) -> Result<Request<'s>, Error> {
    let Place::Cuda(device_index) = p.place else {
        return Err(Error::Internal(
            "a host problem reached the CUDA backend".into(),
        ));
    };
    let LogProbs::Device(lp) = p.log_probs else {
        return Err(Error::Internal(
            "host log_probs reached the CUDA backend".into(),
        ));
    };
    let host = |what: &str| Error::Internal(format!("a host {what} reached the CUDA backend"));
    let loss = match out.loss {
        None => None,
        Some(Out1::Device(a)) => Some((a.addr, a.strides[0] as i64, Real::of(a.dtype))),
        Some(Out1::Host(_)) => return Err(host("loss")),
    };
    let grad = match out.grad {
        None => None,
        Some(Out3::Device(a)) => Some((a.addr, a.strides.map(|s| s as i64), Real::of(a.dtype))),
        Some(Out3::Host(_)) => return Err(host("gradient")),
    };
    let grad_loss = match out.grad_loss {
        None => None,
        Some(In1::Device(a)) => Some((a.addr, a.strides[0] as i64, Real::of(a.dtype))),
        Some(In1::Host(_)) => return Err(host("grad_loss")),
    };
    let workspace = match *workspace {
        Workspace::Library => None,
        Workspace::Device { addr, bytes } => Some((addr, bytes)),
        Workspace::Host(_) => return Err(host("workspace")),
    };
    let (targets, padded, targets_size) = targets_arg(&p.targets, staged.targets.as_deref());
    Ok(Request {
        dtype: p.dtype,
        device_index,
        dims: p.dims(),
        log_probs: lp.addr,
        log_probs_strides: lp.strides.map(|s| s as i64),
        targets,
        padded,
        targets_size,
        input_lengths: ints_arg(&p.input_lengths, staged.input_lengths.as_deref()),
        target_lengths: ints_arg(&p.target_lengths, staged.target_lengths.as_deref()),
        checked: p.lengths,
        loss,
        grad,
        grad_loss,
        align: None,
        options: p.options,
        stream: p.cuda_stream as *mut std::ffi::c_void,
        workspace,
    })
}

/// A staged copy as a kernel argument: int64, unit inner stride.
fn staged_arg(values: &[i64], strides: [i64; 2]) -> IntArg<'_> {
    IntArg {
        source: IntSource::Host(bytemuck::cast_slice(values)),
        bytes: 8,
        strides,
    }
}

fn device_int_arg(a: DeviceArray, strides: [i64; 2]) -> IntArg<'static> {
    IntArg {
        source: IntSource::Device(a.addr),
        bytes: a.dtype.size() as i32,
        strides,
    }
}

/// A lengths operand as a kernel argument.
fn ints_arg<'s>(v: &Ints<'_>, staged: Option<&'s [i64]>) -> IntArg<'s> {
    match (v, staged) {
        (Ints::Device(a), _) => device_int_arg(*a, [a.strides[0] as i64, 0]),
        (Ints::Host(_), Some(values)) => staged_arg(values, [1, 0]),
        (Ints::Host(_), None) => staged_arg(&[], [1, 0]),
    }
}

/// The targets operand as a kernel argument: (argument, padded, S or the number of labels).
fn targets_arg<'s>(t: &TargetsArg<'_>, staged: Option<&'s [i64]>) -> (IntArg<'s>, bool, i64) {
    let values = staged.unwrap_or(&[]);
    match *t {
        TargetsArg::Host(Targets::Concatenated(v)) => {
            (staged_arg(values, [0, 1]), false, v.len() as i64)
        }
        TargetsArg::Host(Targets::Padded(v)) => {
            let cols = v.dim().1;
            (staged_arg(values, [cols as i64, 1]), true, cols as i64)
        }
        TargetsArg::Device {
            padded: true,
            array,
        } => {
            let strides = [array.strides[0] as i64, array.strides[1] as i64];
            (device_int_arg(array, strides), true, array.shape[1] as i64)
        }
        TargetsArg::Device {
            padded: false,
            array,
        } => {
            let strides = [0, array.strides[0] as i64];
            (device_int_arg(array, strides), false, array.shape[0] as i64)
        }
    }
}
