"""The torch drop-in: ``CTCLoss`` and ``functional.ctc_loss`` with torch's signatures, semantics
and errors, backed by libctc. Imported only when torch is."""

import ctypes

import torch
from torch import Tensor

from . import _args
from . import _native as N

_DTYPES = {
    torch.float32: N.DType.FLOAT32,
    torch.float64: N.DType.FLOAT64,
    torch.float16: N.DType.FLOAT16,
    torch.bfloat16: N.DType.BFLOAT16,
    torch.int32: N.DType.INT32,
    torch.int64: N.DType.INT64,
}
_INTEGERS = (torch.int32, torch.int64)
# torch's own message, so that code matching on it keeps working.
_NO_SECOND_DERIVATIVE = "derivative for aten::_ctc_loss_backward is not implemented"
_NO_TRACE = (
    "torch.jit.trace cannot record libctc's ctc_loss (a call into a C library: a trace would freeze "
    "its options and whether it computes a gradient); use torch.jit.script or torch.compile"
)


def _tensor(t, name):
    dtype = _DTYPES.get(t.dtype)
    if dtype is None:
        raise N.invalid(f"{name} has unsupported dtype {t.dtype}")
    if t.is_cuda:
        device, index = N.Device.CUDA, t.device.index or 0
    elif t.device.type == "cpu":
        device, index = N.Device.CPU, 0
    else:
        raise N.error(N.Status.UNSUPPORTED, f"{name} is on {t.device}; libctc takes CPU and CUDA tensors")
    return N.tensor(t.data_ptr(), dtype, t.shape, t.stride(), device, index)


def _lengths(x, name, log_probs_shape):
    """Lengths as torch takes them: an integral tensor of N elements (any shape, any integer
    dtype) or a list or tuple of N ints. Floats and bools are refused, not truncated."""
    if isinstance(x, Tensor):
        if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
            raise N.invalid(f"{name} must be integral, got dtype {x.dtype}", N.CtcTypeError)
        if x.dtype not in _INTEGERS:
            x = x.to(torch.int64)
    elif isinstance(x, (list, tuple)):
        x = torch.tensor([_args.integer(v, f"{name}[{i}]") for i, v in enumerate(x)], dtype=torch.int64)
    else:
        raise N.invalid(
            f"{name} must be a tensor or a tuple or list of ints (as torch takes them), got {type(x).__name__}",
            N.CtcTypeError,
        )
    return x.reshape(_args.lengths_shape(name, x.numel(), log_probs_shape))


def _stream(log_probs):
    if log_probs.is_cuda:
        return ctypes.c_void_p(torch.cuda.current_stream(log_probs.device).cuda_stream)
    return None


class _GradientOfGradient(torch.autograd.Function):
    """Passes the CTC gradient through; differentiating it again raises torch's error. Like
    aten::_ctc_loss_backward, libctc computes no second derivative, and a gradient taken as a
    constant would give a silently wrong one (e.g. for a gradient penalty)."""

    @staticmethod
    def forward(ctx, grad, log_probs):
        return grad

    @staticmethod
    def backward(ctx, *_):
        raise RuntimeError(_NO_SECOND_DERIVATIVE)


class _CTCLossFunction(torch.autograd.Function):
    """One libctc call in forward: loss and gradient fused when a gradient will be needed
    (the gradient is kept for backward), the loss alone otherwise."""

    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, opts, per_sample, with_grad):
        lp = log_probs.detach()
        loss = torch.empty((lp.shape[1],) if per_sample else (), dtype=lp.dtype, device=lp.device)
        names = ("log_probs", "targets", "input_lengths", "target_lengths")
        inputs = [ctypes.byref(_tensor(t, n)) for t, n in zip((lp, targets, input_lengths, target_lengths), names)]
        t_loss = ctypes.byref(_tensor(loss, "loss"))
        if with_grad:
            grad = torch.empty_like(lp, memory_format=torch.preserve_format)
            t_grad = ctypes.byref(_tensor(grad, "grad"))
            N.check(N.lib().ctc_loss_forward_backward(*inputs, None, ctypes.byref(opts), t_loss, t_grad))
            ctx.save_for_backward(grad, log_probs)
        else:
            N.check(N.lib().ctc_loss_forward(*inputs, ctypes.byref(opts), t_loss))
        ctx.per_sample = per_sample
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad, log_probs = ctx.saved_tensors
        scale = grad_loss.reshape(1, -1, 1) if ctx.per_sample else grad_loss
        result = grad * scale
        if torch.is_grad_enabled():  # create_graph=True: a graph is being built through this
            result = _GradientOfGradient.apply(result, log_probs)
        return result, None, None, None, None, None, None


