"""Copies the built shared library into the package when it exists, so that
``pip install ./bindings/python`` after ``cargo build --release`` installs a self-contained
package. Without a built library the package still installs and looks for the library at run
time ($CTC_LIBRARY, then the repository's target/release)."""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        candidates = [os.environ.get("CTC_LIBRARY")] if os.environ.get("CTC_LIBRARY") else []
        candidates.append(str(HERE.parent.parent / "target" / "release" / "libctc.so"))
        for c in candidates:
            if c and Path(c).is_file():
                dest = Path(self.build_lib) / "libctc" / "libctc.so"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(c, dest)
                break


setup(cmdclass={"build_py": BuildWithLibrary})
