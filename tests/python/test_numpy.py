import numpy as np
import pytest

import libctc
from libctc import _native, _numpy


def golden_arrays(g, dtype):
    T, N, C = g["T"], g["N"], g["C"]
    lp = np.array(g["log_probs"], dtype=dtype)
    if g["batched"]:
        lp = lp.reshape(T, N, C)
        if g["targets_layout"] == "padded":
            targets = np.array(g["targets"], dtype=np.int64).reshape(N, g["S"])
        else:
            targets = np.array(g["targets"], dtype=np.int64)
        il = np.array(g["input_lengths"], dtype=np.int64)
        tl = np.array(g["target_lengths"], dtype=np.int64)
    else:
        lp = lp.reshape(T, C)
        targets = np.array(g["targets"], dtype=np.int64)
        il = np.array(g["input_lengths"][0], dtype=np.int64)
        tl = np.array(g["target_lengths"][0], dtype=np.int64)
    return lp, targets, il, tl


def kwargs(g):
    return dict(blank=g["blank"], reduction=g["reduction"], zero_infinity=g["zero_infinity"])


def grad_out(g, dtype):
    go = np.array(g["grad_out"], dtype=dtype)
    return go if (g["reduction"] == "none" and g["batched"]) else go.reshape(())


def assert_close(ours, expected, torch_f32=None, relative=False, tol=1e-10):
    """float64: within ``tol``; float32 (``torch_f32`` given): the largest error at most twice
    torch's own float32 error, with a floor of ``tol``. NaN and inf exactly where expected."""
    ours = np.asarray(ours, dtype=np.float64).ravel()
    expected = np.asarray(expected, dtype=np.float64).ravel()
    assert np.array_equal(np.isnan(ours), np.isnan(expected))
    assert np.array_equal(np.isinf(ours) & (ours > 0), np.isinf(expected) & (expected > 0))
    finite = np.isfinite(expected)
    scale = np.maximum(np.abs(expected[finite]), 1.0) if relative else 1.0
    err = np.max(np.abs(ours[finite] - expected[finite]) / scale, initial=0.0)
    if torch_f32 is not None:
        theirs = np.asarray(torch_f32, dtype=np.float64).ravel()[finite]
        tol = max(tol, 2 * np.max(np.abs(theirs - expected[finite]) / scale, initial=0.0))
    assert err <= tol, f"error {err:.3e} > {tol:.3e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_golden(golden, dtype):
    lp, targets, il, tl = golden_arrays(golden, dtype)
    loss, grad = libctc.ctc_loss_and_grad(lp, targets, il, tl, grad_loss=grad_out(golden, dtype), **kwargs(golden))
    assert loss.dtype == dtype and grad.dtype == dtype and grad.shape == lp.shape
    if dtype == np.float64:
        assert_close(loss, golden["expected"]["loss"], relative=True)
        assert_close(grad, golden["expected"]["grad"])
    else:
        f32 = golden["expected_torch_f32"]
        assert_close(loss, golden["expected"]["loss"], f32["loss"], relative=True, tol=1e-6)
        assert_close(grad, golden["expected"]["grad"], f32["grad"], tol=1e-5)
    alone = libctc.ctc_loss(lp, targets, il, tl, **kwargs(golden))
    assert np.array_equal(alone, loss, equal_nan=True)
    g2 = libctc.ctc_loss_grad(lp, targets, il, tl, grad_loss=grad_out(golden, dtype), **kwargs(golden))
    assert np.array_equal(g2, grad, equal_nan=True)


