"""The torch drop-ins: ``CTCLoss`` and ``functional.ctc_loss`` with torch's signatures, semantics
and errors; ``functional.forced_align`` and ``merge_tokens`` with torchaudio's. Backed by libctc,
imported only when torch is."""

import ctypes
import sys
from dataclasses import dataclass
from typing import List, Optional, Tuple

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


# Host gradients of at least this many bytes are asked for in huge pages (as numpy does for its
# arrays): a fresh (T, N, C) buffer otherwise costs a page fault per 4 KiB on first write, more
# than the loss itself on large vocabularies (docs/benchmarks.md, "Logits input").
_HUGE_PAGE_BYTES = 4 << 20
_MADV_HUGEPAGE = 14


def _madvise():
    """libc's madvise on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        f = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    f.argtypes, f.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return f


_MADVISE = _madvise()


def _gradient_like(lp):
    """An uninitialized tensor like `lp` for the gradient; on the host, a large one's whole
    pages are advised into transparent huge pages before anything touches them (a hint: the
    kernel may decline, nothing else changes)."""
    grad = torch.empty_like(lp, memory_format=torch.preserve_format)
    size = grad.untyped_storage().nbytes()
    if _MADVISE is not None and not grad.is_cuda and size >= _HUGE_PAGE_BYTES:
        page = 4096
        start = (grad.untyped_storage().data_ptr() + page - 1) & ~(page - 1)
        end = (grad.untyped_storage().data_ptr() + size) & ~(page - 1)
        if end > start:
            _MADVISE(start, end - start, _MADV_HUGEPAGE)
    return grad


def _loss_dtype(lp):
    """float32 for float16 and bfloat16 inputs (a sum of log-probabilities overflows float16 past
    65504, and bfloat16 keeps 8 bits); log_probs' own dtype otherwise."""
    return torch.float32 if lp.dtype in (torch.float16, torch.bfloat16) else lp.dtype


def _device_workspace(lp, call, inputs, opts):
    """For CUDA tensors, the call's workspace from torch's caching allocator (set in `opts`), so
    that libctc allocates no device memory of its own and the memory returns to torch's pool
    for reuse in stream order; None on the CPU (the library's bounded host cache serves)."""
    if not lp.is_cuda:
        return None
    size = ctypes.c_size_t()
    N.check(N.lib().ctc_workspace_size_for_call(call, *inputs, ctypes.byref(opts), ctypes.byref(size)))
    workspace = torch.empty(max(size.value, 1), dtype=torch.uint8, device=lp.device)
    opts.workspace, opts.workspace_bytes = workspace.data_ptr(), size.value
    return workspace


