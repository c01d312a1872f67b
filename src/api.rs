//! The safe Rust API: ndarray views in, owned arrays (or caller views) out. The C ABI in
//! [`crate::ffi`] is a thin wrapper around [`ctc_loss_into`] and [`workspace_size`].

use crate::cpu::{self, Outputs};
use crate::error::{invalid, Error};
use crate::problem::{Inputs, Problem};
use crate::types::{Element, Options};
use crate::workspace::{carve, Dims, Layout, Pass};
use ndarray::{Array1, Array3, ArrayView1, ArrayViewMut1, ArrayViewMut3};

fn dims<E: Element>(p: &Problem<'_, '_, E>) -> Dims {
    Dims {
        batch: p.batch,
        classes: p.classes,
        max_input_length: p.max_input_length,
        max_target_length: p.max_target_length,
    }
}

fn layout<E: Element>(p: &Problem<'_, '_, E>, pass: Pass) -> Result<Layout, Error> {
    Layout::new(dims(p), std::mem::size_of::<E::Acc>(), pass)
}

/// Bytes of scratch memory that any computation on these inputs needs (the largest of the loss,
/// gradient and fused calls), alignment slack included. Validates the inputs like the compute
/// functions.
pub fn workspace_size<E: Element>(
    inputs: &Inputs<'_, E>,
    options: &Options,
) -> Result<usize, Error> {
    let p = Problem::new(inputs, options)?;
    Ok(layout(&p, Pass::Gradient)?.bytes)
}

/// The most scratch memory a calling thread keeps between calls; larger workspaces are freed
/// when the call returns.
pub const CACHED_WORKSPACE_LIMIT: usize = 256 << 20;

thread_local! {
    /// Scratch memory of this calling thread, reused by its next call (no allocation per call in
    /// steady state).
    static WORKSPACE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Allocates `bytes` of scratch memory into `v`, reporting failure instead of aborting.
fn grow(v: &mut Vec<u8>, bytes: usize) -> Result<(), Error> {
    if v.len() < bytes {
        *v = Vec::new();
        v.try_reserve_exact(bytes).map_err(|_| {
            Error::OutOfMemory(format!("could not allocate a workspace of {bytes} bytes"))
        })?;
        v.resize(bytes, 0);
    }
    Ok(())
}

/// Runs `f` on `bytes` of library-owned scratch memory: the calling thread's cached buffer.
fn with_library_workspace<R>(
    bytes: usize,
    f: impl FnOnce(&mut [u8]) -> Result<R, Error>,
) -> Result<R, Error> {
    WORKSPACE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cached) => {
            grow(&mut cached, bytes)?;
            let result = f(&mut cached[..bytes]);
            if cached.len() > CACHED_WORKSPACE_LIMIT {
                *cached = Vec::new();
            }
            result
        }
        // Not reachable (the library never calls itself), but never worth a panic.
        Err(_) => {
            let mut own = Vec::new();
            grow(&mut own, bytes)?;
            f(&mut own[..bytes])
        }
    })
}

/// Computes the loss and/or the gradient into caller-provided views: the general entry point.
///
/// - `loss`: (N,) for [`crate::Reduction::None`], (1,) otherwise; `None` to skip the loss.
/// - `grad`: (T, N, C), any strides; `None` to skip the gradient.
/// - `grad_loss`: the upstream gradient, shaped like the loss; `None` means ones. Used only with
///   `grad`.
/// - `workspace`: scratch memory of at least [`workspace_size`] bytes, any alignment; `None` to
///   use the library's: a buffer per calling thread, kept for its next call when it is at most
///   [`CACHED_WORKSPACE_LIMIT`] bytes.
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
    let p = Problem::new(inputs, options)?;
    if let Some(l) = &loss {
        p.check_loss_shape("loss", l.len())?;
    }
    if let Some(g) = &grad {
        p.check_grad_shape(g.dim())?;
    }
    if let Some(g) = &grad_loss {
        p.check_loss_shape("grad_loss", g.len())?;
    }
    if loss.is_none() && grad.is_none() {
        return Err(invalid!("neither loss nor grad_log_probs was asked for"));
    }
    let pass = if grad.is_some() {
        Pass::Gradient
    } else {
        Pass::Forward
    };
    let layout = layout(&p, pass)?;
    let outputs = Outputs {
        loss,
        grad,
        grad_loss,
    };
    match workspace {
        Some(w) => cpu::run(&p, &layout, carve(w, &layout)?, outputs),
        None => with_library_workspace(layout.bytes, |w| {
            cpu::run(&p, &layout, carve(w, &layout)?, outputs)
        }),
    }
}

/// The CTC loss, as `torch.nn.functional.ctc_loss`: (N,) per-sample losses for
/// [`crate::Reduction::None`], one element for `Mean` and `Sum`.
pub fn ctc_loss<E: Element>(inputs: &Inputs<'_, E>, options: &Options) -> Result<Array1<E>, Error> {
    let p = Problem::new(inputs, options)?;
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
    let p = Problem::new(inputs, options)?;
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
