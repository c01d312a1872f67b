import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Test the package from the source tree (the Rust runner sets CTC_LIBRARY to the built library).
sys.path.insert(0, str(ROOT / "bindings" / "python"))

GOLDEN = ROOT / "tests" / "data" / "golden"


def _num(v):
    if isinstance(v, str):
        return {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}[v]
    return v


def _nums(v):
    return [_num(x) for x in v] if isinstance(v, list) else [_num(v)]


def load_golden(path):
    d = json.loads(Path(path).read_text())
    d["log_probs"] = _nums(d["log_probs"])
    for key in ("expected", "expected_torch_f32"):
        d[key]["loss"] = _nums(d[key]["loss"])
        d[key]["grad"] = _nums(d[key]["grad"])
    d["grad_out"] = _nums(d["grad_out"])
    return d


GOLDEN_FILES = sorted(GOLDEN.glob("*.json"))


@pytest.fixture(params=GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def golden(request):
    return load_golden(request.param)
