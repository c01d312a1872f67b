#!/usr/bin/env python3
"""GPU benchmark: libctc's CUDA path (through the torch drop-in, on torch's current stream)
against torch's native CUDA ctc_loss and cuDNN's, float32 forward+backward, in the same run.

Shapes: those of the CPU benchmark (docs/benchmarks.md) and their N = 128 versions. cuDNN is
timed only where it applies (int32 concatenated targets on the CPU, blank 0, labels < 256,
input lengths all T). Times are CUDA-event medians after warm-up; peak memory is the increase of
torch.cuda.max_memory_allocated over the inputs.

A second table times the pipeline from logits: torch's log_softmax + ctc_loss forward+backward
to the logits against libctc's from_logits=True, on float32 logits and on float16 logits (torch
casts them to float32 first, as its CTC refuses half; libctc reads them as they are).

With --driver-api, libctc alone is timed instead, on buffers from the CUDA driver API (ctypes on
libcuda.so.1, numpy for the inputs; no torch): host wall time of the call and a synchronization
of its stream, median after warm-up. That mode also runs against the CUDA driver stand-in of
tests/cuda_driver/ (tests/cuda_gpu.rs does, with --shapes seed): its timings mean nothing there,
the plumbing is what is tested.

Usage (on a machine with an NVIDIA GPU, torch with CUDA, and libctc built):
    CTC_LIBRARY=target/release/libctc.so PYTHONPATH=bindings/python \\
        python3 scripts/bench_gpu.py [--reps 50] [--markdown] [--driver-api] [--shapes seed,long]
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
    ap.add_argument("--driver-api", action="store_true", help="libctc alone, no torch")
    ap.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    args = ap.parse_args()
    shapes = [s for s in SHAPES if not args.shapes or s[0] in args.shapes.split(",")]
    if args.driver_api:
        return driver_api(args, shapes)
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
    for name, T, N0, C, lo, hi in shapes:
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
    logits_table(shapes, dev, timed)
    return 0


def logits_table(shapes, dev, timed):
    """From logits, float32 and float16: torch's log_softmax + ctc_loss against libctc's
    from_logits=True, forward+backward to the logits, reduction mean."""
    import torch
    import libctc.functional as LF

    rows = []
    for name, T, N, C, lo, hi in shapes:
        g = torch.Generator(device="cpu").manual_seed(0)
        x32 = torch.randn(T, N, C, generator=g).to(dev)
        tl = torch.randint(lo, hi + 1, (N,), generator=g).to(dev)
        tg = torch.randint(1, C, (N, hi), generator=g).to(dev)
        il = torch.full((N,), T, dtype=torch.long, device=dev)
        row = [name, N]
        for dtype in (torch.float32, torch.float16):
            x = x32.to(dtype).requires_grad_()

            def ours():
                x.grad = None
                LF.ctc_loss(x, tg, il, tl, reduction="mean", from_logits=True).backward()

            def torch_pipeline():
                x.grad = None
                lp = x.float().log_softmax(-1)
                torch.nn.functional.ctc_loss(lp, tg, il, tl, reduction="mean").backward()

            torch.backends.cudnn.enabled = False
            ours()
            mine = x.grad.float().clone()
            torch_pipeline()
            diff = (x.grad.float() - mine).abs().max().item()
            row += [timed(ours), timed(torch_pipeline), diff]
        rows.append(row)
        print(f"  {name} from logits: {row}", flush=True)
    print("| shape | N | float32: libctc ms | torch ms | speed-up | max grad diff | float16: libctc ms | torch ms (cast + float32) | speed-up | max grad diff |")
    print("|" + "---|" * 10)
    for name, N, o32, t32, d32, o16, t16, d16 in rows:
        print(f"| {name} | {N} | {o32:.3f} | {t32:.3f} | {t32 / o32:.2f}x | {d32:.1e} | {o16:.3f} | {t16:.3f} | {t16 / o16:.2f}x | {d16:.1e} |")


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


def driver_api(args, shapes):
    """libctc alone on driver-API buffers: forward+backward, reduction mean, targets and lengths
    on the device, on a non-blocking stream of the primary context; float32 log-probabilities,
    float32 logits and float16 logits (float32 loss and gradient)."""
    import ctypes
    import time

    import numpy as np
    from libctc import _native as N

    try:
        cu = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        print(f"SKIPPED: no CUDA driver ({e})")
        return 0
    u64, vp, sz = ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t
    cu.cuMemAlloc_v2.argtypes = [ctypes.POINTER(u64), sz]
    cu.cuMemFree_v2.argtypes = [u64]
    cu.cuMemcpyHtoD_v2.argtypes = [u64, vp, sz]
    cu.cuStreamSynchronize.argtypes = [vp]

    def ok(r, what):
        if r != 0:
            raise RuntimeError(f"{what} failed: CUDA error {r}")

    ok(cu.cuInit(0), "cuInit")
    ctx, stream = vp(), vp()
    ok(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), 0), "cuDevicePrimaryCtxRetain")
    ok(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    ok(cu.cuStreamCreate(ctypes.byref(stream), 1), "cuStreamCreate")
    name = ctypes.create_string_buffer(256)
    ok(cu.cuDeviceGetName(name, 256, 0), "cuDeviceGetName")
    print(f"device: {name.value.decode()} (driver API); libctc {N.lib().ctc_version_string().decode()}")
    buffers = []

    def device(a):
        p = u64()
        ok(cu.cuMemAlloc_v2(ctypes.byref(p), max(a.nbytes, 1)), "cuMemAlloc")
        buffers.append(p)
        ok(cu.cuMemcpyHtoD_v2(p.value, a.ctypes.data, a.nbytes), "cuMemcpyHtoD")
        return p.value

    def dev_tensor(a, ptr, dtype):
        strides = [s // a.itemsize for s in a.strides]
        return N.tensor(ptr, dtype, a.shape, strides, N.Device.CUDA, 0)

    rows = []
    lib = N.lib()
    for shape_name, T, N0, C, lo, hi in shapes:
        for n in (N0, 128):
            rng = np.random.default_rng(0)
            x = rng.standard_normal((T, n, C), dtype=np.float32)
            lp = x - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)) - x.max(-1, keepdims=True)
            lp = np.ascontiguousarray(lp, dtype=np.float32)
            tl = rng.integers(lo, hi + 1, n).astype(np.int64)
            targets = rng.integers(1, C, (n, hi)).astype(np.int64)
            il = np.full(n, T, dtype=np.int64)
            grad = np.zeros_like(lp)
            loss = np.zeros((), dtype=np.float32)
            ints = [
                dev_tensor(targets, device(targets), N.DType.INT64),
                dev_tensor(il, device(il), N.DType.INT64),
                dev_tensor(tl, device(tl), N.DType.INT64),
            ]
            t_loss = dev_tensor(loss, device(loss), N.DType.FLOAT32)
            t_grad = dev_tensor(grad, device(grad), N.DType.FLOAT32)
            x16 = x.astype(np.float16)
            variants = [
                ("log-probs f32", dev_tensor(lp, device(lp), N.DType.FLOAT32), False),
                ("logits f32", dev_tensor(x, device(x), N.DType.FLOAT32), True),
                ("logits f16", dev_tensor(x16, device(x16), N.DType.FLOAT16), True),
            ]
            for variant, t_in, logits in variants:
                opts = N.options(0, "mean", False, 0, stream, from_logits=logits)
                size = ctypes.c_size_t(0)
                refs = [ctypes.byref(t) for t in [t_in] + ints]
                N.check(lib.ctc_workspace_size(*refs, ctypes.byref(opts), ctypes.byref(size)))

                def call():
                    N.check(lib.ctc_loss_forward_backward(*refs, None, ctypes.byref(opts), ctypes.byref(t_loss), ctypes.byref(t_grad)))
                    ok(cu.cuStreamSynchronize(stream), "cuStreamSynchronize")

                times = []
                for k in range(2 + args.reps):
                    t0 = time.perf_counter()
                    call()
                    if k >= 2:
                        times.append((time.perf_counter() - t0) * 1e3)
                rows.append((shape_name, n, variant, statistics.median(times), size.value))
                print(f"  {shape_name} N={n} {variant}: libctc {rows[-1][3]:.3f} ms", flush=True)
            for p in buffers:
                ok(cu.cuMemFree_v2(p.value), "cuMemFree")
            buffers.clear()
    print("| shape | N | input | libctc ms (driver API, host clock) | workspace MiB |")
    print("|---|---|---|---|---|")
    for shape_name, n, variant, ms, ws in rows:
        print(f"| {shape_name} | {n} | {variant} | {ms:.3f} | {ws / 2**20:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
