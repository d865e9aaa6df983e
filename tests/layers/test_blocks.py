"""Encoder and decoder blocks: norms, padding, causality, incremental decoding with cached cross keys."""

import pytest
import torch

from dynconv_nlp.layers import DynConvDecoderBlock, DynConvEncoderBlock

C = 16


def _encoder(**options):
    torch.manual_seed(0)
    return DynConvEncoderBlock(C, 4, 7, 32, **options).double().eval()


def _decoder(**options):
    torch.manual_seed(0)
    return DynConvDecoderBlock(C, 4, 5, 32, num_attention_heads=2, **options).double().eval()


def _x(B, T, seed):
    return torch.randn(B, T, C, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("normalize_before", [False, True])
def test_encoder_padded_batch_equals_each_sequence_alone(normalize_before):
    block = _encoder(normalize_before=normalize_before, glu=True)
    x, mask = _x(2, 6, 1), torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    x[1, 3:] = 50.0
    batched = block(x, mask)
    alone = block(x[1:, :3])
    torch.testing.assert_close(batched.hidden_states[1, :3], alone.hidden_states[0])
    torch.testing.assert_close(batched.hidden_states[0], block(x[:1]).hidden_states[0])


def test_pre_and_post_norm_differ_and_post_norm_output_is_normalised():
    x = _x(2, 5, 1)
    post = _encoder(normalize_before=False)(x).hidden_states
    pre = _encoder(normalize_before=True)(x).hidden_states
    assert not torch.allclose(pre, post)
    torch.testing.assert_close(post.mean(-1), torch.zeros(2, 5, dtype=x.dtype), atol=1e-6, rtol=0)


def test_decoder_is_causal_in_its_own_inputs():
    block = _decoder()
    x, memory = _x(2, 6, 1).requires_grad_(), _x(2, 4, 2)
    y = block(x, memory).hidden_states
    for t in range(6):
        (grad,) = torch.autograd.grad(y[:, t].sum(), x, retain_graph=True)
        assert torch.all(grad[:, t + 1 :] == 0)


@pytest.mark.parametrize("normalize_before", [False, True])
@pytest.mark.parametrize("chunks", [[1] * 7, [2, 4, 1]])
def test_decoder_incremental_equals_full_with_cross_keys_computed_once(normalize_before, chunks):
    block = _decoder(normalize_before=normalize_before)
    x, memory = _x(2, 7, 1), _x(2, 4, 2)
    memory_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    full = block(x, memory, memory_mask).hidden_states
    state, cross, outputs, start = None, None, [], 0
    for n in chunks:
        # After the first step the encoder output is not passed: only the cached keys/values.
        out = block(
            x[:, start : start + n],
            memory if cross is None else None,
            memory_mask,
            conv_state=state,
            cross_key_value=cross,
            use_cache=True,
        )
        state, cross, start = out.conv_state, out.cross_key_value, start + n
        assert state.shape == (2, 4, C)
        outputs.append(out.hidden_states)
    torch.testing.assert_close(torch.cat(outputs, 1), full)


def test_cross_attention_ignores_padded_encoder_positions():
    block = _decoder()
    x, memory = _x(1, 3, 1), _x(1, 5, 2)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    changed = memory.clone()
    changed[:, 3:] = -7.0
    torch.testing.assert_close(block(x, memory, mask).hidden_states, block(x, changed, mask).hidden_states)
    torch.testing.assert_close(block(x, memory, mask).hidden_states, block(x, memory[:, :3]).hidden_states)


def test_decoder_needs_encoder_output_or_cached_keys():
    with pytest.raises(ValueError, match="needs encoder_hidden_states or cross_key_value"):
        _decoder()(_x(1, 2, 1))


def test_bad_activation_and_heads_raise():
    with pytest.raises(ValueError, match=r"activation must be one of .*, got 'tanh'"):
        DynConvEncoderBlock(C, 4, 7, 32, activation="tanh")
    with pytest.raises(ValueError, match=r"num_attention_heads = 3 must divide hidden_size = 16"):
        DynConvDecoderBlock(C, 4, 5, 32, num_attention_heads=3)
