"""Loading libctc's shared library: its exceptions, the one table of its enumeration values, its
C structures and the one table of its C signatures."""

import ctypes
import enum
import os
import re
import sys
from pathlib import Path

# The exceptions come first: the loading code below raises them.


class CtcError(RuntimeError):
    """A libctc call failed. ``status`` is the CtcStatus value, ``status_name`` its text,
    ``message`` what ``ctc_last_error_message()`` said (or the binding's own check)."""

    def __init__(self, status, status_name, message):
        self.status = status
        self.status_name = status_name
        self.message = message
        super().__init__(f"{status_name}: {message}" if message else status_name)


class CtcInvalidArgument(CtcError, ValueError):
    """CTC_STATUS_INVALID_ARGUMENT: a bad shape, stride, length, label or option."""


class CtcTypeError(CtcInvalidArgument, TypeError):
    """An argument of the wrong type, e.g. lengths that are not integers. Also a TypeError and a
    RuntimeError: torch raises the one or the other for these, depending on the argument."""


class CtcUnsupported(CtcError, NotImplementedError):
    """CTC_STATUS_UNSUPPORTED: a valid request this build or machine cannot serve. Also a
    NotImplementedError, which is what torch raises for a dtype its kernel lacks."""


class LibraryNotFound(OSError):
    """The shared library could not be found or loaded."""


class LibraryVersionMismatch(LibraryNotFound):
    """Only libraries of another version than this package's were found; they are refused."""


# The one table of enumeration values, each class under the prefix of its constants in ctc.h
# (tests/python/test_header.py checks every name and value against include/ctc.h).


class Status(enum.IntEnum):
    SUCCESS = 0
    INVALID_ARGUMENT = 1
    UNSUPPORTED = 2
    OUT_OF_MEMORY = 3
    DEVICE_ERROR = 4
    INTERNAL_ERROR = 5


class DType(enum.IntEnum):
    FLOAT32 = 0
    FLOAT64 = 1
    FLOAT16 = 2
    BFLOAT16 = 3
    INT32 = 4
    INT64 = 5


class Device(enum.IntEnum):
    CPU = 0
    CUDA = 1


class Reduction(enum.IntEnum):
    NONE = 0
    MEAN = 1
    SUM = 2


class Input(enum.IntEnum):
    LOG_PROBS = 0
    LOGITS = 1


class Gradient(enum.IntEnum):
    TORCH = 0
    EXACT = 1


class Call(enum.IntEnum):
    FORWARD = 0
    BACKWARD = 1
    FORWARD_BACKWARD = 2
    ALIGN = 3


ENUMS = {
    "CTC_STATUS_": Status,
    "CTC_DTYPE_": DType,
    "CTC_DEVICE_": Device,
    "CTC_REDUCTION_": Reduction,
    "CTC_CALL_": Call,
    "CTC_INPUT_": Input,
    "CTC_GRADIENT_": Gradient,
}

# torch's reduction strings.
REDUCTIONS = {r.name.lower(): r for r in Reduction}


class CtcTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("device", ctypes.c_int32),
        ("device_index", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("shape", ctypes.c_int64 * 3),
        ("strides", ctypes.c_int64 * 3),
    ]


class CtcOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("blank", ctypes.c_int32),
        ("reduction", ctypes.c_int32),
        ("zero_infinity", ctypes.c_bool),
        ("num_threads", ctypes.c_uint32),
        ("cuda_stream", ctypes.c_void_p),
        ("workspace", ctypes.c_void_p),
        ("workspace_bytes", ctypes.c_size_t),
        ("input", ctypes.c_int32),
        ("gradient", ctypes.c_int32),
    ]


_T = ctypes.POINTER(CtcTensor)
_O = ctypes.POINTER(CtcOptions)

# Every foreign signature, declared once: name -> (argtypes, restype).
SIGNATURES = {
    "ctc_options_default": ([], CtcOptions),
    "ctc_loss_forward": ([_T, _T, _T, _T, _O, _T], ctypes.c_int32),
    "ctc_loss_backward": ([_T, _T, _T, _T, _T, _O, _T], ctypes.c_int32),
    "ctc_loss_forward_backward": ([_T, _T, _T, _T, _T, _O, _T, _T], ctypes.c_int32),
    "ctc_workspace_size": ([_T, _T, _T, _T, _O, ctypes.POINTER(ctypes.c_size_t)], ctypes.c_int32),
    "ctc_workspace_size_for_call": (
        [ctypes.c_int32, _T, _T, _T, _T, _O, ctypes.POINTER(ctypes.c_size_t)],
        ctypes.c_int32,
    ),
    "ctc_release_cached_memory": ([], ctypes.c_size_t),
    "ctc_align": ([_T, _T, _T, _T, _O, _T, _T], ctypes.c_int32),
    "ctc_status_string": ([ctypes.c_int32], ctypes.c_char_p),
    "ctc_last_error_message": ([], ctypes.c_char_p),
    "ctc_version_string": ([], ctypes.c_char_p),
    "ctc_version_number": ([], ctypes.c_uint32),
    "ctc_cuda_device_count": ([], ctypes.c_int32),
}

LIBRARY_NAME = {"darwin": "libctc.dylib", "win32": "ctc.dll"}.get(sys.platform, "libctc.so")
_PACKAGE = Path(__file__).resolve().parent
# Only in a source checkout (bindings/python/libctc): the repository root with its Cargo.toml.
_REPO = _PACKAGE.parent.parent.parent
_CARGO_TOML = _REPO / "Cargo.toml"


