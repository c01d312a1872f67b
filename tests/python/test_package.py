"""The package around the library: one version number (the crate's), the version check when the
library is loaded, and what `import libctc` needs (numpy, not torch)."""

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import libctc
from conftest import ROOT
from libctc import _native

try:
    import tomllib  # Python 3.11: an independent reading of Cargo.toml
except ModuleNotFoundError:
    tomllib = None

CARGO_TEXT = (ROOT / "Cargo.toml").read_text()
CARGO_VERSION = tomllib.loads(CARGO_TEXT)["package"]["version"] if tomllib else _native.cargo_version(CARGO_TEXT)


def test_one_version_number_the_crates():
    assert _native.package_version() == CARGO_VERSION == libctc.__version__
    assert libctc.version() == CARGO_VERSION


def test_cargo_version_reads_the_package_table_only():
    text = (
        '[dependencies]\nfoo = { version = "9" }\n[package]\nname = "ctc"\nversion = "1.2.3-rc.1"\n[x]\nversion = "0"\n'
    )
    assert _native.cargo_version(text) == "1.2.3-rc.1"
    assert _native.cargo_version('[workspace]\nversion = "1"\n') is None


@pytest.fixture
def found_by_lookup(monkeypatch):
    """The library this suite runs, found by the lookup as an installed copy would be."""
    path = Path(libctc.library_path())
    monkeypatch.delenv("CTC_LIBRARY", raising=False)
    monkeypatch.setattr(_native, "candidate_paths", lambda: [path])
    return path


def test_a_library_of_another_version_is_refused(monkeypatch, found_by_lookup):
    monkeypatch.setattr(_native, "package_version", lambda: "0.0.7")
    with pytest.raises(libctc.LibraryVersionMismatch) as info:
        _native.load()
    text = str(info.value)
    assert f"{found_by_lookup} (version {CARGO_VERSION}: refused, this package is 0.0.7)" in text
    assert "pip install ./bindings/python" in text and "CTC_LIBRARY" in text
    assert isinstance(info.value, libctc.LibraryNotFound)


def test_the_same_version_is_accepted(found_by_lookup):
    assert _native.load().path == str(found_by_lookup)


def test_an_explicit_library_is_not_version_checked(monkeypatch, found_by_lookup):
    monkeypatch.setattr(_native, "package_version", lambda: "0.0.7")
    monkeypatch.setenv("CTC_LIBRARY", str(found_by_lookup))
    assert _native.load().path == str(found_by_lookup)


def test_a_library_lacking_a_function_is_skipped_with_the_reason(monkeypatch):
    # Any shared library without libctc's functions: one of numpy's extension modules.
    import numpy.linalg._umath_linalg as any_library

    other = Path(any_library.__file__)
    monkeypatch.setattr(_native, "candidate_paths", lambda: [other])
    with pytest.raises(libctc.LibraryNotFound, match=f"{other} \\(could not load: it has no function ctc_"):
        _native.load()


def test_missing_library_says_where_it_looked(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere" / "libctc.so"
    monkeypatch.setattr(_native, "candidate_paths", lambda: [missing])
    with pytest.raises(libctc.LibraryNotFound) as info:
        _native.load()
    assert not isinstance(info.value, libctc.LibraryVersionMismatch)
    assert f"{missing} (not found)" in str(info.value) and "CTC_LIBRARY" in str(info.value)


def python(code, pythonpath, **env):
    """Runs `code` in a fresh interpreter importing the package from `pythonpath`, with
    CTC_LIBRARY unset unless given."""
    env = {k: v for k, v in os.environ.items() if k != "CTC_LIBRARY"} | env
    env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_import_needs_no_torch():
    # `sys.modules["torch"] = None` makes `import torch` fail, as on a machine without torch.
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import libctc, numpy as np\n"
        "print(float(libctc.ctc_loss(np.zeros((3, 2)), [1], 3, 1)))\n"
        "try:\n"
        "    libctc.functional\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    out = python(code, ROOT / "bindings" / "python", CTC_LIBRARY=libctc.library_path())
    assert out.returncode == 0, out.stderr
    loss, error = out.stdout.splitlines()
    assert float(loss) == pytest.approx(-math.log(6))  # 6 alignments of "1" in 3 frames, each e^0
    assert error.startswith("ImportError:") and "torch" in error


def installed_copy(tmp_path, version):
    """The package laid out as the wheel installs it: the sources, _version.py and the library."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "bindings" / "python" / "libctc", site / "libctc")
    (site / "libctc" / "_version.py").write_text(f'VERSION = "{version}"\n')
    shutil.copy(libctc.library_path(), site / "libctc" / _native.LIBRARY_NAME)
    return site


def test_an_installed_package_loads_its_own_library(tmp_path):
    site = installed_copy(tmp_path, CARGO_VERSION)
    out = python("import libctc; print(libctc.library_path()); print(libctc.__version__)", site)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(site / "libctc" / _native.LIBRARY_NAME), CARGO_VERSION]


def test_an_installed_package_refuses_a_library_of_another_version_at_import(tmp_path):
    site = installed_copy(tmp_path, "0.0.7")
    out = python("import libctc", site)
    assert out.returncode != 0
    assert "libctc._native.LibraryVersionMismatch" in out.stderr, out.stderr
    assert f"(version {CARGO_VERSION}: refused, this package is 0.0.7)" in out.stderr
    # Named explicitly, the same library is taken.
    lib = site / "libctc" / _native.LIBRARY_NAME
    out = python("import libctc; print(libctc.library_path())", site, CTC_LIBRARY=str(lib))
    assert out.returncode == 0 and out.stdout.strip() == str(lib), out.stderr
