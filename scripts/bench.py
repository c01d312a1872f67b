#!/usr/bin/env python3
"""CPU benchmark of libctc against torch.nn.functional.ctc_loss and a memory-copy anchor.

Runs, in one go and with the same thread count:

1. the Rust benchmark ``cargo bench --bench ctc_bench -- --threads N --json TMP`` (libctc's fused
   forward+backward through the C ABI, with and without a caller workspace, the forward alone,
   and the copy of a T*N*C float32 buffer on N threads and on one);
2. when numpy and the Python binding are importable: libctc through ``libctc.ctc_loss_and_grad``
   on numpy arrays;
3. when torch is importable: ``torch.nn.functional.ctc_loss`` forward + ``backward()`` (float32
   CPU, ``torch.set_num_threads(N)``) on exactly the same arrays as step 2, and a check that the
   losses and gradients of libctc and torch agree (max abs differences, and the error of each
   against torch's float64 result).

Then prints one table (libctc, copy, torch, torch/libctc), and optionally a markdown table
(``--markdown``), a JSON file with every figure (``--json-out``) and a bar chart (``--plot``).

Usage (from anywhere; paths are relative to the repository):

    CARGO_BUILD_JOBS=1 /work/torchenv/bin/python scripts/bench.py --threads 2 \\
        --markdown --json-out docs/benchmarks.json --plot docs/benchmarks.png

The library for the Python binding is ``$CTC_LIBRARY`` if set, else target/release/libctc.so
(built by this script with ``cargo build --release --lib`` unless ``--no-build``).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# name, T, N, C, (min, max) target length (inclusive): the same table as benches/ctc_bench.rs.
SHAPES = [
    ("seed", 50, 16, 20, (10, 30)),
    ("asr_char", 400, 32, 32, (80, 120)),
    ("asr_bpe", 250, 32, 1024, (40, 70)),
    ("large_vocab", 150, 16, 8000, (20, 40)),
    ("long", 2000, 4, 64, (500, 700)),
]
SHAPE_NAMES = [s[0] for s in SHAPES]

# The agreement check: libctc's float32 loss and gradient must be as close to torch's float64
# result as torch's own float32 result is, within a factor of two (README's accuracy claim), plus
# a few float32 ulps of the quantity (so that a result one rounding away from an exact torch
# result still passes).
ACCURACY_FACTOR = 2.0
ULPS = 4 * 2.0**-23


def check_ok(ch):
    loss_tol = ACCURACY_FACTOR * ch["torch_loss_err_vs_f64"] + ULPS * max(1.0, abs(ch["loss_f64"]))
    grad_tol = ACCURACY_FACTOR * ch["torch_grad_err_vs_f64"] + ULPS * ch["grad_max_abs"]
    return ch["libctc_loss_err_vs_f64"] <= loss_tol and ch["libctc_grad_err_vs_f64"] <= grad_tol


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="worker threads for libctc, torch and the copy (default 2)")
    p.add_argument("--shapes", default=",".join(SHAPE_NAMES), help="comma-separated shapes (default: all)")
    p.add_argument("--json-out", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--markdown", action="store_true", help="also print a markdown table for docs/benchmarks.md")
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart (needs matplotlib)")
    p.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement at least (default 0.5)")
    p.add_argument("--min-runs", type=int, default=20, help="runs per measurement at least (default 20)")
    p.add_argument(
        "--max-time", type=float, default=2.0, help="stop a measurement after this many seconds once it has 5 runs (default 2)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="measure every shape this many times, interleaved; each figure keeps its lowest median (default 2)",
    )
    p.add_argument("--seed", type=int, default=1, help="RNG seed of the inputs (default 1)")
    p.add_argument(
        "--max-interference",
        type=float,
        default=0.05,
        help="measure a figure again when other processes took more than this share of the CPUs meanwhile (default 0.05)",
    )
    p.add_argument("--attempts", type=int, default=4, help="measurements of one figure at most (default 4)")
    p.add_argument(
        "--max-wait",
        type=float,
        default=60.0,
        help="seconds each of the Rust and Python parts may wait in all for a quiet machine (default 60)",
    )
    p.add_argument("--no-build", action="store_true", help="do not run `cargo build --release --lib` first")
    p.add_argument("--no-rust", action="store_true", help="skip the Rust benchmark (Python-side figures only)")
    p.add_argument("--no-torch", action="store_true", help="skip torch even when it is importable")
    p.add_argument(
        "--from-json",
        metavar="PATH",
        help="measure nothing: print the tables (and --markdown, --plot) of a file written by --json-out",
    )
    p.add_argument(
        "--commit",
        help="revision to record (default: `git rev-parse --short HEAD`; for a tree exported with git archive)",
    )
    args = p.parse_args()
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.rounds < 1 or args.attempts < 1:
        p.error("--rounds and --attempts must be >= 1")
    Budget.seconds = args.max_wait
    args.shape_list = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in args.shape_list if s not in SHAPE_NAMES]
    if unknown or not args.shape_list:
        p.error(f"unknown shapes {unknown}; choose from {SHAPE_NAMES}")
    return args


# ---------------------------------------------------------------------------------------------
# Machine and revision


def run_text(cmd):
    try:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cpu_busy_seconds():
    """(CPU-seconds the whole machine spent busy, CPU-seconds of this process and its waited-for
    children): their difference over a run is what other processes took while it ran."""
    own = os.times()
    own_s = own.user + own.system + own.children_user + own.children_system
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None, own_s
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), own_s


def machine_info():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    commit = run_text(["git", "rev-parse", "--short", "HEAD"])
    # Whether the library's sources differ from the commit (None outside a git checkout).
    src_changes = run_text(["git", "status", "--porcelain", "--", "src", "build.rs"]) if commit else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "rustc": run_text(["rustc", "--version"]),
        "commit": commit,
        "src_modified": bool(src_changes),
        "load_average_at_start": load_average(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ---------------------------------------------------------------------------------------------
# Rust side


def cargo(cmd_args):
    env = dict(os.environ)
    env.setdefault("CARGO_BUILD_JOBS", "1")
    cmd = ["cargo", *cmd_args]
    print("$", " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=REPO, env=env).returncode != 0:
        sys.exit(f"bench.py: `{' '.join(cmd)}` failed")


def library_path():
    """The shared library the Python binding loads here: $CTC_LIBRARY, else target/release."""
    return Path(os.environ.get("CTC_LIBRARY") or REPO / "target" / "release" / "libctc.so")


def run_rust_bench(args):
    dylib = library_path()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ctc_bench.json"
        cargo(
            [
                "bench",
                "--bench",
                "ctc_bench",
                "--",
                "--threads",
                str(args.threads),
                "--shapes",
                ",".join(args.shape_list),
                "--json",
                str(path),
                "--min-time",
                str(args.min_time),
                "--min-runs",
                str(args.min_runs),
                "--max-time",
                str(args.max_time),
                "--seed",
                str(args.seed),
                "--rounds",
                str(args.rounds),
                "--max-interference",
                str(args.max_interference),
                "--attempts",
                str(args.attempts),
                "--max-wait",
                str(args.max_wait),
                *(["--dylib", str(dylib)] if dylib.is_file() else []),
            ]
        )
        return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------
# Python side


def cpu_ticks():
    """(busy, total) CPU seconds of the whole machine and this process's CPU seconds (all its
    threads), or None without /proc."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    total = sum(fields)
    own = os.times()
    return (total - fields[3] - fields[4]) / hz, total / hz, own.user + own.system


