//! The safe Rust API: ndarray views in, owned arrays (or caller views) out. It describes its
//! arguments as a [`Problem`] on the host and calls [`dispatch`], as the C ABI does.

use crate::dispatch;
use crate::error::Error;
use crate::problem::{
    AlignOutputs, In1, Inputs, Out1, Out3, Outputs, PathOut, PathViewMut, Problem, Workspace,
};
use crate::types::{Call, Element, Options};
use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayViewMut1, ArrayViewMut3};

/// Bytes of scratch memory that any computation on these inputs needs (the largest of the loss,
/// gradient and fused calls), alignment slack included. Validates the inputs like the compute
/// functions.
pub fn workspace_size<E: Element>(
    inputs: &Inputs<'_, E>,
    options: &Options,
) -> Result<usize, Error> {
    workspace_size_for(Call::ForwardBackward, inputs, options)
}

/// Bytes of scratch memory that the computation `call` needs on these inputs (the loss alone
/// needs two rows of the forward variable per sample, not the whole table), alignment slack
/// included. Validates the inputs like the compute functions.
pub fn workspace_size_for<E: Element>(
    call: Call,
    inputs: &Inputs<'_, E>,
    options: &Options,
) -> Result<usize, Error> {
    let p = Problem::host(inputs, options)?;
    dispatch::workspace_size(&p, call)
}

pub use crate::cpu::scratch::CACHED_WORKSPACE_LIMIT;

/// Frees the scratch memory the library keeps cached between calls (at most
/// [`CACHED_WORKSPACE_LIMIT`] bytes for the whole process) and lets CPU worker threads be started
/// again after a failed start; returns the bytes freed. Calls running meanwhile are unaffected.
pub fn release_cached_memory() -> usize {
    crate::cpu::pool::reset_after_failure();
    crate::cpu::scratch::release()
}

/// Computes the loss and/or the gradient into caller-provided views: the general entry point.
///
/// - `loss`: (N,) for [`crate::Reduction::None`], (1,) otherwise; `None` to skip the loss.
/// - `grad`: (T, N, C), any strides; `None` to skip the gradient.
/// - `grad_loss`: the upstream gradient, shaped like the loss; `None` means ones. Used only with
///   `grad`.
/// - `workspace`: scratch memory of at least [`workspace_size`] bytes, any alignment; `None` to
///   use the library's (cached between calls, at most [`CACHED_WORKSPACE_LIMIT`] bytes in all).
///
/// Every input is validated before anything is written: on error the outputs are untouched.
pub fn ctc_loss_into<E: Element>(
    inputs: &Inputs<'_, E>,
    options: &Options,
    grad_loss: Option<ArrayView1<'_, E>>,
    loss: Option<ArrayViewMut1<'_, E>>,
    grad: Option<ArrayViewMut3<'_, E>>,
    workspace: Option<&mut [u8]>,
) -> Result<(), Error> {
    let p = Problem::host(inputs, options)?;
    let out = Outputs {
        loss: loss.map(|l| Out1::Host(E::floats1_mut(l))),
        grad: grad.map(|g| Out3::Host(E::floats3_mut(g))),
        grad_loss: grad_loss.map(|g| In1::Host(E::floats1(g))),
    };
    let workspace = workspace.map_or(Workspace::Library, Workspace::Host);
    dispatch::run(&p, out, workspace)
}

/// The CTC loss, as `torch.nn.functional.ctc_loss`: (N,) per-sample losses for
/// [`crate::Reduction::None`], one element for `Mean` and `Sum`.
pub fn ctc_loss<E: Element>(inputs: &Inputs<'_, E>, options: &Options) -> Result<Array1<E>, Error> {
    let p = Problem::host(inputs, options)?;
    let mut loss = Array1::from_elem(p.loss_len(), E::from_acc(num_traits::zero()));
    ctc_loss_into(inputs, options, None, Some(loss.view_mut()), None, None)?;
    Ok(loss)
}

/// The gradient of `sum(loss * grad_loss)` with respect to log_probs (torch's convention, see
/// [`crate::algorithm`]); `grad_loss` shaped like the loss, `None` meaning ones.
pub fn ctc_loss_grad<E: Element>(
    inputs: &Inputs<'_, E>,
    options: &Options,
    grad_loss: Option<ArrayView1<'_, E>>,
) -> Result<Array3<E>, Error> {
    let mut grad = Array3::from_elem(inputs.log_probs.dim(), E::from_acc(num_traits::zero()));
    ctc_loss_into(
        inputs,
        options,
        grad_loss,
        None,
        Some(grad.view_mut()),
        None,
    )?;
    Ok(grad)
}

/// The loss and its gradient in one pass: what a training step calls.
pub fn ctc_loss_and_grad<E: Element>(
    inputs: &Inputs<'_, E>,
    options: &Options,
    grad_loss: Option<ArrayView1<'_, E>>,
) -> Result<(Array1<E>, Array3<E>), Error> {
    let p = Problem::host(inputs, options)?;
    let zero = E::from_acc(num_traits::zero());
    let mut loss = Array1::from_elem(p.loss_len(), zero);
    let mut grad = Array3::from_elem(inputs.log_probs.dim(), zero);
    ctc_loss_into(
        inputs,
        options,
        grad_loss,
        Some(loss.view_mut()),
        Some(grad.view_mut()),
        None,
    )?;
    Ok((loss, grad))
}

/// The most probable (Viterbi) CTC alignment of each sample (forced alignment) into caller views:
/// `path` (T, N) gets the class each frame emits (-1 past the sample's input length, and at every
/// frame of a sample with no alignment), `scores` (N,) the best alignment's total log-score (-inf
/// without one). Ties follow the rule of [`crate::algorithm`]; memory grows with
/// N (L + C) sqrt(T) ([`workspace_size_for`] with [`Call::Align`]). `workspace` as for
/// [`ctc_loss_into`]; `options.reduction` and `options.zero_infinity` are ignored.
pub fn ctc_align_into<'o, E: Element>(
    inputs: &Inputs<'_, E>,
    options: &Options,
    path: PathViewMut<'o>,
    scores: Option<ArrayViewMut1<'o, E>>,
    workspace: Option<&mut [u8]>,
) -> Result<(), Error> {
    let p = Problem::host(inputs, options)?;
    let out = AlignOutputs {
        path: PathOut::Host(path),
        scores: scores.map(|s| Out1::Host(E::floats1_mut(s))),
    };
    let workspace = workspace.map_or(Workspace::Library, Workspace::Host);
    dispatch::align(&p, out, workspace)
}

/// [`ctc_align_into`] into new arrays: the paths (T, N) and the scores (N,).
pub fn ctc_align<E: Element>(
    inputs: &Inputs<'_, E>,
    options: &Options,
) -> Result<(Array2<i64>, Array1<E>), Error> {
    let (t, n, _) = inputs.log_probs.dim();
    let mut path = Array2::from_elem((t, n), -1i64);
    let mut scores = Array1::from_elem(n, E::from_acc(num_traits::zero()));
    ctc_align_into(
        inputs,
        options,
        PathViewMut::I64(path.view_mut()),
        Some(scores.view_mut()),
        None,
    )?;
    Ok((path, scores))
}
