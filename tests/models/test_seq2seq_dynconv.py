"""The encoder-decoder in transformers' layout (BART/Marian): a base model with shared embeddings,
encoder and decoder, ModelOutputs all the way down, the cache as transformers names it, old checkpoints."""

import json

import pytest
import torch
from dynconv_testing import random_ids, tiny_config
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSeq2SeqLM
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)

from dynconv_nlp.models.dynconv import DynConvForConditionalGeneration, DynConvSeq2SeqModel
from dynconv_nlp.models.dynconv.modeling_dynconv import DynConvDecoder, DynConvEncoder

B, S, T = 2, 9, 5


def _model(model_class=DynConvForConditionalGeneration, **overrides):
    torch.manual_seed(0)
    return model_class(tiny_config(**overrides)).eval()


def _batch():
    mask = torch.ones(B, S, dtype=torch.long)
    mask[1, 6:] = 0
    return random_ids(B, S).masked_fill(mask == 0, 0), mask, random_ids(B, T, seed=1)


def test_the_seq2seq_model_holds_shared_embeddings_encoder_and_decoder():
    model = _model()
    base = model.model
    assert isinstance(base, DynConvSeq2SeqModel) and model.base_model is base
    assert isinstance(base.encoder, DynConvEncoder) and isinstance(base.decoder, DynConvDecoder)
    assert model.get_encoder() is base.encoder and model.get_decoder() is base.decoder
    assert base.get_encoder() is base.encoder and base.get_decoder() is base.decoder
    shared = base.shared.weight
    assert model.get_input_embeddings() is base.shared
    assert base.encoder.embed_tokens.weight is shared and base.decoder.embed_tokens.weight is shared
    assert model.lm_head.weight is shared
    assert not hasattr(model, "decoder")  # it lives in model.model, as in BART and Marian


def test_resized_embeddings_stay_shared_and_tied():
    model = _model()
    model.resize_token_embeddings(120)
    shared = model.model.shared.weight
    assert shared.shape == (120, 16)
    assert model.model.encoder.embed_tokens.weight is shared and model.model.decoder.embed_tokens.weight is shared
    assert model.lm_head.weight is shared
    ids, mask, target = _batch()
    assert model(ids, attention_mask=mask, decoder_input_ids=target).logits.shape == (B, T, 120)


def test_without_tied_word_embeddings_encoder_and_decoder_still_share_theirs(tmp_path):
    model = _model(tie_word_embeddings=False)
    shared = model.model.shared.weight
    assert model.model.encoder.embed_tokens.weight is shared and model.model.decoder.embed_tokens.weight is shared
    assert model.lm_head.weight is not shared
    ids, mask, target = _batch()
    model(ids, attention_mask=mask, labels=target).loss.backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []  # no dead weight for DDP
    model.save_pretrained(tmp_path)
    loaded = DynConvForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.lm_head.weight is not loaded.model.shared.weight
    torch.testing.assert_close(
        loaded(ids, attention_mask=mask, decoder_input_ids=target).logits,
        model(ids, attention_mask=mask, decoder_input_ids=target).logits,
        rtol=0,
        atol=0,
    )


