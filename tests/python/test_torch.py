"""The torch drop-in against torch itself: values, gradients, and the behaviour at the edges
(argument types, shapes, empty inputs, grad modes, second derivatives, TorchScript, compile).
Ports of torch's own CTC tests are in test_torch_ported.py."""

import io
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the drop-in tests need it")

import libctc  # noqa: E402
import libctc.functional  # noqa: E402
from conftest import ROOT  # noqa: E402
from libctc import _native  # noqa: E402

F = torch.nn.functional


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
    ref = F.ctc_loss(lp, targets, il.tolist(), tl.tolist(), reduction="sum")
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    one = targets[0, : tl[0]]
    for lengths in ((il[0], tl[0]), (il[:1], tl[:1]), ([int(il[0])], [int(tl[0])])):
        u = libctc.functional.ctc_loss(lp[:, 0], one, *lengths, reduction="none")
        r = F.ctc_loss(lp[:, 0], one, *lengths, reduction="none")
        assert u.shape == r.shape == ()
        torch.testing.assert_close(u, r, rtol=1e-5, atol=1e-5)


def test_strided_views_are_used_without_copies():
    _, lp, targets, il, tl = random_inputs(8)
    ntc = lp.transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()  # (N, T, C) memory
    ref = lp.clone().requires_grad_()
    ours = libctc.functional.ctc_loss(ntc, targets, il, tl)
    want = F.ctc_loss(ref, targets, il, tl)
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


def test_module_is_a_torch_ctcloss_with_its_signature():
    import inspect

    assert issubclass(libctc.CTCLoss, torch.nn.CTCLoss)
    # torch's parameters, in order, with their defaults; then libctc's own exact_gradient=False
    # and from_logits=False.
    for ours, theirs in (
        (libctc.CTCLoss.__init__, torch.nn.CTCLoss.__init__),
        (libctc.functional.ctc_loss, F.ctc_loss),
    ):
        ours, theirs = list(inspect.signature(ours).parameters.values()), inspect.signature(theirs).parameters
        assert [str(p) for p in ours[: len(theirs)]] == [str(p) for p in theirs.values()]
        assert [(p.name, p.default) for p in ours[len(theirs) :]] == [
            ("exact_gradient", False),
            ("from_logits", False),
        ]
    m = libctc.CTCLoss(blank=3, reduction="sum", zero_infinity=True)
    assert (m.blank, m.reduction, m.zero_infinity) == (3, "sum", True) and repr(m) == repr(torch.nn.CTCLoss())


@pytest.mark.parametrize(
    "code",
    [
        "import libctc\nf = libctc.functional.ctc_loss\nm = libctc.CTCLoss()",  # the README's usage
        "from libctc import functional, CTCLoss\nf = functional.ctc_loss",
    ],
    ids=["attribute", "from-import"],
)
def test_every_import_form_works_in_a_fresh_interpreter(code):
    # RecursionError before: the package's __getattr__ imported `functional` with
    # `from . import functional`, which asks the package for the attribute again.
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


# --- the edges: for each case torch and the drop-in both succeed with equal results, or both
# raise, the drop-in's exception being an instance of torch's class (RuntimeError, ValueError,
# TypeError, NotImplementedError), with torch's text where noted.

T, N, C, S = 50, 3, 15, 30
_G = torch.Generator().manual_seed(123)
LP = torch.randn(T, N, C, generator=_G, dtype=torch.float64).log_softmax(2)
TG = torch.randint(1, C, (N, S), generator=_G)
IL = torch.tensor([50, 48, 45])
TL = torch.tensor([30, 25, 20])
CONCAT = torch.cat([TG[0, :30], TG[1, :25], TG[2, :20]])
L, TLL = IL.tolist(), TL.tolist()

