"""Train adaptive, deploy fixed (dynconv_nlp.freezing): per-head windows from learned extents, a fixed-width
model with no width projection, equal outputs where every token's extents fill its head's window."""

import pytest
import torch

from dynconv_nlp import DynConvConfig, DynConvForSequenceClassification, DynConvForConditionalGeneration, DynConvModel
from dynconv_nlp.layers import DynamicConv1d

# Per layer, per head [left, right] in taps; K = 9 (at most 4 each side).
WINDOWS = [[[1, 3], [2, 0]], [[4, 4], [0, 1]]]


def small_config(**settings) -> DynConvConfig:
    return DynConvConfig(**{"vocab_size": 40, "hidden_size": 16, "num_attention_heads": 2, "encoder_layers": 2,
                            "intermediate_size": 32, "kernel_size": 9, "extent_activation": "clamp", "width_floor": 0.0,
                            "weight_dropout": 0.0, "hidden_dropout_prob": 0.0, "conv_backend": "unfold"} | settings)


def set_extents(model, windows):
    """Every token's extents become ``windows`` exactly: zero width weights, the clamp's bias = extent / max."""
    convs = [m for m in model.modules() if isinstance(m, DynamicConv1d)]
    for conv, heads in zip(convs, windows):
        conv.width_proj.weight.data.zero_()
        conv.width_proj.bias.data.copy_(torch.tensor([[l / conv.max_left, r / conv.max_right] for l, r in heads]).flatten())


def batches():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 40, (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # a padded row
    return [{"input_ids": ids, "attention_mask": mask}]


@pytest.mark.parametrize("model_class", [DynConvModel, DynConvForSequenceClassification])
def test_frozen_model_equals_the_adaptive_one_where_extents_fill_the_windows(model_class, tmp_path):
    torch.manual_seed(0)
    adaptive = model_class(small_config()).eval()
    set_extents(adaptive, WINDOWS)
    frozen = adaptive.freeze_widths(batches())
    assert frozen.config.width_mode == "fixed" and frozen.config.head_windows == WINDOWS
    assert frozen.config.kernel_size == [2 + 3 + 1, 4 + 4 + 1]  # each layer's kernel: its widest window
    assert not any("width_proj" in name for name in frozen.state_dict())
    (batch,) = batches()
    real = batch["attention_mask"].bool()

    def outputs(model):
        out = model(**batch)
        return out.last_hidden_state[real] if model_class is DynConvModel else out.logits

    with torch.no_grad():
        expected = outputs(adaptive)
        torch.testing.assert_close(outputs(frozen), expected)
        frozen.save_pretrained(tmp_path)
        torch.testing.assert_close(outputs(model_class.from_pretrained(tmp_path).eval()), expected)


def test_windows_are_a_quantile_of_the_extents_rounded_up_to_whole_taps():
    torch.manual_seed(0)
    adaptive = DynConvModel(small_config(ramp=1.0)).eval()
    set_extents(adaptive, [[[1, 3], [2, 0]], [[4, 4], [0, 1]]])
    conv = adaptive.encoder.layers[0].conv
    conv.width_proj.bias.data += 0.3 / 4  # extents 1.3, 3.3, 2.3, 0.3: taps up to 2, 4 (the max), 3, 1 are on
    frozen = adaptive.freeze_widths(batches(), quantile=1.0)
    assert frozen.config.head_windows[0] == [[2, 4], [3, 1]]
    # The frozen layer's taps cover every tap the adaptive layer had on for any token.
    assert frozen.config.kernel_size[0] == 3 + 4 + 1


def test_a_translation_model_freezes_and_decodes():
    torch.manual_seed(0)
    config = small_config(decoder_layers=2, decoder_kernel_size=5, is_encoder_decoder=True)
    model = DynConvForConditionalGeneration(config).eval()
    (batch,) = batches()
    frozen = model.freeze_widths([batch | {"labels": batch["input_ids"][:, :6]}])
    assert frozen.config.decoder_head_windows is not None
    assert all(r == 0 for layer in frozen.config.decoder_head_windows for _, r in layer)  # causal: left only
    out = frozen.generate(batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=5, do_sample=False)
    assert out.shape[0] == 3


def test_bad_input():
    with pytest.raises(ValueError, match="needs an adaptive-width model"):
        DynConvModel(small_config(width_mode="fixed", extent_activation=None, width_floor=None)).freeze_widths(batches())
    with pytest.raises(ValueError, match="quantile must be in"):
        DynConvModel(small_config()).freeze_widths(batches(), quantile=0)
    with pytest.raises(ValueError, match="kernel size must be 6"):
        small_config(width_mode="fixed", extent_activation=None, width_floor=None, head_windows=[WINDOWS[0], None])
