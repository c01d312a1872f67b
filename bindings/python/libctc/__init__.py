"""libctc: CTC loss through libctc's C ABI.

numpy:  ``libctc.ctc_loss``, ``libctc.ctc_loss_and_grad``, ``libctc.ctc_loss_grad``; forced
        alignment: ``libctc.align``.
torch:  ``libctc.CTCLoss`` and ``libctc.functional.ctc_loss``; ``libctc.functional.forced_align``
        and ``merge_tokens`` as torchaudio's (only when torch is importable).

The shared library is loaded at import: ``$CTC_LIBRARY`` when set, else the copy inside this
package (the wheel's), else, from a source checkout, the repository's ``target/release`` or
``target/debug``. Unless ``$CTC_LIBRARY`` names it, a library of another version than this
package's is refused (``LibraryVersionMismatch``).
"""

import importlib

from . import _native
from ._native import (
    CtcError,
    CtcInvalidArgument,
    CtcTypeError,
    CtcUnsupported,
    LibraryNotFound,
    LibraryVersionMismatch,
    candidate_paths,
)
from ._numpy import align, ctc_loss, ctc_loss_and_grad, ctc_loss_grad

__version__ = _native.package_version()

__all__ = [
    "CtcError",
    "CtcInvalidArgument",
    "CtcTypeError",
    "CtcUnsupported",
    "LibraryNotFound",
    "LibraryVersionMismatch",
    "candidate_paths",
    "ctc_loss",
    "ctc_loss_and_grad",
    "ctc_loss_grad",
    "align",
    "library_path",
    "version",
    "cuda_device_count",
    "release_cached_memory",
    "CTCLoss",
    "functional",
]

_native.lib()


def library_path():
    """The path of the loaded shared library."""
    return _native.lib().path


def version():
    """The loaded library's version string."""
    return _native.lib().ctc_version_string().decode()


def cuda_device_count():
    """CUDA devices libctc can use."""
    return _native.lib().ctc_cuda_device_count()


def release_cached_memory():
    """Frees the scratch memory libctc keeps between calls (bounded, reused by later calls);
    returns the bytes freed."""
    return _native.lib().ctc_release_cached_memory()


def __getattr__(name):
    # The torch drop-in is imported on first use, so that `import libctc` needs no torch.
    # importlib, not `from . import functional`: that form looks the attribute up on this module
    # first, which calls this function again, for ever.
    if name == "functional":
        return importlib.import_module(".functional", __name__)
    if name == "CTCLoss":
        return importlib.import_module("._torch", __name__).CTCLoss
    raise AttributeError(f"module 'libctc' has no attribute {name!r}")
