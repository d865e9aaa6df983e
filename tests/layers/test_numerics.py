"""Mixed precision: under bf16 / fp16 autocast the kernels' softmax and the width math stay in fp32."""

import pytest
import torch

from dynconv_nlp.layers.dynamic_conv import DynamicConv1d


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_softmax_and_widths_run_in_fp32_under_autocast(dtype):
    torch.manual_seed(0)
    layer = DynamicConv1d(64, 4, 31, width="adaptive").train()
    x = torch.randn(2, 50, 64)
    with torch.autocast("cpu", dtype=dtype):
        u = layer.input_proj(x)
        assert u.dtype == dtype  # what the layer's own projection hands on under autocast
        left, right = layer.extents(u)
        weight = layer.taps(u, left, right)
        out = layer(x)
    assert left.dtype == right.dtype == weight.dtype == torch.float32
    assert out.left_extent.dtype == out.width_penalty.dtype == torch.float32
    # A bf16 / fp16 softmax misses 1 by ~1e-3 / ~2e-4 here; fp32 taps sum to 1 within 1e-6.
    layer.weight_dropout = 0.0
    torch.testing.assert_close(weight.sum(-1), torch.ones_like(weight[..., 0]), atol=1e-6, rtol=0)
    # The extents are those of fp32 math on the same bf16 inputs.
    reference = torch.sigmoid(layer.width_proj(u.float())).reshape(2, 50, 4, 2)[..., 0] * layer.max_left
    torch.testing.assert_close(left, reference, atol=3e-2, rtol=3e-2)
    assert out.hidden_states.dtype == dtype and torch.isfinite(out.hidden_states).all()
