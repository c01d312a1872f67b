"""PyTorch's own CTC tests, ported with libctc's drop-in in torch's place (rewritten here, same
cases): test_nn.py's TestNN.test_CTCLoss_* and TestNNDeviceType's test_CTCLoss_* and
test_ctc_loss*, the `nn.functional.ctc_loss` OpInfo samples (sample_inputs_ctc_loss, with its
log-softmax gradcheck wrapper), the CTCLoss ModuleInfo inputs checked against a reference
implementation (common_modules.module_inputs_torch_nn_CTCLoss, common_nn.ctcloss_reference) and
the TorchScript sample (jit_metaprogramming_utils). Tests that torch runs only on CUDA (a CUDA or
cuDNN result against the CPU one) keep their CPU-meaningful part: libctc against torch's CPU
kernel on the same inputs. Nothing is skipped; where libctc deliberately differs (labels are
validated, the blank is refused as a label) the test says so and checks the difference."""

import copy
import io
import pickle
import warnings
from itertools import product

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the drop-in tests need it")

import libctc  # noqa: E402
import libctc.functional  # noqa: E402

F = torch.nn.functional
ctc_loss = libctc.functional.ctc_loss


def reference_ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean"):
    """CTC loss straight from Graves et al.: the forward variable in probability space (not log
    space), float64, one sample at a time. Independent of both implementations under test."""
    lp = log_probs.detach().double()
    input_lengths = torch.as_tensor(input_lengths).long().reshape(-1)
    target_lengths = torch.as_tensor(target_lengths).long().reshape(-1)
    ends = target_lengths.cumsum(0)
    losses = []
    for n in range(lp.shape[1]):
        steps, length = int(input_lengths[n]), int(target_lengths[n])
        labels = targets[n, :length] if targets.dim() == 2 else targets[int(ends[n]) - length : int(ends[n])]
        extended = torch.full((2 * length + 1,), blank, dtype=torch.long)
        extended[1::2] = labels.long()
        if steps == 0:
            losses.append(torch.tensor(0.0 if length == 0 else float("inf"), dtype=torch.float64))
            continue
        probs = lp[:steps, n].exp()
        alpha = torch.zeros(2 * length + 1, dtype=torch.float64)
        alpha[:2] = probs[0, extended[:2]]
        skip = torch.zeros_like(alpha, dtype=torch.bool)
        skip[2:] = extended[2:] != extended[:-2]  # a label may follow the previous one directly
        for t in range(1, steps):
            previous = alpha.clone()
            alpha[1:] += previous[:-1]
            alpha[2:] += torch.where(skip[2:], previous[:-2], torch.zeros(()))
            alpha *= probs[t, extended]
        losses.append(-alpha[-2:].sum().log())
    out = torch.stack(losses)
    if reduction == "mean":
        return (out / target_lengths.clamp(min=1).double()).mean().to(log_probs.dtype)
    if reduction == "sum":
        return out.sum().to(log_probs.dtype)
    return out.to(log_probs.dtype)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


# --- test_nn.py, TestNN


def test_CTCLoss_typechecks():
    target_lengths = torch.tensor([30, 25, 20])
    input_lengths = torch.tensor([50, 50, 50])
    targets = torch.randint(1, 15, (int(target_lengths.sum()),), dtype=torch.int)
    log_probs = torch.randn(50, 3, 15).log_softmax(2)
    for il, tl in ((input_lengths.float(), target_lengths), (input_lengths, target_lengths.float())):
        with pytest.raises(RuntimeError, match="must be integral"):
            ctc_loss(log_probs, targets, il, tl)


@pytest.mark.parametrize("target_dtype", [torch.int, torch.long])  # the _cpu and _cuda variants
def test_CTCLoss_lengthchecks(target_dtype):
    for target_lengths, input_lengths in product([[30, 25, 20], [-1, -1, -1]], [[50, 50, 50], [-1, -1, -1]]):
        targets = torch.randint(1, 15, (3, 29), dtype=target_dtype)
        log_probs = torch.randn(50, 3, 15).log_softmax(2)
        with pytest.raises(RuntimeError):
            ctc_loss(log_probs, targets, input_lengths, target_lengths)