def test_every_stack_returns_transformers_outputs():
    model = _model()
    ids, mask, target = _batch()
    encoder_out = model.get_encoder()(ids, attention_mask=mask, output_widths=True)
    assert isinstance(encoder_out, BaseModelOutput) and encoder_out.last_hidden_state.shape == (B, S, 16)
    decoder_out = model.get_decoder()(
        input_ids=target, encoder_hidden_states=encoder_out.last_hidden_state, encoder_attention_mask=mask,
        use_cache=True, output_hidden_states=True, output_widths=True,
    )  # fmt: skip
    assert isinstance(decoder_out, BaseModelOutputWithPastAndCrossAttentions)
    assert decoder_out.last_hidden_state.shape == (B, T, 16)
    assert isinstance(decoder_out.cache, EncoderDecoderCache)
    assert len(decoder_out.hidden_states) == 3 and [w.shape for w in decoder_out.widths] == [(B, T, 4, 2)] * 2
    assert decoder_out.width_penalty.shape == (B,)
    decoder_inputs = dict(input_ids=target, encoder_hidden_states=encoder_out[0], use_cache=False)
    as_tuple = model.get_decoder()(**decoder_inputs, return_dict=False)
    assert isinstance(as_tuple, tuple)
    assert torch.equal(as_tuple[0], model.get_decoder()(**decoder_inputs).last_hidden_state)

    base_out = model.model(ids, attention_mask=mask, decoder_input_ids=target, output_widths=True)
    assert isinstance(base_out, Seq2SeqModelOutput)
    torch.testing.assert_close(base_out.encoder_last_hidden_state, encoder_out.last_hidden_state)
    out = model(ids, attention_mask=mask, decoder_input_ids=target, output_widths=True)
    assert isinstance(out, Seq2SeqLMOutput)
    torch.testing.assert_close(out.logits, model.lm_head(base_out.last_hidden_state))
    # The penalty is the mean over all 2 + 2 conv layers.
    torch.testing.assert_close(out.width_penalty, (encoder_out.width_penalty * 2 + decoder_out.width_penalty * 2) / 4)


def test_the_cache_is_called_cache_and_past_key_values_is_its_alias():
    model = _model()
    ids, mask, target = _batch()
    full = model(ids, attention_mask=mask, decoder_input_ids=target, use_cache=False).logits
    first = model(ids, attention_mask=mask, decoder_input_ids=target[:, :3], use_cache=True)
    assert isinstance(first.cache, EncoderDecoderCache)
    assert first.past_key_values is first.cache and first["past_key_values"] is first.cache
    with pytest.warns(FutureWarning, match="past_key_values"):
        second = model(ids, attention_mask=mask, decoder_input_ids=target[:, 3:], past_key_values=first.past_key_values)
    assert second.cache is first.cache  # updated in place
    torch.testing.assert_close(torch.cat([first.logits, second.logits], dim=1), full)


@pytest.mark.parametrize("as_tuple", [False, True])
def test_encoder_outputs_given_as_model_output_or_tuple(as_tuple):
    model = _model()
    ids, mask, target = _batch()
    expected = model(ids, attention_mask=mask, decoder_input_ids=target)
    encoder_outputs = model.get_encoder()(ids, attention_mask=mask, return_dict=not as_tuple)
    out = model(encoder_outputs=encoder_outputs, attention_mask=mask, decoder_input_ids=target)
    torch.testing.assert_close(out.logits, expected.logits)
    torch.testing.assert_close(out.width_penalty, expected.width_penalty)


