#!/usr/bin/env python3
"""GPU benchmark: libctc's CUDA path (through the torch drop-in, on torch's current stream)
against torch's native CUDA ctc_loss and cuDNN's, float32 forward+backward, in the same run.

Shapes: those of the CPU benchmark (docs/benchmarks.md) and their N = 128 versions. cuDNN is
timed only where it applies (int32 concatenated targets on the CPU, blank 0, labels < 256,
input lengths all T). Times are CUDA-event medians after warm-up; peak memory is the increase of
torch.cuda.max_memory_allocated over the inputs.

Usage (on a machine with an NVIDIA GPU, torch with CUDA, and libctc built):
    CTC_LIBRARY=target/release/libctc.so PYTHONPATH=bindings/python \\
        python3 scripts/bench_gpu.py [--reps 50] [--markdown]
Prints "SKIPPED: ..." and exits 0 without a GPU.
"""

import argparse
import statistics
import sys

SHAPES = [
    ("seed", 50, 16, 20, 10, 30),
    ("asr_char", 400, 32, 32, 80, 120),
    ("asr_bpe", 250, 32, 1024, 40, 70),
    ("large_vocab", 150, 16, 8000, 20, 40),
    ("long", 2000, 4, 64, 500, 700),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("SKIPPED: torch is not importable")
        return 0
    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA device visible to torch")
        return 0
    import libctc
    import libctc.functional as LF

    if libctc.cuda_device_count() == 0:
        print("SKIPPED: libctc sees no CUDA device (driver or NVRTC missing?)")
        return 0
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; libctc {libctc.version()}")

    def timed(fn):
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(args.reps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b))
        return statistics.median(times)

    rows = []
    for name, T, N0, C, lo, hi in SHAPES:
        for N in (N0, 128):
            g = torch.Generator(device="cpu").manual_seed(0)
            logits = torch.randn(T, N, C, generator=g).to(dev)
            lp = logits.log_softmax(-1).detach().requires_grad_()
            tl = torch.randint(lo, hi + 1, (N,), generator=g)
            targets = torch.randint(1, C, (N, hi), generator=g)
            il = torch.full((N,), T, dtype=torch.long)

            def run(f, tg, i, t):
                lp.grad = None
                loss = f(lp, tg, i, t, reduction="mean")
                loss.backward()
                return loss

            torch.backends.cudnn.enabled = False
            tg_d, il_d, tl_d = targets.to(dev), il.to(dev), tl.to(dev)
            ours = timed(lambda: run(LF.ctc_loss, tg_d, il_d, tl_d))
            torch.cuda.reset_peak_memory_stats()
            run(LF.ctc_loss, tg_d, il_d, tl_d)
            # libctc's own device workspace is outside torch's allocator: add it.
            mem_ours = torch.cuda.max_memory_allocated() + workspace_bytes(lp, tg_d, il_d, tl_d)
            g_ours = lp.grad.clone()
            native = timed(lambda: run(torch.nn.functional.ctc_loss, tg_d, il_d, tl_d))
            torch.cuda.reset_peak_memory_stats()
            run(torch.nn.functional.ctc_loss, tg_d, il_d, tl_d)
            mem_native = torch.cuda.max_memory_allocated()
            diff = (lp.grad - g_ours).abs().max().item()
            cudnn = None
            if C < 256 and int(tl.max()) < 256:
                cudnn = time_cudnn(lp, targets, il, tl, run, timed)
            rows.append((name, N, ours, native, cudnn, mem_ours, mem_native, diff))
            print(f"  {name} N={N}: libctc {ours:.3f} ms, torch {native:.3f} ms, cuDNN {cudnn}", flush=True)
    head = "| shape | N | libctc ms | torch native ms | speed-up | cuDNN ms | speed-up | peak MiB libctc (with its workspace) / torch | max grad diff |"
    print(head)
    print("|" + "---|" * 9)
    for name, N, o, n, c, mo, mn, d in rows:
        cs = f"{c:.3f} | {c / o:.2f}x" if c is not None else "n/a | n/a"
        print(f"| {name} | {N} | {o:.3f} | {n:.3f} | {n / o:.2f}x | {cs} | {mo / 2**20:.0f} / {mn / 2**20:.0f} | {d:.1e} |")
    return 0


def workspace_bytes(lp, tg, il, tl):
    """What ctc_workspace_size answers for these tensors (libctc allocates it on the device)."""
    import ctypes

    from libctc import _native as N
    from libctc import _torch as LT

    ts = [LT._tensor(x, n) for x, n in ((lp.detach(), "log_probs"), (tg, "t"), (il, "i"), (tl, "l"))]
    opts = N.options(0, "mean", False, 0, LT._stream(lp))
    size = ctypes.c_size_t(0)
    N.check(N.lib().ctc_workspace_size(*[ctypes.byref(t) for t in ts], ctypes.byref(opts), ctypes.byref(size)))
    return size.value


def time_cudnn(lp, targets, il, tl, run, timed):
    """cuDNN's CTC through torch, or None where torch would not take the cuDNN path. torch picks
    cuDNN for blank 0, float32, int32 concatenated targets and int32 lengths (all targets shorter
    than 256 and no longer than their inputs); where the targets must live differs between torch
    versions, so both placements are tried, and the kernels that ran are checked by name."""
    import torch
    from torch.profiler import profile, ProfilerActivity

    N = lp.shape[1]
    concat = torch.cat([targets[b, : tl[b]] for b in range(N)]).to(torch.int32)
    torch.backends.cudnn.enabled = True
    try:
        for place in ("cpu", "cuda"):
            args = [x.to(place) for x in (concat, il.to(torch.int32), tl.to(torch.int32))]
            if not torch._use_cudnn_ctc_loss(lp, *args, 0):
                continue
            try:
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    run(torch.nn.functional.ctc_loss, *args)
                    torch.cuda.synchronize()
            except RuntimeError:
                continue
            names = [e.name for e in prof.events() if e.device_type.name == "CUDA"]
            if any("ctc_loss_log_alpha" in n for n in names):
                continue  # torch's native kernel ran after all
            return timed(lambda: run(torch.nn.functional.ctc_loss, *args))
        return None
    finally:
        torch.backends.cudnn.enabled = False


if __name__ == "__main__":
    sys.exit(main())
