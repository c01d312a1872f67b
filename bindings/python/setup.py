"""Builds libctc's wheel: cargo compiles the crate at the repository root (../../Cargo.toml)
through setuptools-rust, and its C library goes inside the package as libctc/libctc.so, next to
the ctypes code that loads it. No Python extension module is built, so the wheel is tagged
py3-none-<platform>: any Python 3, this platform. The version is the crate's, read from
Cargo.toml, and is written into the package (libctc/_version.py) for the check at import.

The sdist carries the crate's own files (those `cargo package --list` names) under crate/, so
that it builds on its own; built from it, this script finds crate/Cargo.toml instead."""

import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools_rust import Binding, RustExtension, build_rust

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
# Where an sdist keeps the crate (see Sdist).
CRATE = "crate"
# Relative: setuptools-rust passes it to cargo as given.
CARGO_TOML = f"{CRATE}/Cargo.toml" if (HERE / CRATE / "Cargo.toml").is_file() else "../../Cargo.toml"
LIBRARY = {"darwin": "libctc.dylib", "win32": "ctc.dll"}.get(sys.platform, "libctc.so")

with open(HERE / CARGO_TOML, "rb") as f:
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


class Sdist(sdist):
    """Copies the crate's files, as `cargo package --list` names them (what a crate user builds
    from: tests/package.rs checks that list), into the sdist's crate/ directory."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        if CARGO_TOML.startswith(CRATE):  # an sdist made from an sdist: crate/ came with it
            return
        cmd = ["cargo", "package", "--list", "--allow-dirty", "--quiet"]
        listed = subprocess.run(cmd, cwd=REPOSITORY, check=True, capture_output=True, text=True)
        for name in listed.stdout.split():
            source = REPOSITORY / name
            if source.is_file():  # not what cargo generates (Cargo.toml.orig, .cargo_vcs_info.json)
                target = Path(base_dir, CRATE, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)


class BdistWheel(bdist_wheel):
    """py3-none-<platform>: the platform's library, no interpreter- or ABI-specific code."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    version=VERSION,
    rust_extensions=[RustExtension("libctc.libctc", path=CARGO_TOML, binding=Binding.NoBinding)],
    cmdclass={"build_rust": BuildRust, "build_py": BuildPy, "bdist_wheel": BdistWheel, "sdist": Sdist},
)
