"""trim="tile": each tile of tokens gets only the taps its own tokens use; outputs and gradients are
the untrimmed layer's."""

import pytest
import torch

from dynconv_nlp.layers import DynamicConv1d
from dynconv_nlp.layers.dynamic_conv import TRIM_TILE

C, H, T = 16, 4, 150


def _layer_with_varied_extents(kernel_size, causal, kernel="dynamic"):
    """Extents scaled per token: most narrow, a few wide, one tile (tokens 32-63) nearly closed."""
    torch.manual_seed(0)
    layer = DynamicConv1d(C, H, kernel_size, causal=causal, kernel=kernel, width_init=0.5).double()
    scale = torch.rand(T, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) ** 4
    scale[TRIM_TILE : 2 * TRIM_TILE] = 0.01
    learned = layer.extents

    def extents(u):
        left, right = learned(u)
        return left * scale[: u.shape[1], None], right * scale[: u.shape[1], None]

    layer.extents = extents
    return layer


@pytest.mark.parametrize("kernel", ["dynamic", "light"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kernel_size", [7, 31, 127])
def test_tiles_give_the_untrimmed_outputs_and_gradients(kernel_size, causal, kernel):
    layer = _layer_with_varied_extents(kernel_size, causal, kernel)
    x = torch.randn(3, T, C, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(3, T)
    mask[1, 90:] = 0  # right padding
    mask[2, :40] = 0  # left padding
    x[mask == 0] = 1e3  # padding garbage must not leak
    probe = torch.linspace(-1, 1, C, dtype=torch.float64)
    results = {}
    for trim in (False, "tile"):
        layer.trim = trim
        layer.zero_grad()
        inputs = x.clone().requires_grad_()
        out = layer(inputs, attention_mask=mask)
        (out.hidden_states * mask.unsqueeze(-1) * probe).sum().backward()
        results[trim] = (out.hidden_states[mask.bool()], inputs.grad, [p.grad for p in layer.parameters()])
    full, tiled = results[False], results["tile"]
    torch.testing.assert_close(tiled[0], full[0])
    torch.testing.assert_close(tiled[1], full[1])
    for tiled_grad, full_grad in zip(tiled[2], full[2]):
        torch.testing.assert_close(tiled_grad, full_grad)


def test_each_tile_reaches_as_far_as_its_widest_real_token_rounded_to_a_power_of_two():
    layer = DynamicConv1d(C, H, 31, ramp=1.0)
    left = torch.zeros(1, 96, H)
    right = torch.zeros(1, 96, H)
    left[0, 5, 2] = 2.5  # tile 0: taps up to distance 3 on the left -> 4
    right[0, 40, 0] = 9.0  # tile 1: distance 9 on the right -> 16 (capped at 15)
    left[0, 70] = 14.0  # tile 2: a padded token, which does not count
    mask = torch.ones(1, 96)
    mask[0, 70] = 0
    reach_left, reach_right = layer.tile_reach(left, right, mask, 32)
    assert reach_left == [[4, 0, 0]] and reach_right == [[0, 15, 0]]


def test_a_wrong_trim_mode_is_refused():
    with pytest.raises(ValueError, match="trim must be one of"):
        DynamicConv1d(C, H, 7, trim="tiles")
