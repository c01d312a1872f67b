"""examples/torch_training_step.py, the training loop of a torch user with the drop-in: it runs,
the loss falls, and every step's loss and gradient agree with torch.nn.CTCLoss."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT


def test_torch_training_step_example_learns_and_agrees_with_torch():
    pytest.importorskip("torch", reason="torch is not installed: the example needs it")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python"))
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "torch_training_step.py"), "30"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    words = out[-1].split()
    first, last, worst = float(words[1]), float(words[3].rstrip(";")), float(words[-1])
    assert last < first / 4, out
    assert worst < 1e-5, out