def test_CTCLoss_long_targets():
    # torch: CPU against CUDA; here libctc against torch's CPU kernel, same tolerances.
    T, C, N, S = 4000, 3, 4, 1200
    log_probs = torch.randn(T, N, C, dtype=torch.double).log_softmax(2).requires_grad_()
    targets = torch.randint(low=1, high=C - 1, size=(N, S))
    lengths = N * [T], N * [S]
    res_torch = F.ctc_loss(log_probs, targets, *lengths, reduction="sum", zero_infinity=True)
    grad_out = torch.randn_like(res_torch)
    (grad_torch,) = torch.autograd.grad(res_torch, log_probs, grad_out)
    res = ctc_loss(log_probs, targets, *lengths, reduction="sum", zero_infinity=True)
    (grad,) = torch.autograd.grad(res, log_probs, grad_out)
    torch.testing.assert_close(res, res_torch, atol=1e-4, rtol=0)
    torch.testing.assert_close(grad, grad_torch, atol=1e-4, rtol=0)


def test_CTCLoss_critical_target_len():
    # torch: cuDNN against the CPU kernel at a target of 256 (its issue #53505), with a 0-dim
    # target_lengths for a batch of one.
    N, S, C, T = 1, 256, 10, 500
    target = torch.randint(low=1, high=C, size=(S,), dtype=torch.int)
    input_lengths = torch.full(size=(N,), fill_value=T, dtype=torch.int)
    target_lengths = torch.tensor(S, dtype=torch.int)
    inp = torch.randn(T, N, C).log_softmax(2).requires_grad_()
    res = ctc_loss(inp, target, input_lengths, target_lengths, reduction="none")
    res_torch = F.ctc_loss(inp, target, input_lengths, target_lengths, reduction="none")
    torch.testing.assert_close(res, res_torch, atol=1e-3, rtol=0)


def test_CTCLoss_zero_lengths():
    N, S, C, T = 3, 2, 200, 1
    target = torch.randint(low=1, high=C, size=(N, S), dtype=torch.int)
    input_lengths = torch.full(size=(N,), fill_value=0, dtype=torch.int)
    for target_length, expected in ((0, 0.0), (1, float("inf"))):
        target_lengths = torch.full(size=(N,), fill_value=target_length, dtype=torch.int)
        inp = torch.randn(T, N, C).log_softmax(2).requires_grad_()
        res = ctc_loss(inp, target, input_lengths, target_lengths, reduction="none")
        assert (res == expected).all()
        res.sum().backward()
        assert (inp.grad == 0).all()


def test_CTCLoss_zero_infinity():
    # torch: cuDNN, CUDA and CPU against each other; here libctc against torch's CPU kernel.
    target_lengths = [60, 25, 20]  # 60 labels cannot fit 50 frames: an infinite loss, zeroed
    input_lengths = [50, 50, 50]
    targets = torch.randint(1, 15, (sum(target_lengths),), dtype=torch.int)
    log_probs = torch.randn(50, 3, 15).log_softmax(2).requires_grad_()
    res = ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum", zero_infinity=True)
    res_torch = F.ctc_loss(
        log_probs, targets.long(), input_lengths, target_lengths, reduction="sum", zero_infinity=True
    )
    torch.testing.assert_close(res, res_torch, atol=1e-4, rtol=0)
    (g,) = torch.autograd.grad(res, log_probs)
    (g_torch,) = torch.autograd.grad(res_torch, log_probs)
    torch.testing.assert_close(g, g_torch, atol=1e-4, rtol=0)
    assert not g.isnan().any()


# --- test_nn.py, TestNNDeviceType


@pytest.mark.parametrize("zero_infinity", [True, False])
def test_CTCLoss_cudnn(zero_infinity):
    # torch: cuDNN against ctcloss_reference and against its native kernel; here libctc with
    # cuDNN's argument types (int32 concatenated targets) against the reference and torch.
    target_lengths = [30, 25, 20]
    input_lengths = [50, 50, 50]
    targets = torch.randint(1, 15, (sum(target_lengths),), dtype=torch.int)
    log_probs = torch.randn(50, 3, 15).log_softmax(2).requires_grad_()
    log_probs_torch = log_probs.detach().clone().requires_grad_()
    res = ctc_loss(log_probs, targets, input_lengths, target_lengths, zero_infinity=zero_infinity)
    res.backward()
    expected = reference_ctc_loss(log_probs, targets, input_lengths, target_lengths).float()
    res_torch = F.ctc_loss(log_probs_torch, targets.long(), input_lengths, target_lengths, zero_infinity=zero_infinity)
    res_torch.backward()
    torch.testing.assert_close(res, expected)
    torch.testing.assert_close(res, res_torch)
    torch.testing.assert_close(log_probs.grad, log_probs_torch.grad)


