"""generate() with the conv-state cache: greedy, beam search and sampling, with and without cache."""

import pytest
import torch
from dynconv_testing import random_ids, tiny_config

from dynconv_nlp import DynConvForConditionalGeneration
from dynconv_nlp.layers.blocks import CrossAttention
from dynconv_nlp.models.dynconv.modeling_dynconv import DynConvStateCacheLayer

B, S = 2, 9
# Past the room the conv-state buffers start with (K - 1 + 16 rows), so that they move their state at least once.
NEW_TOKENS = 24


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DynConvForConditionalGeneration(tiny_config()).eval()


def _source():
    ids = random_ids(B, S)
    mask = torch.ones(B, S, dtype=torch.long)
    mask[1, 6:] = 0
    return ids.masked_fill(mask == 0, 0), mask


def _greedy_by_hand(model, ids, mask, steps):
    """The reference: re-run the whole model on the whole prefix at every step, no cache."""
    out = torch.full((ids.shape[0], 1), model.config.decoder_start_token_id)
    for _ in range(steps):
        logits = model(ids, attention_mask=mask, decoder_input_ids=out, use_cache=False).logits
        out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return out


def test_greedy_cached_equals_uncached_equals_a_hand_written_loop(model):
    ids, mask = _source()
    kwargs = dict(attention_mask=mask, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
    cached = model.generate(ids, **kwargs)
    uncached = model.generate(ids, use_cache=False, **kwargs)
    by_hand = _greedy_by_hand(model, ids, mask, NEW_TOKENS)
    assert cached.shape == (B, NEW_TOKENS + 1)
    assert torch.equal(cached, uncached) and torch.equal(cached, by_hand)
    assert not torch.equal(cached[0], cached[1]), "a random model should still depend on its input"


def test_beam_search_is_identical_with_and_without_cache(model):
    ids, mask = _source()
    kwargs = dict(
        attention_mask=mask,
        max_new_tokens=NEW_TOKENS,
        num_beams=4,
        num_return_sequences=3,
        output_scores=True,
        return_dict_in_generate=True,
    )
    cached = model.generate(ids, **kwargs)
    uncached = model.generate(ids, use_cache=False, **kwargs)
    assert cached.sequences.shape[0] == B * 3
    assert torch.equal(cached.sequences, uncached.sequences)
    torch.testing.assert_close(cached.sequences_scores, uncached.sequences_scores)


def test_sampling_with_a_seed_is_identical_with_and_without_cache(model):
    ids, mask = _source()
    outputs = []
    for use_cache in (True, False):
        torch.manual_seed(123)
        outputs.append(model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=True, top_k=20, use_cache=use_cache))
    assert torch.equal(*outputs)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_the_conv_state_does_not_grow_with_the_output(model, num_beams):
    ids, mask = _source()
    shapes = {}
    for new_tokens in (2, 40):
        out = model.generate(
            ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens, num_beams=num_beams,
            return_dict_in_generate=True,
        )
        states = out.cache.self_attention_cache
        shapes[new_tokens] = [tuple(layer.conv_states[0].shape) for layer in states.layers]
        state_shapes = [tuple(layer.get_state().shape) for layer in states.layers]
        assert state_shapes == [(B * num_beams, 2, 16), (B * num_beams, 8, 16)]  # [B * beams, K - 1, C]
        assert states.layers[0].seen_tokens == new_tokens  # the decoder's position counter
    # Buffers [B * beams, K - 1 + 16, C] for kernels 3 and 9, however many tokens were generated.
    assert shapes[2] == shapes[40] == [(B * num_beams, 18, 16), (B * num_beams, 24, 16)]


def test_cross_attention_keys_and_values_are_computed_once(model, monkeypatch):
    calls = []
    original = CrossAttention.key_value

    def counting(self, encoder_hidden_states):
        calls.append(encoder_hidden_states.shape)
        return original(self, encoder_hidden_states)

    monkeypatch.setattr(CrossAttention, "key_value", counting)
    ids, mask = _source()
    model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, num_beams=2)
    assert calls == [(B * 2, S, 16)] * 2  # once per decoder layer, for all beams, at the first step


def test_incremental_forward_equals_the_full_forward(model):
    ids, mask = _source()
    target = random_ids(B, 7, seed=4)
    full = model(ids, attention_mask=mask, decoder_input_ids=target, use_cache=False).logits
    encoder_outputs = model.get_encoder()(ids, attention_mask=mask)
    cache, logits = None, []
    for start, stop in [(0, 3), (3, 4), (4, 7)]:  # several tokens, then one, then several
        out = model(
            encoder_outputs=encoder_outputs, attention_mask=mask, decoder_input_ids=target[:, start:stop],
            cache=cache, use_cache=True,
        )
        cache = out.cache
        logits.append(out.logits)
    torch.testing.assert_close(torch.cat(logits, dim=1), full)


@pytest.mark.parametrize("state_size", [0, 2, 30])
@pytest.mark.parametrize("record_past", [False, True])
def test_the_state_cache_holds_the_last_k_minus_1_inputs_through_every_move(state_size, record_past):
    """Against a plain concatenation of zeros and every step's inputs, over steps that fill the buffer."""
    layer = DynConvStateCacheLayer(state_size)
    if record_past:
        layer.activate_past_recording()
    history = torch.zeros(3, state_size, 4)
    for step, new in enumerate([1, 1, 5, 1, 40, 1, 1, 17, 3] * 3):
        inputs = torch.randn(3, new, 4)
        history = torch.cat([history, inputs], dim=1)
        state = layer.update_conv_state(inputs)
        assert torch.equal(state, history[:, history.shape[1] - state_size :]), f"step {step}"
        assert torch.equal(layer.get_state(), state)
    assert layer.seen_tokens == history.shape[1] - state_size
    if record_past:  # assisted decoding takes rejected tokens back
        layer.crop(-4)
        assert torch.equal(layer.get_state(), history[:, history.shape[1] - 4 - state_size : history.shape[1] - 4])
        assert layer.seen_tokens == history.shape[1] - state_size - 4
    else:
        with pytest.raises(RuntimeError, match="does not track past states"):
            layer.crop(-4)
    layer.reset()
    assert layer.get_state() is None
    first = torch.cat([torch.zeros(3, state_size, 4), torch.ones(3, 1, 4)], dim=1)[:, 1:]  # zeros before the first token again
    assert torch.equal(layer.update_conv_state(torch.ones(3, 1, 4)), first)