def interference(a, b):
    """Share of the machine's CPU time other processes took between two cpu_ticks()."""
    if a is None or b is None or b[1] <= a[1]:
        return None
    return min(1.0, max(0.0, ((b[0] - a[0]) - (b[2] - a[2])) / (b[1] - a[1])))


class Budget:
    """What is left of the time the benchmark may spend waiting for a quiet machine."""

    seconds = 60.0


def wait_for_quiet(args):
    start = time.monotonic()
    while time.monotonic() - start < Budget.seconds:
        a = cpu_ticks()
        time.sleep(0.25)
        i = interference(a, cpu_ticks())
        if i is None or i <= args.max_interference:
            break
    Budget.seconds = max(0.0, Budget.seconds - (time.monotonic() - start))


def measure(fn, args):
    """As the Rust benchmark: measure_once; when other processes took more than
    --max-interference of the machine meanwhile, wait for a quiet moment and measure again (at
    most --attempts times, --max-wait seconds of waiting in all); keep the least disturbed."""
    best = None
    for attempt in range(1, args.attempts + 1):
        if attempt > 1:
            if Budget.seconds <= 0:
                break
            wait_for_quiet(args)
        before = cpu_ticks()
        stats = measure_once(fn, args)
        stats["interference"] = interference(before, cpu_ticks())
        stats["attempts"] = attempt
        if best is None or (stats["interference"] or 0.0) < (best["interference"] or 0.0):
            best = stats
        if (stats["interference"] or 0.0) <= args.max_interference:
            break
    return best


