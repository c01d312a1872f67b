"""Loading libctc's shared library and the one table of its C signatures."""

import ctypes
import os
import sys
from pathlib import Path


class CtcError(RuntimeError):
    """A libctc call failed. ``status`` is the CtcStatus value, ``status_name`` its text,
    ``message`` what ``ctc_last_error_message()`` said."""

    def __init__(self, status, status_name, message):
        self.status = status
        self.status_name = status_name
        self.message = message
        super().__init__(f"{status_name}: {message}" if message else status_name)


class CtcInvalidArgument(CtcError, ValueError):
    """CTC_STATUS_INVALID_ARGUMENT: a bad shape, stride, length, label or option."""


class CtcUnsupported(CtcError):
    """CTC_STATUS_UNSUPPORTED: a valid request this build or machine cannot serve."""


class LibraryNotFound(OSError):
    """The shared library could not be found or loaded."""


# CtcStatus
SUCCESS, INVALID_ARGUMENT, UNSUPPORTED, OUT_OF_MEMORY, DEVICE_ERROR, INTERNAL_ERROR = range(6)
# CtcDType
FLOAT32, FLOAT64, FLOAT16, BFLOAT16, INT32, INT64 = range(6)
# CtcDevice
DEVICE_CPU, DEVICE_CUDA = range(2)
# CtcReduction
REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


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
    "ctc_status_string": ([ctypes.c_int32], ctypes.c_char_p),
    "ctc_last_error_message": ([], ctypes.c_char_p),
    "ctc_version_string": ([], ctypes.c_char_p),
    "ctc_version_number": ([], ctypes.c_uint32),
    "ctc_cuda_device_count": ([], ctypes.c_int32),
}

_LIB_NAMES = {"darwin": "libctc.dylib", "win32": "ctc.dll"}


def _library_name():
    return _LIB_NAMES.get(sys.platform, "libctc.so")


def candidate_paths():
    """Where the library is looked for, in order: $CTC_LIBRARY, a copy inside this package, the
    repository's target/release (and target/debug) when running from a source checkout."""
    name = _library_name()
    here = Path(__file__).resolve().parent
    paths = []
    env = os.environ.get("CTC_LIBRARY")
    if env:
        paths.append(Path(env))
    paths.append(here / name)
    repo = here.parent.parent.parent  # bindings/python/libctc -> repository root
    paths.append(repo / "target" / "release" / name)
    paths.append(repo / "target" / "debug" / name)
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


def load():
    _preload_nvrtc()
    tried = []
    for path in candidate_paths():
        if path.is_file():
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as e:
                tried.append(f"{path} (could not load: {e})")
                continue
            for name, (argtypes, restype) in SIGNATURES.items():
                fn = getattr(lib, name)
                fn.argtypes = argtypes
                fn.restype = restype
            lib.path = str(path)
            return lib
        tried.append(f"{path} (not found)")
    raise LibraryNotFound(
        "libctc shared library not found; set CTC_LIBRARY to its path or build it with "
        "`cargo build --release`. Looked in:\n  " + "\n  ".join(tried)
    )


_lib = None


def lib():
    """The loaded library (loaded on first use)."""
    global _lib
    if _lib is None:
        _lib = load()
    return _lib


def check(status):
    """Raises the CtcError subclass for a non-zero status."""
    if status == SUCCESS:
        return
    l = lib()
    name = l.ctc_status_string(status).decode()
    message = l.ctc_last_error_message().decode()
    cls = {INVALID_ARGUMENT: CtcInvalidArgument, UNSUPPORTED: CtcUnsupported}.get(status, CtcError)
    raise cls(status, name, message)


def options(blank, reduction, zero_infinity, num_threads=0, cuda_stream=None):
    if reduction not in REDUCTIONS:
        raise CtcInvalidArgument(
            INVALID_ARGUMENT,
            "invalid argument",
            f"reduction = {reduction!r} is not one of 'none', 'mean', 'sum'",
        )
    o = lib().ctc_options_default()
    o.blank = int(blank)
    o.reduction = REDUCTIONS[reduction]
    o.zero_infinity = bool(zero_infinity)
    o.num_threads = int(num_threads)
    o.cuda_stream = cuda_stream
    return o


def tensor(data_ptr, dtype, shape, strides, device=DEVICE_CPU, device_index=0):
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