def random_case(rng, T=30, N=5, C=8, S=10, dtype=np.float32):
    x = rng.standard_normal((T, N, C))
    lp = (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)
    tl = rng.integers(1, S + 1, size=N)
    targets = rng.integers(1, C, size=(N, S))
    il = rng.integers(T // 2 + S, T + 1, size=N)
    return lp, targets, il, tl


def test_batch_first_and_sliced_inputs_are_not_copied():
    rng = np.random.default_rng(0)
    lp, targets, il, tl = random_case(rng)
    ntc = np.ascontiguousarray(lp.transpose(1, 0, 2))  # (N, T, C) memory
    view = ntc.transpose(1, 0, 2)  # seen as (T, N, C)
    padded = np.full((lp.shape[0], lp.shape[1], lp.shape[2] + 5), np.nan, dtype=lp.dtype)
    padded[:, :, : lp.shape[2]] = lp
    sliced = padded[:, :, : lp.shape[2]]  # Kaldi-style padded rows
    for a in (view, sliced):
        assert _numpy._passable(a) is a  # passed as is, no copy
    ref_loss, ref_grad = libctc.ctc_loss_and_grad(lp, targets, il, tl, reduction="none")
    for a in (view, sliced):
        loss, grad = libctc.ctc_loss_and_grad(a, targets, il, tl, reduction="none")
        assert np.array_equal(loss, ref_loss) and np.array_equal(grad, ref_grad)
    # Strided targets (every other column) and int32 lengths as lists.
    wide = np.zeros((targets.shape[0], 2 * targets.shape[1]), dtype=np.int32)
    wide[:, ::2] = targets
    loss = libctc.ctc_loss(lp, wide[:, ::2], list(il), [int(v) for v in tl], reduction="none")
    assert np.array_equal(loss, ref_loss)


def test_gradient_written_in_place_into_strided_output():
    rng = np.random.default_rng(1)
    lp, targets, il, tl = random_case(rng, dtype=np.float64)
    ref = libctc.ctc_loss_grad(lp, targets, il, tl)
    big = np.full((lp.shape[0], lp.shape[1], lp.shape[2] + 3), 7.0)
    out = big[:, :, : lp.shape[2]]
    res = libctc.ctc_loss_grad(lp, targets, il, tl, out=out)
    assert res is out and np.array_equal(out, ref)
    assert np.all(big[:, :, lp.shape[2] :] == 7.0)


def test_concatenated_targets_equal_padded():
    rng = np.random.default_rng(2)
    lp, targets, il, tl = random_case(rng)
    concat = np.concatenate([targets[b, : tl[b]] for b in range(len(tl))]).astype(np.int32)
    a = libctc.ctc_loss(lp, targets, il, tl, reduction="sum")
    b = libctc.ctc_loss(lp, concat, il.astype(np.int32), tl, reduction="sum")
    assert a == b


def test_invalid_label_raises_value_error_with_message():
    rng = np.random.default_rng(3)
    lp, targets, il, tl = random_case(rng, C=8)
    targets[2, 0] = 8
    with pytest.raises(ValueError) as info:
        libctc.ctc_loss(lp, targets, il, tl)
    e = info.value
    assert isinstance(e, libctc.CtcInvalidArgument) and isinstance(e, libctc.CtcError)
    assert e.status == 1 and e.status_name == "invalid argument"
    assert "targets[2][0] = 8" in e.message


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda a: a.update(il=a["il"] + 100), "input_lengths[0]"),
        (lambda a: a.update(tl=-a["tl"]), "target_lengths[0] = -"),
        (lambda a: a.update(blank=8), "options.blank = 8"),
        (lambda a: a.update(il=a["il"][:-1]), "input_lengths must be of size batch_size = 5, got 4 elements"),
        (lambda a: a.update(targets=a["targets"][:, :2]), "exceeds the padded targets"),
        (lambda a: a.update(reduction="avg"), "avg is not a valid value for reduction"),
    ],
)
def test_error_paths(mutate, fragment):
    rng = np.random.default_rng(4)
    lp, targets, il, tl = random_case(rng, C=8)
    args = dict(targets=targets, il=il, tl=tl, blank=0, reduction="mean")
    mutate(args)
    with pytest.raises(libctc.CtcInvalidArgument) as info:
        libctc.ctc_loss(lp, args["targets"], args["il"], args["tl"], blank=args["blank"], reduction=args["reduction"])
    assert fragment in str(info.value)