def measure_once(fn, args):
    """Median and minimum in ms: warm-up, then runs until >= min_runs and >= min_time, or
    >= 5 runs and max_time (the rule of the Rust benchmark)."""
    warm = time.perf_counter()
    k = 0
    while k < 2 or (k < 1000 and time.perf_counter() - warm < 0.05):
        fn()
        k += 1
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1e3)
        elapsed = t1 - start
        n = len(times)
        if (n >= args.min_runs and elapsed >= args.min_time) or (n >= 5 and elapsed >= args.max_time) or n >= 10**6:
            break
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return {"median_ms": median, "min_ms": times[0], "runs": n}


def make_data(np, shape, seed):
    """log_softmax of standard normal logits (computed in float64, stored float32), labels uniform
    in [1, C), target lengths uniform in the inclusive range, input length T, padded int64."""
    name, t, n, c, (lo, hi) = shape
    rng = np.random.default_rng([seed, SHAPE_NAMES.index(name)])
    logits = rng.standard_normal((t, n, c))
    logits -= logits.max(axis=2, keepdims=True)
    log_probs = (logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))).astype(np.float32)
    target_lengths = rng.integers(lo, hi + 1, size=n).astype(np.int64)
    targets = rng.integers(1, c, size=(n, hi)).astype(np.int64)
    input_lengths = np.full(n, t, dtype=np.int64)
    return log_probs, targets, input_lengths, target_lengths