EDGES = {
    # lengths: integral tensors of N elements (any shape, any integer dtype) or lists of ints
    "float input_lengths tensor": (LP, TG, IL.double(), TL),
    "float target_lengths tensor": (LP, TG, IL, TL.float()),
    "bool input_lengths tensor": (LP, TG, IL.bool(), TL),
    "float in input_lengths list": (LP, TG, [49.9, 48, 45], TLL),
    "integral float in list": (LP, TG, [50.0, 48, 45], TLL),
    "bool target_lengths list": (LP, TG, L, [True, True, True]),
    "float 0-dim tensors in list": (LP, TG, [torch.tensor(50.0)] * 3, TLL),
    "int 0-dim tensors in list": (LP, TG, [torch.tensor(50), torch.tensor(48), torch.tensor(45)], TLL),
    "numpy ints in list": (LP, TG, [np.int64(v) for v in L], TLL),
    "tuples": (LP, TG, tuple(L), tuple(TLL)),
    "int16 and uint8 tensors": (LP, TG, IL.to(torch.int16), TL.to(torch.uint8)),
    "int32 and int64 tensors": (LP, TG, IL.int(), TL),
    "tensor and list mixed": (LP, TG, IL, TLL),
    "python ints": (LP[:, :1], TG[:1], 50, 30),
    "numpy arrays": (LP, TG, IL.numpy(), TL.numpy()),
    "0-dim lengths, batch of one": (LP[:, :1], TG[:1], torch.tensor(50), torch.tensor(30)),
    "0-dim lengths, batch of three": (LP, TG, torch.tensor(50), TL),
    "(N, 1) lengths": (LP, TG, IL.view(3, 1), TL),
    "(1, N) lengths": (LP, TG, IL.view(1, 3), TL),
    "too few input_lengths": (LP, TG, IL[:2], TL),
    "too few target_lengths": (LP, TG, IL, TL[:2]),
    "input_length past T": (LP, TG, [51, 48, 45], TLL),
    "negative input_length": (LP, TG, [-1, 48, 45], TLL),
    "negative target_length": (LP, TG, L, [-1, 25, 20]),
    "target_length past the padded targets": (LP, TG, L, [31, 25, 20]),
    # targets: torch converts any dtype to integers
    "int32 targets": (LP, TG.int(), IL, TL),
    "int16 targets": (LP, TG.to(torch.int16), IL, TL),
    "float targets": (LP, TG.double(), IL, TL),
    "concatenated targets": (LP, CONCAT, IL, TL),
    "concatenated targets, wrong total": (LP, CONCAT[:50], IL, TL),
    "3-d targets": (LP, TG.view(N, S, 1), IL, TL),
    "targets as a list": (LP, TG.tolist(), IL, TL),
    "targets of another batch size": (LP, TG[:2], IL, TL),
    # log_probs
    "empty T": (LP[:0], TG, torch.zeros(3, dtype=torch.long), TL),
    "empty N": (LP[:, :0], TG[:0], torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)),
    "empty C": (LP[:, :, :0], TG, IL, TL),
    "empty, torch's test_ctc_loss_error": (
        torch.rand(0, 0, 4),
        torch.tensor([], dtype=torch.long),
        torch.tensor([], dtype=torch.long),
        torch.tensor([], dtype=torch.long),
    ),
    "unbatched empty": (LP[:0, 0], TG[0], torch.tensor(0), torch.tensor(0)),
    "1-d log_probs": (LP[0, 0], TG[0], torch.tensor(1), torch.tensor(1)),
    "4-d log_probs": (LP.unsqueeze(-1), TG, IL, TL),
    "integer log_probs": (LP.long(), TG, IL, TL),
    "float32 log_probs": (LP.float(), TG, IL, TL),
    "(N, T, C) memory": (LP.transpose(0, 1).contiguous().transpose(0, 1), TG, IL, TL),
    # unbatched: (T, C) with (S,) targets holding exactly target_length labels
    "unbatched, 0-dim lengths": (LP[:, 0], TG[0], torch.tensor(50), torch.tensor(30)),
    "unbatched, (1,) lengths": (LP[:, 0], TG[0], IL[:1], TL[:1]),
    "unbatched, list lengths": (LP[:, 0], TG[0], [50], [30]),
    "unbatched, (2,) lengths": (LP[:, 0], TG[0], IL[:2], TL[:2]),
    "unbatched, (1, S) targets": (LP[:, 0], TG[:1], torch.tensor(50), torch.tensor(30)),
    "unbatched, targets longer than target_length": (LP[:, 0], TG[0], torch.tensor(50), torch.tensor(20)),
}