class _CTCLossFunction(torch.autograd.Function):
    """One libctc call in forward: loss and gradient fused when a gradient will be needed
    (the gradient is kept for backward), the loss alone otherwise. The first backward hands that
    gradient on (scaled by grad_loss; itself, with no pass over it, when grad_loss is one, as
    for ``loss.backward()``); a later one (``retain_graph=True``) computes it again with
    ``ctc_loss_backward``, since the first one's tensor may be the leaf's ``.grad`` by then."""

    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, opts, per_sample, with_grad):
        lp = log_probs.detach()
        loss = torch.empty((lp.shape[1],) if per_sample else (), dtype=_loss_dtype(lp), device=lp.device)
        names = ("log_probs", "targets", "input_lengths", "target_lengths")
        inputs = [ctypes.byref(_tensor(t, n)) for t, n in zip((lp, targets, input_lengths, target_lengths), names)]
        t_loss = ctypes.byref(_tensor(loss, "loss"))
        call = N.Call.FORWARD_BACKWARD if with_grad else N.Call.FORWARD
        workspace = _device_workspace(lp, call, inputs, opts)  # kept alive through the call
        if with_grad:
            grad = _gradient_like(lp)
            t_grad = ctypes.byref(_tensor(grad, "grad"))
            N.check(N.lib().ctc_loss_forward_backward(*inputs, None, ctypes.byref(opts), t_loss, t_grad))
            # An attribute, not a saved tensor: the only reference, so that autograd can take it
            # as the leaf's .grad without a copy.
            ctx.grad = grad
            ctx.save_for_backward(log_probs, targets, input_lengths, target_lengths)
        else:
            N.check(N.lib().ctc_loss_forward(*inputs, ctypes.byref(opts), t_loss))
        del workspace  # torch's allocator reuses it in stream order after the call's kernels
        ctx.per_sample, ctx.opts = per_sample, opts
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        log_probs = ctx.saved_tensors[0]
        grad = getattr(ctx, "grad", None)
        if grad is None:
            result = _CTCLossFunction._again(ctx, grad_loss)
        else:
            del ctx.grad
            unit = not ctx.per_sample and not grad.is_cuda and float(grad_loss.detach()) == 1.0
            if not unit:  # (reading a CUDA scale would wait for the device)
                scale = grad_loss.reshape(1, -1, 1) if ctx.per_sample else grad_loss
                grad = grad * scale.to(grad.dtype)
            result = grad
        if torch.is_grad_enabled():  # create_graph=True: a graph is being built through this
            result = _GradientOfGradient.apply(result, log_probs)
        return result, None, None, None, None, None, None

    @staticmethod
    def _again(ctx, grad_loss):
        """The gradient of a later backward: ctc_loss_backward with grad_loss."""
        tensors = [t.detach() for t in ctx.saved_tensors]
        lp = tensors[0]
        names = ("log_probs", "targets", "input_lengths", "target_lengths")
        inputs = [ctypes.byref(_tensor(t, n)) for t, n in zip(tensors, names)]
        g = grad_loss.detach().to(_loss_dtype(lp)).contiguous()
        grad = _gradient_like(lp)
        opts = ctx.opts
        workspace = _device_workspace(lp, N.Call.BACKWARD, inputs, opts)
        t_g = ctypes.byref(_tensor(g, "grad_loss"))
        N.check(N.lib().ctc_loss_backward(*inputs, t_g, ctypes.byref(opts), ctypes.byref(_tensor(grad, "grad"))))
        del workspace
        return grad


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
    exact_gradient: bool,
    from_logits: bool,
) -> Tensor:
    if torch.jit.is_tracing():
        raise N.error(N.Status.UNSUPPORTED, _NO_TRACE)
    opts = _args.options(blank, reduction, zero_infinity, 0, _stream(log_probs), exact_gradient, from_logits)
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
    exact_gradient: bool = False,
    from_logits: bool = False,
) -> Tensor:
    """Drop-in for ``torch.nn.functional.ctc_loss``: same signature, values, gradient and errors
    (see the README for the deliberate differences: labels are validated, the blank is refused as
    a label). Lengths are tensors or lists/tuples of ints, as torch takes them. CPU tensors; CUDA
    tensors on ``torch.cuda.current_stream()``. Under ``torch.no_grad()`` or for a log_probs that
    needs no gradient, only the loss is computed. ``torch.jit.script`` compiles a caller into a
    call back to Python (the library is no TorchScript operator: such a module cannot be saved);
    ``torch.compile`` runs it eagerly; ``torch.jit.trace`` is refused.

    ``exact_gradient=True`` (not in torch): the gradient is the true derivative of the loss with
    respect to ``log_probs`` taken as arbitrary log-scores (``-posterior * grad``), right also
    when the scores are not log_softmax outputs (priors, penalties, temperature) and finite at
    masked (-inf) entries; torch's default ``exp(log_probs) - posterior`` is right only through a
    log_softmax.

    ``from_logits=True`` (not in torch): ``log_probs`` holds unnormalized scores (logits) and the
    library applies ``log_softmax`` over the classes itself, without storing it: the loss is that
    of ``log_softmax(logits)`` and the gradient is taken with respect to the logits (as
    ``log_softmax`` then ``ctc_loss`` would give, in one pass and without the (T, N, C)
    intermediate; finite at -inf logits). CPU and CUDA tensors.

    float16 and bfloat16 ``log_probs`` (not in torch, whose CTC refuses them): read as they are,
    accumulated in float32; the returned loss is float32 (a half loss overflows past 65504), the
    gradient has log_probs' dtype. CPU and CUDA tensors."""
    return _ctc_loss(
        log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, exact_gradient, from_logits
    )


