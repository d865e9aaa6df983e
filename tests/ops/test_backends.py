"""Every CPU backend against the naive reference: outputs and gradients, fp32 tight and bf16 looser.

The triton backend has the same matrix in test_triton.py, on CUDA or in Triton's interpreter.
"""

import itertools
import logging

import pytest
import torch

from dynconv_nlp.ops import BACKENDS, dispatch, dynamic_conv1d, select_backend
from dynconv_nlp.ops.naive import dynamic_conv1d_naive

FAST_BACKENDS = [name for name in BACKENDS if name not in ("naive", "triton")]
TOLERANCES = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=3e-2, rtol=3e-2)}


def _inputs(B, T, C, H, K, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, C, generator=g).to(dtype).requires_grad_()
    weight = torch.randn(B, T, H, K, generator=g).softmax(-1).to(dtype).requires_grad_()
    grad_y = torch.randn(B, T, C, generator=g).to(dtype)
    return x, weight, grad_y


def _output_and_grads(fn, x, weight, padding_l, grad_y):
    y = fn(x, weight, padding_l)
    grad_x, grad_w = torch.autograd.grad(y, (x, weight), grad_y)
    return y, grad_x, grad_w


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("T,K", list(itertools.product([1, 7, 64], [1, 3, 4, 31])))
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "centred"])
def test_backend_matches_naive(backend, dtype, T, K, causal):
    padding_l = K - 1 if causal else K // 2
    x, weight, grad_y = _inputs(2, T, 12, 2, K, dtype)
    expected = _output_and_grads(dynamic_conv1d_naive, x, weight, padding_l, grad_y)
    actual = _output_and_grads(lambda *a: dynamic_conv1d(*a, backend=backend), x, weight, padding_l, grad_y)
    for name, a, e in zip(("y", "grad_x", "grad_weight"), actual, expected):
        assert a.dtype == e.dtype == dtype, name
        torch.testing.assert_close(a, e, **TOLERANCES[dtype], msg=lambda m: f"{backend} {name}: {m}")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64], ids=["fp16", "fp64"])
def test_other_dtypes_match_naive(backend, dtype):
    x, weight, grad_y = _inputs(2, 19, 12, 3, 9, dtype)
    expected = _output_and_grads(dynamic_conv1d_naive, x, weight, 4, grad_y)
    actual = _output_and_grads(lambda *a: dynamic_conv1d(*a, backend=backend), x, weight, 4, grad_y)
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == torch.float64 else dict(atol=5e-3, rtol=5e-3)
    for name, a, e in zip(("y", "grad_x", "grad_weight"), actual, expected):
        assert a.dtype == dtype, name
        torch.testing.assert_close(a, e, **tol, msg=lambda m: f"{backend} {name}: {m}")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("padding_l", [0, 2, 5])
def test_any_padding_matches_naive(backend, padding_l):
    # Neither causal nor centred: every split of the K = 6 taps between left and right.
    x, weight, grad_y = _inputs(2, 40, 8, 2, 6, torch.float64)
    expected = _output_and_grads(dynamic_conv1d_naive, x, weight, padding_l, grad_y)
    actual = _output_and_grads(lambda *a: dynamic_conv1d(*a, backend=backend), x, weight, padding_l, grad_y)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_non_contiguous_inputs_match_naive(backend):
    # x as a channel slice of a wider tensor, weight as a transposed [B, H, T, K] buffer.
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 33, 24, generator=g, dtype=torch.float64)[:, :, 4:16].requires_grad_()
    weight = torch.randn(2, 3, 33, 9, generator=g, dtype=torch.float64).softmax(-1).transpose(1, 2)
    weight.requires_grad_()
    assert not x.is_contiguous() and not weight.is_contiguous()
    grad_y = torch.randn(2, 33, 12, generator=g, dtype=torch.float64)
    expected = _output_and_grads(dynamic_conv1d_naive, x, weight, 4, grad_y)
    actual = _output_and_grads(lambda *a: dynamic_conv1d(*a, backend=backend), x, weight, 4, grad_y)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("shape", [(0, 5, 8), (2, 0, 8)], ids=["B=0", "T=0"])
