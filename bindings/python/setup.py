"""Builds libctc's wheel: cargo compiles the crate at the repository root (../../Cargo.toml)
through setuptools-rust, and its C library goes inside the package as libctc/libctc.so, next to
the ctypes code that loads it. No Python extension module is built, so the wheel is tagged
py3-none-<platform>: any Python 3, this platform. The version is the crate's, read from
Cargo.toml, and is written into the package (libctc/_version.py) for the check at import."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools_rust import Binding, RustExtension, build_rust

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

CARGO_TOML = "../../Cargo.toml"  # relative: setuptools-rust passes it to cargo as given
LIBRARY = {"darwin": "libctc.dylib", "win32": "ctc.dll"}.get(sys.platform, "libctc.so")

with open(Path(__file__).resolve().parent / CARGO_TOML, "rb") as f:
    VERSION = tomllib.load(f)["package"]["version"]


class BuildRust(build_rust):
    """Names the copied library libctc/libctc.so, what libctc/_native.py looks for, instead of
    an extension-module name tied to this interpreter (libctc.cpython-311-x86_64-linux-gnu.so):
    ctypes loads it from any Python 3."""

    def get_dylib_ext_path(self, ext, target_fname):
        return str(Path(super().get_dylib_ext_path(ext, target_fname)).with_name(LIBRARY))


class BuildPy(build_py):
    """Writes libctc/_version.py into the build: the version the library is checked against."""

    def run(self):
        super().run()
        if not self.dry_run:
            Path(self.build_lib, "libctc", "_version.py").write_text(f'VERSION = "{VERSION}"\n')


class BdistWheel(bdist_wheel):
    """py3-none-<platform>: the platform's library, no interpreter- or ABI-specific code."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    version=VERSION,
    rust_extensions=[RustExtension("libctc.libctc", path=CARGO_TOML, binding=Binding.NoBinding)],
    cmdclass={"build_rust": BuildRust, "build_py": BuildPy, "bdist_wheel": BdistWheel},
)
