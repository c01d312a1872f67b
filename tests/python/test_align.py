"""Forced alignment through the bindings: ``libctc.align`` (numpy), the torchaudio drop-ins
``libctc.functional.forced_align`` and ``merge_tokens`` (torch), and examples/align_words.py.
The reference is torchaudio 2.11 itself: its alignments of cases without ties are committed in
tests/data/golden-align/ (see its README)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import libctc
from conftest import ROOT

GOLDEN_ALIGN = sorted((ROOT / "tests" / "data" / "golden-align").glob("*.json"))


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed: the drop-in tests need it")


@pytest.fixture(params=GOLDEN_ALIGN, ids=[p.stem for p in GOLDEN_ALIGN])
def case(request):
    return json.loads(request.param.read_text())


def all_cases():
    return [json.loads(p.read_text()) for p in GOLDEN_ALIGN]


def collapse(path, blank):
    """The labels a CTC path spells: repeats merged, blanks (and -1 padding) removed."""
    out, prev = [], None
    for c in path:
        if c != prev and c not in (blank, -1):
            out.append(int(c))
        prev = c
    return out


def common_batch(cases, C):
    """The cases as one time-first batch with the blank at class 0 and C classes: each case's
    classes are renumbered (blank to 0, the classes below it up by one) and the classes it lacks
    get -inf. Frames past a case's length hold NaN, which must never be read. Returns
    log_probs (T, N, C) float64, padded targets (N, L) filled with -7, lengths, and each case's
    path renumbered the same way."""
    T, L = max(c["T"] for c in cases), max(len(c["targets"]) for c in cases)
    lp = np.full((T, len(cases), C), np.nan)
    targets = np.full((len(cases), L), -7, dtype=np.int64)
    paths = []
    for n, c in enumerate(cases):
        b = c["blank"]
        new = np.array([0 if k == b else k + 1 if k < b else k for k in range(c["C"])])
        lp[: c["T"], n, :] = -np.inf
        lp[: c["T"], n, new] = np.array(c["log_probs"])
        targets[n, : len(c["targets"])] = new[c["targets"]]
        paths.append(new[c["path"]])
    il = np.array([c["T"] for c in cases])
    tl = np.array([len(c["targets"]) for c in cases])
    return lp, targets, il, tl, paths


# ----- numpy: libctc.align -----


def layouts(lp):
    """(name, array) views of one (T, N, C) array: contiguous time-first, batch-first memory
    seen time-first, a class slice of a wider array, and a strided frame axis."""
    T, N, C = lp.shape
    batch_first = np.ascontiguousarray(lp.transpose(1, 0, 2)).transpose(1, 0, 2)
    wide = np.full((T, N, C + 3), np.nan, dtype=lp.dtype)
    wide[:, :, 2 : C + 2] = lp
    every_other = np.full((2 * T, N, C), np.nan, dtype=lp.dtype)
    every_other[::2] = lp
    return [
        ("time_first", lp),
        ("batch_first", batch_first),
        ("class_slice", wide[:, :, 2 : C + 2]),
        ("frame_stride", every_other[::2]),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("int_dtype", [np.int32, np.int64])
def test_numpy_golden_in_every_layout(case, dtype, int_dtype):
    T, C = case["T"], case["C"]
    lp = np.array(case["log_probs"], dtype=dtype).reshape(T, 1, C)
    targets = np.array([case["targets"]], dtype=int_dtype)
    L = targets.shape[1]
    il, tl = np.array([T], dtype=int_dtype), np.array([L], dtype=int_dtype)
    for name, view in layouts(lp):
        path, score = libctc.align(view, targets, il, tl, blank=case["blank"])
        assert path.dtype == np.int64 and path.shape == (T, 1), name
        assert score.dtype == dtype and score.shape == (1,), name
        assert path[:, 0].tolist() == case["path"], name
        tol = 1e-9 if dtype == np.float64 else 1e-5
        assert score[0] == pytest.approx(case["path_score"], rel=tol, abs=tol), name
    # Unbatched (T, C) with (S,) targets and scalar lengths; concatenated targets.
    path, score = libctc.align(lp[:, 0], targets[0], T, L, blank=case["blank"])
    assert path.shape == (T,) and score.shape == () and path.tolist() == case["path"]
    path2, _ = libctc.align(lp, targets[0], il, tl, blank=case["blank"])
    assert path2[:, 0].tolist() == case["path"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_batch_of_mixed_lengths_equals_each_case(dtype):
    cases = all_cases()
    lp, targets, il, tl, paths = common_batch(cases, C=34)
    lp = lp.astype(dtype)
    results = [libctc.align(lp, targets, il, tl, num_threads=k) for k in (1, 2, 0)]
    for path, score in results[1:]:  # bitwise identical for every thread count
        assert np.array_equal(path, results[0][0]) and np.array_equal(score, results[0][1])
    path, score = results[0]
    assert path.shape == (lp.shape[0], len(cases)) and score.dtype == dtype
    for n, c in enumerate(cases):
        assert np.array_equal(path[: c["T"], n], paths[n]), c["name"]
        assert (path[c["T"] :, n] == -1).all(), c["name"]
        assert score[n] == pytest.approx(c["path_score"], rel=1e-5)


def random_batch(rng, T=40, N=6, C=7, S=8, dtype=np.float64):
    x = rng.standard_normal((T, N, C))
    lp = (x - np.logaddexp.reduce(x, axis=-1, keepdims=True)).astype(dtype)
    tl = rng.integers(0, S + 1, size=N)
    il = rng.integers(2 * S + 1, T + 1, size=N)
    targets = rng.integers(1, C, size=(N, S))
    return lp, targets, il, tl


def test_numpy_paths_are_valid_and_scores_are_the_gathered_log_probs():
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        lp, targets, il, tl = random_batch(rng, dtype=dtype)
        path, score = libctc.align(lp, targets, il, tl)
        for n in range(lp.shape[1]):
            p = path[: il[n], n]
            assert collapse(p, 0) == targets[n, : tl[n]].tolist()
            assert (path[il[n] :, n] == -1).all()
            gathered = lp[np.arange(il[n]), n, p].astype(np.float64).sum()
            assert score[n] == pytest.approx(gathered, rel=1e-6 if dtype == np.float32 else 1e-12)
            one, one_score = libctc.align(lp[:, n], targets[n, : tl[n]], il[n], tl[n])
            assert np.array_equal(one, path[:, n]) and one_score == score[n]


def test_numpy_impossible_samples_get_minus_one_and_minus_inf():
    rng = np.random.default_rng(1)
    lp, targets, il, tl = random_batch(rng, T=10, N=4, C=5, S=4)
    targets[0, :3], tl[0], il[0] = [2, 2, 3], 3, 3  # needs 4 frames (a blank between the 2s)
    lp[:, 1, targets[1, 0]] = -np.inf  # its first label can never be emitted
    tl[1] = max(tl[1], 1)
    il[2], tl[2] = 0, 0  # no frames, no labels: aligned, empty, score 0
    path, score = libctc.align(lp, targets, il, tl)
    assert (path[:, 0] == -1).all() and (path[:, 1] == -1).all() and (path[:, 2] == -1).all()
    assert score[0] == -np.inf and score[1] == -np.inf and score[2] == 0
    assert np.isfinite(score[3]) and collapse(path[:, 3], 0) == targets[3, : tl[3]].tolist()


def test_numpy_argument_checks_are_the_losss():
    lp, targets, il, tl = random_batch(np.random.default_rng(2), T=12, N=2, C=5, S=3)
    with pytest.raises(libctc.CtcTypeError, match="input_lengths must be integral"):
        libctc.align(lp, targets, il.astype(np.float64), tl)
    with pytest.raises(libctc.CtcTypeError, match="target_lengths must be integral"):
        libctc.align(lp, targets, il, [True, False])
    with pytest.raises(libctc.CtcTypeError, match="targets must be integral"):
        libctc.align(lp, targets.astype(np.float32), il, tl)
    with pytest.raises(libctc.CtcTypeError, match="blank must be integral"):
        libctc.align(lp, targets, il, tl, blank=0.0)
    with pytest.raises(libctc.CtcInvalidArgument, match="log_probs tensor must not be empty"):
        libctc.align(lp[:0], targets, il, tl)
    with pytest.raises(libctc.CtcInvalidArgument, match="input_lengths must be of size batch_size = 2"):
        libctc.align(lp, targets, il[:1], tl)
    bad = targets.copy()
    bad[1, 0] = 0
    with pytest.raises(libctc.CtcInvalidArgument, match=r"targets\[1\]\[0\] = 0"):
        libctc.align(lp, bad, il, np.array([1, 1]))
    with pytest.raises(libctc.CtcInvalidArgument, match="input_lengths"):
        libctc.align(lp, targets, np.array([13, 12]), tl)
    with pytest.raises(libctc.CtcInvalidArgument, match="blank"):
        libctc.align(lp, targets, il, tl, blank=5)
    # float16: the paths of the same values in float32, float32 scores.
    path, scores = libctc.align(lp.astype(np.float16), targets, il, tl)
    want_path, want_scores = libctc.align(lp.astype(np.float16).astype(np.float32), targets, il, tl)
    np.testing.assert_array_equal(path, want_path)
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(scores, want_scores)


# ----- torch: libctc.functional.forced_align -----


def torch_case(torch, case, dtype=None, int_dtype=None):
    dtype = dtype or torch.float32
    int_dtype = int_dtype or torch.int64
    lp = torch.tensor(case["log_probs"], dtype=torch.float32).to(dtype).reshape(1, case["T"], case["C"])
    return lp, torch.tensor([case["targets"]], dtype=int_dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("int_dtype", ["int32", "int64"])
def test_forced_align_golden(case, dtype, int_dtype):
    torch = _torch()
    import libctc.functional as F

    dtype, int_dtype = getattr(torch, dtype), getattr(torch, int_dtype)
    lp, targets = torch_case(torch, case, dtype, int_dtype)
    lengths = (torch.tensor([case["T"]], dtype=int_dtype), torch.tensor([len(case["targets"])], dtype=int_dtype))
    for il, tl in ((None, None), lengths):
        paths, scores = F.forced_align(lp, targets, il, tl, blank=case["blank"])
        assert paths.dtype == int_dtype and paths.shape == (1, case["T"])  # torchaudio: targets' dtype
        assert scores.dtype == dtype and scores.shape == (1, case["T"])
        assert paths[0].tolist() == case["path"]
        expected = torch.tensor(case["frame_scores"], dtype=torch.float32).to(dtype)
        assert torch.equal(scores[0], expected)


def test_merge_tokens_golden(case):
    torch = _torch()
    import libctc.functional as F

    scores = torch.tensor(case["frame_scores"], dtype=torch.float32)
    spans = F.merge_tokens(torch.tensor(case["path"]), scores.exp(), blank=case["blank"])
    assert [(s.token, s.start, s.end) for s in spans] == [(s["token"], s["start"], s["end"]) for s in case["spans"]]
    for ours, theirs in zip(spans, case["spans"]):
        assert ours.score == pytest.approx(theirs["score"], rel=1e-6)
        assert len(ours) == theirs["end"] - theirs["start"]


def torch_batch(torch, cases, C=34, dtype=None):
    """common_batch as batch-first torch tensors (B, T, C), NaN past each case's frames."""
    lp, targets, il, tl, paths = common_batch(cases, C)
    lp = torch.tensor(lp.transpose(1, 0, 2).copy(), dtype=dtype or torch.float64)
    return lp, torch.tensor(targets), torch.tensor(il), torch.tensor(tl), paths


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forced_align_batch_of_mixed_lengths_equals_each_case(dtype):
    torch = _torch()
    import libctc.functional as F

    cases = all_cases()
    lp, targets, il, tl, expected = torch_batch(torch, cases, dtype=getattr(torch, dtype))
    paths, scores = F.forced_align(lp, targets, il, tl)
    assert paths.shape == scores.shape == lp.shape[:2]
    for b, c in enumerate(cases):
        T = c["T"]
        assert paths[b, :T].tolist() == expected[b].tolist(), c["name"]
        assert (paths[b, T:] == -1).all() and (scores[b, T:] == 0).all(), c["name"]
        gathered = lp[b, torch.arange(T), paths[b, :T]]
        assert torch.equal(scores[b, :T], gathered), c["name"]
        frame = torch.tensor(c["frame_scores"], dtype=torch.float32).to(lp.dtype)
        assert torch.equal(scores[b, :T], frame), c["name"]


