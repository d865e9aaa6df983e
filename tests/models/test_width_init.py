"""config.width_init sets the extents a new model starts with, through every way transformers builds
one; light kernels with adaptive width build, train and reload."""

import pytest
import torch
from dynconv_testing import random_ids, tiny_config
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from dynconv_nlp import (
    DynConvForConditionalGeneration,
    DynConvForSequenceClassification,
    DynConvModel,
)

B, T = 3, 11
ENCODER_KERNELS = DECODER_KERNELS = (3, 9)  # tiny_config's


def _inputs(model) -> dict:
    inputs = {"input_ids": random_ids(B, T)}
    if model.config.is_encoder_decoder:
        inputs["decoder_input_ids"] = random_ids(B, 6, seed=1)
    return inputs


@torch.no_grad()
def _fractions(model) -> torch.Tensor:
    """Every extent the model produces for a random batch, as a fraction of its maximum (one flat tensor)."""
    out = model.eval()(**_inputs(model), output_widths=True)
    fractions = []
    encoder_widths = out.encoder_widths if model.config.is_encoder_decoder else out.widths
    for widths, kernel_size in zip(encoder_widths, ENCODER_KERNELS, strict=True):  # centred: K // 2 each side
        fractions += [widths[..., 0].flatten() / (kernel_size // 2), widths[..., 1].flatten() / (kernel_size // 2)]
    if model.config.is_encoder_decoder:
        for widths, kernel_size in zip(out.decoder_widths, DECODER_KERNELS, strict=True):  # causal: K - 1 to the left
            fractions.append(widths[..., 0].flatten() / (kernel_size - 1))
            assert torch.all(widths[..., 1] == 0)
    return torch.cat(fractions)


def _assert_starts_at(fractions: torch.Tensor, width_init: float):
    # The width projection's small initial weights spread the tokens a little around width_init.
    assert abs(fractions.mean().item() - width_init) < 0.02, fractions.mean()
    assert torch.all((fractions - width_init).abs() < 0.1), (fractions.min(), fractions.max())


@pytest.mark.parametrize("width_init", [0.2, 0.8])
@pytest.mark.parametrize("kernel_type", ["dynamic", "light"])
def test_width_init_sets_the_initial_extents_of_encoder_and_decoder(kernel_type, width_init):
    torch.manual_seed(0)
    model = DynConvForConditionalGeneration(tiny_config(kernel_type=kernel_type, width_init=width_init))
    _assert_starts_at(_fractions(model), width_init)


@pytest.mark.parametrize(
    "auto_class",
    [
        AutoModel,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoModelForMaskedLM,
        AutoModelForSeq2SeqLM,
    ],
)
@pytest.mark.parametrize("kernel_type", ["dynamic", "light"])
def test_width_init_survives_auto_from_config(auto_class, kernel_type):
    torch.manual_seed(0)
    model = auto_class.from_config(tiny_config(kernel_type=kernel_type, width_init=0.85))
    _assert_starts_at(_fractions(model), 0.85)


@pytest.mark.parametrize("kernel_type", ["dynamic", "light"])
def test_a_new_head_on_a_saved_base_model_keeps_its_widths(kernel_type, tmp_path):
    torch.manual_seed(0)
    base = DynConvModel(tiny_config(kernel_type=kernel_type, width_init=0.8)).eval()
    expected = _fractions(base)
    _assert_starts_at(expected, 0.8)
    base.save_pretrained(tmp_path)
    # The classifier is new and gets initialised; the loaded width projections must stay as saved.
    classifier = DynConvForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    torch.testing.assert_close(_fractions(classifier), expected, rtol=0, atol=0)


@pytest.mark.parametrize("kernel_type", ["dynamic", "light"])
def test_a_translation_model_started_from_a_saved_encoder_initialises_its_decoder_widths(kernel_type, tmp_path):
    torch.manual_seed(0)
    base = DynConvModel(tiny_config(kernel_type=kernel_type, width_init=0.3)).eval()
    base.save_pretrained(tmp_path)
    model = DynConvForConditionalGeneration.from_pretrained(tmp_path).eval()
    # The encoder (token embeddings included) is the saved one ...
    ids = random_ids(B, T)
    with torch.no_grad():
        torch.testing.assert_close(
            model.get_encoder()(ids).last_hidden_state, base(ids).last_hidden_state, rtol=0, atol=0
        )
    # ... the decoder is new, and starts at the config's width like a model built from scratch.
    decoder_kernels = len(DECODER_KERNELS)
    fractions = _fractions(model)
    decoder_fractions = fractions[-decoder_kernels * B * 6 * 4 :]  # B x 6 tokens x 4 heads per decoder layer
    _assert_starts_at(decoder_fractions, 0.3)
    _assert_starts_at(fractions, 0.3)


def test_light_kernels_with_adaptive_width_build_train_and_reload(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(kernel_type="light", width_mode="adaptive", num_labels=2, width_penalty_coef=0.1)
    model = DynConvForSequenceClassification(config).train()
    conv = model.model.encoder.layers[1].conv
    assert conv.kernel_type == "light" and conv.width_mode == "adaptive"
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = model(random_ids(B, T), labels=torch.tensor([0, 1, 1])).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, before[name])]
    # Token types: the batch has none, so those embeddings get no gradient.
    assert [name for name in unchanged if "token_type" not in name] == []
    assert not torch.equal(conv.kernel_weight, before["model.encoder.layers.1.conv.kernel_weight"])
    assert not torch.equal(conv.width_proj.bias, before["model.encoder.layers.1.conv.width_proj.bias"])

    model.eval().save_pretrained(tmp_path)
    loaded = DynConvForSequenceClassification.from_pretrained(tmp_path).eval()
    ids = random_ids(B, T, seed=3)
    with torch.no_grad():
        expected, got = model(ids, output_widths=True), loaded(ids, output_widths=True)
    torch.testing.assert_close(got.logits, expected.logits, rtol=0, atol=0)
    for got_widths, expected_widths in zip(got.widths, expected.widths, strict=True):
        torch.testing.assert_close(got_widths, expected_widths, rtol=0, atol=0)