def python_side(args, np, libctc, torch):
    """Checks libctc against torch on every shape, then times both, --rounds times interleaved
    over the shapes; each figure keeps its lowest median."""
    results, calls = {}, {}
    if torch is not None:
        torch.set_num_threads(args.threads)
        F = torch.nn.functional
    for shape in SHAPES:
        name = shape[0]
        if name not in args.shape_list:
            continue
        lp, tg, il, tl = make_data(np, shape, args.seed)
        r = {}

        def lib_call(lp=lp, tg=tg, il=il, tl=tl):
            return libctc.ctc_loss_and_grad(lp, tg, il, tl, blank=0, reduction="mean", num_threads=args.threads)

        loss_l, grad_l = lib_call()
        r["libctc_loss"] = float(loss_l)
        calls[name] = {"libctc_py": lib_call}

        if torch is not None:
            lp_t = torch.from_numpy(lp).requires_grad_(True)
            tg_t, il_t, tl_t = (torch.from_numpy(a) for a in (tg, il, tl))

            def torch_call(lp_t=lp_t, tg_t=tg_t, il_t=il_t, tl_t=tl_t):
                lp_t.grad = None
                loss = F.ctc_loss(lp_t, tg_t, il_t, tl_t, blank=0, reduction="mean")
                loss.backward()
                return loss

            loss_t = torch_call().detach().numpy().copy()
            grad_t = lp_t.grad.numpy().copy()
            r["torch_loss"] = float(loss_t)
            calls[name]["torch"] = torch_call

            # float64 reference (not timed) to say which float32 result is closer to the truth.
            lp64 = torch.from_numpy(lp.astype(np.float64)).requires_grad_(True)
            loss64 = F.ctc_loss(lp64, tg_t, il_t, tl_t, blank=0, reduction="mean")
            loss64.backward()
            loss64 = loss64.item()
            grad64 = lp64.grad.numpy()

            gmax = float(np.abs(grad64).max())
            check = {
                "loss_abs_diff": abs(float(loss_l) - float(loss_t)),
                "grad_max_abs_diff": float(np.abs(grad_l.astype(np.float64) - grad_t).max()),
                "grad_max_abs": gmax,
                "libctc_loss_err_vs_f64": abs(float(loss_l) - loss64),
                "torch_loss_err_vs_f64": abs(float(loss_t) - loss64),
                "libctc_grad_err_vs_f64": float(np.abs(grad_l - grad64).max()),
                "torch_grad_err_vs_f64": float(np.abs(grad_t - grad64).max()),
            }
            check["loss_f64"] = loss64
            check["ok"] = bool(check_ok(check))
            r["check"] = check
            del lp64, grad64, loss_t, grad_t
        del loss_l, grad_l
        results[name] = r

    for rnd in range(1, args.rounds + 1):
        print(f"round {rnd}/{args.rounds}:", end="", flush=True)
        for name, fns in calls.items():
            print(f" {name}", end="", flush=True)
            for key, fn in fns.items():
                stats = measure(fn, args)
                old = results[name].get(key)
                if old is None or stats["median_ms"] < old["median_ms"]:
                    results[name][key] = stats
        print(flush=True)
    return results


# ---------------------------------------------------------------------------------------------
# Report


def fmt_ms(x):
    if x is None:
        return "-"
    return f"{x:.3f}" if x >= 0.1 else f"{x:.4f}"


def combine(args, rust, py):
    rows = []
    rust_by_name = {s["name"]: s for s in rust["shapes"]} if rust else {}
    for name, t, n, c, (lo, hi) in SHAPES:
        if name not in args.shape_list:
            continue
        rs, ps = rust_by_name.get(name), py.get(name, {})
        med = lambda d, k: d[k]["median_ms"] if d and k in d else None  # noqa: E731
        row = {
            "name": name,
            "T": t,
            "N": n,
            "C": c,
            "targets": f"{lo}..{hi}",
            "libctc_ms": med(rs, "fused"),
            "libctc_min_ms": rs["fused"]["min_ms"] if rs else None,
            "libctc_no_ws_ms": med(rs, "fused_no_workspace"),
            "libctc_so_ms": rs["fused_dylib"]["median_ms"] if rs and rs.get("fused_dylib") else None,
            "forward_ms": med(rs, "forward"),
            "copy_ms": med(rs, "copy"),
            "copy_1t_ms": med(rs, "copy_1thread"),
            "libctc_py_ms": med(ps, "libctc_py"),
            "torch_ms": med(ps, "torch"),
            "check": ps.get("check"),
        }
        if row["check"] is not None and "loss_f64" not in row["check"]:
            # A file from an older version of this script: torch's float32 loss sets the scale.
            row["check"]["loss_f64"] = ps.get("torch_loss", 1.0)
        row["libctc_over_copy"] = (
            row["libctc_ms"] / row["copy_ms"] if row["libctc_ms"] and row["copy_ms"] else None
        )
        # torch vs libctc on the same arrays, both called from Python and allocating their outputs.
        ref = row["libctc_py_ms"] or row["libctc_ms"]
        row["torch_over_libctc"] = row["torch_ms"] / ref if row["torch_ms"] and ref else None
        # The largest share of the CPUs other processes took while a figure of this row was measured.
        stats = [v for d in (rs or {}, ps) for v in d.values() if isinstance(v, dict) and "median_ms" in v]
        shares = [v["interference"] for v in stats if v.get("interference") is not None]
        row["interference"] = max(shares) if shares else None
        rows.append(row)
    return rows


