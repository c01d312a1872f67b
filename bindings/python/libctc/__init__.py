"""libctc: CTC loss through libctc's C ABI.

numpy:  ``libctc.ctc_loss``, ``libctc.ctc_loss_and_grad``, ``libctc.ctc_loss_grad``.
torch:  ``libctc.CTCLoss`` and ``libctc.functional.ctc_loss`` (only when torch is importable).

The shared library is looked up in ``$CTC_LIBRARY``, then inside this package, then in the
repository's ``target/release`` (see ``libctc.library_path()``).
"""

from ._native import (
    CtcError,
    CtcInvalidArgument,
    CtcUnsupported,
    LibraryNotFound,
    candidate_paths,
)
from ._numpy import ctc_loss, ctc_loss_and_grad, ctc_loss_grad

__all__ = [
    "CtcError",
    "CtcInvalidArgument",
    "CtcUnsupported",
    "LibraryNotFound",
    "ctc_loss",
    "ctc_loss_and_grad",
    "ctc_loss_grad",
    "library_path",
    "version",
    "cuda_device_count",
    "CTCLoss",
    "functional",
]


def library_path():
    """The path of the loaded shared library (loads it if needed)."""
    from ._native import lib

    return lib().path


def version():
    """The library's version string."""
    from ._native import lib

    return lib().ctc_version_string().decode()


def cuda_device_count():
    """CUDA devices libctc can use."""
    from ._native import lib

    return lib().ctc_cuda_device_count()


def __getattr__(name):
    if name == "CTCLoss":
        from ._torch import CTCLoss

        return CTCLoss
    if name == "functional":
        from . import functional

        return functional
    raise AttributeError(f"module 'libctc' has no attribute {name!r}")