def test_float16_is_float32_on_the_same_values_and_integers_are_rejected():
    rng = np.random.default_rng(5)
    lp, targets, il, tl = random_case(rng)
    h = lp.astype(np.float16)
    loss = libctc.ctc_loss(h, targets, il, tl, reduction="none")
    assert loss.dtype == np.float32
    np.testing.assert_array_equal(loss, libctc.ctc_loss(h.astype(np.float32), targets, il, tl, reduction="none"))
    loss, grad = libctc.ctc_loss_and_grad(h, targets, il, tl, grad_loss=2.0)
    assert loss.dtype == np.float32 and grad.dtype == np.float16
    _, want = libctc.ctc_loss_and_grad(h.astype(np.float32), targets, il, tl, grad_loss=2.0)
    np.testing.assert_array_equal(grad, want.astype(np.float16))
    with pytest.raises(libctc.CtcInvalidArgument):
        libctc.ctc_loss(lp, targets.astype(np.float32), il, tl)


def test_unbatched_scalar_lengths():
    rng = np.random.default_rng(6)
    lp, targets, il, tl = random_case(rng, N=1)
    batched = libctc.ctc_loss(lp, targets, il, tl, reduction="none")
    single = libctc.ctc_loss(lp[:, 0, :], targets[0], int(il[0]), int(tl[0]), reduction="none")
    assert single.shape == () and single == batched[0]


def test_missing_library_says_where_it_looked(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere" / "libctc.so"
    monkeypatch.setattr(_native, "candidate_paths", lambda: [missing])
    with pytest.raises(libctc.LibraryNotFound) as info:
        _native.load()
    assert str(missing) in str(info.value) and "CTC_LIBRARY" in str(info.value)


def test_lookup_order(monkeypatch):
    # An explicit CTC_LIBRARY is the only candidate: another library never silently replaces it.
    monkeypatch.setenv("CTC_LIBRARY", "/some/where/libctc.so")
    assert [str(p) for p in _native.candidate_paths()] == ["/some/where/libctc.so"]
    monkeypatch.delenv("CTC_LIBRARY")
    paths = [str(p) for p in _native.candidate_paths()]
    assert paths[0].endswith("libctc/libctc.so")
    assert paths[1].endswith("target/release/libctc.so") and paths[2].endswith("target/debug/libctc.so")


def test_signature_table_covers_every_export():
    lib = _native.lib()
    for name, (argtypes, restype) in _native.SIGNATURES.items():
        fn = getattr(lib, name)
        assert fn.argtypes == argtypes and fn.restype == restype
    assert libctc.version().count(".") == 2
    assert libctc.cuda_device_count() >= 0


@pytest.mark.parametrize(
    "lengths",
    [
        [29.9, 30, 30, 30, 30],
        [30.0] * 5,
        np.full(5, 30.0),
        [True] * 5,
        np.ones(5, dtype=bool),
        [30, 30, "30", 30, 30],
        [True, 4, 4, 4, 4],
        (4, np.bool_(True), 4, 4, 4),
    ],
)
@pytest.mark.parametrize("which", ["input_lengths", "target_lengths"])
def test_non_integral_lengths_are_refused_not_truncated(lengths, which):
    rng = np.random.default_rng(7)
    lp, targets, il, tl = random_case(rng, T=30, N=5, S=4)
    args = dict(input_lengths=il, target_lengths=tl)
    args[which] = lengths
    with pytest.raises(libctc.CtcTypeError, match=f"{which} must be integral") as info:
        libctc.ctc_loss(lp, targets, **args)
    assert isinstance(info.value, (TypeError, ValueError, RuntimeError))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(blank=0.0), "blank must be integral"),
        (dict(blank=True), "blank must be integral"),
        (dict(zero_infinity=1), "zero_infinity must be a bool"),
        (dict(zero_infinity="yes"), "zero_infinity must be a bool"),
        (dict(reduction=None), "None is not a valid value for reduction"),
    ],
)
def test_option_types_are_checked(kwargs, fragment):
    rng = np.random.default_rng(8)
    lp, targets, il, tl = random_case(rng)
    with pytest.raises(libctc.CtcInvalidArgument, match=fragment):
        libctc.ctc_loss(lp, targets, il, tl, **kwargs)
    # numpy integers and booleans are fine.
    libctc.ctc_loss(lp, targets, il, tl, blank=np.int64(0), zero_infinity=np.bool_(True))