def _from_source_tree():
    return _CARGO_TOML.is_file() and (_REPO / "bindings" / "python" / "libctc") == _PACKAGE


def cargo_version(text):
    """The version in the [package] table of a Cargo.toml's text (None if it has none)."""
    match = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.MULTILINE | re.DOTALL)
    return match.group(1) if match else None


def package_version():
    """This package's version, the crate's: written into the wheel at build time (_version.py),
    read from the repository's Cargo.toml when running from a source checkout."""
    try:
        from ._version import VERSION
    except ImportError:
        return cargo_version(_CARGO_TOML.read_text()) if _from_source_tree() else None
    return VERSION


def candidate_paths():
    """Where the library is looked for: only $CTC_LIBRARY when it is set (an explicit choice is
    never replaced by another library); else the copy inside this package (the wheel's), then,
    from a source checkout, the repository's target/release and target/debug."""
    env = os.environ.get("CTC_LIBRARY")
    if env:
        return [Path(env)]
    paths = [_PACKAGE / LIBRARY_NAME]
    if _from_source_tree():
        paths += [_REPO / "target" / profile / LIBRARY_NAME for profile in ("release", "debug")]
    return paths


def _preload_nvrtc():
    """Loads libnvrtc from the PyPI wheel nvidia-cuda-nvrtc-cu12 when it is installed, so that
    libctc's CUDA backend (which opens libnvrtc.so.12 by name) finds it. Optional."""
    try:
        import nvidia.cuda_nvrtc as wheel  # noqa: F401
    except Exception:
        return
    for base in getattr(wheel, "__path__", []):
        path = Path(base) / "lib" / "libnvrtc.so.12"
        if path.is_file():
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass
            return


def _open(path):
    lib = ctypes.CDLL(str(path))
    for name, (argtypes, restype) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:  # another library, or a libctc too old for this package
            raise OSError(f"it has no function {name}") from None
        fn.argtypes = argtypes
        fn.restype = restype
    lib.path = str(path)
    return lib


def load():
    """Opens the first usable library of candidate_paths(). Unless CTC_LIBRARY names one
    explicitly, a library whose version differs from this package's is refused: its structures
    or semantics may differ from what this code passes."""
    _preload_nvrtc()
    wanted = None if os.environ.get("CTC_LIBRARY") else package_version()
    tried = []
    for path in candidate_paths():
        if not path.is_file():
            tried.append(f"{path} (not found)")
            continue
        try:
            lib = _open(path)
        except OSError as e:
            tried.append(f"{path} (could not load: {e})")
            continue
        found = lib.ctc_version_string().decode()
        if wanted is None or found == wanted:
            return lib
        tried.append(f"{path} (version {found}: refused, this package is {wanted})")
    where = "\n  ".join(tried)
    if any("refused" in t for t in tried):
        raise LibraryVersionMismatch(
            f"no libctc shared library of this package's version {wanted} was found; one of another "
            "version is refused. Reinstall the package (pip install ./bindings/python), rebuild the "
            "library (cargo build --release), or set CTC_LIBRARY to choose a library explicitly. "
            f"Looked in:\n  {where}"
        )
    raise LibraryNotFound(
        "libctc shared library not found; install the package with `pip install ./bindings/python`, "
        f"build it with `cargo build --release` or set CTC_LIBRARY to its path. Looked in:\n  {where}"
    )


_lib = None


def lib():
    """The loaded library (the package loads it at import)."""
    global _lib
    if _lib is None:
        _lib = load()
    return _lib


def error(status, message, cls=None):
    """The exception for `status`: the CtcError subclass of that status, or `cls`."""
    if cls is None:
        cls = {Status.INVALID_ARGUMENT: CtcInvalidArgument, Status.UNSUPPORTED: CtcUnsupported}.get(status, CtcError)
    return cls(status, lib().ctc_status_string(status).decode(), message)


def invalid(message, cls=CtcInvalidArgument):
    """An invalid-argument error found by the binding itself, before any call."""
    return error(Status.INVALID_ARGUMENT, message, cls)


def check(status):
    """Raises the CtcError subclass for a non-zero status, with the library's message."""
    if status != Status.SUCCESS:
        raise error(status, lib().ctc_last_error_message().decode())


def options(blank, reduction, zero_infinity, num_threads=0, cuda_stream=None, exact_gradient=False, from_logits=False):
    """CtcOptions from arguments already checked by _args."""
    o = lib().ctc_options_default()
    o.blank = blank
    o.reduction = REDUCTIONS[reduction]
    o.zero_infinity = zero_infinity
    o.num_threads = int(num_threads)
    o.cuda_stream = cuda_stream
    o.gradient = Gradient.EXACT if exact_gradient else Gradient.TORCH
    o.input = Input.LOGITS if from_logits else Input.LOG_PROBS
    return o


def tensor(data_ptr, dtype, shape, strides, device=Device.CPU, device_index=0):
    t = CtcTensor()
    t.data = data_ptr
    t.dtype = dtype
    t.device = device
    t.device_index = device_index
    t.ndim = len(shape)
    for i, (n, s) in enumerate(zip(shape, strides)):
        t.shape[i] = int(n)
        t.strides[i] = int(s)
    return t