class CTCLoss(torch.nn.CTCLoss):
    """Drop-in for ``torch.nn.CTCLoss(blank=0, reduction='mean', zero_infinity=False)``: a
    subclass of it whose forward calls libctc (``isinstance(m, torch.nn.CTCLoss)`` holds).
    ``exact_gradient`` and ``from_logits`` (keyword only, default False) as for
    :func:`ctc_loss`."""

    exact_gradient: bool
    from_logits: bool

    def __init__(
        self,
        blank: int = 0,
        reduction: str = "mean",
        zero_infinity: bool = False,
        *,
        exact_gradient=False,
        from_logits=False,
    ):
        super().__init__(blank=blank, reduction=reduction, zero_infinity=zero_infinity)
        self.exact_gradient = _args.flag(exact_gradient, "exact_gradient")
        self.from_logits = _args.flag(from_logits, "from_logits")

    def forward(self, log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor) -> Tensor:
        return ctc_loss(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            self.blank,
            self.reduction,
            self.zero_infinity,
            self.exact_gradient,
            self.from_logits,
        )


# Forced alignment: torchaudio.functional.forced_align and merge_tokens, any batch size.

_ALIGN_FLOATS = (torch.float32, torch.float64, torch.float16)


def _align_structure(log_probs, targets):
    """torchaudio's checks of the two tensors' types, dimensions and dtypes (its texts first,
    then what was found). float16 passes, as torchaudio takes it (the library aligns it in float32)."""
    for t, name in ((log_probs, "log_probs"), (targets, "targets")):
        if not isinstance(t, Tensor):
            raise N.invalid(f"{name} must be a tensor, got {type(t).__name__}", N.CtcTypeError)
    if log_probs.dim() != 3:
        raise N.invalid(
            "log_probs must be 3-D (batch_size, input length, num classes), "
            f"got shape {tuple(log_probs.shape)}"
        )
    if log_probs.dtype not in _ALIGN_FLOATS:
        raise N.invalid(f"log_probs must be float64, float32 or float16 (half) type, got {log_probs.dtype}")
    _args.not_empty(log_probs.shape)
    if targets.dim() != 2:
        raise N.invalid(f"targets must be 2-D (batch_size, target length), got shape {tuple(targets.shape)}")
    if targets.dtype not in _INTEGERS:
        raise N.invalid(f"targets must be int32 or int64 type, got {targets.dtype}", N.CtcTypeError)
    if targets.shape[0] != log_probs.shape[0]:
        raise N.invalid(
            f"targets has batch size {targets.shape[0]} but log_probs has batch size {log_probs.shape[0]}"
        )


def _align_lengths(x, name, batch, full, device):
    """torchaudio's lengths: None for `full` in every sample, else a 1-D integral tensor of
    `batch` non-negative values whose largest equals `full` (T, or L for the targets) for a batch
    of one, as torchaudio requires, and is at most `full` for a larger batch (which may be padded
    past its longest sample)."""
    if x is None:
        return torch.full((batch,), full, dtype=torch.int64, device=device)
    if not isinstance(x, Tensor):
        raise N.invalid(f"{name} must be a tensor or None, got {type(x).__name__}", N.CtcTypeError)
    if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
        raise N.invalid(f"{name} must be integral, got dtype {x.dtype}", N.CtcTypeError)
    if x.dim() != 1 or x.shape[0] != batch:
        raise N.invalid(f"{name} must be 1-D (batch_size,) with batch_size = {batch}, got shape {tuple(x.shape)}")
    x = x if x.dtype in _INTEGERS else x.to(torch.int64)
    if (x < 0).any():
        n = int(torch.nonzero(x < 0)[0, 0])
        raise N.invalid(f"{name}[{n}] = {int(x[n])} must be >= 0")
    if int(x.max()) > full or (batch == 1 and int(x.max()) != full):
        what = ("input", "log_probs has T") if name == "input_lengths" else ("target", "targets has L")
        raise N.invalid(f"{what[0]} length mismatch: max({name}) = {int(x.max())} but {what[1]} = {full}")
    return x