OPTION_EDGES = {
    "reduction 'avg'": dict(reduction="avg"),
    "reduction None": dict(reduction=None),
    "blank = C": dict(blank=C),
    "negative blank": dict(blank=-1),
    "float blank": dict(blank=1.0),
    "bool blank": dict(blank=False),
    "numpy blank": dict(blank=np.int64(0)),
    "int zero_infinity": dict(zero_infinity=1),
    "reduction sum": dict(reduction="sum"),
    "reduction none, zero_infinity": dict(reduction="none", zero_infinity=True),
}

# Where torch's own text is worth matching (code may test for it).
TORCH_TEXT = {
    "float input_lengths tensor": "input_lengths must be integral",
    "float target_lengths tensor": "target_lengths must be integral",
    "bool input_lengths tensor": "input_lengths must be integral",
    "0-dim lengths, batch of three": "input_lengths must be of size batch_size",
    "too few input_lengths": "input_lengths must be of size batch_size",
    "too few target_lengths": "target_lengths must be of size batch_size",
    "empty T": "log_probs tensor must not be empty",
    "empty N": "log_probs tensor must not be empty",
    "empty C": "log_probs tensor must not be empty",
    "empty, torch's test_ctc_loss_error": "log_probs tensor must not be empty",
    "unbatched empty": "log_probs tensor must not be empty",
    "reduction 'avg'": "avg is not a valid value for reduction",
    "reduction None": "None is not a valid value for reduction",
}


def outcome(f, args, kwargs):
    try:
        return f(*args, **kwargs), None
    except Exception as e:  # noqa: BLE001 - the exception is the result under test
        return None, e


def assert_same_behaviour(name, args, kwargs):
    ours, our_error = outcome(libctc.functional.ctc_loss, args, kwargs)
    theirs, their_error = outcome(F.ctc_loss, args, kwargs)
    if their_error is None:
        assert our_error is None, f"{name}: torch computes, libctc raised {our_error!r}"
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        torch.testing.assert_close(ours, theirs, equal_nan=True, rtol=1e-6, atol=1e-6)
        return
    assert our_error is not None, f"{name}: torch raised {their_error!r}, libctc computed {ours}"
    assert isinstance(our_error, type(their_error)), f"{name}: {our_error!r} is no {type(their_error).__name__}"
    if name in TORCH_TEXT:
        assert TORCH_TEXT[name] in str(their_error) and TORCH_TEXT[name] in str(our_error)


@pytest.mark.parametrize("name", list(EDGES))
def test_edge_cases_behave_as_torch(name):
    assert_same_behaviour(name, EDGES[name], {})


@pytest.mark.parametrize("name", list(OPTION_EDGES))
def test_option_edge_cases_behave_as_torch(name):
    assert_same_behaviour(name, (LP, TG, IL, TL), OPTION_EDGES[name])


def test_lengths_are_never_truncated():
    # 49.9 once ran as 49: the loss then differs from the one at 50 and from torch's (an error).
    with pytest.raises(TypeError, match=r"input_lengths\[0\] must be integral"):
        libctc.functional.ctc_loss(LP, TG, [49.9, 48, 45], TLL)
    with pytest.raises(RuntimeError, match="input_lengths must be integral"):
        libctc.functional.ctc_loss(LP, TG, torch.tensor([49.9, 48, 45]), TL)


def test_deliberate_differences_labels_are_validated():
    # torch reads whatever an out-of-range label indexes and takes the blank as a label; libctc
    # refuses both, naming the offending entry (README: differences from torch).
    bad = TG.clone()
    bad[1, 3] = C
    F.ctc_loss(LP, bad, IL, TL)  # no error in torch
    with pytest.raises(ValueError, match=r"targets\[1\]\[3\] = 15"):
        libctc.functional.ctc_loss(LP, bad, IL, TL)
    bad[1, 3] = 0
    F.ctc_loss(LP, bad, IL, TL)
    with pytest.raises(ValueError, match=r"targets\[1\]\[3\] = 0"):
        libctc.functional.ctc_loss(LP, bad, IL, TL)
    # Padding past target_length is never read: the blank or -1 there is fine.
    padded = TG.clone()
    padded[2, 20:] = -1
    torch.testing.assert_close(libctc.functional.ctc_loss(LP, padded, IL, TL), F.ctc_loss(LP, TG, IL, TL))


