import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the drop-in tests need it")

import libctc  # noqa: E402
import libctc.functional  # noqa: E402


def random_inputs(seed, T=20, N=4, C=6, S=6, dtype=torch.float64, blank=0, concat=False, int32=False):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(T, N, C, generator=g, dtype=dtype)
    lp = logits.log_softmax(-1)
    labels = [c for c in range(C) if c != blank]
    tl = torch.randint(0, S + 1, (N,), generator=g)
    il = torch.randint(T // 2, T + 1, (N,), generator=g)
    targets = torch.tensor(labels)[torch.randint(0, len(labels), (N, S), generator=g)]
    if concat:
        targets = torch.cat([targets[b, : tl[b]] for b in range(N)])
    it = torch.int32 if int32 else torch.int64
    return logits, lp, targets.to(it), il.to(it), tl.to(it)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("blank", [0, 3, 5])
@pytest.mark.parametrize("layout", ["padded", "concat"])
def test_forward_backward_match_torch(reduction, zero_infinity, blank, layout):
    for seed in range(3):
        _, lp, targets, il, tl = random_inputs(
            seed, blank=blank, concat=layout == "concat", int32=seed == 1, T=8 if seed == 2 else 20
        )
        a = lp.clone().requires_grad_()
        b = lp.clone().requires_grad_()
        ours = libctc.CTCLoss(blank=blank, reduction=reduction, zero_infinity=zero_infinity)(a, targets, il, tl)
        ref = torch.nn.CTCLoss(blank=blank, reduction=reduction, zero_infinity=zero_infinity)(b, targets, il, tl)
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref, equal_nan=True, rtol=1e-10, atol=1e-10)
        w = torch.rand(ours.shape, dtype=lp.dtype) + 0.5
        if zero_infinity or torch.isfinite(ref).all():
            (ours * w).sum().backward()
            (ref * w).sum().backward()
            torch.testing.assert_close(a.grad, b.grad, equal_nan=True, rtol=1e-9, atol=1e-10)


def test_lists_unbatched_and_float32():
    _, lp, targets, il, tl = random_inputs(7, dtype=torch.float32)
    ours = libctc.functional.ctc_loss(lp, targets, il.tolist(), tl.tolist(), reduction="sum")
    ref = torch.nn.functional.ctc_loss(lp, targets, il.tolist(), tl.tolist(), reduction="sum")
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    # torch wants exactly target_length labels for unbatched input (libctc also takes a longer,
    # padded row).
    one = targets[0, : tl[0]]
    u = libctc.functional.ctc_loss(lp[:, 0], one, il[0], tl[0], reduction="none")
    r = torch.nn.functional.ctc_loss(lp[:, 0], one, il[0], tl[0], reduction="none")
    torch.testing.assert_close(u, r, rtol=1e-5, atol=1e-5)
    u = libctc.functional.ctc_loss(lp[:, 0], targets[0], il[0], tl[0], reduction="none")
    torch.testing.assert_close(u, r, rtol=1e-5, atol=1e-5)


def test_strided_views_are_used_without_copies():
    _, lp, targets, il, tl = random_inputs(8)
    ntc = lp.transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()  # (N, T, C) memory
    ref = lp.clone().requires_grad_()
    ours = libctc.functional.ctc_loss(ntc, targets, il, tl)
    want = torch.nn.functional.ctc_loss(ref, targets, il, tl)
    torch.testing.assert_close(ours, want, rtol=1e-10, atol=1e-10)
    ours.backward()
    want.backward()
    assert ntc.grad.stride() == ntc.stride()  # gradient produced in the input's layout
    torch.testing.assert_close(ntc.grad, ref.grad, rtol=1e-9, atol=1e-10)


def test_gradcheck_float64():
    logits, _, targets, il, tl = random_inputs(9, T=6, N=2, C=4, S=3)
    il = torch.tensor([6, 5])
    tl = torch.tensor([2, 1])
    x = logits.clone().requires_grad_()
    for reduction in ("none", "mean", "sum"):
        f = lambda z: libctc.functional.ctc_loss(z.log_softmax(-1), targets, il, tl, reduction=reduction)  # noqa: E731
        assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-7)


def test_invalid_label_raises_value_error():
    _, lp, targets, il, tl = random_inputs(10)
    targets[0, 0] = 99
    tl[0] = max(int(tl[0]), 1)
    with pytest.raises(ValueError, match=r"targets\[0\]\[0\] = 99"):
        libctc.functional.ctc_loss(lp, targets, il, tl)


def test_module_signature_matches_torch():
    import inspect

    assert str(inspect.signature(libctc.CTCLoss.__init__)) == str(inspect.signature(torch.nn.CTCLoss.__init__))
    ours = inspect.signature(libctc.functional.ctc_loss)
    theirs = inspect.signature(torch.nn.functional.ctc_loss)
    assert list(ours.parameters) == list(theirs.parameters)
