"""The numpy API: arrays are passed zero-copy with their strides."""

import ctypes

import numpy as np

from . import _args
from . import _native as N

_DTYPES = {
    np.dtype(np.float32): N.DType.FLOAT32,
    np.dtype(np.float64): N.DType.FLOAT64,
    np.dtype(np.float16): N.DType.FLOAT16,
    np.dtype(np.int32): N.DType.INT32,
    np.dtype(np.int64): N.DType.INT64,
}
_INTEGERS = (np.dtype(np.int32), np.dtype(np.int64))

try:  # numpy has no bfloat16; ml_dtypes (optional, as jax and tensorflow install it) adds one
    import ml_dtypes as _ml_dtypes
except ImportError:  # pragma: no cover - depends on the environment
    _ml_dtypes = None
else:
    _DTYPES[np.dtype(_ml_dtypes.bfloat16)] = N.DType.BFLOAT16
_HALVES = tuple(d for d, v in _DTYPES.items() if v in (N.DType.FLOAT16, N.DType.BFLOAT16))


def _passable(a):
    # The C ABI takes non-negative element strides of native-endian data: anything else (rare:
    # negative strides, byte-swapped or unaligned arrays) is copied.
    itemsize = a.dtype.itemsize
    if any(s < 0 or s % itemsize for s in a.strides) or not a.dtype.isnative or not a.flags.aligned:
        return np.ascontiguousarray(a)
    return a


def _holds_bool(x):
    """Whether a (nested) list or tuple holds a Python or numpy bool."""
    if isinstance(x, (list, tuple)):
        return any(_holds_bool(e) for e in x)
    return isinstance(x, (bool, np.bool_))


def _integers(x, name):
    """An int32 or int64 array of `x`. Floats and bools are refused, not truncated; an empty
    array of any dtype (np.asarray([]) is float64) is taken as an empty integer array."""
    if _holds_bool(x):
        # np.asarray([True, 5]) is an int64 array: the bool would silently become 1.
        raise N.invalid(f"{name} must be integral, got a bool in {x!r}", N.CtcTypeError)
    a = np.asarray(x)
    if a.dtype not in _INTEGERS:
        if a.dtype.kind not in "iu" and a.size:
            raise N.invalid(f"{name} must be integral, got dtype {a.dtype}", N.CtcTypeError)
        a = a.astype(np.int64)
    return _passable(a)


