"""trim="tile" and trim="token": each tile of tokens, or each bucket of tokens with the same reach,
gets only the taps its own tokens use; outputs and gradients are the untrimmed layer's."""

import pytest
import torch

from dynconv_nlp.layers import DynamicConv1d, dynamic_conv
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


@pytest.mark.parametrize("trim", ["tile", "token"])
@pytest.mark.parametrize("kernel", ["dynamic", "light"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kernel_size", [7, 31, 127])
def test_tiles_and_buckets_give_the_untrimmed_outputs_and_gradients(kernel_size, causal, kernel, trim):
    layer = _layer_with_varied_extents(kernel_size, causal, kernel)
    x = torch.randn(3, T, C, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(3, T)
    mask[1, 90:] = 0  # right padding
    mask[2, :40] = 0  # left padding
    x[mask == 0] = 1e3  # padding garbage must not leak
    probe = torch.linspace(-1, 1, C, dtype=torch.float64)
    results = {}
    for mode in (False, trim):
        layer.trim = mode
        layer.zero_grad()
        inputs = x.clone().requires_grad_()
        out = layer(inputs, attention_mask=mask)
        (out.hidden_states * mask.unsqueeze(-1) * probe).sum().backward()
        results[mode] = (out.hidden_states[mask.bool()], inputs.grad, [p.grad for p in layer.parameters()])
    full, tiled = results[False], results[trim]
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


def test_each_token_reaches_as_far_as_its_widest_head():
    layer = DynamicConv1d(C, H, 127, ramp=1.0)
    left, right = torch.zeros(1, 4, H), torch.zeros(1, 4, H)
    left[0, 0, 3] = 2.5  # taps up to distance 3 (d < 2.5 + ramp)
    left[0, 2] = 62.5  # distance 63, the largest
    right[0, 1, 0], right[0, 1, 1] = 9.0, 16.2  # the wider head decides: distance 17
    left[0, 3] = 40.0  # a padded token, which needs nothing
    mask = torch.tensor([[1, 1, 1, 0]])
    reach_left, reach_right = layer.token_reach(left, right, mask)
    assert reach_left.tolist() == [[3, 0, 63, 0]] and reach_right.tolist() == [[0, 17, 0, 0]]


def test_the_core_goes_to_every_token_and_the_wider_taps_to_the_wide_tokens_alone(monkeypatch):
    """62 narrow tokens and 2 wide ones: kernels for all 64 over the core (the taps 95% of them need),
    one op call over the core, and the wide tokens' further taps generated for those 2 only."""
    layer = DynamicConv1d(C, H, 127, trim="token").eval()
    extents = torch.full((1, 64, H), 41.5)  # 2 wide tokens: distance 42 (d < 41.5 + ramp)
    extents[0, :62] = 2.0  # 62 narrow tokens: distance 2
    layer.extents = lambda u: (extents, extents)
    generated, op_taps = [], []
    tap_logits, op = layer.tap_logits, dynamic_conv.dynamic_conv1d

    def generation_spy(u, left, right, tap_range=None):
        generated.append((u.shape[1], len(tap_range)))
        return tap_logits(u, left, right, tap_range)

    def op_spy(x, weight, padding_l, **options):
        op_taps.append((weight.shape[-1], padding_l))
        return op(x, weight, padding_l, **options)

    monkeypatch.setattr(layer, "tap_logits", generation_spy)
    monkeypatch.setattr(dynamic_conv, "dynamic_conv1d", op_spy)
    x = torch.randn(1, 64, C)
    y = layer(x).hidden_states
    assert generated == [(64, 5), (2, 40), (2, 40)] and op_taps == [(5, 2)]
    monkeypatch.undo()
    layer.trim = False
    torch.testing.assert_close(y, layer(x).hidden_states)


def test_a_wrong_trim_mode_is_refused():
    with pytest.raises(ValueError, match="trim must be one of"):
        DynamicConv1d(C, H, 7, trim="tiles")