@pytest.mark.parametrize("shape", [(0, 3, 5), (6, 0, 5), (6, 3, 0), (0, 5), (6, 0)])
def test_empty_log_probs_is_refused(shape):
    lp = np.zeros(shape, dtype=np.float32)
    n = shape[1] if len(shape) == 3 else 1
    lengths = np.zeros(n, dtype=np.int64) if len(shape) == 3 else 0
    with pytest.raises(libctc.CtcInvalidArgument, match="log_probs tensor must not be empty"):
        libctc.ctc_loss(lp, np.zeros((n, 0), dtype=np.int64), lengths, lengths)


def test_lengths_of_any_shape_holding_batch_size_values():
    # torch takes a 0-dim length for a batch of one, and any shape holding N values.
    rng = np.random.default_rng(9)
    lp, targets, il, tl = random_case(rng, N=1)
    ref = libctc.ctc_loss(lp, targets, il, tl, reduction="none")
    assert libctc.ctc_loss(lp, targets, il.reshape(()), tl.reshape(()), reduction="none") == ref
    assert libctc.ctc_loss(lp, targets, int(il[0]), int(tl[0]), reduction="none") == ref
    lp, targets, il, tl = random_case(rng, N=4)
    ref = libctc.ctc_loss(lp, targets, il, tl, reduction="none")
    got = libctc.ctc_loss(lp, targets, il.reshape(2, 2), tl.reshape(4, 1), reduction="none")
    assert np.array_equal(got, ref)
    with pytest.raises(libctc.CtcInvalidArgument, match="target_lengths must be of size batch_size = 4, got 1"):
        libctc.ctc_loss(lp, targets, il, tl[:1].reshape(()))


def test_release_cached_memory_frees_what_a_call_kept():
    rng = np.random.default_rng(0)
    lp = np.log(rng.dirichlet(np.ones(20), size=(200, 4))).astype(np.float32)
    targets = rng.integers(1, 20, size=(4, 30))
    libctc.ctc_loss_and_grad(lp, targets, [200] * 4, [30] * 4, reduction="none")
    assert libctc.release_cached_memory() > 0
    assert libctc.release_cached_memory() == 0


def test_bfloat16_through_ml_dtypes_is_float32_on_the_same_values():
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes is not installed: numpy has no bfloat16")
    rng = np.random.default_rng(8)
    lp, targets, il, tl = random_case(rng)
    b = lp.astype(ml_dtypes.bfloat16)
    wide = b.astype(np.float32)
    loss = libctc.ctc_loss(b, targets, il, tl, reduction="none")
    assert loss.dtype == np.float32
    np.testing.assert_array_equal(loss, libctc.ctc_loss(wide, targets, il, tl, reduction="none"))
    loss, grad = libctc.ctc_loss_and_grad(b, targets, il, tl, grad_loss=2.0)
    assert loss.dtype == np.float32 and grad.dtype == ml_dtypes.bfloat16
    _, want = libctc.ctc_loss_and_grad(wide, targets, il, tl, grad_loss=2.0)
    np.testing.assert_array_equal(grad, want.astype(ml_dtypes.bfloat16))
    path, scores = libctc.align(b, targets, il, tl)
    want_path, want_scores = libctc.align(wide, targets, il, tl)
    np.testing.assert_array_equal(path, want_path)
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(scores, want_scores)
