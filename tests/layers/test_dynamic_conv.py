"""DynamicConv1d: padding, causality, incremental decoding, widths, trimming, DynamicConv equivalence."""

import pytest
import torch
import torch.nn.functional as F

from dynconv_nlp.layers import DynamicConv1d, ramp_mask
from dynconv_nlp.ops.naive import dynamic_conv1d_naive

C, H = 16, 4


def _layer(kernel_size=7, seed=0, **options):
    torch.manual_seed(seed)
    return DynamicConv1d(C, H, kernel_size, **options).double().eval()


def _x(B, T, seed=1):
    return torch.randn(B, T, C, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("kernel", ["dynamic", "light"])
@pytest.mark.parametrize("width", ["adaptive", "fixed"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_batch_equals_each_sequence_alone(kernel, width, causal, side):
    layer = _layer(kernel=kernel, width=width, causal=causal, glu=True)
    lengths = [9, 4, 1]
    T = max(lengths)
    x = _x(len(lengths), T)
    mask = torch.zeros(len(lengths), T)
    rows = [slice(0, n) if side == "right" else slice(T - n, T) for n in lengths]
    for i, row in enumerate(rows):
        mask[i, row] = 1
        x[i, mask[i] == 0] = 1e3  # padding garbage must not leak into real positions
    batched = layer(x, attention_mask=mask)
    for i, row in enumerate(rows):
        alone = layer(x[i : i + 1, row])
        torch.testing.assert_close(batched.hidden_states[i, row], alone.hidden_states[0])
        torch.testing.assert_close(batched.left_extent[i, row], alone.left_extent[0])


@pytest.mark.parametrize("garbage", [float("nan"), float("inf")])
def test_nan_and_inf_in_padding_stay_out_of_real_positions(garbage):
    layer = _layer(kernel_size=5, glu=True)
    x = _x(2, 6)
    x[1, 3:] = garbage
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    out = layer(x, attention_mask=mask)
    torch.testing.assert_close(out.hidden_states[1, :3], layer(x[1:, :3]).hidden_states[0])
    assert torch.isfinite(out.width_penalty).all()


@pytest.mark.parametrize("shape", [(0, 5), (2, 0)], ids=["B=0", "T=0"])
@pytest.mark.parametrize("causal", [False, True])
def test_empty_batch_or_sequence(shape, causal):
    layer = _layer(kernel_size=9, causal=causal)
    x = torch.zeros(*shape, C, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    assert out.hidden_states.shape == x.shape and out.left_extent.shape == (*shape, H)
    out.hidden_states.sum().backward()
    assert x.grad.shape == x.shape


def test_width_penalty_is_per_sequence_and_ignores_padding():
    layer = _layer()
    x = _x(2, 8)
    x[1, 5:] = 100.0
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    penalty = layer(x, mask).width_penalty
    assert penalty.shape == (2,)
    torch.testing.assert_close(penalty[0], layer(x[:1]).width_penalty[0])
    torch.testing.assert_close(penalty[1], layer(x[1:, :5]).width_penalty[0])


@pytest.mark.parametrize("width", ["adaptive", "fixed"])
@pytest.mark.parametrize("backend", ["naive", "unfold", "shift", "band"])
def test_causal_output_never_depends_on_later_inputs(width, backend):
    layer = _layer(kernel_size=5, causal=True, width=width, backend=backend)
    T = 8
    x = _x(2, T).requires_grad_()
    y = layer(x).hidden_states
    for t in range(T):
        (grad,) = torch.autograd.grad(y[:, t].sum(), x, retain_graph=True)
        assert torch.all(grad[:, t + 1 :] == 0), f"output {t} depends on a later input"
        assert grad[:, t].abs().sum() > 0


@pytest.mark.parametrize("chunks", [[1] * 10, [3, 1, 4, 2], [10], [2, 8]])
@pytest.mark.parametrize("kernel_size", [1, 4, 7, 12])
@pytest.mark.parametrize("width", ["adaptive", "fixed"])
def test_incremental_decoding_equals_full_sequence(chunks, kernel_size, width):
    # Steps of fewer than K tokens take the new tokens' windows alone, longer ones the op: both are here.
    layer = _layer(kernel_size=kernel_size, causal=True, glu=True, width=width)
    x = _x(3, sum(chunks)).requires_grad_()
    full = layer(x).hidden_states
    (full_grad,) = torch.autograd.grad(full.square().sum(), x)
    state, outputs, start = None, [], 0
    for n in chunks:
        out = layer(x[:, start : start + n], conv_state=state, use_cache=True)
        state, start = out.conv_state, start + n
        assert state.shape == (3, kernel_size - 1, C), "the state must keep a constant size"
        outputs.append(out.hidden_states)
    incremental = torch.cat(outputs, dim=1)
    torch.testing.assert_close(incremental, full)
    torch.testing.assert_close(torch.autograd.grad(incremental.square().sum(), x)[0], full_grad)


@pytest.mark.parametrize("kernel_size, new_tokens, first_tap", [(7, 1, 0), (7, 1, 4), (31, 1, 20), (31, 5, 0), (31, 30, 29)])
def test_a_decoding_step_convolves_only_the_new_tokens_windows(kernel_size, new_tokens, first_tap):
    """Against the reference op over [state, new tokens] with the state rows' taps zero."""
    B, K, T = 2, kernel_size, new_tokens
    context = _x(B, K - 1 + T)
    weight = torch.softmax(torch.randn(B, T, H, K - first_tap, dtype=torch.float64), dim=-1)
    step = DynamicConv1d.convolve_new_tokens(context[:, first_tap:], weight)  # the rows the kept taps reach
    padded = F.pad(weight, (first_tap, 0, 0, 0, K - 1, 0))  # taps before first_tap off; state rows all off
    torch.testing.assert_close(step, dynamic_conv1d_naive(context, padded, K - 1)[:, K - 1 :])


@pytest.mark.parametrize("backend", ["naive", "unfold", "shift", "band"])
def test_incremental_decoding_equals_full_sequence_on_every_backend(backend):
    layer = _layer(kernel_size=9, causal=True, backend=backend)
    x = _x(2, 20)
    full = layer(x).hidden_states
    state, outputs = None, []
    for start, stop in [(0, 1), (1, 5), (5, 6), (6, 20)]:  # the last step is long enough for the op
        out = layer(x[:, start:stop], conv_state=state, use_cache=True)
        state = out.conv_state
        outputs.append(out.hidden_states)
    torch.testing.assert_close(torch.cat(outputs, dim=1), full)


def test_decoding_state_owns_constant_memory():
    # The state must be a copy: a view of the step's input would keep that whole input alive.
    layer = _layer(kernel_size=5, causal=True)
    out = layer(_x(2, 40), use_cache=True)
    assert out.conv_state.untyped_storage().nbytes() == out.conv_state.numel() * out.conv_state.element_size()


def test_reorder_state_selects_beams():
    state = torch.arange(3.0).view(3, 1, 1).expand(3, 2, 4)
    reordered = DynamicConv1d.reorder_state(state, torch.tensor([2, 2, 0]))
    assert reordered[:, 0, 0].tolist() == [2.0, 2.0, 0.0]


def test_incremental_decoding_needs_causal():
    with pytest.raises(ValueError, match="needs a causal DynamicConv1d"):
        _layer()(_x(1, 2), use_cache=True)


def test_ramp_gradient_is_nonzero_only_inside_the_ramp():
    # P = 5, left extent 2.3, ramp 1: taps at distance <= 2 are on, distance 3 is inside the ramp.
    left = torch.tensor([2.3], dtype=torch.float64, requires_grad=True)
    right = torch.tensor([0.0], dtype=torch.float64)
    mask = ramp_mask(left, right, kernel_size=11, padding_l=5, ramp=1.0)[0]
    assert mask[[3, 4, 5]].tolist() == [1.0, 1.0, 1.0]
    torch.testing.assert_close(mask[2], torch.tensor(0.3, dtype=torch.float64))
    assert torch.all(mask[:2] == 0) and torch.all(mask[6:] == 0)  # right extent 0: nothing to the right
    grads = [torch.autograd.grad(mask[j], left, retain_graph=True)[0].item() for j in range(11)]
    assert grads[2] == pytest.approx(1.0)
    assert all(g == 0 for j, g in enumerate(grads) if j != 2)


def test_width_gradients_reach_the_width_projection_from_the_output():
    layer = _layer(kernel_size=9, ramp=2.0)
    layer(_x(2, 6)).hidden_states.pow(2).sum().backward()
    assert layer.width_proj.weight.grad.abs().sum() > 0
    assert layer.width_proj.bias.grad.abs().sum() > 0


def test_zero_extents_leave_only_the_centre_tap():
    layer = _layer(kernel_size=7)
    with torch.no_grad():
        layer.width_proj.weight.zero_()
        layer.width_proj.bias.fill_(-100.0)  # sigmoid -> 0, so l = r = 0
    u = _x(2, 5)
    left, right = layer.extents(u)
    taps = layer.taps(u, left, right)
    expected = torch.zeros_like(taps)
    expected[..., layer.padding_l] = 1
    assert torch.equal(taps, expected)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("bias", [-3.0, 0.0, 3.0])
def test_trimmed_and_untrimmed_taps_give_identical_outputs(causal, bias):
    trimmed = _layer(kernel_size=15, causal=causal, trim=True)
    full = _layer(kernel_size=15, causal=causal, trim=False)
    with torch.no_grad():
        for layer in (trimmed, full):
            layer.width_proj.bias.fill_(bias)
    x = _x(2, 12).requires_grad_()
    y_trimmed, y_full = trimmed(x).hidden_states, full(x).hidden_states
    torch.testing.assert_close(y_trimmed, y_full, atol=1e-12, rtol=0)
    (g_trimmed,) = torch.autograd.grad(y_trimmed.sum(), x)
    (g_full,) = torch.autograd.grad(y_full.sum(), x)
    torch.testing.assert_close(g_trimmed, g_full, atol=1e-12, rtol=0)


def test_trimming_drops_the_inactive_taps(monkeypatch):
    layer = _layer(kernel_size=15)
    with torch.no_grad():
        layer.width_proj.weight.zero_()
        layer.width_proj.bias.fill_(-2.0)  # extents 7 * sigmoid(-2) = 0.83 -> one tap each side
    seen = {}

    def spy(x, weight, padding_l, *, backend, zero_taps_inactive):
        seen["K"], seen["padding_l"], seen["zero_taps_inactive"] = weight.shape[-1], padding_l, zero_taps_inactive
        return dynamic_conv1d_naive(x, weight, padding_l)

    monkeypatch.setattr("dynconv_nlp.layers.dynamic_conv.dynamic_conv1d", spy)
    layer(_x(1, 6))
    assert seen == {"K": 3, "padding_l": 1, "zero_taps_inactive": True}


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("ramp", [1.0, 2.5])
def test_active_taps_are_exactly_the_taps_any_token_uses(causal, ramp):
    layer = _layer(kernel_size=15, causal=causal, ramp=ramp)
    g = torch.Generator().manual_seed(0)
    for scale in (0.0, 0.3, 1.0):
        left = scale * layer.max_left * torch.rand(2, 6, H, generator=g, dtype=torch.float64)
        right = scale * layer.max_right * torch.rand(2, 6, H, generator=g, dtype=torch.float64)
        left[0, 0, 0] = round(left.max().item())  # an extent + ramp that lands exactly on a tap
        on = ramp_mask(left, right, 15, layer.padding_l, ramp).flatten(0, 2).gt(0).any(0).nonzero().squeeze(-1)
        assert layer.active_taps(left, right) == range(int(on[0]), int(on[-1]) + 1), scale


def test_padding_keeps_no_taps_and_real_tokens_are_unchanged():
    """Padded tokens' extents come from zeroed inputs; they must not stop the trimming."""
    layer = _layer(kernel_size=15)
    left, right = torch.full((2, 6, H), 1.0, dtype=torch.float64), torch.full((2, 6, H), 2.0, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    left[1, 3:], right[1, 3:] = 7.0, 7.0
    assert layer.active_taps(left, right) == range(15)
    assert layer.active_taps(left, right, mask) == range(7 - 1, 7 + 2 + 1)  # d < extent + ramp (1)
    with torch.no_grad():
        layer.width_proj.bias.fill_(-2.0)  # narrow real extents; padded tokens still get these from zeros
    x = _x(2, 6)
    trimmed = layer(x, mask).hidden_states
    layer.trim = False
    torch.testing.assert_close(trimmed[mask.bool()], layer(x, mask).hidden_states[mask.bool()])


def test_fixed_dynamic_is_exactly_dynamicconv():
    # fairseq's DynamicConv: softmax over all K generated taps, no mask.
    layer = _layer(kernel_size=7, width="fixed", kernel="dynamic")
    x = _x(2, 9)
    u = layer.input_proj(x)
    weight = torch.softmax(layer.kernel_proj(u).view(2, 9, H, 7), dim=-1)
    expected = layer.output_proj(dynamic_conv1d_naive(u, weight, 3))
    out = layer(x)
    torch.testing.assert_close(out.hidden_states, expected)
    assert torch.all(out.left_extent == 3) and torch.all(out.right_extent == 3)
    assert torch.all(out.width_penalty == 0)


def test_fixed_light_uses_one_kernel_for_every_token():
    layer = _layer(kernel_size=5, width="fixed", kernel="light")
    u = _x(2, 6)
    taps = layer.taps(u, *layer.extents(u))
    torch.testing.assert_close(taps, torch.softmax(layer.kernel_weight, -1).expand_as(taps))


def test_adaptive_taps_sum_to_one_and_are_zero_outside_the_extents():
    layer = _layer(kernel_size=15, ramp=2.0)
    u = _x(2, 10)
    left, right = layer.extents(u)
    taps = layer.taps(u, left, right)
    torch.testing.assert_close(taps.sum(-1), torch.ones_like(taps[..., 0]))
    offsets = torch.arange(15) - layer.padding_l
    outside = torch.where(offsets < 0, -offsets >= left[..., None] + 2.0, offsets >= right[..., None] + 2.0)
    assert torch.all(taps[outside] == 0)
    assert torch.all((left >= 0) & (left <= 7) & (right >= 0) & (right <= 7))


def test_weight_dropout_zeroes_taps_in_training_only():
    layer = _layer(kernel_size=7, width="fixed", weight_dropout=0.5)
    u = _x(4, 20)
    layer.train()
    taps = layer.taps(u, *layer.extents(u))
    assert (taps == 0).float().mean() > 0.3
    layer.eval()
    assert torch.all(layer.taps(u, *layer.extents(u)) > 0)


def test_glu_input_projection_doubles_then_gates():
    layer = _layer(glu=True)
    assert layer.input_proj.out_features == 2 * C
    x = _x(1, 3)
    u = F.glu(layer.input_proj(x), dim=-1)
    left, _ = layer.extents(u)
    torch.testing.assert_close(layer(x).left_extent, left)


def test_bf16_layer_runs_softmax_in_fp32():
    layer = _layer(kernel_size=7).to(torch.bfloat16)
    u = _x(2, 5).to(torch.bfloat16)
    left, right = layer.extents(u)
    taps = layer.taps(u, left, right)
    assert left.dtype == taps.dtype == torch.float32
    # Normalised in fp32: they sum to 1 to fp32 precision, which a bf16 softmax (8 bits) cannot do.
    torch.testing.assert_close(taps.sum(-1), torch.ones_like(taps[..., 0]), atol=1e-6, rtol=0)
    out = layer(u)
    assert out.hidden_states.dtype == torch.bfloat16
    assert torch.isfinite(out.hidden_states.float()).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_heads=3), r"num_heads = 3 must be >= 1 and divide hidden_size = 16"),
        (dict(kernel_size=0), r"kernel_size must be >= 1, got 0"),
        (dict(kernel="heavy"), r"kernel must be one of .*, got 'heavy'"),
        (dict(width="wide"), r"width must be one of .*, got 'wide'"),
        (dict(ramp=0.5), r"ramp must be >= 1, got 0.5"),
        (dict(width_init=1.0), r"width_init must be in \(0, 1\), got 1.0"),
        (dict(weight_dropout=1.0), r"weight_dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    settings = dict(hidden_size=C, num_heads=H, kernel_size=7) | kwargs
    with pytest.raises(ValueError, match=match):
        DynamicConv1d(**settings)


@pytest.mark.parametrize("backend", ["naive", "unfold", "shift", "band", "triton"])
def test_every_backend_gives_the_same_layer_output_and_gradients(backend):
    if backend == "triton":
        pytest.importorskip("triton")
    device = "cuda" if backend == "triton" and torch.cuda.is_available() else "cpu"
    reference = _layer(kernel_size=9, backend="naive").float().to(device)
    layer = _layer(kernel_size=9, backend=backend).float().to(device)
    x = _x(2, 11).float().to(device).requires_grad_()
    mask = torch.tensor([[1] * 11, [1] * 6 + [0] * 5], device=device)
    outputs = []
    for module in (reference, layer):
        y = module(x, mask).hidden_states
        outputs.append((y, *torch.autograd.grad(y.sum(), (x, module.kernel_proj.weight))))
    for actual, expected in zip(outputs[1], outputs[0]):
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_the_layer_keeps_width_init_and_its_width_projection_applies_it(causal):
    layer = _layer(kernel_size=9, causal=causal, width_init=0.2)
    assert layer.width_init == layer.width_proj.width_init == 0.2
    fraction = layer.extents(_x(2, 6))[0] / layer.max_left
    assert abs(fraction.mean().item() - 0.2) < 0.02 and torch.all((fraction - 0.2).abs() < 0.1)
    with torch.no_grad():
        layer.width_proj.bias.zero_()
    layer.width_proj.reset_parameters()  # what re-initialising the layer, or a model, does
    torch.testing.assert_close(torch.sigmoid(layer.width_proj.bias), torch.full_like(layer.width_proj.bias, 0.2))


@pytest.mark.parametrize("new_tokens", [1, 3, 12])
def test_a_step_can_hand_back_its_inputs_instead_of_the_next_state(new_tokens):
    """For a cache that appends them itself: same outputs, and the inputs make the same next state."""
    layer = _layer(kernel_size=9, causal=True, glu=True)
    state = _x(2, 8)
    x = _x(2, new_tokens, seed=2)
    usual = layer(x, conv_state=state, use_cache=True)
    handed = layer(x, conv_state=state, use_cache=True, return_conv_inputs=True)
    assert handed.conv_state is None and handed.conv_inputs.shape == (2, new_tokens, C)
    torch.testing.assert_close(handed.hidden_states, usual.hidden_states)
    torch.testing.assert_close(torch.cat([state, handed.conv_inputs], dim=1)[:, -8:], usual.conv_state)