def _tensor(a, name):
    dtype = _DTYPES.get(a.dtype)
    if dtype is None:
        raise N.invalid(f"{name} has unsupported dtype {a.dtype}")
    strides = [s // a.dtype.itemsize for s in a.strides]
    return N.tensor(a.ctypes.data, dtype, a.shape, strides)


def _prepare(log_probs, targets, input_lengths, target_lengths):
    lp = _passable(np.asarray(log_probs))
    _args.not_empty(lp.shape)
    tg = _integers(targets, "targets")
    lengths = []
    for x, name in ((input_lengths, "input_lengths"), (target_lengths, "target_lengths")):
        a = _integers(x, name)
        lengths.append(a.reshape(_args.lengths_shape(name, a.size, lp.shape)))
    arrays = (lp, tg, *lengths)
    names = ("log_probs", "targets", "input_lengths", "target_lengths")
    return arrays, tuple(_tensor(a, n) for a, n in zip(arrays, names))


def _loss_dtype(lp):
    """Losses (and their grad_loss, alignment scores) in float32 for float16 and bfloat16 inputs:
    a sum of log-probabilities overflows float16 past 65504 and bfloat16 keeps 8 bits; log_probs'
    own dtype otherwise."""
    return np.dtype(np.float32) if lp.dtype in _HALVES else lp.dtype


def _loss_shape(lp, reduction):
    return (lp.shape[1],) if (lp.ndim == 3 and reduction == "none") else ()


_OMIT = object()


def _call(name, inputs, opts, outputs, grad_loss=_OMIT):
    """Calls C function `name` with the four input tensors, the upstream gradient (left out for
    the forward call; None for NULL), the options and the output tensors."""
    args = [ctypes.byref(t) for t in inputs]
    if grad_loss is not _OMIT:
        args.append(ctypes.byref(grad_loss) if grad_loss is not None else None)
    args.append(ctypes.byref(opts))
    args += [ctypes.byref(t) for t in outputs]
    N.check(getattr(N.lib(), name)(*args))


def ctc_loss(
    log_probs,
    targets,
    input_lengths,
    target_lengths,
    blank=0,
    reduction="mean",
    zero_infinity=False,
    num_threads=0,
    from_logits=False,
):
    """CTC loss with the signature and semantics of ``torch.nn.functional.ctc_loss``, on numpy
    arrays. ``log_probs``: (T, N, C) or (T, C) float32, float64, float16 or (with the
    ``ml_dtypes`` package) bfloat16, the halves accumulated in float32, any strides (not copied); targets padded (N, S) or concatenated, integers; lengths
    as integer arrays or lists (floats and bools are refused). Returns the loss: shape (N,) for
    ``reduction="none"`` on a batch, () otherwise, in log_probs' dtype (float32 for half
    inputs; the gradient has log_probs' dtype). ``from_logits=True``: ``log_probs`` holds unnormalized scores
    and the loss is that of their log_softmax over the last axis (applied inside, not stored)."""
    opts = _args.options(blank, reduction, zero_infinity, num_threads, from_logits=from_logits)
    arrays, inputs = _prepare(log_probs, targets, input_lengths, target_lengths)
    lp = arrays[0]
    loss = np.empty(_loss_shape(lp, reduction), dtype=_loss_dtype(lp))
    _call("ctc_loss_forward", inputs, opts, [_tensor(loss, "loss")])
    return loss


def _grad_loss_tensor(grad_loss, lp, reduction):
    if grad_loss is None:
        return None, None
    # np.array copies into a fresh C-ordered array (np.ascontiguousarray would turn () into (1,)).
    g = np.array(grad_loss, dtype=_loss_dtype(lp)).reshape(_loss_shape(lp, reduction))
    return g, _tensor(g, "grad_loss")


def ctc_loss_and_grad(
    log_probs,
    targets,
    input_lengths,
    target_lengths,
    blank=0,
    reduction="mean",
    zero_infinity=False,
    grad_loss=None,
    num_threads=0,
    exact_gradient=False,
    from_logits=False,
):
    """Loss and gradient with respect to ``log_probs`` in one fused call (torch's gradient
    convention ``exp(lp) - posterior``, scaled by ``grad_loss``, default ones; with
    ``exact_gradient=True`` the true derivative ``-posterior`` for arbitrary log-scores; with
    ``from_logits=True`` the first array holds logits and ``grad`` is the derivative with respect
    to them, ``softmax - posterior``). Returns ``(loss, grad)``; ``grad`` has log_probs' shape and
    dtype."""
    opts = _args.options(
        blank, reduction, zero_infinity, num_threads, exact_gradient=exact_gradient, from_logits=from_logits
    )
    arrays, inputs = _prepare(log_probs, targets, input_lengths, target_lengths)
    lp = arrays[0]
    g, t_g = _grad_loss_tensor(grad_loss, lp, reduction)
    loss = np.empty(_loss_shape(lp, reduction), dtype=_loss_dtype(lp))
    grad = np.empty(lp.shape, dtype=lp.dtype)
    _call("ctc_loss_forward_backward", inputs, opts, [_tensor(loss, "loss"), _tensor(grad, "grad")], t_g)
    return loss, grad


def ctc_loss_grad(
    log_probs,
    targets,
    input_lengths,
    target_lengths,
    blank=0,
    reduction="mean",
    zero_infinity=False,
    grad_loss=None,
    num_threads=0,
    out=None,
    exact_gradient=False,
    from_logits=False,
):
    """The gradient alone (``ctc_loss_backward``). ``out``, if given, is a writable float array of
    log_probs' shape and dtype, any non-overlapping strides, written in place.
    ``exact_gradient`` and ``from_logits`` as for :func:`ctc_loss_and_grad`."""
    opts = _args.options(
        blank, reduction, zero_infinity, num_threads, exact_gradient=exact_gradient, from_logits=from_logits
    )
    arrays, inputs = _prepare(log_probs, targets, input_lengths, target_lengths)
    lp = arrays[0]
    g, t_g = _grad_loss_tensor(grad_loss, lp, reduction)
    grad = np.empty(lp.shape, dtype=lp.dtype) if out is None else out
    if grad.shape != lp.shape or grad.dtype != lp.dtype or any(s < 0 or s % grad.itemsize for s in grad.strides):
        raise N.invalid(f"out has shape {grad.shape} and dtype {grad.dtype}; log_probs has {lp.shape} and {lp.dtype}")
    _call("ctc_loss_backward", inputs, opts, [_tensor(grad, "out")], t_g)
    return grad


def align(log_probs, targets, input_lengths, target_lengths, blank=0, num_threads=0, from_logits=False):
    """Forced alignment (``ctc_align``): the most probable CTC path of each sample.

    Arguments as :func:`ctc_loss` takes them, checked the same way: ``log_probs`` (T, N, C) or
    unbatched (T, C), float32, float64 or float16, any strides (not copied); ``targets`` padded (N, S),
    concatenated (sum(target_lengths),) or unbatched (S,), integers; ``input_lengths`` and
    ``target_lengths`` integer arrays, lists or ints of N elements (floats and bools refused);
    ``blank`` the blank class; ``num_threads`` 0 for the library's default.

    Returns ``(path, path_scores)``:

    - ``path``: int64, (T, N) ((T,) unbatched): the class (blank included) each sample's best
      alignment emits at frame t, -1 for t >= input_lengths[n]. Collapsing repeats and removing
      blanks gives the sample's target.
    - ``path_scores``: (N,) (0-dim unbatched), log_probs' dtype (float32 for float16): the sum of
      the log-probabilities along the path.

    A sample with no alignment (too few frames for its labels and the blanks between repeats,
    or only through -inf log-probabilities) gets -1 at every frame and the score -inf; the other
    samples are aligned. Ties between equally good paths follow the library's documented rule;
    results are identical for every thread count.

    Raises ``CtcInvalidArgument`` (``CtcTypeError`` for wrongly typed lengths) for any argument
    the loss would refuse.

    ``from_logits=True``: ``log_probs`` holds unnormalized scores, aligned as their log_softmax
    over the last axis (the same paths; the scores are sums of log-probabilities).
    """
    opts = _args.options(blank, "mean", False, num_threads, from_logits=from_logits)
    arrays, inputs = _prepare(log_probs, targets, input_lengths, target_lengths)
    lp = arrays[0]
    batched = lp.ndim == 3
    path = np.empty(lp.shape[:2] if batched else lp.shape[:1], dtype=np.int64)
    scores = np.empty(lp.shape[1:2] if batched else (), dtype=_loss_dtype(lp))
    _call("ctc_align", inputs, opts, [_tensor(path, "path"), _tensor(scores, "path_scores")])
    return path, scores