def test_empty_batch_or_sequence_gives_an_empty_output(backend, shape):
    x = torch.zeros(shape, requires_grad=True)
    weight = torch.zeros(*shape[:2], 2, 3, requires_grad=True)
    y = dynamic_conv1d(x, weight, 1, backend=backend)
    assert y.shape == shape
    y.sum().backward()
    assert x.grad.shape == x.shape and weight.grad.shape == weight.shape


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_autocast_bf16_inputs_match_naive(backend):
    # Under CPU autocast, the layer hands the op bf16 activations; the op must take them as they are.
    x, weight, grad_y = _inputs(2, 17, 8, 2, 9, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x16, w16 = torch.nn.functional.linear(x, torch.eye(8)), weight.to(torch.bfloat16)
        assert x16.dtype == torch.bfloat16
        expected = _output_and_grads(dynamic_conv1d_naive, x16, w16, 4, grad_y.to(torch.bfloat16))
        actual = _output_and_grads(
            lambda *a: dynamic_conv1d(*a, backend=backend), x16, w16, 4, grad_y.to(torch.bfloat16)
        )
    for a, e in zip(actual, expected):
        assert a.dtype == torch.bfloat16
        torch.testing.assert_close(a, e, **TOLERANCES[torch.bfloat16])


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_autocast_leaves_fp32_inputs_in_fp32(backend):
    # Autocast would run the band and unfold matmuls in bf16; the op promises its inputs' precision.
    # Forward under autocast, backward outside it, as torch.amp prescribes.
    x, weight, grad_y = _inputs(2, 40, 8, 2, 9, torch.float32)
    expected = _output_and_grads(dynamic_conv1d_naive, x, weight, 4, grad_y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = dynamic_conv1d(x, weight, 4, backend=backend)
    actual = (y, *torch.autograd.grad(y, (x, weight), grad_y))
    for a, e in zip(actual, expected):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, e, **TOLERANCES[torch.float32])


def test_naive_matches_definition():
    # The formula, one output element at a time, against the reference.
    x, weight, _ = _inputs(2, 6, 4, 2, 3, torch.float64)
    y = dynamic_conv1d_naive(x, weight, 1)
    b, t, c = 1, 0, 3
    expected = sum(weight[b, t, c // 2, j] * x[b, t + j - 1, c] for j in range(3) if 0 <= t + j - 1 < 6)
    torch.testing.assert_close(y[b, t, c], expected)


def test_auto_picks_a_cpu_backend_and_matches_naive():
    x, weight, _ = _inputs(2, 16, 8, 2, 15, torch.float32)
    with torch.no_grad():
        assert select_backend(x, weight) == "band"
        assert select_backend(x, weight[..., :5]) == "shift"
        torch.testing.assert_close(dynamic_conv1d(x, weight, 7), dynamic_conv1d_naive(x, weight, 7))


def test_auto_compiles_for_training_on_the_cpu_when_a_compiler_is_there(monkeypatch):
    """A training run repays the one compilation many times over; inference starts at once."""
    x, weight, grad_y = _inputs(2, 16, 8, 2, 15, torch.float32)
    monkeypatch.setattr(dispatch, "cpp_compiler_available", lambda: True)
    assert select_backend(x, weight) == "compiled"
    assert select_backend(x.detach(), weight.detach()) == "band"
    expected = _output_and_grads(dynamic_conv1d_naive, x, weight, 7, grad_y)
    for a, e in zip(_output_and_grads(dynamic_conv1d, x, weight, 7, grad_y), expected):
        torch.testing.assert_close(a, e)
    monkeypatch.setattr(dispatch, "cpp_compiler_available", lambda: False)
    assert select_backend(x, weight) == "band"


def test_compiled_backend_allows_retain_graph_and_serves_new_lengths_and_widths():
    x, weight, grad_y = _inputs(2, 16, 8, 2, 15, torch.float32)
    y = dynamic_conv1d(x, weight, 7, backend="compiled")
    first = torch.autograd.grad(y, x, grad_y, retain_graph=True)[0]
    torch.testing.assert_close(torch.autograd.grad(y, x, grad_y)[0], first)
    for T, K in ((9, 15), (16, 5), (23, 3)):
        x, weight, grad_y = _inputs(3, T, 8, 2, K, torch.float32, seed=T)
        expected = _output_and_grads(dynamic_conv1d_naive, x, weight, K // 2, grad_y)
        actual = _output_and_grads(lambda *a: dynamic_conv1d(*a, backend="compiled"), x, weight, K // 2, grad_y)
        for a, e in zip(actual, expected):
            torch.testing.assert_close(a, e)


@pytest.mark.parametrize(
    "x_shape,w_shape,padding_l,match",
    [
        ((2, 5), (2, 5, 2, 3), 1, r"x must be a \[B, T, C\] tensor, got shape \[2, 5\]"),
        ((2, 5, 8), (2, 5, 3), 1, r"weight must be a \[B, T, H, K\] tensor, got shape \[2, 5, 3\]"),
        ((2, 5, 8), (2, 4, 2, 3), 1, r"weight's \[B, T\] = \[2, 4\] must match x's \[B, T\] = \[2, 5\]"),
        ((2, 5, 8), (2, 5, 3, 3), 1, r"H = 3 .* must divide the channels C = 8"),
        ((2, 5, 8), (2, 5, 2, 0), 0, r"K = weight.shape\[3\] must be at least 1"),
        ((2, 5, 8), (2, 5, 2, 3), 3, r"0 <= padding_l < K = 3, got 3"),
        ((2, 5, 8), (2, 5, 2, 3), -1, r"got -1"),
        ((2, 5, 8), (2, 5, 2, 3), True, r"got True"),
        ((2, 5, 8), (2, 5, 2, 3), 1.0, r"got 1.0"),
    ],
)
def test_bad_shapes_and_padding_raise(x_shape, w_shape, padding_l, match):
    with pytest.raises(ValueError, match=match):
        dynamic_conv1d(torch.zeros(x_shape), torch.zeros(w_shape), padding_l)


def test_dtype_mix_raises():
    with pytest.raises(ValueError, match=r"x torch.float32 and weight torch.bfloat16"):
        dynamic_conv1d(torch.zeros(1, 4, 4), torch.zeros(1, 4, 2, 3, dtype=torch.bfloat16), 1)


def test_integer_inputs_raise():
    with pytest.raises(ValueError, match=r"floating dtype, got x torch.int64"):
        dynamic_conv1d(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 2, 3, dtype=torch.long), 1)


def test_unknown_backend_raises():
    with pytest.raises(ValueError, match=r"unknown backend 'cuda_kernel'"):
        dynamic_conv1d(torch.zeros(1, 4, 4), torch.zeros(1, 4, 2, 3), 1, backend="cuda_kernel")


@pytest.fixture
def fresh_choice_log(monkeypatch, caplog):
    """No choice logged yet in this process, and the dispatch logger's records captured from INFO up."""
    monkeypatch.setattr(dispatch, "_logged_choices", set())
    caplog.set_level(logging.INFO, logger=dispatch.logger.name)
    return caplog


def _choice_records(caplog):
    return [r for r in caplog.records if r.name == "dynconv_nlp.ops.dispatch" and "backend 'auto'" in r.getMessage()]


def test_auto_logs_its_choice_and_reason_once(fresh_choice_log):
    x, weight, _ = _inputs(2, 16, 8, 2, 15, torch.float32)
    with torch.no_grad():
        for _ in range(5):
            dynamic_conv1d(x, weight, 7)
    (record,) = _choice_records(fresh_choice_log)
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert "on cpu runs 'band'" in message and dispatch.CPU_INFERENCE in message and "kernel size >= 8" in message
    # Another choice (shift for a small kernel) is logged once as well; the first is not repeated.
    with torch.no_grad():
        for _ in range(3):
            dynamic_conv1d(x, weight[..., :5], 2)
            dynamic_conv1d(x, weight, 7)
    messages = [r.getMessage() for r in _choice_records(fresh_choice_log)]
    assert len(messages) == 2 and "runs 'shift'" in messages[1] and "kernel size < 8" in messages[1]


def test_auto_warns_once_when_no_compiler_makes_it_fall_back(monkeypatch, fresh_choice_log):
    monkeypatch.setattr(dispatch, "cpp_compiler_available", lambda: False)
    x, weight, grad_y = _inputs(2, 16, 8, 2, 15, torch.float32)
    expected = _output_and_grads(dynamic_conv1d_naive, x, weight, 7, grad_y)
    for _ in range(4):
        for a, e in zip(_output_and_grads(dynamic_conv1d, x, weight, 7, grad_y), expected):
            torch.testing.assert_close(a, e)
    (record,) = _choice_records(fresh_choice_log)
    assert record.levelno == logging.WARNING
    assert "on cpu runs 'band'" in record.getMessage() and "no C++ compiler" in record.getMessage()
    # With a compiler, training compiles: a new choice, logged once at INFO.
    monkeypatch.setattr(dispatch, "cpp_compiler_available", lambda: True)
    for _ in range(3):
        assert select_backend(x, weight) == "compiled"
    records = _choice_records(fresh_choice_log)
    assert len(records) == 2 and records[1].levelno == logging.INFO
    assert "runs 'compiled'" in records[1].getMessage() and dispatch.CPU_TRAINING in records[1].getMessage()


class _CudaStandIn:
    """What select_backend reads of a CUDA tensor, without a GPU."""

    def __init__(self, *shape, requires_grad=False):
        self.shape, self.requires_grad = shape, requires_grad
        self.is_cuda, self.device = True, torch.device("cuda", 0)


def test_auto_warns_once_when_cuda_runs_without_triton(monkeypatch, fresh_choice_log):
    monkeypatch.setattr(dispatch, "triton_available", lambda: False)
    x, weight = _CudaStandIn(2, 16, 8, requires_grad=True), _CudaStandIn(2, 16, 2, 15, requires_grad=True)
    assert [select_backend(x, weight) for _ in range(4)] == ["band"] * 4
    assert select_backend(x, _CudaStandIn(2, 16, 2, 3)) == "shift"
    records = _choice_records(fresh_choice_log)
    assert [r.levelno for r in records] == [logging.WARNING] * 2
    assert "on cuda runs 'band'" in records[0].getMessage() and "triton is not installed" in records[0].getMessage()
    assert "on cuda runs 'shift'" in records[1].getMessage()
    # With triton: triton, logged once at INFO.
    monkeypatch.setattr(dispatch, "triton_available", lambda: True)
    assert [select_backend(x, weight) for _ in range(3)] == ["triton"] * 3
    records = _choice_records(fresh_choice_log)
    assert len(records) == 3 and records[2].levelno == logging.INFO
    assert "on cuda runs 'triton'" in records[2].getMessage()
