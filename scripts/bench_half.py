#!/usr/bin/env python3
"""float16 against float32 at the kernel level: ``libctc.ctc_loss_grad(x, ..., num_threads=2,
out=buf)`` (the backward entry point into a preallocated output) on bench.py's five shapes, float32
arrays and the same values as float16, medians of 25 runs, the lower of two alternated rounds.

Usage: .venv/bin/python scripts/bench_half.py (after ``cargo build --release --lib``; the library
is ``$CTC_LIBRARY`` if set, else target/release/libctc.so)."""

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "bindings" / "python"))
os.environ.setdefault("CTC_LIBRARY", str(HERE.parent / "target" / "release" / "libctc.so"))
import numpy as np  # noqa: E402

import bench  # noqa: E402
import libctc  # noqa: E402


def median_ms(f, runs=25):
    for _ in range(3):
        f()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[runs // 2] * 1e3


def main():
    print(f"{'shape':<12} {'float32 ms':>10} {'float16 ms':>10} {'f16/f32':>8}")
    for shape in bench.SHAPES:
        lp, tg, il, tl = bench.make_data(np, shape, 1)
        res = {}
        for _ in range(2):
            for name, a in (("f32", lp), ("f16", lp.astype(np.float16))):
                out = np.empty_like(a)

                def call(a=a, out=out):
                    libctc.ctc_loss_grad(a, tg, il, tl, num_threads=2, out=out)

                res[name] = min(res.get(name, float("inf")), median_ms(call))
        print(f"{shape[0]:<12} {res['f32']:10.3f} {res['f16']:10.3f} {res['f16'] / res['f32']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