# --- grad modes


@pytest.fixture
def calls(monkeypatch):
    """Counts the library's forward-only and fused calls."""
    lib = _native.lib()
    counts = {"ctc_loss_forward": 0, "ctc_loss_forward_backward": 0}
    for name in counts:
        fn = getattr(lib, name)

        def spy(*args, _fn=fn, _name=name):
            counts[_name] += 1
            return _fn(*args)

        monkeypatch.setattr(lib, name, spy)
    return counts


@pytest.mark.parametrize(
    "mode, requires_grad, fused",
    [
        ("enabled", True, True),
        ("enabled", False, False),
        ("no_grad", True, False),
        ("inference_mode", True, False),
        ("set_grad_enabled(False)", True, False),
    ],
)
def test_the_gradient_is_computed_only_when_it_will_be_used(calls, mode, requires_grad, fused):
    contexts = {
        "enabled": torch.enable_grad,
        "no_grad": torch.no_grad,
        "inference_mode": torch.inference_mode,
        "set_grad_enabled(False)": lambda: torch.set_grad_enabled(False),
    }
    lp = LP.clone().requires_grad_(requires_grad)
    with contexts[mode]():
        ours = libctc.functional.ctc_loss(lp, TG, IL, TL)
        theirs = F.ctc_loss(lp, TG, IL, TL)
    assert calls == {"ctc_loss_forward": int(not fused), "ctc_loss_forward_backward": int(fused)}
    assert ours.requires_grad == theirs.requires_grad
    torch.testing.assert_close(ours, theirs)


# --- second derivatives: none, as in torch, and never a wrong one


@pytest.mark.parametrize("f", [libctc.functional.ctc_loss, F.ctc_loss], ids=["libctc", "torch"])
def test_a_gradient_penalty_raises_torchs_error(f):
    lp = LP.clone().requires_grad_()
    (g,) = torch.autograd.grad(f(lp, TG, IL, TL), lp, create_graph=True)
    with pytest.raises(RuntimeError, match="derivative for aten::_ctc_loss_backward is not implemented"):
        (g**2).sum().backward()


def test_the_first_derivative_under_create_graph_is_torchs():
    lp = LP.clone().requires_grad_()
    w = torch.rand(N, dtype=LP.dtype)
    (ours,) = torch.autograd.grad(
        (libctc.functional.ctc_loss(lp, TG, IL, TL, reduction="none") * w).sum(), lp, create_graph=True
    )
    (theirs,) = torch.autograd.grad((F.ctc_loss(lp, TG, IL, TL, reduction="none") * w).sum(), lp, create_graph=True)
    assert ours.requires_grad and theirs.requires_grad
    torch.testing.assert_close(ours, theirs)
    # Through the upstream gradient as well: torch's backward has no derivative at all.
    wg = w.clone().requires_grad_()
    loss = libctc.functional.ctc_loss(lp, TG, IL, TL, reduction="none")
    (g,) = torch.autograd.grad(loss, lp, wg, create_graph=True)
    with pytest.raises(RuntimeError, match="derivative for aten::_ctc_loss_backward is not implemented"):
        torch.autograd.grad(g.sum(), wg)


def test_gradgradcheck_raises_as_for_torch():
    logits, _, targets, il, tl = random_inputs(12, T=5, N=2, C=3, S=2)
    x = logits.requires_grad_()
    for f in (libctc.functional.ctc_loss, F.ctc_loss):
        with pytest.raises(RuntimeError, match="derivative for aten::_ctc_loss_backward is not implemented"):
            torch.autograd.gradgradcheck(lambda z: f(z.log_softmax(-1), targets, il, tl), (x,))