def pct(share, args):
    """Other processes' share of the CPUs in percent, starred above --max-interference."""
    if share is None:
        return "-"
    return f"{100 * share:.1f}%" + ("*" if share > args.max_interference else "")


def ratio(x):
    return "-" if x is None else (f"{x:.2f}" if x < 10 else f"{x:.0f}")


def print_table(args, rows):
    head = (
        f"{'shape':<12} {'T':>5} {'N':>3} {'C':>5} {'L':>8} | {'libctc':>9} {'lib .so':>9} {'lib py':>9} {'fwd':>9} | "
        f"{'copy':>8} {'copy 1T':>8} | {'torch':>9} | {'lib/copy':>8} {'torch/lib':>9} | "
        f"{'loss diff':>9} {'grad diff':>9}  check | other%"
    )
    print()
    print(f"milliseconds, median; {args.threads} threads (libctc options.num_threads, torch.set_num_threads, copy)")
    print(head)
    print("-" * len(head))
    for r in rows:
        ch = r["check"]
        print(
            f"{r['name']:<12} {r['T']:>5} {r['N']:>3} {r['C']:>5} {r['targets']:>8} | "
            f"{fmt_ms(r['libctc_ms']):>9} {fmt_ms(r.get('libctc_so_ms')):>9} {fmt_ms(r['libctc_py_ms']):>9} "
            f"{fmt_ms(r['forward_ms']):>9} | "
            f"{fmt_ms(r['copy_ms']):>8} {fmt_ms(r['copy_1t_ms']):>8} | {fmt_ms(r['torch_ms']):>9} | "
            f"{ratio(r['libctc_over_copy']):>8} {ratio(r['torch_over_libctc']):>9} | "
            + (
                f"{ch['loss_abs_diff']:>9.2e} {ch['grad_max_abs_diff']:>9.2e}  {'ok' if check_ok(ch) else 'MISMATCH'}"
                if ch
                else f"{'-':>9} {'-':>9}  -"
            )
            + f"{'':>{3 if ch and check_ok(ch) else 1}}| {pct(r['interference'], args)}"
        )
    print(
        "libctc: Rust, C ABI ctc_loss_forward_backward with a caller workspace (rlib linked into the bench);"
        " lib .so: the same\ncall through target/release/libctc.so; lib py: libctc.ctc_loss_and_grad on the torch arrays;\nfwd: ctc_loss_forward; copy: T*N*C float32 buffer copied (N threads, 1 thread);"
        " torch: F.ctc_loss + backward();\nlib/copy = libctc / copy; torch/lib = torch / lib py (>1: libctc"
        " faster); diffs: max |libctc - torch| of the loss and the gradient;\nother%: the largest share of the CPUs"
        f" other processes took while a figure of the row was measured (* above {100 * args.max_interference:.0f}%: noisy)."
    )


