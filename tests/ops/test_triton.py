"""The triton backend against the naive reference; on the CPU through Triton's interpreter.

The interpreter runs each program in numpy, one after another, so the shapes here stay small.
"""

import importlib
import itertools
import math
import os
import sys

import pytest
import torch

# Must precede the first import of dynconv_nlp.ops.triton: triton.jit reads it when decorating.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

pytest.importorskip("triton")

from dynconv_nlp.ops import dynamic_conv1d  # noqa: E402
from dynconv_nlp.ops.naive import dynamic_conv1d_naive  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# bf16 results are rounded once from float32 sums by both sides; the interpreter truncates
# instead of rounding to nearest, so allow about two bf16 ulps.
TOLERANCES = {
    torch.float64: dict(atol=1e-12, rtol=1e-12),
    torch.float32: dict(atol=1e-5, rtol=1e-5),
    torch.float16: dict(atol=2e-3, rtol=2e-3),
    torch.bfloat16: dict(atol=2e-2, rtol=2e-2),
}


def _inputs(B, T, C, H, K, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, C, generator=g)
    weight = torch.randn(B, T, H, K, generator=g).softmax(-1)
    grad_y = torch.randn(B, T, C, generator=g)
    x, weight, grad_y = (t.to(DEVICE, dtype) for t in (x, weight, grad_y))
    return x.requires_grad_(), weight.requires_grad_(), grad_y


def _output_and_grads(fn, x, weight, padding_l, grad_y):
    y = fn(x, weight, padding_l)
    grad_x, grad_w = torch.autograd.grad(y, (x, weight), grad_y)
    return y, grad_x, grad_w


def _triton(x, weight, padding_l):
    return dynamic_conv1d(x, weight, padding_l, backend="triton")


def _assert_matches_naive(x, weight, padding_l, grad_y):
    expected = _output_and_grads(dynamic_conv1d_naive, x, weight, padding_l, grad_y)
    actual = _output_and_grads(_triton, x, weight, padding_l, grad_y)
    for name, a, e in zip(("y", "grad_x", "grad_weight"), actual, expected):
        assert a.dtype == e.dtype == x.dtype, name
        torch.testing.assert_close(a, e, **TOLERANCES[x.dtype], msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("T,K", list(itertools.product([1, 7, 64], [1, 3, 4, 31])))
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "centred"])
def test_matches_naive(dtype, T, K, causal):
    # C = 12 over H = 2 heads: R = 6 channels a head, not a power of two.
    x, weight, grad_y = _inputs(2, T, 12, 2, K, dtype)
    _assert_matches_naive(x, weight, K - 1 if causal else K // 2, grad_y)


@pytest.mark.parametrize("K", [4, 31])
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "centred"])
def test_several_tiles_of_tokens_match_naive(K, causal):
    # T = 150 spans three tiles of 64 tokens on CUDA (five of 32 in the interpreter), the last one ragged.
    x, weight, grad_y = _inputs(1, 150, 8, 2, K, torch.float32)
    _assert_matches_naive(x, weight, K - 1 if causal else K // 2, grad_y)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64], ids=["fp16", "fp64"])
def test_other_dtypes_match_naive(dtype):
    x, weight, grad_y = _inputs(2, 20, 8, 2, 5, dtype)
    _assert_matches_naive(x, weight, 2, grad_y)


def test_heads_wider_than_one_channel_block():
    # R = 80 needs two blocks of at most 64 channels: the forward grid and the grad_weight loop.
    x, weight, grad_y = _inputs(1, 20, 160, 2, 5, torch.float32)
    _assert_matches_naive(x, weight, 2, grad_y)


def test_non_contiguous_inputs_and_one_gradient():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 12, 10, generator=g).to(DEVICE).transpose(1, 2).requires_grad_()  # [2, 10, 12]
    weight = torch.randn(2, 3, 10, 4, generator=g).to(DEVICE).permute(0, 2, 1, 3)  # [2, 10, 3, 4], no grad
    grad_y = torch.randn(2, 10, 12, generator=g).to(DEVICE)
    y = _triton(x, weight, 1)
    (grad_x,) = torch.autograd.grad(y, x, grad_y)
    y_ref = dynamic_conv1d_naive(x, weight, 1)
    (grad_x_ref,) = torch.autograd.grad(y_ref, x, grad_y)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_x, grad_x_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "centred"])
