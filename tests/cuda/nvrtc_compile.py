#!/usr/bin/env python3
"""Compiles src/cuda/kernels/ctc.cu with NVRTC, as the CUDA backend does at run time.

For each of sm_70, sm_80 and sm_90 the file is compiled to a CUBIN with ptxas's verbose report
(`--ptxas-options=-v`). Fails (exit 1) on a compile error, on any NVRTC warning, on a missing
kernel, or on a register spill ("spill stores" / "spill loads" not zero); prints the registers,
stack frame and spills of every kernel. Needs no GPU, only libnvrtc (no CUDA toolkit either).

libnvrtc is looked for, in order: $CTC_NVRTC_LIBRARY (a path), the PyPI wheel
`nvidia-cuda-nvrtc-cu12` in this Python's site-packages (nvidia/cuda_nvrtc/lib/libnvrtc.so.12),
then the usual library search (LD_LIBRARY_PATH, ldconfig, /usr/local/cuda/lib64). When none
loads, prints "SKIPPED nvrtc: <reason>" and exits 0.

Usage: python tests/cuda/nvrtc_compile.py [path/to/ctc.cu]
"""

import ctypes
import ctypes.util
import os
import re
import site
import sys

ARCHS = ["sm_70", "sm_80", "sm_90"]
KERNELS = ["ctc_offsets", "ctc_prepare", "ctc_reduce_f32", "ctc_reduce_f64"] + [
    f"ctc_{kernel}_{dtype}"
    for kernel in ("shift", "alpha", "beta", "grad", "align")
    for dtype in ("f32", "f64", "f16", "bf16")
]
# "Architectures prior to '<compute/sm>_75' are deprecated and may be removed ...".
DEPRECATED_ARCH = re.compile(r"Architectures prior to .* are deprecated")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, "src", "cuda", "kernels", "ctc.cu")


def candidates():
    """Paths or names of libnvrtc to try, best first."""
    explicit = os.environ.get("CTC_NVRTC_LIBRARY", "").strip()
    if explicit:
        yield explicit
    dirs = list(sys.path)
    try:
        dirs += site.getsitepackages()
    except AttributeError:  # some virtualenv versions
        pass
    try:
        dirs.append(site.getusersitepackages())
    except AttributeError:
        pass
    seen = set()
    for d in dirs:
        path = os.path.join(d or ".", "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.12")
        if path not in seen and os.path.isfile(path):
            seen.add(path)
            yield path
    found = ctypes.util.find_library("nvrtc")
    if found:
        yield found
    yield "libnvrtc.so.12"
    yield "libnvrtc.so"
    for d in ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]:
        for name in ["libnvrtc.so.12", "libnvrtc.so"]:
            path = os.path.join(d, name)
            if os.path.isfile(path):
                yield path


def load_nvrtc():
    """(library, what was loaded) or (None, why not)."""
    errors = []
    for c in candidates():
        try:
            lib = ctypes.CDLL(c)
            lib.nvrtcVersion  # a libnvrtc, not some other library of that name
            return lib, c
        except (OSError, AttributeError) as e:
            errors.append(f"{c}: {e}")
    return None, "; ".join(errors[-3:]) or "no candidate"


