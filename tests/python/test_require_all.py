"""conftest.py's CTC_REQUIRE_ALL=1 rule, run on a throwaway suite: a skip (of a test, or of a
whole module at collection) fails the run, and the other tests still run; an expected failure
does not fail it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SUITE = {
    "test_skips.py": """
import pytest

def test_runs():
    pass

def test_skips():
    pytest.skip("a reason")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
""",
    "test_module_skip.py": """
import pytest
pytest.importorskip("no_such_module_anywhere")

def test_never_collected():
    pass
""",
}


def run_suite(tmp_path, require_all):
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    env = dict(os.environ, PYTHONPATH=str(HERE), CTC_REQUIRE_ALL="1" if require_all else "0")
    env.pop("CTC_SKIP_LOG", None)  # the inner run's deliberate skips are not the suite's
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "conftest"]
    cmd += ["--rootdir", str(tmp_path), str(tmp_path)]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("require_all", [False, True])
def test_skips_fail_only_when_everything_is_required(tmp_path, require_all):
    out = run_suite(tmp_path, require_all)
    text = out.stdout + out.stderr
    if require_all:
        assert out.returncode == pytest.ExitCode.TESTS_FAILED, text
        assert "1 passed, 2 skipped, 1 xfailed" in text, text
        assert "CTC_REQUIRE_ALL=1: skips fail this run" in text, text
        assert "skipped: test_skips.py::test_skips" in text and "skipped: test_module_skip.py" in text, text
    else:
        assert out.returncode == 0, text
        assert "1 passed, 2 skipped, 1 xfailed" in text and "CTC_REQUIRE_ALL" not in text, text