def test_the_encoder_takes_what_a_tokenizer_gives():
    model = _model()
    ids, mask, _ = _batch()
    # A BERT-style tokenizer adds token_type_ids; a translation encoder has no token types to add.
    out = model.get_encoder()(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    torch.testing.assert_close(out.last_hidden_state, model.get_encoder()(ids, attention_mask=mask).last_hidden_state)


def test_checkpoint_weight_names(tmp_path):
    _model().save_pretrained(tmp_path)
    names = set(load_file(tmp_path / "model.safetensors"))
    assert "model.shared.weight" in names
    assert any(n.startswith("model.encoder.layers.1.") for n in names)
    assert any(n.startswith("model.decoder.layers.1.") for n in names)
    # Tied to model.shared: not saved.
    assert not names & {"lm_head.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}
    assert not [n for n in names if n.startswith(("decoder.", "model.embed_tokens."))]


def _old_layout(key: str) -> str:
    """A key of this layout -> the same weight's key before DynConvSeq2SeqModel existed."""
    if key.startswith("model.decoder."):
        return key.removeprefix("model.")
    return key.replace("model.shared.", "model.embed_tokens.")


def test_a_checkpoint_of_the_old_layout_loads_with_equal_outputs(tmp_path):
    model = _model()
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    old_weights = {_old_layout(k): v for k, v in weights.items()}
    save_file(old_weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    assert "decoder.layers.0.conv.width_proj.bias" in load_file(tmp_path / "model.safetensors")

    loaded, info = DynConvForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    loaded = loaded.eval()
    ids, mask, target = _batch()
    torch.testing.assert_close(
        loaded(ids, attention_mask=mask, decoder_input_ids=target).logits,
        model(ids, attention_mask=mask, decoder_input_ids=target).logits,
        rtol=0,
        atol=0,
    )
    generated = [m.generate(ids, attention_mask=mask, max_new_tokens=4) for m in (loaded, model)]
    assert torch.equal(*generated)
    # Saved again, it has the new names.
    loaded.save_pretrained(tmp_path / "again")
    assert "model.decoder.layers.0.conv.width_proj.bias" in load_file(tmp_path / "again" / "model.safetensors")


def test_base_model_and_lm_model_load_each_others_checkpoints(tmp_path):
    model = _model()
    ids, mask, target = _batch()
    model.save_pretrained(tmp_path / "lm")
    base = DynConvSeq2SeqModel.from_pretrained(tmp_path / "lm").eval()
    expected = model.model(ids, attention_mask=mask, decoder_input_ids=target).last_hidden_state
    got = base(ids, attention_mask=mask, decoder_input_ids=target).last_hidden_state
    torch.testing.assert_close(got, expected, rtol=0, atol=0)

    base.save_pretrained(tmp_path / "base")
    lm, info = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "base", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    torch.testing.assert_close(
        lm.eval()(ids, attention_mask=mask, decoder_input_ids=target).logits,
        model(ids, attention_mask=mask, decoder_input_ids=target).logits,
        rtol=0,
        atol=0,
    )
    assert json.loads((tmp_path / "base" / "config.json").read_text())["is_encoder_decoder"] is True


def test_the_decoder_drops_its_cache_under_gradient_checkpointing():
    model = _model().train()
    model.activation_checkpointing_enable()
    ids, mask, target = _batch()
    encoder_out = model.get_encoder()(ids, attention_mask=mask)
    # use_cache defaults to config.use_cache (True): checkpointed layers cannot fill a cache.
    out = model.get_decoder()(
        input_ids=target, encoder_hidden_states=encoder_out.last_hidden_state, encoder_attention_mask=mask
    )
    assert out.cache is None
    out.last_hidden_state.sum().backward()
    assert model.model.decoder.layers[0].conv.width_proj.bias.grad is not None


def test_a_width_budget_constrains_encoder_and_decoder_layers():
    model = _model(width_budget=0.4, width_budget_warmup_steps=0, width_penalty_coef=0.1).train()  # decoder layers: no budget (1)
    ids, mask, labels = _batch()
    budget = model.width_budget
    torch.testing.assert_close(budget.budgets, torch.tensor([0.4, 0.4, 1.0, 1.0]))
    budget.multipliers.fill_(2.0)
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    assert budget.measured.tolist() == [1.0] * 4  # recorded, not yet stepped
    logs = budget.after_optimizer_step()
    measured = torch.tensor([logs[f"width_{layer}"] for layer in range(4)])
    expected = 0.1 * out.width_penalty.mean() + (2.0 * (measured - budget.budgets)).sum()
    torch.testing.assert_close(out.width_loss, expected)
    ce = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), labels.flatten())
    torch.testing.assert_close(out.loss, ce + out.width_loss)
    # Cached encoder outputs (generate) carry no per-layer widths of this call: no budget term then.
    encoder_outputs = model.get_encoder()(input_ids=ids, attention_mask=mask)
    cached = model.eval()(encoder_outputs=encoder_outputs.to_tuple()[:1], attention_mask=mask, labels=labels)
    torch.testing.assert_close(cached.width_loss, 0.1 * cached.width_penalty.mean())