def _inputs(log_probs, targets, input_lengths, target_lengths):
    """The four tensors for the library, checked and converted as torch does. An unbatched
    (T, C) input becomes a batch of one, as torch computes it: its (S,) targets are then the
    concatenated form, which holds exactly target_length labels."""
    lp = log_probs if log_probs.dim() == 3 else log_probs.unsqueeze(1)
    _args.not_empty(lp.shape)
    if not lp.is_floating_point():
        raise N.error(N.Status.UNSUPPORTED, f"ctc_loss is not implemented for log_probs of dtype {lp.dtype}")
    if not isinstance(targets, Tensor):
        raise N.invalid(f"targets must be a tensor, got {type(targets).__name__}", N.CtcTypeError)
    if isinstance(input_lengths, Tensor) != isinstance(target_lengths, Tensor):
        raise N.invalid("input_lengths and target_lengths must both be tensors or both be lists/tuples", N.CtcTypeError)
    il = _lengths(input_lengths, "input_lengths", lp.shape)
    tl = _lengths(target_lengths, "target_lengths", lp.shape)
    tg = targets if targets.dtype in _INTEGERS else targets.to(torch.int64)  # torch takes any dtype
    return lp, tg, il, tl


# Compilers keep out of the Python and ctypes code below: torch.jit.script compiles a call of
# it into a call back to Python, torch.compile runs it eagerly (a graph break).
@torch.jit.ignore
@torch.compiler.disable
def _ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int,
    reduction: str,
    zero_infinity: bool,
) -> Tensor:
    if torch.jit.is_tracing():
        raise N.error(N.Status.UNSUPPORTED, _NO_TRACE)
    opts = _args.options(blank, reduction, zero_infinity, 0, _stream(log_probs))
    lp, tg, il, tl = _inputs(log_probs, targets, input_lengths, target_lengths)
    per_sample = reduction == "none"
    with_grad = torch.is_grad_enabled() and log_probs.requires_grad
    loss = _CTCLossFunction.apply(lp, tg, il, tl, opts, per_sample, with_grad)
    return loss.squeeze(0) if per_sample and log_probs.dim() == 2 else loss


# Scriptable itself (TorchScript's calls back to Python cannot leave out defaulted arguments).
def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Drop-in for ``torch.nn.functional.ctc_loss``: same signature, values, gradient and errors
    (see the README for the deliberate differences: labels are validated, the blank is refused as
    a label). Lengths are tensors or lists/tuples of ints, as torch takes them. CPU tensors; CUDA
    tensors on ``torch.cuda.current_stream()``. Under ``torch.no_grad()`` or for a log_probs that
    needs no gradient, only the loss is computed. ``torch.jit.script`` compiles a caller into a
    call back to Python (the library is no TorchScript operator: such a module cannot be saved);
    ``torch.compile`` runs it eagerly; ``torch.jit.trace`` is refused."""
    return _ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)


class CTCLoss(torch.nn.CTCLoss):
    """Drop-in for ``torch.nn.CTCLoss(blank=0, reduction='mean', zero_infinity=False)``: a
    subclass of it whose forward calls libctc (``isinstance(m, torch.nn.CTCLoss)`` holds)."""

    def forward(self, log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor) -> Tensor:
        return ctc_loss(
            log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction, self.zero_infinity
        )