def print_markdown(args, info, rows):
    print()
    print(f"libctc at commit `{info['commit']}`" + (" (src/ modified)" if info["src_modified"] else "") + f", {info['date']}; "
          f"{args.threads} threads; {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; "
          f"load average {info['load_average_at_start']} at start, {info['load_average_at_end']} at end; "
          f"other processes took {100 * info.get('other_processes_share', float('nan')):.1f}% of the CPUs during the run.")
    print()
    cols = [
        ("shape", "---", lambda r: r["name"]),
        ("T", "--:", lambda r: r["T"]),
        ("N", "--:", lambda r: r["N"]),
        ("C", "--:", lambda r: r["C"]),
        ("target lengths", "---", lambda r: r["targets"]),
        ("libctc fused (ms)", "--:", lambda r: fmt_ms(r["libctc_ms"])),
        ("no workspace (ms)", "--:", lambda r: fmt_ms(r["libctc_no_ws_ms"])),
        ("libctc.so (ms)", "--:", lambda r: fmt_ms(r.get("libctc_so_ms"))),
        ("forward only (ms)", "--:", lambda r: fmt_ms(r["forward_ms"])),
        ("libctc via Python (ms)", "--:", lambda r: fmt_ms(r["libctc_py_ms"])),
        (f"copy, {args.threads} threads (ms)", "--:", lambda r: fmt_ms(r["copy_ms"])),
        ("copy, 1 thread (ms)", "--:", lambda r: fmt_ms(r["copy_1t_ms"])),
        ("torch (ms)", "--:", lambda r: fmt_ms(r["torch_ms"])),
        ("libctc / copy", "--:", lambda r: ratio(r["libctc_over_copy"])),
        ("torch / libctc", "--:", lambda r: ratio(r["torch_over_libctc"])),
        ("other processes", "--:", lambda r: pct(r["interference"], args)),
    ]
    print("| " + " | ".join(c[0] for c in cols) + " |")
    print("|" + "|".join(c[1] for c in cols) + "|")
    for r in rows:
        print("| " + " | ".join(str(c[2](r)) for c in cols) + " |")


def print_markdown_accuracy(rows):
    checked = [r for r in rows if r["check"]]
    if not checked:
        return
    print()
    print(
        "| shape | max \\|grad\\| | \\|loss libctc - loss torch\\| | max \\|grad libctc - grad torch\\| "
        "| libctc loss error | torch loss error | libctc grad error | torch grad error |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in checked:
        ch = r["check"]
        print(
            f"| {r['name']} | {ch['grad_max_abs']:.2e} | {ch['loss_abs_diff']:.1e} | {ch['grad_max_abs_diff']:.1e} "
            f"| {ch['libctc_loss_err_vs_f64']:.1e} | {ch['torch_loss_err_vs_f64']:.1e} "
            f"| {ch['libctc_grad_err_vs_f64']:.1e} | {ch['torch_grad_err_vs_f64']:.1e} |"
        )


def plot(path, args, info, rows):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"plot skipped: matplotlib is not importable from {sys.executable}")
        return False
    series = [
        ("libctc (C ABI, bench binary)", "libctc_ms", "#1f77b4"),
        ("libctc (C ABI, libctc.so)", "libctc_so_ms", "#6baed6"),
        ("libctc (Python)", "libctc_py_ms", "#c6dbef"),
        ("torch", "torch_ms", "#d62728"),
        (f"copy ({args.threads} threads)", "copy_ms", "#7f7f7f"),
    ]
    series = [s for s in series if any(r.get(s[1]) for r in rows)]
    fig, ax = plt.subplots(figsize=(11, 4.8))
    width = 0.8 / len(series)
    for i, (label, key, color) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(rows))]
        ys = [r.get(key) or float("nan") for r in rows]
        bars = ax.bar(xs, ys, width, label=label, color=color)
        for b, y in zip(bars, ys):
            if y == y:
                ax.annotate(f"{y:.3g}", (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom", fontsize=6)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r['name']}\nT={r['T']} N={r['N']} C={r['C']}" for r in rows], fontsize=8)
    ax.set_ylabel("ms per forward+backward (median, log scale)")
    title = f"CTC float32 forward+backward, {args.threads} threads, {info['cpu']}"
    sub = f"libctc {info['commit']}" + (" (src modified)" if info["src_modified"] else "") + f", {info['date']}"
    ax.set_title(f"{title}\n{sub}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")
    return True


