#!/usr/bin/env python3
"""The pipeline a torch user runs, from logits: ``log_softmax`` + ``ctc_loss`` forward + backward
to the logits, three ways, in the same run, on the five benchmark shapes (float32 CPU):

- ``torch``: ``F.ctc_loss(x.log_softmax(-1), ...)`` then ``backward()``;
- ``unfused``: the same with libctc's drop-in ``libctc.functional.ctc_loss`` (torch's
  log_softmax forward and backward around libctc's fused loss and gradient);
- ``fused``: ``libctc.functional.ctc_loss(x, ..., from_logits=True)`` then ``backward()`` (the
  log_softmax inside the library, never stored);
- ``numpy``: the fused call without torch, ``libctc.ctc_loss_and_grad(x, ..., from_logits=True)``
  on the numpy array (what bench.py times for log-probabilities).

Each figure is the lowest median of --rounds measurements interleaved over the shapes and the
three ways (bench.py's rule: re-measured when other processes took more than
--max-interference of the machine). Before timing, the three results are compared with a
float64 torch reference (loss and gradient with respect to the logits).

Usage: CARGO_BUILD_JOBS=1 .venv/bin/python scripts/bench_logits.py --threads 2 [--markdown]
[--json-out PATH]. The library is ``$CTC_LIBRARY`` if set, else target/release/libctc.so (built
first unless --no-build).
"""

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402

WAYS = ("torch", "unfused", "fused", "numpy")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--shapes", default=",".join(bench.SHAPE_NAMES))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--min-runs", type=int, default=20)
    p.add_argument("--max-time", type=float, default=2.0)
    p.add_argument("--max-interference", type=float, default=0.05)
    p.add_argument("--attempts", type=int, default=4)
    p.add_argument("--max-wait", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--json-out", metavar="PATH")
    args = p.parse_args()
    bench.Budget.seconds = args.max_wait
    args.shape_list = [s for s in args.shapes.split(",") if s]
    return args


def logits_of(np, shape, seed):
    """Standard-normal logits (float32) and bench.py's targets and lengths for the shape."""
    _, tg, il, tl = bench.make_data(np, shape, seed)
    name, t, n, c, _ = shape
    rng = np.random.default_rng([seed + 1000, bench.SHAPE_NAMES.index(name)])
    return rng.standard_normal((t, n, c)).astype(np.float32), tg, il, tl


def calls(torch, libctc, x, tg, il, tl, threads):
    """The pipelines on one problem: each returns (loss, gradient w.r.t. the logits)."""
    F = torch.nn.functional
    xs = {w: torch.from_numpy(x.copy()).requires_grad_(True) for w in WAYS}
    args = (x, tg, il, tl)
    tg, il, tl = (torch.from_numpy(a) for a in (tg, il, tl))

    def run(way):
        if way == "numpy":

            def call_numpy():
                loss, grad = libctc.ctc_loss_and_grad(*args, num_threads=threads, from_logits=True)
                return torch.from_numpy(loss), torch.from_numpy(grad)

            return call_numpy
        v = xs[way]

        def call():
            v.grad = None
            if way == "torch":
                loss = F.ctc_loss(v.log_softmax(-1), tg, il, tl)
            elif way == "unfused":
                loss = libctc.functional.ctc_loss(v.log_softmax(-1), tg, il, tl)
            else:
                loss = libctc.functional.ctc_loss(v, tg, il, tl, from_logits=True)
            loss.backward()
            return loss.detach(), v.grad

        return call

    return {w: run(w) for w in WAYS}


def check(torch, x, tg, il, tl, fns):
    """Max abs errors of each way against torch's float64 pipeline."""
    F = torch.nn.functional
    x64 = torch.from_numpy(x.astype("float64")).requires_grad_(True)
    ref = F.ctc_loss(x64.log_softmax(-1), *(torch.from_numpy(a) for a in (tg, il, tl)))
    ref.backward()
    out = {}
    for w, fn in fns.items():
        loss, grad = fn()
        out[w] = {
            "loss_err": abs(float(loss.detach()) - float(ref.detach())),
            "grad_err": float((grad.double() - x64.grad).abs().max()),
        }
    return out


def main():
    args = parse_args()
    import numpy as np
    import torch

    if not args.no_build:
        bench.cargo(["build", "--release", "--lib"])
    os.environ.setdefault("CTC_LIBRARY", str(bench.library_path()))
    sys.path.insert(0, str(bench.REPO / "bindings" / "python"))
    import libctc
    import libctc.functional  # noqa: F401

    torch.set_num_threads(args.threads)
    info = bench.machine_info()
    print(f"commit {info['commit']}, {info['cpu']}, threads {args.threads}, torch {torch.__version__}", flush=True)
    problems, results = {}, {}
    for shape in bench.SHAPES:
        if shape[0] in args.shape_list:
            x, tg, il, tl = logits_of(np, shape, args.seed)
            fns = calls(torch, libctc, x, tg, il, tl, args.threads)
            problems[shape[0]] = fns
            results[shape[0]] = {"check": check(torch, x, tg, il, tl, fns)}
    busy0, own0 = bench.cpu_busy_seconds()
    for rnd in range(1, args.rounds + 1):
        print(f"round {rnd}/{args.rounds}:", end="", flush=True)
        for name, fns in problems.items():
            print(f" {name}", end="", flush=True)
            for w, fn in fns.items():
                stats = bench.measure(fn, args)
                old = results[name].get(w)
                if old is None or stats["median_ms"] < old["median_ms"]:
                    results[name][w] = stats
        print(flush=True)
    busy1, own1 = bench.cpu_busy_seconds()
    print(
        f"\n{'shape':<12} {'torch ms':>9} {'unfused ms':>11} {'fused ms':>9} {'numpy ms':>9} "
        f"{'unfused/fused':>14} {'torch/fused':>12} {'torch/numpy':>12}"
    )
    for name, r in results.items():
        t, u, f, n = (r[w]["median_ms"] for w in WAYS)
        print(f"{name:<12} {t:9.3f} {u:11.3f} {f:9.3f} {n:9.3f} {u / f:14.2f} {t / f:12.1f} {t / n:12.1f}")
    for name, r in results.items():
        errs = ", ".join(f"{w} {r['check'][w]['loss_err']:.1e}/{r['check'][w]['grad_err']:.1e}" for w in WAYS)
        print(f"{name}: loss/gradient errors against float64: {errs}")
    if busy0 is not None and busy1 is not None:
        print(f"other processes: {max(0.0, (busy1 - busy0) - (own1 - own0)):.1f} CPU-s during the measurements")
    if args.markdown:
        print(
            "\n| shape | torch pipeline ms | libctc unfused ms | libctc from_logits ms | numpy from_logits ms "
            "| unfused / fused | torch / fused | torch / numpy |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            t, u, f, n = (r[w]["median_ms"] for w in WAYS)
            print(f"| {name} | {t:.3f} | {u:.3f} | {f:.3f} | {n:.3f} | {u / f:.2f}x | {t / f:.1f}x | {t / n:.1f}x |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"machine": info, "threads": args.threads, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