# --- TorchScript, tracing, torch.compile


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script's deprecation warning
        yield


def test_the_module_scripts_and_computes_as_torchs(quiet):
    for kwargs in ({}, dict(blank=3, reduction="none", zero_infinity=True)):
        ours = torch.jit.script(libctc.CTCLoss(**kwargs))
        theirs = torch.jit.script(torch.nn.CTCLoss(**kwargs))
        _, lp, targets, il, tl = random_inputs(11, T=30, N=3, C=6, blank=kwargs.get("blank", 0))
        a, b = lp.clone().requires_grad_(), lp.clone().requires_grad_()
        la, lb = ours(a, targets, il, tl), theirs(b, targets, il, tl)
        torch.testing.assert_close(la, lb)
        la.sum().backward()
        lb.sum().backward()
        torch.testing.assert_close(a.grad, b.grad)


def test_a_scripted_function_calls_the_drop_in(quiet):
    @torch.jit.script
    def loss(log_probs, targets, input_lengths, target_lengths):
        return libctc.functional.ctc_loss(log_probs, targets, input_lengths, target_lengths, 0, "sum", False)

    torch.testing.assert_close(loss(LP, TG, IL, TL), F.ctc_loss(LP, TG, IL, TL, reduction="sum"))


def test_a_scripted_module_cannot_be_saved_and_says_why(quiet):
    # The library is called from Python, not registered as a TorchScript operator (README).
    scripted = torch.jit.script(libctc.CTCLoss())
    with pytest.raises(RuntimeError, match="Could not export Python function call '_ctc_loss'"):
        torch.jit.save(scripted, io.BytesIO())


def test_tracing_is_refused_with_a_clear_message(quiet):
    with pytest.raises(RuntimeError, match="torch.jit.trace cannot record libctc's ctc_loss.*torch.jit.script"):
        torch.jit.trace(libctc.CTCLoss(), (LP, TG, IL, TL))


def test_torch_compile_runs_the_drop_in_eagerly():
    compiled = torch.compile(libctc.CTCLoss(reduction="sum"))
    for seed in range(2):
        _, lp, targets, il, tl = random_inputs(seed)
        a, b = lp.clone().requires_grad_(), lp.clone().requires_grad_()
        la, lb = compiled(a, targets, il, tl), F.ctc_loss(b, targets, il, tl, reduction="sum")
        torch.testing.assert_close(la, lb)
        la.backward()
        lb.backward()
        torch.testing.assert_close(a.grad, b.grad)


def test_inputs_are_not_modified_and_the_loss_is_fresh():
    lp, tg, il, tl = LP.clone(), TG.clone(), IL.clone(), TL.clone()
    out = libctc.functional.ctc_loss(lp.requires_grad_(), tg, il, tl, reduction="none")
    out.sum().backward()
    assert torch.equal(lp.detach(), LP) and torch.equal(tg, TG) and torch.equal(il, IL) and torch.equal(tl, TL)
    assert math.isfinite(float(out.detach().sum()))


# --- exact_gradient=True (libctc only): the true derivative for arbitrary log-scores


def test_exact_gradient_passes_gradcheck_on_unnormalized_scores_where_torchs_fails():
    _, _, targets, il, tl = random_inputs(21, T=6, N=2, C=4, S=3)
    il, tl = torch.tensor([6, 5]), torch.tensor([2, 1])
    g = torch.Generator().manual_seed(3)
    scores = (2 * torch.randn(6, 2, 4, generator=g, dtype=torch.float64) - 1).requires_grad_()
    for reduction in ("none", "mean", "sum"):

        def exact(z):
            return libctc.functional.ctc_loss(z, targets, il, tl, reduction=reduction, exact_gradient=True)

        assert torch.autograd.gradcheck(exact, (scores,), eps=1e-6, atol=1e-7)

        def torchs(z):
            return libctc.functional.ctc_loss(z, targets, il, tl, reduction=reduction)

        assert not torch.autograd.gradcheck(torchs, (scores,), eps=1e-6, atol=1e-7, raise_exception=False)