def test_forced_align_every_layout_and_dtype_gives_the_same():
    torch = _torch()
    import libctc.functional as F

    lp, targets, il, tl = (torch.from_numpy(x) for x in random_batch(np.random.default_rng(3), N=5))
    lp = lp.transpose(0, 1).contiguous()  # (B, T, C)
    tl[0], il[1] = targets.shape[1], lp.shape[1]  # torchaudio's max(lengths) == L and == T
    ref_paths, ref_scores = F.forced_align(lp, targets, il, tl)
    B, T, C = lp.shape
    time_first = lp.transpose(0, 1).contiguous().transpose(0, 1)
    wide = torch.full((B, T, C + 4), float("nan"), dtype=lp.dtype)
    wide[:, :, 1 : C + 1] = lp
    strided = torch.full((B, 3 * T, C), float("nan"), dtype=lp.dtype)
    strided[:, ::3] = lp
    views = {"time_first": time_first, "class_slice": wide[:, :, 1 : C + 1], "frame_stride": strided[:, ::3]}
    for name, view in views.items():
        assert not view.is_contiguous()
        paths, scores = F.forced_align(view, targets, il, tl)
        assert torch.equal(paths, ref_paths) and torch.equal(scores, ref_scores), name
    for it in (torch.int32, torch.int64):
        paths, scores = F.forced_align(lp, targets.to(it), il.to(it), tl.to(torch.int32))
        assert torch.equal(paths.long(), ref_paths) and paths.dtype == it
    paths, scores = F.forced_align(lp.float(), targets.t().contiguous().t(), il, tl)  # column-major targets
    assert torch.equal(paths, ref_paths) and scores.dtype == torch.float32
    gathered = lp.float().gather(2, paths.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    assert torch.equal(scores, torch.where(paths >= 0, gathered, 0))
    # The numpy API on the same input agrees, its path score the sum of the frame scores.
    np_paths, np_scores = libctc.align(lp.numpy().transpose(1, 0, 2), targets.numpy(), il.numpy(), tl.numpy())
    assert np.array_equal(np_paths.T, ref_paths.numpy())
    assert np.allclose(np_scores, ref_scores.sum(1).numpy(), rtol=1e-12)


def test_forced_align_impossible_sample_gets_minus_one_and_minus_inf():
    torch = _torch()
    import libctc.functional as F

    lp, targets, il, tl = (torch.from_numpy(x) for x in random_batch(np.random.default_rng(4), T=12, N=3, C=5, S=3))
    lp = lp.transpose(0, 1).contiguous()
    il[:], tl[:] = torch.tensor([12, 9, 12]), 3
    lp[1, :, targets[1, 1]] = float("-inf")  # sample 1 can never emit its second label
    paths, scores = F.forced_align(lp, targets, il, tl)
    assert (paths[1] == -1).all()
    assert torch.isneginf(scores[1, :9]).all() and (scores[1, 9:] == 0).all()
    for b in (0, 2):
        assert collapse(paths[b].tolist(), 0) == targets[b].tolist() and torch.isfinite(scores[b]).all()


def test_forced_align_validation():
    torch = _torch()
    import libctc.functional as F

    g = torch.Generator().manual_seed(0)
    lp = torch.randn(2, 10, 5, generator=g, dtype=torch.float64).log_softmax(-1)
    targets = torch.tensor([[1, 2, 3], [4, 4, 0]])
    il, tl = torch.tensor([10, 8]), torch.tensor([3, 2])
    cases = [
        ((lp.numpy(), targets), libctc.CtcTypeError, "log_probs must be a tensor, got ndarray"),
        ((lp, [[1, 2, 3]]), libctc.CtcTypeError, "targets must be a tensor, got list"),
        ((lp[0], targets), libctc.CtcInvalidArgument, r"log_probs must be 3-D .*got shape \(10, 5\)"),
        ((lp.bfloat16(), targets), libctc.CtcInvalidArgument, "float64, float32 or float16 .*torch.bfloat16"),
        ((lp.long(), targets), libctc.CtcInvalidArgument, "got torch.int64"),
        ((lp[:, :0], targets), libctc.CtcInvalidArgument, "log_probs tensor must not be empty"),
        ((lp, targets[0]), libctc.CtcInvalidArgument, r"targets must be 2-D .*got shape \(3,\)"),
        ((lp, targets.float()), libctc.CtcTypeError, "targets must be int32 or int64 type, got torch.float32"),
        ((lp, targets[:1]), libctc.CtcInvalidArgument, "targets has batch size 1 but log_probs has batch size 2"),
        ((lp, targets, [10, 8], tl), libctc.CtcTypeError, "input_lengths must be a tensor or None, got list"),
        ((lp, targets, il.float(), tl), libctc.CtcTypeError, "input_lengths must be integral, got dtype torch.float32"),
        ((lp, targets, il, tl > 0), libctc.CtcTypeError, "target_lengths must be integral, got dtype torch.bool"),
        ((lp, targets, il[None], tl), libctc.CtcInvalidArgument, r"input_lengths must be 1-D .*got shape \(1, 2\)"),
        ((lp, targets, il, tl[:1]), libctc.CtcInvalidArgument, r"target_lengths must be 1-D .*got shape \(1,\)"),
        ((lp, targets, torch.tensor([10, -1]), tl), libctc.CtcInvalidArgument, r"input_lengths\[1\] = -1 must be >= 0"),
        ((lp, targets, torch.tensor([11, 8]), tl), libctc.CtcInvalidArgument, "input length mismatch: .* = 11 .*T = 10"),
        ((lp, targets, il, torch.tensor([4, 2])), libctc.CtcInvalidArgument, "target length mismatch: .* = 4 .*L = 3"),
        ((lp, targets, il, torch.tensor([3, 3])), libctc.CtcInvalidArgument,
         r"shouldn't contain blank index. Found targets\[1\]\[2\] = 0"),
        ((lp, targets + 2, il, tl), libctc.CtcInvalidArgument,
         r"must be less than the CTC dimension. Found targets\[0\]\[2\] = 5"),
    ]
    for args, cls, pattern in cases:
        with pytest.raises(cls, match=pattern):
            F.forced_align(*args)
    for blank in (5, -1):
        with pytest.raises(libctc.CtcInvalidArgument, match=f"within \\[0, num classes\\), got blank = {blank}"):
            F.forced_align(lp, targets, il, tl, blank=blank)
    with pytest.raises(libctc.CtcTypeError, match="blank must be integral"):
        F.forced_align(lp, targets, il, tl, blank=True)
    # float16 (on the CPU): the paths of the same values in float32.
    half_paths, half_scores = F.forced_align(lp.half(), targets, il, tl)
    want_paths, _ = F.forced_align(lp.half().float(), targets, il, tl)
    assert torch.equal(half_paths, want_paths) and half_scores.dtype == torch.float16
    # A batch padded past its longest sample, and a sample too short for its labels: the batch
    # is aligned, that sample gets -1 and -inf.
    paths, scores = F.forced_align(lp, targets, torch.tensor([9, 2]), torch.tensor([2, 2]))
    assert collapse(paths[0, :9].tolist(), 0) == [1, 2] and (paths[0, 9:] == -1).all()
    assert (paths[1] == -1).all() and torch.isneginf(scores[1, :2]).all()
    # The blank (or anything) in the padding past target_lengths is not a label: accepted.
    paths, _ = F.forced_align(lp, targets, il, tl)
    assert collapse(paths[1].tolist(), 0) == [4, 4]


def test_forced_align_batch_of_one_raises_as_torchaudio():
    torch = _torch()
    import libctc.functional as F

    lp = torch.randn(1, 4, 5, dtype=torch.float64).log_softmax(-1)
    # torchaudio's texts for a batch of one (no sample index), also ValueError and RuntimeError.
    with pytest.raises(ValueError, match=r"^invalid argument: targets length is too long for CTC. Found log_probs "
                       r"length: 4, targets length: 3, and number of repeats: 2$"):
        F.forced_align(lp, torch.tensor([[1, 1, 1]]))
    with pytest.raises(RuntimeError, match="input length mismatch"):
        F.forced_align(lp, torch.tensor([[1]]), torch.tensor([3]))
    with pytest.raises(ValueError, match="targets Tensor shouldn't contain blank index"):
        F.forced_align(lp, torch.tensor([[1, 0]]))
    paths, scores = F.forced_align(lp, torch.tensor([[1, 2, 1, 2]]))  # exactly enough frames
    assert paths.tolist() == [[1, 2, 1, 2]]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_forced_align_under_torchscript_and_autograd():
    torch = _torch()
    import libctc.functional as F

    @torch.jit.script
    def scripted(lp: torch.Tensor, targets: torch.Tensor):
        return F.forced_align(lp, targets, None, None, 0)

    lp = torch.randn(1, 6, 4, dtype=torch.float64).log_softmax(-1).requires_grad_()
    targets = torch.tensor([[1, 3]])
    paths, scores = scripted(lp, targets)
    ref_paths, ref_scores = F.forced_align(lp, targets)
    assert torch.equal(paths, ref_paths) and torch.equal(scores, ref_scores)
    # The scores are gathered from log_probs, so a gradient flows to the chosen entries only.
    scores.sum().backward()
    expected = torch.zeros_like(lp)
    expected[0, torch.arange(6), paths[0]] = 1
    assert torch.equal(lp.grad, expected)


def test_forced_align_cuda_tensors_reach_the_library(monkeypatch):
    """CUDA tensors go to the library with their device fields: with a CUDA device it aligns
    there, with the CPU's paths. Without CUDA, the device fields are forged on CPU tensors for
    a library that sees no CUDA device (CtcUnsupported before it reads any memory)."""
    torch = _torch()
    import libctc.functional as F
    from libctc import _native, _torch as T

    lp = torch.randn(1, 6, 4).log_softmax(-1)
    targets = torch.tensor([[1, 3]])
    if torch.cuda.is_available():
        lp, targets = lp.cuda(), targets.cuda()
    elif libctc.cuda_device_count() == 0:
        real = T._tensor

        def forged(t, name):
            out = real(t, name)
            out.device = _native.Device.CUDA
            return out

        monkeypatch.setattr(T, "_tensor", forged)
    else:
        pytest.skip("the library sees a CUDA device that torch cannot use")
    try:
        paths, scores = F.forced_align(lp, targets)
    except libctc.CtcUnsupported:
        return
    ref_paths, _ = F.forced_align(lp.cpu(), targets.cpu())  # a later library aligning on CUDA
    assert torch.equal(paths.cpu(), ref_paths)


# ----- merge_tokens -----


def merge_by_hand(tokens, scores, blank):
    """torchaudio's merge_tokens, written out: runs of equal tokens, blank runs dropped, score
    the mean over the run (in float64 here)."""
    spans, start = [], 0
    for t in range(1, len(tokens) + 1):
        if t == len(tokens) or tokens[t] != tokens[start]:
            if tokens[start] not in (blank, -1):
                spans.append((tokens[start], start, t, sum(scores[start:t]) / (t - start)))
            start = t
    return spans


@pytest.mark.parametrize(
    "tokens, blank",
    [
        ([0, 1, 1, 0, 2, 2, 2, 0, 0, 3], 0),
        ([1, 1, 0, 1, 2, 3, 3], 0),  # a repeat across a blank, adjacent labels, no final blank
        ([0, 0, 0], 0),
        ([4], 0),
        ([], 0),
        ([2, 0, 0, 1, 2, 2], 2),  # a blank other than 0
        ([0, 5, 5, 0, -1, -1], 0),  # padding of a batched alignment
    ],
)
def test_merge_tokens_known_cases(tokens, blank):
    torch = _torch()
    import libctc.functional as F

    scores = [0.5, 0.25, 0.125, 1.0, 0.75, 0.5, 0.375, 0.0, 0.625, 0.875][: len(tokens)]
    t_tokens, t_scores = torch.tensor(tokens, dtype=torch.int64), torch.tensor(scores, dtype=torch.float64)
    spans = F.merge_tokens(t_tokens, t_scores, blank=blank)
    assert all(isinstance(s, F.TokenSpan) for s in spans)
    assert [(s.token, s.start, s.end, s.score) for s in spans] == merge_by_hand(tokens, scores, blank)
    expected = {
        (0, 1, 1, 0, 2, 2, 2, 0, 0, 3): [(1, 1, 3), (2, 4, 7), (3, 9, 10)],
        (1, 1, 0, 1, 2, 3, 3): [(1, 0, 2), (1, 3, 4), (2, 4, 5), (3, 5, 7)],
    }.get(tuple(tokens))
    if expected:
        assert [(s.token, s.start, s.end) for s in spans] == expected


def test_merge_tokens_validation():
    torch = _torch()
    import libctc.functional as F

    with pytest.raises(ValueError, match=r"must be 1D Tensor, got shapes \(1, 3\) and \(3,\)"):
        F.merge_tokens(torch.tensor([[1, 2, 3]]), torch.zeros(3))
    with pytest.raises(libctc.CtcInvalidArgument, match="must be the same length, got 3 and 2"):
        F.merge_tokens(torch.tensor([1, 2, 3]), torch.zeros(2))


# ----- examples/align_words.py -----


def test_align_words_example_prints_each_word_in_order():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python"))
    transcript = "Hello, little balloon -- it's all"
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "align_words.py"), transcript],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    rows = [line.split() for line in out[2:]]
    assert [r[0] for r in rows] == ["hello", "little", "balloon", "it's", "all"]
    times = [(float(r[1]), float(r[2])) for r in rows]
    assert all(0 <= a < b for a, b in times)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(times, times[1:]))
    for r, (a, b) in zip(rows, times):  # the synthetic truth, in brackets, within a frame
        t0, t1 = float(r[3].strip("[")), float(r[5].strip("]"))
        assert math.isclose(a, t0, abs_tol=0.021) and math.isclose(b, t1, abs_tol=0.021)