class Nvrtc:
    def __init__(self, lib):
        self.lib = lib
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        lib.nvrtcGetErrorString.argtypes = [ctypes.c_int]
        lib.nvrtcCreateProgram.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.nvrtcCompileProgram.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_char_p),
        ]
        lib.nvrtcGetProgramLogSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.nvrtcGetProgramLog.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nvrtcGetCUBINSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.nvrtcGetCUBIN.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nvrtcDestroyProgram.argtypes = [ctypes.POINTER(ctypes.c_void_p)]

    def check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: {self.lib.nvrtcGetErrorString(status).decode()}")

    def version(self):
        major, minor = ctypes.c_int(), ctypes.c_int()
        self.check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        return major.value, minor.value

    def compile(self, source, name, options):
        """(ok, log, cubin bytes or None)."""
        prog = ctypes.c_void_p()
        self.check(
            self.lib.nvrtcCreateProgram(ctypes.byref(prog), source, name, 0, None, None),
            "nvrtcCreateProgram",
        )
        try:
            opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
            status = self.lib.nvrtcCompileProgram(prog, len(options), opts)
            size = ctypes.c_size_t()
            self.check(self.lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "log size")
            buf = ctypes.create_string_buffer(size.value)
            self.check(self.lib.nvrtcGetProgramLog(prog, buf), "log")
            log = buf.value.decode(errors="replace")
            if status != 0:
                err = self.lib.nvrtcGetErrorString(status).decode()
                return False, f"{err}\n{log}", None
            self.check(self.lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)), "CUBIN size")
            cubin = ctypes.create_string_buffer(size.value)
            self.check(self.lib.nvrtcGetCUBIN(prog, cubin), "CUBIN")
            return True, log, cubin.raw
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(prog))


def parse_report(log):
    """{kernel: {"registers", "stack", "spill_stores", "spill_loads"}} from ptxas -v output."""
    report = {}
    current = None
    for line in log.splitlines():
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            current = report.setdefault(m.group(1), {})
            continue
        m = re.search(
            r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line
        )
        if m and current is not None:
            current["stack"] = int(m.group(1))
            current["spill_stores"] = int(m.group(2))
            current["spill_loads"] = int(m.group(3))
            continue
        m = re.search(r"Compiling entry function '([^']+)'", line)
        if m:
            current = report.setdefault(m.group(1), {})
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and current is not None:
            current["registers"] = int(m.group(1))
    return report


def main():
    source_path = sys.argv[1] if len(sys.argv) > 1 else SOURCE
    lib, where = load_nvrtc()
    if lib is None:
        print(f"SKIPPED nvrtc: libnvrtc not found ({where}); pip install nvidia-cuda-nvrtc-cu12")
        return 0
    nvrtc = Nvrtc(lib)
    major, minor = nvrtc.version()
    print(f"NVRTC {major}.{minor} from {where}")
    with open(source_path, "rb") as f:
        source = f.read()

    failures = []
    for arch in ARCHS:
        options = [f"--gpu-architecture={arch}", "--std=c++17", "--ptxas-options=-v"]
        ok, log, cubin = nvrtc.compile(source, b"ctc.cu", options)
        if not ok:
            failures.append(f"{arch}: compile error:\n{log}")
            continue
        if cubin[:4] != b"\x7fELF":
            failures.append(f"{arch}: the CUBIN is not an ELF file")
        # NVRTC 12.x notes that sm_70 is deprecated: expected, not a problem of the source.
        warnings = [
            l
            for l in log.splitlines()
            if "warning" in l.lower() and not DEPRECATED_ARCH.search(l)
        ]
        if warnings:
            failures.append(f"{arch}: warnings:\n" + "\n".join(warnings))
        report = parse_report(log)
        print(f"{arch}: CUBIN {len(cubin)} bytes")
        for k in KERNELS:
            r = report.get(k)
            if r is None or "registers" not in r:
                failures.append(f"{arch}: no ptxas report for kernel {k}:\n{log}")
                continue
            print(
                f"  {k:18s} {r['registers']:3d} registers, {r.get('stack', 0)} bytes stack, "
                f"{r.get('spill_stores', 0)} bytes spill stores, {r.get('spill_loads', 0)} bytes "
                "spill loads"
            )
            if r.get("spill_stores", 0) or r.get("spill_loads", 0):
                failures.append(f"{arch}: {k} spills registers")
        extra = sorted(set(report) - set(KERNELS))
        if extra:
            failures.append(f"{arch}: unexpected functions in the report: {extra}")
    for f in failures:
        print(f"FAIL {f}")
    if failures:
        return 1
    print(f"nvrtc: {len(ARCHS)} architectures, {len(KERNELS)} kernels each, no spills")
    return 0


if __name__ == "__main__":
    sys.exit(main())