def measure_all(args):
    """Runs every measurement; returns the document --json-out writes."""
    info = machine_info()
    if args.commit:
        info["commit"], info["src_modified"] = args.commit, False
    print(
        f"commit {info['commit']}{' (src modified)' if info['src_modified'] else ''}, {info['date']}; "
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; threads {args.threads}; "
        f"load average {info['load_average_at_start']}",
        flush=True,
    )
    load = info["load_average_at_start"]
    if load and load[0] > 1.0:
        print(f"warning: the machine is busy (1-minute load {load[0]}): timings will be noisy", flush=True)

    if not args.no_build:
        cargo(["build", "--release", "--lib"])
    busy0, own0, wall0 = *cpu_busy_seconds(), time.monotonic()
    rust = None if args.no_rust else run_rust_bench(args)

    py, torch_version, notes = {}, None, []
    try:
        import numpy as np
    except ImportError:
        np = None
        notes.append(f"numpy is not importable from {sys.executable}: Python-side figures skipped")
    if np is not None:
        os.environ["CTC_LIBRARY"] = str(library_path())
        sys.path.insert(0, str(REPO / "bindings" / "python"))
        import libctc

        torch = None
        if not args.no_torch:
            try:
                import torch

                torch_version = torch.__version__
            except ImportError:
                notes.append(f"torch is not importable from {sys.executable}: torch figures skipped")
        print(f"\nPython side: libctc {libctc.library_path()}, torch {torch_version or '-'}", flush=True)
        py = python_side(args, np, libctc, torch)

    info["load_average_at_end"] = load_average()
    busy1, own1 = cpu_busy_seconds()
    wall = time.monotonic() - wall0
    if busy0 is not None and busy1 is not None:
        foreign = max(0.0, (busy1 - busy0) - (own1 - own0))
        info["other_processes_cpu_s"] = round(foreign, 1)
        info["other_processes_share"] = round(foreign / (wall * (os.cpu_count() or 1)), 3)
    info["measure_wall_s"] = round(wall, 1)
    return {
        "machine": info,
        "threads": args.threads,
        "max_interference": args.max_interference,
        "rounds": args.rounds,
        "torch_version": torch_version,
        "notes": notes,
        "rows": combine(args, rust, py),
        "rust": rust,
        "python": py,
    }


def main():
    args = parse_args()
    if args.from_json:
        doc = json.loads(Path(args.from_json).read_text())
        args.threads = doc["threads"]
        args.max_interference = doc.get("max_interference", args.max_interference)
        for r in doc["rows"]:
            if r["check"] is not None and "loss_f64" not in r["check"]:
                # A file from an older version of this script: torch's float32 loss sets the scale.
                r["check"]["loss_f64"] = doc["python"].get(r["name"], {}).get("torch_loss", 1.0)
    else:
        doc = measure_all(args)
    info, rows = doc["machine"], doc["rows"]
    print_table(args, rows)
    if "other_processes_share" in info:
        share = info["other_processes_share"]
        print(
            f"other processes used {info['other_processes_cpu_s']} CPU-s during the {info['measure_wall_s']:.0f} s "
            f"of measurements ({100 * share:.1f}% of the machine)" + ("; timings are NOT clean" if share > 0.03 else "")
        )
    for note in doc.get("notes", []):
        print(note)
    if args.markdown:
        print_markdown(args, info, rows)
        print_markdown_accuracy(rows)
    if args.plot:
        plot(args.plot, args, info, rows)
    if args.json_out and not args.from_json:
        Path(args.json_out).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    bad = [r["name"] for r in rows if r["check"] and not check_ok(r["check"])]
    if bad:
        print(
            "libctc's float32 result is further from torch's float64 result than "
            f"{ACCURACY_FACTOR:g} x torch's float32 error (+ 4 ulps) on: {', '.join(bad)}"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