def test_exact_gradient_through_priors_added_to_log_probs():
    logits, _, targets, il, tl = random_inputs(22, T=7, N=3, C=5, S=3)
    prior = torch.log(torch.tensor([0.5, 0.2, 0.1, 0.1, 0.1], dtype=torch.float64))
    x = logits.clone().requires_grad_()
    loss = lambda z, **kw: libctc.CTCLoss(**kw)(z.log_softmax(-1) - prior, targets, il, tl)  # noqa: E731
    assert torch.autograd.gradcheck(lambda z: loss(z, exact_gradient=True), (x,), eps=1e-6, atol=1e-7)
    assert not torch.autograd.gradcheck(lambda z: loss(z), (x,), eps=1e-6, atol=1e-7, raise_exception=False)


def test_exact_gradient_is_finite_at_masked_classes_and_scripts(quiet):
    _, lp, targets, il, tl = random_inputs(23, T=20, N=2, C=6)
    lp, targets = lp.clone(), targets.clamp(max=4)
    lp[:, :, 5] = float("-inf")  # a class no target uses, masked everywhere
    lp[3, :, 0] = float("-inf")  # the blank masked at one frame
    module = torch.jit.script(libctc.CTCLoss(reduction="sum", exact_gradient=True))
    x = lp.clone().requires_grad_()
    module(x, targets, il, tl).backward()
    assert torch.isfinite(x.grad).all()
    y = lp.clone().requires_grad_()
    libctc.CTCLoss(reduction="sum")(y, targets, il, tl).backward()
    assert torch.isnan(y.grad).any()  # torch's formula: NaN at -inf inputs
    with pytest.raises(libctc.CtcTypeError, match="exact_gradient must be a bool"):
        libctc.CTCLoss(exact_gradient=1)


def test_numpy_exact_gradient_is_torchs_minus_exp_log_probs():
    _, lp, targets, il, tl = random_inputs(24, T=15, N=3, C=5)
    args = (lp.numpy(), targets.numpy(), il.numpy(), tl.numpy())
    _, torchs = libctc.ctc_loss_and_grad(*args, reduction="sum")
    loss, exact = libctc.ctc_loss_and_grad(*args, reduction="sum", exact_gradient=True)
    frames = np.arange(lp.shape[0])[:, None, None] < il.numpy()[None, :, None]
    want = np.where(frames, torchs - np.exp(lp.numpy()), 0.0)
    np.testing.assert_allclose(exact, want, atol=1e-12)
    np.testing.assert_array_equal(libctc.ctc_loss_grad(*args, reduction="sum", exact_gradient=True), exact)


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_backward_again_with_retain_graph_and_in_place_grad_edits(reduction, from_logits):
    # The first backward hands libctc's gradient buffer on as the leaf's .grad; a second backward
    # through the same graph must not read that (since edited) buffer.
    logits, lp, targets, il, tl = random_inputs(34, T=15, N=3, C=6)
    x = (logits if from_logits else lp).clone().requires_grad_()
    a = x.clone().detach().requires_grad_()
    loss = libctc.functional.ctc_loss(x, targets, il, tl, reduction=reduction, from_logits=from_logits)
    weights = torch.tensor([0.5, 2.0, -1.0], dtype=loss.dtype) if reduction == "none" else torch.tensor(1.0)
    loss.backward(weights, retain_graph=True)
    first = x.grad.clone()
    x.grad.mul_(100.0)  # an in-place edit of .grad (gradient clipping does this)
    x.grad = None
    loss.backward(weights, retain_graph=True)
    loss.backward(weights)
    torch.testing.assert_close(x.grad, 2 * first, rtol=1e-12, atol=1e-12)
    ref_in = a.log_softmax(-1) if from_logits else a
    F.ctc_loss(ref_in, targets, il, tl, reduction=reduction).backward(weights)
    torch.testing.assert_close(first, a.grad, rtol=1e-9, atol=1e-12)