def test_taps_zero_on_whole_tiles_match_naive(causal):
    # Narrow kernels on the first half of the sequence, a dead middle tap on the second half,
    # and the last tokens with no active tap at all: every tile sees some taps skipped.
    K = 9
    x, weight, grad_y = _inputs(2, 64, 12, 2, K, torch.float32)
    with torch.no_grad():
        weight[:, :32, :, :3] = 0
        weight[:, :32, :, -3:] = 0
        weight[:, 32:, :, K // 2] = 0
        weight[:, 56:] = 0
    _assert_matches_naive(x, weight, K - 1 if causal else K // 2, grad_y)


def test_inactive_taps_are_skipped():
    # Only the centre tap is nonzero, so tap j != centre must never load x (or grad_y): a NaN at
    # token 10 then stays at token 10. Had the zero taps been multiplied in, 0 * NaN would spread
    # it to the neighbours, as it does in the naive reference.
    T, K, padding_l = 40, 7, 3
    x, weight, grad_y = _inputs(1, T, 8, 2, K, torch.float32)
    with torch.no_grad():
        weight.zero_()
        weight[..., padding_l] = 1.5
        x[:, 10, 3] = math.nan
    grad_y[:, 10, 3] = math.nan
    y, grad_x, grad_w = _output_and_grads(_triton, x, weight, padding_l, grad_y)
    expected_y = 1.5 * x.detach()
    expected_grad_x = 1.5 * grad_y
    torch.testing.assert_close(y, expected_y, equal_nan=True)
    torch.testing.assert_close(grad_x, expected_grad_x, equal_nan=True)
    assert y.isnan().sum() == grad_x.isnan().sum() == 1
    # grad_weight has no skipping: NaN reaches every tap that pairs token 10's grad_y or x.
    assert grad_w[0, 10, 0].isnan().all()


def test_declared_inactive_taps_are_skipped_in_the_kernel_gradient():
    # Tap 0 is zero on the first 64 tokens only (whole tiles both of the interpreter's 32 tokens and
    # of the GPU's 64), the last tap on every token: their kernel gradients must be skipped there.
    T, K, padding_l = 128, 5, 2
    x, weight, grad_y = _inputs(1, T, 8, 2, K, torch.float32)
    with torch.no_grad():
        weight[:, :64, :, 0] = 0
        weight[..., K - 1] = 0
    expected = _output_and_grads(dynamic_conv1d_naive, x, weight, padding_l, grad_y)

    def triton_skipping(x, weight, padding_l):
        return dynamic_conv1d(x, weight, padding_l, backend="triton", zero_taps_inactive=True)

    y, grad_x, grad_w = _output_and_grads(triton_skipping, x, weight, padding_l, grad_y)
    torch.testing.assert_close(y, expected[0])
    torch.testing.assert_close(grad_x, expected[1])
    active = weight.detach() != 0
    torch.testing.assert_close(grad_w[active], expected[2][active])
    assert (grad_w[:, :64, :, 0] == 0).all() and (grad_w[..., K - 1] == 0).all()
    assert (grad_w[:, 64:, :, 0] != 0).all()  # the tap is active on the later tiles


def test_layer_gradients_with_skipped_taps_match_naive():
    """The layer's zero taps come from its masked softmax: skipping their gradient changes no parameter's."""
    from dynconv_nlp.layers import DynamicConv1d

    grads = {}
    for backend in ("naive", "triton"):
        torch.manual_seed(0)
        layer = DynamicConv1d(8, 2, 9, width_init=0.2, backend=backend, trim=False).to(DEVICE)
        x = torch.randn(2, 40, 8, device=DEVICE)
        layer(x).hidden_states.square().sum().backward()
        grads[backend] = {name: p.grad for name, p in layer.named_parameters()}
    for name, grad in grads["naive"].items():
        torch.testing.assert_close(grads["triton"][name], grad, atol=1e-5, rtol=1e-5, msg=lambda m: f"{name}: {m}")


def test_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x, weight = torch.zeros(1, 4, 4), torch.zeros(1, 4, 2, 3)
    with pytest.raises(RuntimeError, match=r"needs a CUDA device, or TRITON_INTERPRET=1 .* backend='band' or 'auto'"):
        dynamic_conv1d(x, weight, 1, backend="triton")


def test_missing_triton_raises_with_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # makes `import triton` fail
    monkeypatch.delitem(sys.modules, "dynconv_nlp.ops.triton", raising=False)
    monkeypatch.delitem(sys.modules, "dynconv_nlp.ops.triton.dynamic_conv1d", raising=False)
    with pytest.raises(ImportError, match=r"pip install triton .*dynconv_nlp\[triton\]"):
        importlib.import_module("dynconv_nlp.ops.triton")