def _align_labels(targets, target_lengths, input_lengths, blank, num_classes):
    """torchaudio's checks of the labels, on the first target_lengths[n] of each row only
    (padding may hold anything, the blank included): none is the blank, each is below C, and
    a batch of one has frames enough for its labels and the blanks its repeats need (in a larger
    batch such a sample has no alignment: path -1, score -inf, the others aligned)."""
    # Lengths may live on another device than the targets (CPU lengths of CUDA targets).
    target_lengths, input_lengths = target_lengths.to(targets.device), input_lengths.to(targets.device)
    used = torch.arange(targets.shape[1], device=targets.device) < target_lengths[:, None]
    for bad, text in (
        (used & (targets == blank), "targets Tensor shouldn't contain blank index"),
        (used & (targets >= num_classes), "targets values must be less than the CTC dimension"),
    ):
        if bad.any():
            n, j = (int(i) for i in torch.nonzero(bad)[0])
            found = f"targets[{n}][{j}] = {int(targets[n, j])} (blank = {blank}, C = {num_classes})"
            raise N.invalid(f"{text}. Found {found}")
    repeats = (used[:, 1:] & (targets[:, 1:] == targets[:, :-1])).sum(1)
    if targets.shape[0] == 1 and bool(input_lengths[0] < target_lengths[0] + repeats[0]):
        raise N.invalid(
            f"targets length is too long for CTC. Found log_probs length: {int(input_lengths[0])}, targets "
            f"length: {int(target_lengths[0])}, and number of repeats: {int(repeats[0])}"
        )


def _align_call(log_probs, targets, input_lengths, target_lengths, blank):
    """One ctc_align call on batch-first tensors, read and written in place: the library takes
    (T, B, ...) views with swapped strides. Returns the paths (B, T) in targets' dtype and the
    path scores (B,)."""
    lp = log_probs.detach()
    B, T = lp.shape[0], lp.shape[1]
    paths = torch.empty((B, T), dtype=targets.dtype, device=lp.device)
    path_scores = torch.empty((B,), dtype=lp.dtype, device=lp.device)
    tensors = (
        (lp.transpose(0, 1), "log_probs"),
        (targets, "targets"),
        (input_lengths, "input_lengths"),
        (target_lengths, "target_lengths"),
        (paths.transpose(0, 1), "paths"),
        (path_scores, "path_scores"),
    )
    t = [ctypes.byref(_tensor(x, name)) for x, name in tensors]
    opts = _args.options(blank, "mean", False, 0, _stream(lp))
    N.check(N.lib().ctc_align(*t[:4], ctypes.byref(opts), *t[4:]))
    return paths, path_scores


def _frame_scores(log_probs, paths, path_scores, input_lengths):
    """log_probs[b, t, paths[b, t]] for each aligned frame (torchaudio's scores); 0 past a
    sample's input length; -inf at every frame of a sample that has no alignment."""
    chosen = log_probs.gather(2, paths.clamp(min=0).to(torch.int64).unsqueeze(-1)).squeeze(-1)
    scores = torch.where(paths >= 0, chosen, torch.zeros((), dtype=chosen.dtype, device=chosen.device))
    inside = torch.arange(paths.shape[1], device=paths.device) < input_lengths.to(paths.device)[:, None]
    lost = inside & torch.isneginf(path_scores)[:, None]
    return scores.masked_fill(lost, float("-inf"))


@torch.jit.ignore
@torch.compiler.disable
def _forced_align(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Optional[Tensor],
    target_lengths: Optional[Tensor],
    blank: int,
) -> Tuple[Tensor, Tensor]:
    _align_structure(log_probs, targets)
    B, T, C = log_probs.shape
    blank = _args.integer(blank, "blank")
    if not 0 <= blank < C:
        raise N.invalid(f"blank must be within [0, num classes), got blank = {blank} with {C} classes")
    il = _align_lengths(input_lengths, "input_lengths", B, T, log_probs.device)
    tl = _align_lengths(target_lengths, "target_lengths", B, targets.shape[1], targets.device)
    _align_labels(targets, tl, il, blank, C)
    paths, path_scores = _align_call(log_probs, targets, il, tl, blank)
    return paths, _frame_scores(log_probs, paths, path_scores, il)


