"""Hybrid encoders (``attention_layers``): chosen layers are standard self-attention blocks, the rest convolve.

The attention sub-layer is checked against attention written out by hand (outputs and gradients), and
the hybrid model in every way a model is used: padding, widths, save/load, export, trust_remote_code,
pipelines, gradient checkpointing."""

import json
import math

import pytest
import torch
from dynconv_testing import random_ids, run_without_dynconv_nlp, tiny_config
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, AutoTokenizer, pipeline

from dynconv_nlp import DynConvConfig, DynConvForSequenceClassification, DynConvModel
from dynconv_nlp.layers import AttentionEncoderBlock, SelfAttention
from dynconv_nlp.models.dynconv.modeling_dynconv import DynConvAttentionEncoderLayer, DynConvEncoderLayer

B, T = 3, 11


def _hybrid(model_class=DynConvModel, seed=0, **overrides):
    torch.manual_seed(seed)
    return model_class(tiny_config(encoder_layers=3, kernel_size=[3, 9, 5], attention_layers=[1], **overrides)).eval()


def _mask(lengths, length=T):
    return (torch.arange(length)[None] < torch.tensor(lengths)[:, None]).long()


def _reference_attention(attention: SelfAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) over the real keys) v, then the output projection, written out in float64."""
    B, T, C = x.shape
    H = attention.num_heads

    def heads(linear):
        return linear(x).view(B, T, H, C // H).transpose(1, 2)

    q, k, v = heads(attention.q_proj), heads(attention.k_proj), heads(attention.v_proj)
    scores = q @ k.transpose(-1, -2) / math.sqrt(C // H)
    scores = scores.masked_fill(~mask.bool()[:, None, None, :], float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
    return attention.out_proj(out)


def test_config_keeps_attention_layers_and_checks_them():
    assert tiny_config().attention_layers == [] and tiny_config().conv_layers == [0, 1]
    config = tiny_config(encoder_layers=3, kernel_size=5, attention_layers=[2, 0])
    assert config.conv_layers == [1]
    assert DynConvConfig.from_dict(json.loads(config.to_json_string())).attention_layers == [2, 0]
    assert AutoConfig.for_model("dynconv", encoder_layers=4, attention_layers=[3]).conv_layers == [0, 1, 2]
    config.update_from_string("attention_layers=[1]")  # what --config_overrides calls
    assert config.conv_layers == [0, 2]
    for bad in ([2], [0, 0], [-1]):
        with pytest.raises(ValueError, match="attention_layers must list distinct encoder layer indices"):
            tiny_config(attention_layers=bad)
    for bad in ([True], 1, ["0"]):  # the config's field types
        with pytest.raises(StrictDataclassError, match="attention_layers"):
            tiny_config(attention_layers=bad)


def test_attention_layers_are_self_attention_blocks():
    layers = _hybrid().encoder.layers
    assert [type(layer) for layer in layers] == [DynConvEncoderLayer, DynConvAttentionEncoderLayer, DynConvEncoderLayer]
    assert [layer.token_mixer for layer in layers] == ["conv", "attention", "conv"]
    assert not any("conv" in name for name, _ in layers[1].named_parameters())


@pytest.mark.parametrize("normalize_before", [False, True])
def test_self_attention_block_equals_attention_written_out(normalize_before):
    torch.manual_seed(0)
    block = AttentionEncoderBlock(16, 4, 32, dropout=0.0, normalize_before=normalize_before).double()
    x = torch.randn(B, T, 16, dtype=torch.float64, requires_grad=True)
    mask = _mask([11, 6, 1])
    out = block(x, mask)
    assert out.left_extent is None and torch.equal(out.width_penalty, torch.zeros(B, dtype=torch.float64))

    sub = block.attention_sublayer
    attended = sub.post(x, _reference_attention(block.attention, sub.pre(x), mask))
    expected = block.ffn_sublayer.post(attended, block.ffn(block.ffn_sublayer.pre(attended)))
    real = mask.bool()
    torch.testing.assert_close(out.hidden_states[real], expected[real])
    weights = torch.randn_like(expected)
    grads = torch.autograd.grad((out.hidden_states[real] * weights[real]).sum(), [x, *block.parameters()])
    expected_grads = torch.autograd.grad((expected[real] * weights[real]).sum(), [x, *block.parameters()])
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)


def test_padded_batch_equals_each_sequence_alone():
    model = _hybrid()
    ids, lengths = random_ids(B, T), [11, 7, 3]
    batch = model(ids, attention_mask=_mask(lengths)).last_hidden_state
    for i, n in enumerate(lengths):
        alone = model(ids[i : i + 1, :n], attention_mask=torch.ones(1, n, dtype=torch.long)).last_hidden_state
        torch.testing.assert_close(batch[i, :n], alone[0])


def test_widths_and_width_penalty_come_from_the_conv_layers_only():
    model = _hybrid()
    out = model(random_ids(B, T), attention_mask=_mask([11, 7, 3]), output_widths=True)
    assert len(out.widths) == 2 and out.layer_width_penalty.shape == (B, 3)
    assert torch.equal(out.layer_width_penalty[:, 1], torch.zeros(B))
    torch.testing.assert_close(out.width_penalty, out.layer_width_penalty[:, [0, 2]].mean(1))
    # The kernel size of each conv layer's extents: layer 2 has K = 5, at most 2 taps a side.
    assert out.widths[1].max() <= 2


def test_a_hybrid_classifier_trains_every_weight_and_checkpoints_its_gradients():
    model = _hybrid(DynConvForSequenceClassification, num_labels=2).train()
    ids, mask, labels = random_ids(B, T), _mask([11, 7, 3]), torch.tensor([0, 1, 1])
    model(ids, attention_mask=mask, labels=labels).loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    # Every weight but the token types (none given, and no default segment) learns, the attention's too.
    assert set(grads) == {n for n, _ in model.named_parameters() if "token_type" not in n}
    assert all(g.abs().sum() > 0 for g in grads.values())
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model(ids, attention_mask=mask, labels=labels).loss.backward()
    for name, grad in grads.items():
        torch.testing.assert_close(model.get_parameter(name).grad, grad, msg=name)


def test_save_load_and_export_give_the_same_logits(tmp_path):
    model = _hybrid(DynConvForSequenceClassification, num_labels=2)
    ids, mask = random_ids(B, T), _mask([11, 7, 3])
    expected = model(ids, attention_mask=mask).logits
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["attention_layers"] == [1]
    loaded = DynConvForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(ids, attention_mask=mask).logits, expected, atol=0, rtol=0)
    exported = torch.export.export(model, (ids,), kwargs={"attention_mask": mask})
    ids2, mask2 = random_ids(B, T, seed=5), _mask([4, 11, 9])
    torch.testing.assert_close(exported.module()(ids2, attention_mask=mask2).logits, model(ids2, attention_mask=mask2).logits)


def test_a_hybrid_loads_with_trust_remote_code_and_runs_in_a_pipeline(tokenizer_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = _hybrid(DynConvForSequenceClassification, num_labels=2, vocab_size=len(tokenizer),
                    pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(tmp_path / "checkpoint")
    tokenizer.save_pretrained(tmp_path / "checkpoint")
    ids = random_ids(2, 7, vocab_size=len(tokenizer))
    torch.save(ids, tmp_path / "ids.pt")
    out = run_without_dynconv_nlp(
        """
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained("checkpoint", trust_remote_code=True).eval()
        assert type(model.model.encoder.layers[1]).__name__ == "DynConvAttentionEncoderLayer"
        torch.save(model(torch.load("ids.pt")).logits, "out.pt")
        print("ok")
        """,
        tmp_path,
    )
    assert out.strip().endswith("ok")
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), model(ids).logits)

    classify = pipeline("text-classification", model=str(tmp_path / "checkpoint"))
    pair = classify({"text": "the cat sat", "text_pair": "on the mat"})
    assert pair["label"] in model.config.id2label.values() and 0 < pair["score"] <= 1