# --- float16 and bfloat16 (libctc only; torch's CPU CTC refuses them): float32 accumulation


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("from_logits", [False, True])
def test_half_inputs_are_float32_on_the_same_values(dtype, from_logits):
    logits, lp, targets, il, tl = random_inputs(36, T=40, N=5, C=300, S=8, dtype=torch.float32)
    x = (logits if from_logits else lp).to(dtype)
    with pytest.raises(RuntimeError):
        F.ctc_loss(x, targets, il, tl)  # torch: not implemented for half on the CPU
    for reduction in ("none", "mean"):
        h = x.clone().requires_grad_()
        loss = libctc.functional.ctc_loss(h, targets, il, tl, reduction=reduction, from_logits=from_logits)
        assert loss.dtype == torch.float32  # a half loss overflows past 65504
        loss.sum().backward()
        assert h.grad.dtype == dtype
        w = x.float().requires_grad_()  # the same values, widened exactly
        want = libctc.functional.ctc_loss(w, targets, il, tl, reduction=reduction, from_logits=from_logits)
        want.sum().backward()
        assert torch.equal(loss.detach(), want.detach())
        assert torch.equal(h.grad, w.grad.to(dtype))
    # numpy float16 (numpy has no bfloat16): loss float32, gradient float16.
    if dtype == torch.float16:
        args = (x.numpy(), targets.numpy(), il.numpy(), tl.numpy())
        loss, grad = libctc.ctc_loss_and_grad(*args, from_logits=from_logits)
        assert loss.dtype == np.float32 and grad.dtype == np.float16
        np.testing.assert_array_equal(loss, want.detach().numpy())


# --- from_logits=True (libctc only): log_softmax applied inside


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(30, 3, 8, 6), (25, 17, 7, 5), (20, 4, 400, 6)])
def test_from_logits_is_log_softmax_then_ctc_loss(reduction, shape):
    T, N, C, S = shape
    logits, _, targets, il, tl = random_inputs(31, T=T, N=N, C=C, S=S)
    logits = 3 * logits + 20  # scores, not log-probabilities

    def torchs(x):
        a = x.clone().requires_grad_()
        loss = F.ctc_loss(a.log_softmax(-1), targets, il, tl, reduction=reduction)
        loss.sum().backward()
        return loss.detach(), a.grad

    loss64, grad64 = torchs(logits)
    for dtype in (torch.float64, torch.float32):
        x = logits.to(dtype)
        want, want_grad = torchs(x)
        # float32: as close to float64 as torch's float32 pipeline is, within a factor of two.
        loss_tol = 2 * (want.double() - loss64).abs().max().item() + 1e-12 * loss64.abs().max().item()
        grad_tol = 2 * (want_grad.double() - grad64).abs().max().item() + 1e-12
        for exact in (False, True):
            b = x.clone().requires_grad_()
            got = libctc.functional.ctc_loss(
                b, targets, il, tl, reduction=reduction, from_logits=True, exact_gradient=exact
            )
            got.sum().backward()
            assert got.dtype == dtype and b.grad.dtype == dtype
            assert (got.double() - loss64).abs().max().item() <= loss_tol
            assert (b.grad.double() - grad64).abs().max().item() <= grad_tol
        rtol, atol = (1e-10, 1e-12) if dtype == torch.float64 else (1e-4, 1e-4)
        a_grad = want_grad
        # The module, and numpy.
        m = libctc.CTCLoss(reduction=reduction, from_logits=True)
        torch.testing.assert_close(m(x, targets, il, tl), want, rtol=rtol, atol=atol)
        args = (x.numpy(), targets.numpy(), il.numpy(), tl.numpy())
        loss, grad = libctc.ctc_loss_and_grad(*args, reduction=reduction, from_logits=True)
        np.testing.assert_allclose(loss, want.numpy(), rtol=rtol, atol=atol)
        np.testing.assert_allclose(grad, a_grad.numpy(), rtol=rtol, atol=atol)
        np.testing.assert_array_equal(libctc.ctc_loss_grad(*args, reduction=reduction, from_logits=True), grad)
        np.testing.assert_array_equal(libctc.ctc_loss(*args, reduction=reduction, from_logits=True), loss)


