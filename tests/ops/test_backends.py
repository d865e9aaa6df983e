"""Every CPU backend against the naive reference: outputs and gradients, fp32 tight and bf16 looser.

The triton backend has the same matrix in test_triton.py, on CUDA or in Triton's interpreter.
"""

import itertools

import pytest
import torch

from dynconv_nlp.ops import BACKENDS, dynamic_conv1d, select_backend
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


def test_naive_matches_definition():
    # The formula, one output element at a time, against the reference.
    x, weight, _ = _inputs(2, 6, 4, 2, 3, torch.float64)
    y = dynamic_conv1d_naive(x, weight, 1)
    b, t, c = 1, 0, 3
    expected = sum(weight[b, t, c // 2, j] * x[b, t + j - 1, c] for j in range(3) if 0 <= t + j - 1 < 6)
    torch.testing.assert_close(y[b, t, c], expected)


def test_auto_picks_a_cpu_backend_and_matches_naive():
    x, weight, _ = _inputs(2, 16, 8, 2, 15, torch.float32)
    assert select_backend(x, weight) in ("band", "shift")
    torch.testing.assert_close(dynamic_conv1d(x, weight, 7), dynamic_conv1d_naive(x, weight, 7))


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
