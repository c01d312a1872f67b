#!/usr/bin/env python3
"""Writes tests/data/golden-logits/: golden cases for CTC_INPUT_LOGITS from torch itself.

The reference is what a torch user computes from logits x: ctc_loss(log_softmax(x)), its loss
and its gradient with respect to x through autograd, in float64 (`expected`), and the same in
float32 (`expected_torch_f32`, the yardstick of float32 accuracy). The files have the format of
tests/data/golden/ (see its README), with `"input": "logits"` and the logits in the `log_probs`
field; every logit is exactly representable in float32.

    .venv/bin/python scripts/make_golden_logits.py    # torch 2.15, CPU; deterministic

Masked (-inf) logits are not here: torch's gradient is NaN there (its ctc_loss backward gives
NaN at a -inf log-probability), while libctc's is the finite softmax - posterior; tests/logits.rs
checks those against a float64 reference.
"""

import json
import math
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "golden-logits"


def number(x):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def numbers(t):
    return [number(v) for v in t.reshape(-1).tolist()]


def run(x, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, grad_out, dtype):
    x = x.to(dtype).detach().requires_grad_()
    loss = torch.nn.functional.ctc_loss(
        x.log_softmax(-1), targets, input_lengths, target_lengths,
        blank=blank, reduction=reduction, zero_infinity=zero_infinity,
    )
    (loss * grad_out.to(dtype)).sum().backward()
    return loss.detach().double(), x.grad.double()


def case(name, description, T, N, C, S, *, seed, scale=1.0, offsets=0.0, blank=0, reduction="mean",
         zero_infinity=False, layout="padded", batched=True, input_lengths=None, target_lengths=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, N, C, generator=g, dtype=torch.float64) * scale
    if offsets:
        # A large per-frame constant: log_softmax removes it; a shift by the frame's maximum or
        # log-sum-exp must too.
        x = x + offsets * torch.randn(T, N, 1, generator=g, dtype=torch.float64)
    x = x.float().double()  # exactly representable in float32
    if input_lengths is None:
        input_lengths = [T - (b % 3) for b in range(N)]
    if target_lengths is None:
        target_lengths = [max(0, S - (b % 2)) for b in range(N)]
    labels = [c for c in range(C) if c != blank]
    padded = torch.tensor(
        [[labels[int(torch.randint(len(labels), (1,), generator=g))] for _ in range(S)] for _ in range(N)],
        dtype=torch.long,
    ).reshape(N, S)
    il = torch.tensor(input_lengths)
    tl = torch.tensor(target_lengths)
    if layout == "concatenated":
        targets = torch.cat([padded[b, : target_lengths[b]] for b in range(N)])
    else:
        targets = padded
    per_sample = reduction == "none" and batched
    grad_out = torch.linspace(0.5, 1.5, N, dtype=torch.float64) if per_sample else torch.tensor(1.25, dtype=torch.float64)
    if batched:
        args = (x, targets, il, tl)
    else:
        args = (x[:, 0], padded[0, : target_lengths[0]], il[0], tl[0])
    loss, grad = run(*args, blank, reduction, zero_infinity, grad_out, torch.float64)
    loss32, grad32 = run(*args, blank, reduction, zero_infinity, grad_out, torch.float32)
    return {
        "name": name,
        "description": description,
        "input": "logits",
        "batched": batched,
        "T": T,
        "N": N if batched else 1,
        "C": C,
        "S": S if layout == "padded" else None,
        "blank": blank,
        "reduction": reduction,
        "zero_infinity": zero_infinity,
        "targets_layout": layout if batched else "concatenated",
        "targets": (targets if batched else padded[0, : target_lengths[0]]).reshape(-1).tolist(),
        "input_lengths": il.tolist() if batched else [int(il[0])],
        "target_lengths": tl.tolist() if batched else [int(tl[0])],
        "grad_out": numbers(grad_out) if per_sample else float(grad_out),
        "log_probs": numbers(args[0]),
        "expected": {"loss": numbers(loss) if loss.dim() else number(loss.item()), "grad": numbers(grad)},
        "expected_torch_f32": {
            "loss": numbers(loss32) if loss32.dim() else number(loss32.item()),
            "grad": numbers(grad32),
        },
    }


CASES = [
    dict(name="logits_mean", description="random logits, mean reduction", T=30, N=4, C=8, S=6, seed=1),
    dict(name="logits_sum_blank_last", description="sum reduction, blank = C - 1", T=25, N=3, C=6, S=5,
         seed=2, reduction="sum", blank=5),
    dict(name="logits_none_concatenated", description="per-sample losses, concatenated targets", T=20,
         N=5, C=7, S=4, seed=3, reduction="none", layout="concatenated"),
    dict(name="logits_peaked", description="peaked logits (scale 40)", T=24, N=2, C=9, S=5, seed=4,
         scale=40.0),
    dict(name="logits_frame_offsets", description="per-frame offsets of about 1e4", T=20, N=3, C=6, S=4,
         seed=5, offsets=1e4),
    dict(name="logits_unbatched", description="(T, C) logits, (S,) targets", T=16, N=1, C=5, S=4, seed=6,
         batched=False, reduction="sum"),
    dict(name="logits_impossible_zero_infinity", description="an impossible sample with zero_infinity",
         T=6, N=3, C=5, S=5, seed=7, zero_infinity=True, reduction="none", input_lengths=[6, 3, 4],
         target_lengths=[2, 5, 0]),
    dict(name="logits_wide", description="1000 classes (the streamed-row paths)", T=12, N=2, C=1000, S=4,
         seed=8),
    dict(name="logits_long", description="T = 300 with 80 labels", T=300, N=1, C=12, S=80, seed=9,
         reduction="sum"),
]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for spec in CASES:
        c = case(**spec)
        (OUT / f"{c['name']}.json").write_text(json.dumps(c, separators=(",", ":")) + "\n")
        print(f"wrote {c['name']}: loss {c['expected']['loss'] if not isinstance(c['expected']['loss'], list) else c['expected']['loss'][:3]}")
    print(f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