def test_numpy_align_from_logits_is_the_alignment_of_their_log_softmax():
    logits, lp, targets, il, tl = random_inputs(35, T=30, N=4, C=7, S=5)
    x = (5 * logits + 11).numpy()
    path, scores = libctc.align(lp.numpy(), targets.numpy(), il.numpy(), tl.numpy())
    xpath, xscores = libctc.align(x, targets.numpy(), il.numpy(), tl.numpy(), from_logits=True)
    want_path, want_scores = libctc.align(
        torch.from_numpy(x).log_softmax(-1).numpy(), targets.numpy(), il.numpy(), tl.numpy()
    )
    np.testing.assert_array_equal(xpath, want_path)
    np.testing.assert_allclose(xscores, want_scores, rtol=1e-10)
    assert path.shape == xpath.shape and scores.shape == xscores.shape


def test_from_logits_passes_gradcheck_and_is_finite_at_masked_logits(quiet):
    logits, _, targets, il, tl = random_inputs(32, T=7, N=3, C=5, S=3)
    x = (4 * logits + 7).requires_grad_()
    for reduction in ("none", "mean", "sum"):

        def f(z):
            return libctc.functional.ctc_loss(z, targets, il, tl, reduction=reduction, from_logits=True)

        assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-7)
    # Masked logits: torch's log_softmax + ctc_loss gives NaN there, libctc the softmax's 0.
    _, _, targets, il, tl = random_inputs(33, T=20, N=2, C=6)
    targets = targets.clamp(max=4)
    masked = torch.randn(20, 2, 6, dtype=torch.float64)
    masked[:, :, 5] = float("-inf")
    masked[3, :, 0] = float("-inf")
    module = torch.jit.script(libctc.CTCLoss(reduction="sum", from_logits=True))
    y = masked.clone().requires_grad_()
    module(y, targets, il, tl).backward()
    assert torch.isfinite(y.grad).all() and (y.grad[:, :, 5] == 0).all()
    z = masked.clone().requires_grad_()
    F.ctc_loss(z.log_softmax(-1), targets, il, tl, reduction="sum").backward()
    assert torch.isnan(z.grad).any()
    with pytest.raises(libctc.CtcTypeError, match="from_logits must be a bool"):
        libctc.CTCLoss(from_logits=1)


def test_cuda_calls_take_their_workspace_from_torchs_allocator():
    # No CUDA here: a stand-in for a CUDA log_probs whose memory is host memory, which is what a
    # CPU call takes as its workspace; the size asked for is the call's, the options point at
    # the tensor, and the call computes with it exactly as with the library's own memory.
    import ctypes
    import types

    from libctc import _torch

    _, lp, targets, il, tl = random_inputs(31, T=40, N=3, C=7)
    names = ("log_probs", "targets", "input_lengths", "target_lengths")
    inputs = [ctypes.byref(_torch._tensor(t, n)) for t, n in zip((lp, targets, il, tl), names)]
    fake = types.SimpleNamespace(is_cuda=True, device=torch.device("cpu"))
    assert _torch._device_workspace(lp, _native.Call.FORWARD, inputs, _native.options(0, "sum", False)) is None
    for call in (_native.Call.FORWARD, _native.Call.FORWARD_BACKWARD):
        opts = _native.options(0, "sum", False)
        ws = _torch._device_workspace(fake, call, inputs, opts)
        want = ctypes.c_size_t()
        _native.check(_native.lib().ctc_workspace_size_for_call(call, *inputs, ctypes.byref(opts), ctypes.byref(want)))
        assert ws.dtype == torch.uint8 and ws.numel() == max(want.value, 1)
        assert (opts.workspace, opts.workspace_bytes) == (ws.data_ptr(), want.value)
        loss = torch.empty((), dtype=lp.dtype)
        _native.check(
            _native.lib().ctc_loss_forward(*inputs, ctypes.byref(opts), ctypes.byref(_torch._tensor(loss, "loss")))
        )
        torch.testing.assert_close(loss, libctc.functional.ctc_loss(lp, targets, il, tl, reduction="sum"))
