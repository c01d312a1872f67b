#!/usr/bin/env python3
"""CPU benchmark of libctc's forced alignment (ctc_align) against torchaudio.functional.forced_align
and ctc-forced-aligner (PyPI), the cases of issue 16 ("Forced alignment").

Runs, with the venv that holds torch 2.11, torchaudio 2.11 and (optionally) ctc-forced-aligner:

    /root/.cache/libctc-bench/venv-ta211/bin/python scripts/bench_align.py \\
        --lib target/release/libctc.so --json bench_align.json --plot docs/img/bench_align.png

libctc is called through ctypes on the C ABI (include/ctc.h) directly, with the structures and
signatures the Python binding declares (bindings/python/libctc/_native.py, loaded by its path,
so the torch-2.11 environment needs no libctc package), passing numpy arrays zero-copy (log_probs of a
batch as a (T, N, C) view of (N, T, C) memory, the path as a (T, N) view of (N, T) memory).
libctc brings no workspace (options.workspace = NULL: the library's own cached scratch memory,
as a caller that does not manage memory gets).

Cases (inputs: random logits peaked along a random monotone "true" alignment of a random
transcript, then log_softmax, float32; deterministic from --seed):

- single utterances, 1 thread (libctc num_threads=1, torch.set_num_threads(1)): the 30-second
  (T=1500, L=400) and 10-minute (T=30000, L=6000) cases of the issue, plus a sweep of T for the
  plot. Repetitions alternate libctc / torchaudio / ctc-forced-aligner; median and range.
- a batch of 32 utterances, T uniform in [500, 3000], L = T/4: libctc one batched call with 2
  threads; torchaudio (batch 1 only) looping over the batch with torch.set_num_threads(2), and
  the same loop over 2 Python threads (its kernel is single-threaded and releases the GIL, so
  this is the best a torchaudio user gets from 2 cores); throughput in utterances/s.
- memory (one child process per aligner and case, input allocated before the measurement): one
  hour (T=180000, L=40000) for every aligner, and 4 hours (T=720000, L=150000) for libctc only:
  time of the one call and the peak resident memory it adds (VmHWM after the call minus VmRSS
  before it, with the high-water mark reset through /proc/self/clear_refs after the input is
  made). A child that crashes is reported with its signal.

Each case checks that the aligners agree: identical paths, or (on ties or torchaudio's
tie-breaking bug) libctc's path scoring at least as well, and every path valid (collapses to the
transcript). The script exits with status 1 when a check fails.
"""

import argparse
import concurrent.futures
import ctypes
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

# numpy's OpenBLAS threads would spin beside the timed calls; nothing here needs them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# libctc through ctypes: the structures and signatures of the Python binding's _native module,
# loaded by its path (it imports nothing of the package, which would load a library at import).