def forced_align(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Optional[Tensor] = None,
    target_lengths: Optional[Tensor] = None,
    blank: int = 0,
) -> Tuple[Tensor, Tensor]:
    """Drop-in for ``torchaudio.functional.forced_align``, for any batch size.

    Args:
        log_probs: (B, T, C) float32, float64 or float16 (accumulated in float32)
            log-probabilities, any strides (read in place). CPU or CUDA: a CUDA tensor is
            aligned on its device, on ``torch.cuda.current_stream()``, with the CPU's paths.
        targets: (B, L) int32 or int64 labels, padded: only the first target_lengths[b] of row b
            are read, so the padding may hold anything.
        input_lengths: (B,) integral tensor, each <= T and the largest equal to T; None: all T.
        target_lengths: (B,) integral tensor, the largest equal to L; None: all L.
        blank: the blank class, in [0, C).

    Returns:
        ``(paths, scores)``, both (B, T): ``paths`` in targets' dtype (as torchaudio), the class
        emitted at each frame by the best alignment; ``scores`` in log_probs' dtype, the
        log-probability of that class at that frame (``log_probs[b, t, paths[b, t]]``,
        torchaudio's meaning). Frames past input_lengths[b] have path -1 and score 0. A sample
        whose every alignment has probability 0 gets path -1 and score -inf at its frames.

    Raises:
        CtcInvalidArgument (a ValueError and a RuntimeError) where torchaudio raises for a batch
        of one, with its text followed by the value found: log_probs not 3-D, targets not 2-D,
        a blank in the targets, a label >= C, blank outside [0, C), max(input_lengths) != T
        ("input length mismatch"), max(target_lengths) != L, fewer frames than labels plus
        repeats ("targets length is too long for CTC"); also for negative lengths or batch sizes
        that differ. A larger batch may be padded past its longest sample (lengths at most T and
        L), and a sample of it without an alignment gets path -1 and score -inf. CtcTypeError for targets or lengths of a non-integral dtype.
    """
    return _forced_align(log_probs, targets, input_lengths, target_lengths, blank)


@dataclass
class TokenSpan:
    """A token with its frames and score, as torchaudio's ``TokenSpan``: frames
    ``start <= t < end``; ``score`` the mean of the frame scores over the span."""

    token: int
    start: int
    end: int
    score: float

    def __len__(self) -> int:
        """The span's number of frames."""
        return self.end - self.start


def merge_tokens(tokens: Tensor, scores: Tensor, blank: int = 0) -> List[TokenSpan]:
    """Drop-in for ``torchaudio.functional.merge_tokens``: the runs of equal tokens of one
    alignment, blanks removed.

    Args:
        tokens: (T,) integral tensor, one sample's path from :func:`forced_align`.
        scores: (T,) float tensor, that sample's frame scores (or their exp, as torchaudio's
            tutorials pass).
        blank: the blank class.

    Returns:
        A list of :class:`TokenSpan`, one per run of equal tokens that is not the blank, in
        order; ``score`` is ``scores[start:end].mean().item()``. Frames with token -1 (past the
        input length, which only batched alignment produces) are left out as blanks are.

    Raises:
        CtcInvalidArgument (a ValueError) when tokens or scores is not 1-D or their lengths
        differ.
    """
    if tokens.dim() != 1 or scores.dim() != 1:
        raise N.invalid(
            f"`tokens` and `scores` must be 1D Tensor, got shapes {tuple(tokens.shape)} and {tuple(scores.shape)}"
        )
    if tokens.shape[0] != scores.shape[0]:
        raise N.invalid(
            f"`tokens` and `scores` must be the same length, got {tokens.shape[0]} and {scores.shape[0]}"
        )
    # A run starts where the token differs from the one before; -1 on both sides closes the
    # first and last runs, as torchaudio does.
    edge = torch.full((1,), -1, dtype=tokens.dtype, device=tokens.device)
    bounds = torch.nonzero(torch.diff(tokens, prepend=edge, append=edge)).flatten().tolist()
    values = tokens.tolist()
    return [
        TokenSpan(values[s], s, e, scores[s:e].mean().item())
        for s, e in zip(bounds[:-1], bounds[1:])
        if values[s] not in (blank, -1)
    ]