def test_CTCLoss_empty_target():
    target_lengths = [0, 0, 0]
    input_lengths = [50, 50, 50]
    targets = torch.randint(1, 15, (0,), dtype=torch.long)
    log_probs = torch.randn(50, 3, 15, dtype=torch.double).log_softmax(2)
    loss = ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")
    assert (loss >= 0).all()
    torch.testing.assert_close(loss, -log_probs.sum(0)[:, 0])  # every frame emits the blank

    target_lengths = [0, 9, 0]
    targets = torch.randint(1, 15, (9,), dtype=torch.long)
    log_probs = torch.randn(50, 3, 15, dtype=torch.double).log_softmax(2)
    loss = ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")
    assert (loss >= 0).all()
    torch.testing.assert_close(loss[[0, 2]], -log_probs.sum(0)[[0, 2], 0])


ZERO_NONE, ZERO_SOME, ZERO_ALL = range(3)


@pytest.mark.parametrize(
    "input_length, vary_lengths, zero_mode",
    # torch's CPU cases, then those it adds on CUDA: all run here, on the CPU.
    [
        (150, False, ZERO_NONE),
        (150, True, ZERO_NONE),
        (50, True, ZERO_SOME),
        (50, True, ZERO_ALL),
        (50, False, ZERO_NONE),
        (50, True, ZERO_NONE),
        (150, True, ZERO_SOME),
        (150, True, ZERO_ALL),
    ],
)
def test_ctc_loss(input_length, vary_lengths, zero_mode):
    # gradcheck through log_softmax of a large input spanned by 10 parameters.
    batch_size, num_labels, target_length, gradcheck_input_size = 64, 101, 15, 10
    targets = torch.randint(1, num_labels, (batch_size, target_length))
    x = torch.randn(gradcheck_input_size, dtype=torch.double, requires_grad=True)
    tile_factors = torch.randn(input_length * batch_size * num_labels // gradcheck_input_size + 1)
    input_lengths = [
        torch.randint(input_length // 2, input_length + 1, ()).item() if vary_lengths or i == 0 else input_length
        for i in range(batch_size)
    ]
    if zero_mode == ZERO_ALL:
        target_lengths = [0] * batch_size
    else:
        target_lengths = [
            torch.randint(target_length // 2, target_length + 1, ()).item() if vary_lengths else target_length
            for _ in range(batch_size)
        ]
        if zero_mode == ZERO_SOME:
            for i in torch.randint(0, batch_size, (10,)):
                target_lengths[i] = 0

    def ctc_after_softmax(x):
        x_full = (
            (x[:, None] * tile_factors[None, :])
            .view(-1)[: input_length * batch_size * num_labels]
            .view(input_length, batch_size, num_labels)
        )
        return ctc_loss(torch.log_softmax(x_full, 2), targets, input_lengths, target_lengths)

    assert torch.autograd.gradcheck(ctc_after_softmax, [x])


@pytest.mark.parametrize("lengths_as", ["lists", "tensors"])  # test_ctc_loss_cudnn, ..._tensor_cuda
def test_ctc_loss_cudnn(lengths_as):
    # torch: cuDNN's gradient against the native CUDA one for int32 targets and lengths (on the
    # device or the host); here libctc with the same arguments against torch's CPU kernel.
    batch_size, input_length, num_labels, target_length = 16, 30, 101, 15
    targets = torch.randint(1, num_labels, (batch_size * target_length,))
    log_probs = torch.log_softmax(torch.randn(input_length, batch_size, num_labels), 2).requires_grad_()
    if lengths_as == "lists":
        input_lengths, target_lengths = batch_size * [input_length], batch_size * [target_length]
    else:
        input_lengths = torch.linspace(start=15, end=input_length, steps=batch_size, dtype=torch.long)
        target_lengths = torch.tensor(batch_size * [target_length])
    grad_out = torch.randn(batch_size)
    loss_torch = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")
    (grad_torch,) = torch.autograd.grad(loss_torch, log_probs, grad_out)
    as_int32 = (lambda t: t.int()) if lengths_as == "tensors" else (lambda t: t)
    loss = ctc_loss(log_probs, targets.int(), as_int32(input_lengths), as_int32(target_lengths), reduction="none")
    (grad,) = torch.autograd.grad(loss, log_probs, grad_out)
    torch.testing.assert_close(loss, loss_torch)
    torch.testing.assert_close(grad, grad_torch, atol=1e-4, rtol=0)


def test_ctc_loss_cudnn_tensor_cpu_length_cuda():
    # torch's smoke test draws labels from [0, C), the blank 0 included: torch computes
    # something, libctc refuses the blank as a label (a deliberate difference, README). With
    # labels from [1, C) both compute the same.
    N, T, C, S = 50, 100, 80, 10
    log_probs = torch.randn(T, N, C).log_softmax(2)
    input_lengths = torch.full((N,), T, dtype=torch.int32)
    target_lengths = torch.randint(low=1, high=S, size=(N,), dtype=torch.int32)
    targets = torch.randint(low=0, high=C, size=(int(target_lengths.sum()),), dtype=torch.int32)
    targets[0] = 0
    F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum")
    with pytest.raises(ValueError, match=r"targets\[0\] = 0 .*is the blank"):
        ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum")
    targets = torch.randint(low=1, high=C, size=(int(target_lengths.sum()),), dtype=torch.int32)
    torch.testing.assert_close(
        ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum"),
        F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum"),
    )


def test_ctc_loss_error():
    log_probs = torch.rand(0, 0, 4)
    empty = torch.tensor([], dtype=torch.long)
    with pytest.raises(RuntimeError, match="log_probs tensor must not be empty"):
        ctc_loss(log_probs, empty, empty, empty, reduction="none")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("use_module_form", [True, False])
def test_CTCLoss_no_batch_dim(reduction, use_module_form):
    T, C, S = 40, 3, 12
    log_probs = torch.randn(T, 1, C).log_softmax(2).requires_grad_()
    targets = torch.randint(low=1, high=C - 1, size=(1, S), dtype=torch.int)
    lengths = [T], [S]
    log_probs_no_bd = log_probs.squeeze(1).detach().clone().requires_grad_()
    targets_no_bd = targets.squeeze(0).detach().clone()
    lengths_no_bd = torch.tensor(T), torch.tensor(S)
    refs = [log_probs.detach().clone().requires_grad_() for _ in range(2)]
    loss_fn = (
        libctc.CTCLoss(reduction=reduction, zero_infinity=True)
        if use_module_form
        else lambda *a: ctc_loss(*a, reduction=reduction, zero_infinity=True)
    )
    losses = [
        loss_fn(refs[0], targets, *lengths),  # (T, N, C) with (N, S) targets
        loss_fn(refs[1], targets_no_bd, *lengths),  # (T, N, C) with (S,) targets
    ]
    loss_no_bd = loss_fn(log_probs_no_bd, targets_no_bd, *lengths_no_bd)  # (T, C) with (S,)
    for loss in losses + [loss_no_bd]:
        loss.backward()
    torch.testing.assert_close(losses[1], losses[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(loss_no_bd, losses[0].squeeze(0), atol=1e-4, rtol=0)
    torch.testing.assert_close(refs[1].grad, refs[0].grad, atol=1e-4, rtol=0)
    torch.testing.assert_close(log_probs_no_bd.grad, refs[0].grad.squeeze(1), atol=1e-4, rtol=0)
    assert [loss.shape for loss in losses] == 2 * [(1,) if reduction == "none" else ()]
    assert loss_no_bd.shape == ()
    assert [r.grad.shape for r in refs] == 2 * [(T, 1, C)] and log_probs_no_bd.grad.shape == (T, C)
    # And as torch computes them.
    theirs = F.ctc_loss(log_probs_no_bd, targets_no_bd, *lengths_no_bd, reduction=reduction, zero_infinity=True)
    torch.testing.assert_close(loss_no_bd, theirs)


# --- the nn.functional.ctc_loss OpInfo (common_methods_invocations.sample_inputs_ctc_loss)


def opinfo_samples(dtype, requires_grad=False):
    T, N, C, S = 50, 16, 20, 30
    for reduction, zero_infinity, lengths_type in product(("none", "mean", "sum"), (True, False), (list, torch.Tensor)):
        # make_tensor's floats are uniform in [-9, 9)
        log_probs = (torch.rand(T, N, C, dtype=dtype) * 18 - 9).log_softmax(2).detach().requires_grad_(requires_grad)
        targets = torch.randint(1, C, (N, S))
        input_lengths = torch.full((N,), T)
        target_lengths = torch.randint(10, S, (N,))
        if lengths_type is list and reduction in ("none", "sum"):
            input_lengths, target_lengths = input_lengths.tolist(), target_lengths.tolist()
        args = (targets, input_lengths, target_lengths)
        yield log_probs, args, dict(reduction=reduction, zero_infinity=zero_infinity)


def loss_and_grad(f, log_probs, args, kwargs, grad_out):
    lp = log_probs.detach().requires_grad_()
    loss = f(lp, *args, **kwargs)
    return loss.detach(), torch.autograd.grad(loss, lp, grad_out.to(loss.dtype))[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opinfo_samples_match_torch(dtype):
    # float64: equal to torch's within rounding; float32: as close to torch's float64 result as
    # torch's own float32 result is, within a factor of two (as the golden tests).
    for log_probs, args, kwargs in opinfo_samples(dtype):
        grad_out = torch.rand(16 if kwargs["reduction"] == "none" else ()) + 0.5
        ours = loss_and_grad(ctc_loss, log_probs, args, kwargs, grad_out)
        theirs = loss_and_grad(F.ctc_loss, log_probs, args, kwargs, grad_out)
        if dtype == torch.float64:
            torch.testing.assert_close(ours, theirs)
            continue
        exact = loss_and_grad(F.ctc_loss, log_probs.double(), args, kwargs, grad_out)
        for o, t, e in zip(ours, theirs, exact):
            assert o.dtype == t.dtype == torch.float32
            err, torch_err = (o.double() - e).abs().max(), (t.double() - e).abs().max()
            assert err <= max(2 * torch_err, 1e-5 * max(1.0, e.abs().max())), (err, torch_err)


def test_opinfo_gradcheck():
    # OpInfo's gradcheck_wrapper_ctc_loss: the input projected onto the log-simplex first (the
    # loss's gradient is torch's convention, the true one only there). fast_mode: random
    # projections, as torch's test suite runs gradcheck by default.
    for log_probs, args, kwargs in opinfo_samples(torch.float64):
        x = log_probs.detach().requires_grad_()
        assert torch.autograd.gradcheck(lambda z: ctc_loss(z.log_softmax(2), *args, **kwargs), (x,), fast_mode=True)


def noncontiguous(t):
    """`t`'s values in a tensor that is not contiguous (every other element of a wider one)."""
    wide = torch.empty(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype) if t.dim() else torch.empty(2, dtype=t.dtype)
    view = wide[..., ::2] if t.dim() else wide[0]
    view.copy_(t)
    return view


def test_opinfo_noncontiguous_samples():
    for log_probs, (targets, il, tl), kwargs in opinfo_samples(torch.float64):
        lp_nc = noncontiguous(log_probs).requires_grad_()
        args_nc = [noncontiguous(targets)] + [noncontiguous(x) if torch.is_tensor(x) else x for x in (il, tl)]
        assert not lp_nc.is_contiguous() and not args_nc[0].is_contiguous()
        lp = log_probs.detach().requires_grad_()
        ours, expected = ctc_loss(lp_nc, *args_nc, **kwargs), ctc_loss(lp, targets, il, tl, **kwargs)
        torch.testing.assert_close(ours, expected, rtol=0, atol=0)
        g = torch.rand_like(ours)
        torch.testing.assert_close(
            torch.autograd.grad(ours, lp_nc, g)[0], torch.autograd.grad(expected, lp, g)[0], rtol=0, atol=0
        )


@pytest.mark.parametrize(
    "dtype, supported",
    [
        (torch.float32, True),
        (torch.float64, True),
        # torch's CPU kernel: float32 and float64 only; libctc takes half types too (loss float32)
        (torch.float16, "libctc"),
        (torch.bfloat16, "libctc"),
        (torch.complex64, False),
        (torch.int64, False),
    ],
)
def test_opinfo_dtypes(dtype, supported):
    log_probs, args, kwargs = next(opinfo_samples(torch.float64))
    log_probs = log_probs.to(dtype)
    for f in (ctc_loss, F.ctc_loss):
        if supported == "libctc" and f is ctc_loss:
            assert f(log_probs, *args, **kwargs).dtype == torch.float32
        elif supported is True:
            assert f(log_probs, *args, **kwargs).dtype == dtype
        else:
            with pytest.raises(NotImplementedError):
                f(log_probs, *args, **kwargs)


# --- the CTCLoss ModuleInfo (common_modules.module_inputs_torch_nn_CTCLoss)


def module_inputs(dtype):
    constructor_kwargs = [{}, dict(reduction="sum"), dict(reduction="mean"), dict(reduction="none"), dict(blank=14)]
    for target_dtype, kwargs in product((torch.int, torch.long), constructor_kwargs):
        blank = kwargs.get("blank", 0)
        low, high = (0, 14) if blank == 14 else (1, 15)  # labels around the blank
        lengths = (50, 50, 50), (30, 25, 20)
        for form in ("padded", "1d"):
            shape = (3, 30) if form == "padded" else (30 + 25 + 20,)
            for as_tensors in (False, True):
                log_probs = (torch.rand(50, 3, 15, dtype=dtype) * 18 - 9).log_softmax(2)
                targets = torch.randint(low, high, shape, dtype=target_dtype)
                il, tl = (torch.tensor(x) for x in lengths) if as_tensors else lengths
                yield kwargs, (log_probs, targets, il, tl)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_module_forward_against_the_reference(dtype):
    for kwargs, inputs in module_inputs(dtype):
        out = libctc.CTCLoss(**kwargs)(*inputs)
        expected = reference_ctc_loss(*inputs, **kwargs)
        tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(out, expected, **tol)
        torch.testing.assert_close(out, torch.nn.CTCLoss(**kwargs)(*inputs), **tol)


def test_module_is_an_ordinary_loss_module():
    # ModuleInfo's generic checks: repr, pickling, deepcopy, state_dict, train/eval, .to().
    m = libctc.CTCLoss(blank=14, reduction="sum", zero_infinity=True)
    kwargs, inputs = next((k, i) for k, i in module_inputs(torch.float64) if k.get("blank") == 14)
    expected = libctc.CTCLoss(**kwargs)(*inputs)
    for other in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m), m.to(torch.float32).to(torch.float64)):
        assert type(other) is libctc.CTCLoss
        assert (other.blank, other.reduction, other.zero_infinity) == (14, "sum", True)
    assert repr(m) == "CTCLoss()" and dict(m.state_dict()) == {} and list(m.parameters()) == []
    loaded = libctc.CTCLoss(blank=14)
    loaded.load_state_dict(m.state_dict())
    torch.testing.assert_close(m.eval()(*inputs), m.train()(*inputs))
    torch.testing.assert_close(libctc.CTCLoss(blank=14)(*inputs), expected)


# --- TorchScript (jit_metaprogramming_utils' ctc_loss sample: S = 5)


def test_scripted_functional_sample():
    S = 5
    log_probs = torch.rand(S, S, S).log_softmax(2).detach().requires_grad_()
    args = (torch.randint(1, S, (S, S)), torch.full((S,), S), torch.randint(1, S, (S,)))

    def fn(log_probs, targets, input_lengths, target_lengths):
        return libctc.functional.ctc_loss(log_probs, targets, input_lengths, target_lengths)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(fn)
    out = scripted(log_probs, *args)
    torch.testing.assert_close(out, fn(log_probs, *args))
    torch.testing.assert_close(out, F.ctc_loss(log_probs, *args))
    (g,) = torch.autograd.grad(out, log_probs)
    (g_torch,) = torch.autograd.grad(F.ctc_loss(log_probs, *args), log_probs)
    torch.testing.assert_close(g, g_torch)
    assert "ctc_loss" in scripted.code and io is not None
