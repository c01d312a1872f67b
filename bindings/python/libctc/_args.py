"""The argument rules of ``torch.nn.functional.ctc_loss`` that both APIs check in Python before
any call: types, the reduction's name, an empty log_probs, how many lengths a batch takes. The
library itself checks shapes, strides, labels and length values, and names what it refuses."""

import operator

from . import _native as N


def _is_bool(value):
    # Python, numpy and 0-dim torch booleans all convert to 0 or 1 silently; torch refuses them.
    return isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool")


def integer(value, name):
    """`value` as an int: an int, a numpy integer or a 0-dim integer tensor. A float or a bool
    is refused rather than truncated, as torch refuses them."""
    if _is_bool(value):
        raise N.invalid(f"{name} must be integral, got the bool {value!r}", N.CtcTypeError)
    try:
        return operator.index(value)
    except TypeError:
        raise N.invalid(f"{name} must be integral, got {value!r}", N.CtcTypeError) from None


def flag(value, name):
    """`value` as a bool: only a bool (Python or numpy) is taken, as torch takes only a bool."""
    if not _is_bool(value) or hasattr(value, "shape") and value.shape != ():
        raise N.invalid(f"{name} must be a bool, got {value!r}", N.CtcTypeError)
    return bool(value)


def reduction(value):
    if not (isinstance(value, str) and value in N.REDUCTIONS):
        raise N.invalid(f"{value} is not a valid value for reduction (one of 'none', 'mean', 'sum')")
    return value


def options(blank, reduction_, zero_infinity, num_threads=0, cuda_stream=None, exact_gradient=False, from_logits=False):
    """CtcOptions from the caller's arguments, each checked as torch checks it."""
    return N.options(
        integer(blank, "blank"),
        reduction(reduction_),
        flag(zero_infinity, "zero_infinity"),
        num_threads,
        cuda_stream,
        flag(exact_gradient, "exact_gradient"),
        flag(from_logits, "from_logits"),
    )


def not_empty(shape):
    """torch refuses a log_probs with no element (T, N or C of 0) before anything else."""
    if 0 in tuple(shape):
        raise N.invalid(f"log_probs tensor must not be empty, got shape {tuple(shape)}")


def lengths_shape(name, size, log_probs_shape):
    """The shape to view `size` lengths as: (N,) for a batch, whatever shape they came in (torch
    takes any tensor of N elements, e.g. a 0-dim one when N = 1); () for an unbatched input."""
    batched = len(log_probs_shape) == 3
    n = log_probs_shape[1] if batched else 1
    if size != n:
        raise N.invalid(f"{name} must be of size batch_size = {n}, got {size} elements")
    return (n,) if batched else ()
