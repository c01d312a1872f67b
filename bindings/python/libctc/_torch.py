"""The torch drop-in: ``CTCLoss`` and ``functional.ctc_loss`` with torch's signatures and
semantics, backed by one fused libctc call per forward. Imported only when torch is."""

import ctypes

import torch

from . import _native as N

_DTYPES = {
    torch.float32: N.FLOAT32,
    torch.float64: N.FLOAT64,
    torch.float16: N.FLOAT16,
    torch.bfloat16: N.BFLOAT16,
    torch.int32: N.INT32,
    torch.int64: N.INT64,
}


def _tensor(t, name):
    dtype = _DTYPES.get(t.dtype)
    if dtype is None:
        raise N.CtcInvalidArgument(N.INVALID_ARGUMENT, "invalid argument", f"{name} has unsupported dtype {t.dtype}")
    if t.is_cuda:
        device, index = N.DEVICE_CUDA, t.device.index or 0
    elif t.device.type == "cpu":
        device, index = N.DEVICE_CPU, 0
    else:
        raise N.CtcUnsupported(N.UNSUPPORTED, "unsupported", f"{name} is on {t.device}; libctc takes CPU and CUDA tensors")
    return N.tensor(t.data_ptr(), dtype, t.shape, t.stride(), device, index)


def _lengths(x, device, name):
    if isinstance(x, torch.Tensor):
        if x.dtype not in (torch.int32, torch.int64):
            x = x.to(torch.int64)
        return x
    if isinstance(x, int):
        return torch.tensor(x, dtype=torch.int64)
    return torch.tensor(list(x), dtype=torch.int64)


def _integer(t):
    if t.dtype not in (torch.int32, torch.int64):
        t = t.to(torch.int64)
    return t


def _stream(log_probs):
    if log_probs.is_cuda:
        return ctypes.c_void_p(torch.cuda.current_stream(log_probs.device).cuda_stream)
    return None


def _loss_shape(log_probs, reduction):
    return (log_probs.shape[1],) if (log_probs.dim() == 3 and reduction == "none") else ()


class _CTCLossFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity):
        opts = N.options(blank, reduction, zero_infinity, 0, _stream(log_probs))
        lp = log_probs.detach()
        # Negative strides cannot happen in torch; any other stride is passed as it is.
        loss = torch.empty(_loss_shape(lp, reduction), dtype=lp.dtype, device=lp.device)
        tensors = [
            _tensor(lp, "log_probs"),
            _tensor(targets, "targets"),
            _tensor(input_lengths, "input_lengths"),
            _tensor(target_lengths, "target_lengths"),
        ]
        refs = [ctypes.byref(t) for t in tensors]
        t_loss = _tensor(loss, "loss")
        if ctx.needs_input_grad[0]:
            grad = torch.empty_like(lp, memory_format=torch.preserve_format)
            t_grad = _tensor(grad, "grad")
            N.check(
                N.lib().ctc_loss_forward_backward(*refs, None, ctypes.byref(opts), ctypes.byref(t_loss), ctypes.byref(t_grad))
            )
            ctx.save_for_backward(grad)
        else:
            N.check(N.lib().ctc_loss_forward(*refs, ctypes.byref(opts), ctypes.byref(t_loss)))
        ctx.per_sample = reduction == "none" and lp.dim() == 3
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        if ctx.per_sample:
            scale = grad_output.reshape(1, -1, 1)
        else:
            scale = grad_output
        return grad * scale, None, None, None, None, None, None


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """Drop-in for ``torch.nn.functional.ctc_loss`` (same signature, semantics and gradient),
    computed by libctc: CPU tensors today, CUDA tensors on ``torch.cuda.current_stream()`` once
    the CUDA backend lands. Lengths may be tensors, lists, tuples or ints."""
    if reduction not in N.REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    input_lengths = _lengths(input_lengths, log_probs.device, "input_lengths")
    target_lengths = _lengths(target_lengths, log_probs.device, "target_lengths")
    return _CTCLossFunction.apply(
        log_probs, _integer(targets), input_lengths, target_lengths, int(blank), reduction, bool(zero_infinity)
    )


class CTCLoss(torch.nn.Module):
    """Drop-in for ``torch.nn.CTCLoss(blank=0, reduction='mean', zero_infinity=False)``."""

    __constants__ = ["blank", "reduction", "zero_infinity"]

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> None:
        super().__init__()
        self.blank = blank
        self.reduction = reduction
        self.zero_infinity = zero_infinity

    def forward(self, log_probs: torch.Tensor, targets: torch.Tensor, input_lengths, target_lengths) -> torch.Tensor:
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction, self.zero_infinity)

    def extra_repr(self):
        return f"blank={self.blank}, reduction={self.reduction!r}, zero_infinity={self.zero_infinity}"