def _load_native():
    import importlib.util

    path = REPO / "bindings" / "python" / "libctc" / "_native.py"
    spec = importlib.util.spec_from_file_location("libctc_native_for_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


N = _load_native()
DTYPE = {np.dtype(np.float32): N.DType.FLOAT32, np.dtype(np.float64): N.DType.FLOAT64,
         np.dtype(np.int32): N.DType.INT32, np.dtype(np.int64): N.DType.INT64}
CTC_CALL_ALIGN = N.Call.ALIGN
CtcTensor = N.CtcTensor


def ctc_tensor(a, shape=None, strides=None):
    """A CtcTensor over numpy array `a` (no copy); `shape`/`strides` (in elements) give another
    view of the same memory."""
    shape = a.shape if shape is None else shape
    if strides is None:
        strides = [s // a.itemsize for s in a.strides]
    t = CtcTensor()
    t.data = a.ctypes.data
    t.dtype = DTYPE[a.dtype]
    t.device = 0
    t.ndim = len(shape)
    for i, (n, s) in enumerate(zip(shape, strides)):
        t.shape[i] = n
        t.strides[i] = s
    return t


class LibCtc:
    def __init__(self, path):
        self.path = str(path)
        lib = N._open(self.path)  # every foreign signature as the binding declares it
        self.lib = lib
        self.version = lib.ctc_version_string().decode()

    def options(self, threads):
        o = self.lib.ctc_options_default()
        o.num_threads = threads
        return o

    def check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: status {status}: {self.lib.ctc_last_error_message().decode()}")


class LibCtcCall:
    """One prepared ctc_align call: tensors built once, outputs preallocated, so that the timed
    part is the C call alone (the preparation is microseconds anyway)."""

    def __init__(self, ctc, log_probs, targets, input_lengths, target_lengths, threads):
        self.ctc = ctc
        self.opts = ctc.options(threads)
        if log_probs.ndim == 2:  # one utterance: (T, C), (L,), () lengths
            T = log_probs.shape[0]
            self.path = np.empty(T, np.int64)
            self.scores = np.zeros((), np.float32)
            self.keep = (log_probs, targets, np.array(T, np.int64), np.array(len(targets), np.int64))
            self.tensors = [ctc_tensor(a) for a in self.keep]
            self.out = (ctc_tensor(self.path), ctc_tensor(self.scores))
        else:  # a batch in (N, T, C) memory, passed as a (T, N, C) view
            N, T, C = log_probs.shape
            self.path = np.empty((N, T), np.int64)
            self.scores = np.zeros(N, np.float32)
            self.keep = (log_probs, targets, input_lengths, target_lengths)
            lp = ctc_tensor(log_probs, (T, N, C), (C, T * C, 1))
            self.tensors = [lp] + [ctc_tensor(a) for a in self.keep[1:]]
            self.out = (ctc_tensor(self.path, (T, N), (1, T)), ctc_tensor(self.scores))
        self.args = [ctypes.byref(t) for t in self.tensors] + [ctypes.byref(self.opts)]
        self.out_args = [ctypes.byref(t) for t in self.out]

    def __call__(self):
        self.ctc.check(self.ctc.lib.ctc_align(*self.args, *self.out_args), "ctc_align")
        return self.path, self.scores

    def workspace_bytes(self):
        n = ctypes.c_size_t()
        st = self.ctc.lib.ctc_workspace_size_for_call(CTC_CALL_ALIGN, *self.args, ctypes.byref(n))
        self.ctc.check(st, "ctc_workspace_size_for_call")
        return n.value


# ---------------------------------------------------------------------------------------------
# the other aligners


def torchaudio_align(log_probs, targets):
    """torchaudio.functional.forced_align on one utterance: (path (T,), per-frame scores (T,))."""
    import torch
    import torchaudio.functional as F

    p, s = F.forced_align(torch.from_numpy(log_probs)[None], torch.from_numpy(targets)[None], blank=0)
    return p[0].numpy(), s[0].numpy()


def cfa_module():
    try:
        import ctc_forced_aligner.ctc_aligner as ca  # noqa: F401  (imports librosa, onnxruntime)

        return ca
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"


def cfa_align(log_probs, targets):
    """ctc-forced-aligner's C++ align_sequences (batch 1, int64 targets): (path (T,), scores)."""
    import ctc_forced_aligner.ctc_aligner as ca

    p, s = ca.align_sequences(log_probs[None], targets.astype(np.int64)[None], 0)
    return p[0], s


# ---------------------------------------------------------------------------------------------
# inputs


def make_utterance(rng, T, L, C):
    """A random transcript of L labels in [1, C) and (T, C) float32 log-probabilities: standard
    normal logits plus a peak of random height (0 to 8) on the class of a random monotone
    alignment of the transcript (random durations, at least one frame a label and a blank
    between repeats), then log_softmax. The Viterbi path follows the true alignment mostly,
    not everywhere."""
    labels = rng.integers(1, C, size=L).astype(np.int32)
    slots = np.zeros(2 * L + 1, np.int32)  # blank, l0, blank, l1, ..., blank
    slots[1::2] = labels
    mins = np.zeros(2 * L + 1, np.int64)
    mins[1::2] = 1
    mins[2:-1:2] = labels[1:] == labels[:-1]
    extra = T - int(mins.sum())
    if extra < 0:
        raise ValueError(f"T={T} too short for L={L}")
    dur = mins + rng.multinomial(extra, np.full(2 * L + 1, 1.0 / (2 * L + 1)))
    true = np.repeat(slots, dur)
    x = rng.standard_normal((T, C), dtype=np.float32)
    x[np.arange(T), true] += rng.uniform(0.0, 8.0, T).astype(np.float32)
    x -= x.max(axis=1, keepdims=True)
    x -= np.log(np.exp(x).sum(axis=1, keepdims=True, dtype=np.float64)).astype(np.float32)
    return x, labels


def make_batch(rng, N, t_range, C):
    """N utterances, T uniform in t_range (inclusive), L = T // 4, padded into (N, T_max, C) and
    (N, L_max)."""
    ts = rng.integers(t_range[0], t_range[1] + 1, size=N)
    utts = [make_utterance(rng, int(t), int(t) // 4, C) for t in ts]
    t_max, l_max = int(ts.max()), max(len(u[1]) for u in utts)
    lp = np.zeros((N, t_max, C), np.float32)
    tg = np.ones((N, l_max), np.int32)
    for n, (x, lab) in enumerate(utts):
        lp[n, : len(x)] = x
        tg[n, : len(lab)] = lab
    il = np.array([len(u[0]) for u in utts], np.int64)
    tl = np.array([len(u[1]) for u in utts], np.int64)
    return lp, tg, il, tl, utts


# ---------------------------------------------------------------------------------------------
# checks


def collapse(path):
    p = path[np.r_[True, path[1:] != path[:-1]]]
    return p[p != 0]


def path_score(log_probs, path):
    return float(log_probs[np.arange(len(path)), path].astype(np.float64).sum())


def compare(log_probs, labels, ref_path, other_path, name):
    """Agreement of another aligner's path with libctc's on one utterance."""
    T = len(log_probs)
    other_path = np.asarray(other_path[:T], np.int64)
    valid = bool(np.array_equal(collapse(other_path), labels))
    diff = int(np.count_nonzero(ref_path[:T] != other_path))
    s_ref, s_other = path_score(log_probs, ref_path[:T]), path_score(log_probs, other_path)
    tol = 1e-4 * max(1.0, abs(s_ref))
    # Equal paths; or a different path with the same score (a tie); or a worse valid path (the
    # other aligner's sub-optimal tie-breaking): fine for libctc. A better or invalid path: not.
    ok = valid and (diff == 0 or s_ref >= s_other - tol)
    return {
        "aligner": name,
        "frames_differ": diff,
        "valid": valid,
        "score_libctc": s_ref,
        "score_other": s_other,
        "ok": ok,
    }


def check_libctc(log_probs, labels, path, score):
    T = len(log_probs)
    valid = bool(np.array_equal(collapse(path[:T]), labels))
    s = path_score(log_probs, path[:T])
    return valid and abs(s - float(score)) <= 1e-4 * max(1.0, abs(s))


# ---------------------------------------------------------------------------------------------
# timing


def stats(xs):
    xs = sorted(xs)
    return {"median": float(np.median(xs)), "min": xs[0], "max": xs[-1], "runs": len(xs), "all": xs}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def timed_cpu(fn):
    """(wall seconds, CPU seconds of the calling thread, result): for calls that compute on the
    calling thread alone, the CPU time leaves out what other processes of a busy machine take."""
    c0, t0 = time.thread_time(), time.perf_counter()
    out = fn()
    t1, c1 = time.perf_counter(), time.thread_time()
    return t1 - t0, c1 - c0, out


def fmt_s(x):
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.0f} us"


def fmt_range(st):
    return f"{fmt_s(st['median'])} ({fmt_s(st['min'])}–{fmt_s(st['max'])})"


class OtherCpu:
    """The share of the machine's CPU time that other processes took between start() and
    stop(): busy time of all CPUs in /proc/stat (steal included) minus this process's own user
    and system time, over wall time x CPUs. (The load average of this VM is no guide: it stays
    high while the CPUs idle.)"""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK")
        self.ncpu = os.cpu_count()

    @staticmethod
    def busy():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal
        return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)

    @staticmethod
    def own():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def __enter__(self):
        self.b0, self.o0, self.t0 = self.busy(), self.own(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        other = (self.busy() - self.b0) / self.hz - (self.own() - self.o0)
        self.share = max(0.0, other) / (wall * self.ncpu) if wall > 0 else 0.0
        return False


# ---------------------------------------------------------------------------------------------
# cases


def single_case(args, ctc, name, T, L, C, reps, with_cfa):
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng([args.seed, T, L])
    lp, labels = make_utterance(rng, T, L, C)
    call = LibCtcCall(ctc, lp, labels, None, None, threads=1)
    aligners = {"libctc": lambda: call()[0].copy(), "torchaudio": lambda: torchaudio_align(lp, labels)[0]}
    if with_cfa:
        aligners["ctc-forced-aligner"] = lambda: cfa_align(lp, labels)[0]
    # warm-up (one call each) and the agreement check
    paths = {k: f() for k, f in aligners.items()}
    lib_ok = check_libctc(lp, labels, call.path, call.scores)
    checks = [compare(lp, labels, paths["libctc"], paths[k], k) for k in aligners if k != "libctc"]
    times = {k: [] for k in aligners}
    cpu = {k: [] for k in aligners}
    with OtherCpu() as other:
        for _ in range(reps):
            for k, f in aligners.items():  # alternating
                wall, c, _ = timed_cpu(f)
                times[k].append(wall)
                cpu[k].append(c)
    res = {
        "case": name,
        "T": T,
        "L": L,
        "C": C,
        "threads": 1,
        "times": {k: stats(v) for k, v in times.items()},
        "cpu_times": {k: stats(v) for k, v in cpu.items()},
        "libctc_valid": lib_ok,
        "checks": checks,
        "workspace_bytes": call.workspace_bytes(),
        "other_cpu": other.share,
    }
    res["ratios"] = {
        k: res["times"][k]["median"] / res["times"]["libctc"]["median"] for k in aligners if k != "libctc"
    }
    res["cpu_ratios"] = {
        k: res["cpu_times"][k]["median"] / res["cpu_times"]["libctc"]["median"] for k in aligners if k != "libctc"
    }
    return res


def batch_case(args, ctc, reps, with_cfa):
    import torch

    threads = 2
    torch.set_num_threads(threads)
    rng = np.random.default_rng([args.seed, 32, 500, 3000])
    lp, tg, il, tl, utts = make_batch(rng, 32, (500, 3000), args.classes)
    call = LibCtcCall(ctc, lp, tg, il, tl, threads=threads)

    def ta_loop():
        return [torchaudio_align(x, lab)[0] for x, lab in utts]

    pool = concurrent.futures.ThreadPoolExecutor(threads)

    def ta_pool():
        return list(pool.map(lambda u: torchaudio_align(*u)[0], utts))

    aligners = {"libctc": lambda: call()[0].copy(), "torchaudio": ta_loop, "torchaudio 2 threads": ta_pool}
    if with_cfa:
        aligners["ctc-forced-aligner"] = lambda: [cfa_align(x, lab)[0] for x, lab in utts]
    out = {k: f() for k, f in aligners.items()}
    lib_ok = all(check_libctc(x, lab, call.path[n], call.scores[n]) for n, (x, lab) in enumerate(utts))
    checks = []
    for k in aligners:
        if k == "libctc":
            continue
        per = [compare(x, lab, out["libctc"][n], out[k][n], k) for n, (x, lab) in enumerate(utts)]
        checks.append(
            {
                "aligner": k,
                "ok": all(c["ok"] for c in per),
                "utterances_differ": sum(c["frames_differ"] > 0 for c in per),
                "frames_differ": sum(c["frames_differ"] for c in per),
                "valid": all(c["valid"] for c in per),
                "worse_score": sum(c["score_other"] < c["score_libctc"] - 1e-4 * abs(c["score_libctc"]) for c in per),
            }
        )
    times = {k: [] for k in aligners}
    with OtherCpu() as other:
        for _ in range(reps):
            for k, f in aligners.items():
                times[k].append(timed(f)[0])
    pool.shutdown()
    res = {
        "case": "batch of 32",
        "T": f"{il.min()}..{il.max()} (sum {il.sum()})",
        "L": f"{tl.min()}..{tl.max()}",
        "C": args.classes,
        "threads": threads,
        "times": {k: stats(v) for k, v in times.items()},
        "throughput": {k: 32 / float(np.median(v)) for k, v in times.items()},
        "libctc_valid": lib_ok,
        "checks": checks,
        "workspace_bytes": call.workspace_bytes(),
        "other_cpu": other.share,
    }
    res["ratios"] = {
        k: res["times"][k]["median"] / res["times"]["libctc"]["median"] for k in aligners if k != "libctc"
    }
    return res


# ---------------------------------------------------------------------------------------------
# memory: one child process per (aligner, case)


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def child_main(args):
    """Runs in a child process: makes the input, resets the peak RSS, runs one aligner once and
    prints one JSON line."""
    T, L, C = args.child_T, args.child_L, args.classes
    aligner = args.child
    ctc = LibCtc(args.lib) if aligner == "libctc" else None
    if aligner == "torchaudio":
        import torch
        import torchaudio.functional  # noqa: F401

        torch.set_num_threads(1)
    elif aligner == "ctc-forced-aligner":
        cfa_module()
    rng = np.random.default_rng([args.seed, T, L])
    lp, labels = make_utterance(rng, T, L, C)
    res = {"aligner": aligner, "T": T, "L": L, "C": C, "input_bytes": lp.nbytes}
    if ctc is not None:
        call = LibCtcCall(ctc, lp, labels, None, None, threads=1)
        res["workspace_bytes"] = call.workspace_bytes()
        fn = call
    elif aligner == "torchaudio":
        fn = lambda: torchaudio_align(lp, labels)  # noqa: E731
    else:
        fn = lambda: cfa_align(lp, labels)  # noqa: E731
    try:  # reset VmHWM to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        res["hwm_reset"] = True
    except OSError:
        res["hwm_reset"] = False
    rss0 = status_kib("VmRSS")
    hwm0 = status_kib("VmHWM")
    print(json.dumps({"started": True, "rss_before_kib": rss0}), flush=True)
    with OtherCpu() as other:
        dt, c, out = timed_cpu(fn)
    res["seconds"] = dt
    res["cpu_seconds"] = c
    res["other_cpu"] = other.share
    res["rss_before_kib"] = rss0
    res["hwm_before_kib"] = hwm0
    res["hwm_after_kib"] = status_kib("VmHWM")
    res["peak_added_bytes"] = (res["hwm_after_kib"] - (rss0 if res["hwm_reset"] else hwm0)) * 1024
    path = np.asarray(out[0]).reshape(-1)[:T].astype(np.int64)
    res["valid"] = bool(np.array_equal(collapse(path), labels))
    res["score"] = path_score(lp, path)
    if ctc is not None:
        res["libctc_valid"] = check_libctc(lp, labels, call.path, call.scores)
    print(json.dumps(res), flush=True)


def run_child(args, aligner, T, L, timeout):
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--lib",
        args.lib,
        "--seed",
        str(args.seed),
        "--classes",
        str(args.classes),
        "--child",
        aligner,
        "--child-T",
        str(T),
        "--child-L",
        str(L),
    ]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        rc, stdout, stderr = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, stdout, stderr = "timeout", e.stdout or "", e.stderr or ""
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
        stderr = stderr.decode() if isinstance(stderr, bytes) else stderr
    wall = time.perf_counter() - t0
    res = {"aligner": aligner, "T": T, "L": L, "returncode": rc, "wall": wall}
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    for ln in lines:
        res.update(json.loads(ln))
    if isinstance(rc, int) and rc < 0:
        res["signal"] = signal.Signals(-rc).name
    if rc != 0:
        res["stderr_tail"] = "\n".join(
            ln for ln in stderr.splitlines()[-6:] if "Warning" not in ln
        )
    return res


# ---------------------------------------------------------------------------------------------
# report


def markdown(results, mem, env):
    out = []
    out.append(
        f"libctc {env['libctc_version']} (commit {env['commit']}), torch {env['torch']}, torchaudio "
        f"{env['torchaudio']}, ctc-forced-aligner {env['cfa']}; {env['cpu']}, {env['nproc']} CPUs; "
        f"seed {env['seed']}"
    )
    out.append("")
    names = ["libctc", "torchaudio", "ctc-forced-aligner"]
    out.append("Single utterances, 1 thread, C = 32: wall time of one call, median (range); the ratios are "
               "of the medians, wall (CPU time of the calling thread)")
    out.append("")
    out.append("| case | T | L | libctc | torchaudio | ctc-forced-aligner | torchaudio / libctc | cfa / libctc | other% | agree |")
    out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for r in results["single"]:
        cells = [fmt_range(r["times"][k]) if k in r["times"] else "–" for k in names]
        rat = [
            f"{r['ratios'][k]:.1f}x ({r['cpu_ratios'][k]:.1f}x)" if k in r["ratios"] else "–" for k in names[1:]
        ]
        agree = "; ".join(agree_text(c) for c in r["checks"])
        if not r["libctc_valid"]:
            agree = "libctc path INVALID; " + agree
        ld = f"{100 * r['other_cpu']:.0f}%"
        out.append(f"| {r['case']} | {r['T']} | {r['L']} | " + " | ".join(cells + rat) + f" | {ld} | {agree} |")
    out.append("")
    if results.get("batch"):
        b = results["batch"]
        out.append(f"Batch of 32 utterances, T {b['T']}, L {b['L']}, C {b['C']}, 2 threads "
                   f"(other processes took {100 * b['other_cpu']:.0f}% of the CPUs meanwhile):")
        out.append("")
        out.append("| aligner | time per batch, median (range) | utterances/s | slower than libctc | agree |")
        out.append("|---|--:|--:|--:|---|")
        for k, st in b["times"].items():
            chk = next((c for c in b["checks"] if c["aligner"] == k), None)
            agree = "(reference)" if k == "libctc" else agree_text(chk)
            ratio = "1" if k == "libctc" else f"{b['ratios'][k]:.1f}x"
            out.append(f"| {k} | {fmt_range(st)} | {b['throughput'][k]:.1f} | {ratio} | {agree} |")
        out.append("")
    if mem:
        out.append("Memory (one child process per row, input already allocated; peak = VmHWM after the call − VmRSS before it):")
        out.append("")
        out.append("| case | T | L | aligner | time of the call | peak memory added | libctc workspace (CTC_CALL_ALIGN) | T x S' int8 table | result |")
        out.append("|---|--:|--:|---|--:|--:|--:|--:|---|")
        for m in mem:
            sprime = 2 * m["L"] + 1
            table = m["T"] * sprime
            if m.get("returncode") == 0 and "seconds" in m:
                res = "path valid" if m.get("valid") else "path INVALID"
                t = f"{fmt_s(m['seconds'])} (CPU {fmt_s(m['cpu_seconds'])})"
                peak = fmt_bytes(m["peak_added_bytes"])
            else:
                sig = m.get("signal") or f"exit {m.get('returncode')}"
                res = f"crashed: {sig}" + (f" ({m['stderr_tail'].splitlines()[-1].strip()[:80]})" if m.get("stderr_tail") else "")
                t, peak = f"(after {m['wall']:.1f} s)", "–"
            ws = fmt_bytes(m["workspace_bytes"]) if "workspace_bytes" in m else "–"
            if "other_cpu" in m:
                res += f"; other% {100 * m['other_cpu']:.0f}"
            over = " (> 2^31)" if table > 2**31 else ""
            out.append(f"| {m['case']} | {m['T']} | {m['L']} | {m['aligner']} | {t} | {peak} | {ws} | {fmt_bytes(table)}{over} | {res} |")
        out.append("")
    return "\n".join(out)


def agree_text(c):
    if c is None:
        return ""
    if "utterances_differ" in c:
        s = f"{c['aligner']}: {c['utterances_differ']}/32 paths differ ({c['frames_differ']} frames)"
        if c["worse_score"]:
            s += f", {c['worse_score']} score worse"
    else:
        if c["frames_differ"] == 0:
            s = f"{c['aligner']}: same path"
        else:
            d = c["score_other"] - c["score_libctc"]
            s = f"{c['aligner']}: {c['frames_differ']} frames differ, score diff {d:+.3g}"
    if not c["valid"]:
        s += ", INVALID path"
    return s + ("" if c["ok"] else " **FAIL**")


def fmt_bytes(n):
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= k:
            return f"{n / k:.2f} {unit}" if unit == "GiB" else f"{n / k:.1f} {unit}"
    return f"{n} B"


def plot(results, mem, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    styles = {"libctc": ("C0", "o"), "torchaudio": ("C1", "s"), "ctc-forced-aligner": ("C2", "^")}
    for k, (color, marker) in styles.items():
        pts = sorted(
            (r["T"], r["times"][k]["median"], r["times"][k]["min"], r["times"][k]["max"])
            for r in results["single"]
            if k in r["times"]
        )
        pts += [(m["T"], m["seconds"], m["seconds"], m["seconds"]) for m in mem if m["aligner"] == k and "seconds" in m]
        pts.sort()
        if not pts:
            continue
        t, med, lo, hi = map(np.array, zip(*pts))
        ax.errorbar(t, med, yerr=[med - lo, hi - med], color=color, marker=marker, label=k, capsize=3)
    for m in mem:
        if m["aligner"] == "torchaudio" and m.get("returncode") != 0:
            ax.axvline(m["T"], color="C1", ls=":", lw=1)
            ax.annotate(f"torchaudio: {m.get('signal', 'crash')}\nT={m['T']}, L={m['L']}", (m["T"], 0.02),
                        xycoords=("data", "axes fraction"), color="C1", fontsize=8, ha="right")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("T (frames); L ≈ T/4 to T/5, C = 32")
    ax.set_ylabel("seconds per utterance (median, range)")
    ax.set_title("CPU forced alignment, 1 thread")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


# ---------------------------------------------------------------------------------------------


def environment(args, ctc):
    import torch
    import torchaudio

    try:
        from importlib.metadata import version

        cfa = version("ctc-forced-aligner")
    except Exception:  # noqa: BLE001
        cfa = "not installed"
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True, text=True).stdout.strip()
        if dirty:
            commit += "+dirty src"
    except OSError:
        commit = "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "libctc_version": ctc.version,
        "libctc_path": ctc.path,
        "commit": commit,
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "cfa": cfa,
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "seed": args.seed,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


SINGLE = [  # name, T, L, repetitions (scaled by --reps-scale)
    ("sweep", 500, 100, 30),
    ("30 s", 1500, 400, 30),
    ("sweep", 5000, 1000, 10),
    ("sweep", 10000, 2000, 6),
    ("10 min", 30000, 6000, 5),
    ("sweep", 60000, 12000, 3),
]
MEMORY = [  # name, T, L, aligners
    ("1 hour", 180000, 40000, ["libctc", "torchaudio", "ctc-forced-aligner"]),
    ("4 hours", 720000, 150000, ["libctc"]),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", default=str(REPO / "target/release/libctc.so"), help="libctc shared library (default target/release/libctc.so)")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--plot", metavar="PATH", nargs="?", const=str(REPO / "docs/img/bench_align.png"),
                   help="write the time-vs-T plot (default path docs/img/bench_align.png)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--classes", type=int, default=32)
    p.add_argument("--reps-scale", type=float, default=1.0, help="multiply every repetition count (at least 2 stay)")
    p.add_argument("--no-cfa", action="store_true", help="leave ctc-forced-aligner out")
    p.add_argument("--no-sweep", action="store_true", help="only the issue's two single-utterance cases")
    p.add_argument("--no-batch", action="store_true")
    p.add_argument("--no-memory", action="store_true", help="skip the child-process cases (1 hour, 4 hours)")
    p.add_argument("--no-4h", action="store_true", help="skip the 4-hour case")
    p.add_argument("--child-timeout", type=float, default=900, help="seconds per memory child (default 900)")
    p.add_argument("--from-json", metavar="PATH", help="re-print the table (and plot) of a saved run, measuring nothing")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-T", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-L", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        return child_main(args)

    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        print(markdown(saved["results"], saved["memory"], saved["env"]))
        if args.plot:
            plot(saved["results"], saved["memory"], args.plot)
        return 0

    ctc = LibCtc(args.lib)
    env = environment(args, ctc)
    cfa = None if args.no_cfa else cfa_module()
    with_cfa = cfa is not None and not isinstance(cfa, str)
    if isinstance(cfa, str):
        env["cfa_error"] = cfa
        print(f"ctc-forced-aligner not usable: {cfa}", file=sys.stderr)
    print(f"# {env}", file=sys.stderr)

    results = {"single": [], "batch": None}
    for name, T, L, reps in SINGLE:
        if args.no_sweep and name == "sweep":
            continue
        reps = max(2, round(reps * args.reps_scale))
        r = single_case(args, ctc, name, T, L, args.classes, reps, with_cfa)
        results["single"].append(r)
        print(f"{name} T={T} L={L}: " + ", ".join(f"{k} {fmt_range(v)}" for k, v in r["times"].items())
              + " | " + "; ".join(agree_text(c) for c in r["checks"]), file=sys.stderr, flush=True)
    if not args.no_batch:
        r = batch_case(args, ctc, max(2, round(5 * args.reps_scale)), with_cfa)
        results["batch"] = r
        print("batch: " + ", ".join(f"{k} {fmt_range(v)}" for k, v in r["times"].items()), file=sys.stderr, flush=True)
    mem = []
    if not args.no_memory:
        for name, T, L, aligners in MEMORY:
            if args.no_4h and name == "4 hours":
                continue
            for a in aligners:
                if a == "ctc-forced-aligner" and not with_cfa:
                    continue
                m = run_child(args, a, T, L, args.child_timeout)
                m["case"] = name
                mem.append(m)
                print(f"memory {name} {a}: " + json.dumps({k: v for k, v in m.items() if k != "stderr_tail"}), file=sys.stderr, flush=True)

    print(markdown(results, mem, env))
    failed = [c for r in results["single"] + ([results["batch"]] if results["batch"] else []) for c in r["checks"] if not c["ok"]]
    failed += [r for r in results["single"] if not r["libctc_valid"]]
    failed += [m for m in mem if m["aligner"] == "libctc" and not m.get("libctc_valid")]
    if results["batch"] and not results["batch"]["libctc_valid"]:
        failed.append("batch")
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "results": results, "memory": mem}, indent=1))
    if args.plot:
        plot(results, mem, args.plot)
    if failed:
        print(f"CHECK FAILED: {len(failed)} check(s)", file=sys.stderr)
        return 1
    print("All agreement checks passed.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
