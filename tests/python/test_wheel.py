"""`pip wheel ./bindings/python` as a user runs it: cargo builds the library (in
target/wheel, apart from the build of the running `cargo test`), the wheel is tagged for this
platform and carries the library, and the installed package loads that library and computes.
The sdist (`python -m build --sdist`) carries the crate and builds a working wheel on its own.
Needs pip to reach the package index for the build requirements (setuptools, setuptools-rust)."""

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import libctc
from conftest import ROOT


def build_env():
    env = {k: v for k, v in os.environ.items() if k != "CTC_LIBRARY"}
    env["CARGO_TARGET_DIR"] = str(ROOT / "target" / "wheel")
    # Under `cargo test` cargo itself may be off PATH; it says where it is in $CARGO.
    if shutil.which("cargo") is None and os.environ.get("CARGO"):
        env["PATH"] = os.pathsep.join([str(Path(os.environ["CARGO"]).parent), env.get("PATH", "")])
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps"]
    cmd += ["-w", str(out), str(ROOT / "bindings" / "python")]
    run = subprocess.run(cmd, env=build_env(), capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout + run.stderr
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_is_tagged_for_this_platform(wheel):
    name, version, python, abi, platform = wheel.stem.split("-")
    assert (name, version) == ("libctc", libctc.__version__)
    assert (python, abi) == ("py3", "none")
    assert platform != "any" and (platform.startswith("linux_") or platform.startswith("manylinux"))
    with zipfile.ZipFile(wheel) as z:
        assert z.read("libctc/libctc.so")[:4] == b"\x7fELF"
        assert z.read("libctc/_version.py").decode() == f'VERSION = "{libctc.__version__}"\n'
        meta = z.read(f"libctc-{version}.dist-info/WHEEL").decode()
        assert "Root-Is-Purelib: false" in meta and f"Tag: py3-none-{platform}" in meta
        # The licenses, and the README rendered on the package index.
        names = z.namelist()
        for license in ("LICENSE-MIT", "LICENSE-APACHE"):
            (path,) = [n for n in names if n.endswith(f".dist-info/licenses/{license}")]
            assert z.read(path) == (ROOT / license).read_bytes()
        metadata = z.read(f"libctc-{version}.dist-info/METADATA").decode()
        assert "License-Expression: MIT OR Apache-2.0" in metadata
        assert "Description-Content-Type: text/markdown" in metadata


def test_the_installed_wheel_loads_its_library_and_computes(wheel, tmp_path):
    installed_wheel_computes(wheel, tmp_path)


def installed_wheel_computes(wheel, tmp_path):
    """Installs `wheel` into a directory of its own and computes a loss with it, in a process
    that cannot import the source tree's package."""
    site = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    subprocess.run(cmd + ["--target", str(site), str(wheel)], check=True, timeout=300)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 3, 6))
    lp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    np.save(tmp_path / "lp.npy", lp)
    code = (
        "import numpy as np, libctc\n"
        "print(libctc.library_path())\n"
        "loss = libctc.ctc_loss(np.load('lp.npy'), [[1, 2, 3], [2, 2, 0], [5, 4, 1]], [20, 18, 15], [3, 2, 3],"
        " reduction='none')\n"
        "print(' '.join(repr(float(v)) for v in loss))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CTC_LIBRARY"}
    env["PYTHONPATH"] = str(site)  # numpy still comes from this interpreter's environment
    # Run from tmp_path so that the source tree's package cannot be imported instead.
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    path, losses = out.stdout.splitlines()
    assert path == str(site / "libctc" / "libctc.so")
    expected = libctc.ctc_loss(lp, [[1, 2, 3], [2, 2, 0], [5, 4, 1]], [20, 18, 15], [3, 2, 3], reduction="none")
    assert [float(v) for v in losses.split()] == pytest.approx(expected.tolist(), rel=1e-12)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """`python -m build --sdist bindings/python`, as a packager makes the source distribution."""
    pytest.importorskip("build", reason="the `build` package (pip install build) makes the sdist")
    out = tmp_path_factory.mktemp("sdist")
    cmd = [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT / "bindings" / "python")]
    run = subprocess.run(cmd, env=build_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    (built,) = out.glob("*.tar.gz")
    return built


def test_the_sdist_carries_the_crate_and_the_licenses(sdist):
    top = f"libctc-{libctc.__version__}"
    assert sdist.name == f"{top}.tar.gz"
    with tarfile.open(sdist) as t:
        files = {m.name[len(top) + 1 :] for m in t.getmembers() if m.isfile()}
        # The crate exactly as cargo packages it (tests/package.rs checks that list), under crate/.
        listed = subprocess.run(
            ["cargo", "package", "--list", "--allow-dirty", "--quiet"],
            cwd=ROOT, env=build_env(), check=True, capture_output=True, text=True,
        ).stdout.split()
        crate = {n for n in listed if (ROOT / n).is_file()}
        assert {n[len("crate/") :] for n in files if n.startswith("crate/")} == crate
        assert t.extractfile(f"{top}/crate/src/lib.rs").read() == (ROOT / "src" / "lib.rs").read_bytes()
        for license in ("LICENSE-MIT", "LICENSE-APACHE"):
            assert t.extractfile(f"{top}/{license}").read() == (ROOT / license).read_bytes()
        metadata = t.extractfile(f"{top}/PKG-INFO").read().decode()
        assert "License-Expression: MIT OR Apache-2.0" in metadata
        assert "Description-Content-Type: text/markdown" in metadata


def test_a_wheel_built_from_the_sdist_alone_computes(sdist, tmp_path):
    """pip builds from the sdist in a directory of its own, with no repository around it: the
    crate it compiles is the sdist's."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy2(sdist, alone)
    out = tmp_path / "wheel"
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps"]
    cmd += ["-w", str(out), str(alone / sdist.name)]
    run = subprocess.run(cmd, cwd=alone, env=build_env(), capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout + run.stderr
    (built,) = out.glob("*.whl")
    installed_wheel_computes(built, tmp_path)
