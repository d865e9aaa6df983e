"""Width heatmaps: the PNG, the data behind it, the model's mode, and the errors."""

import sys

import pytest
import torch
from dynconv_testing import tiny_config
from transformers import BertConfig, BertForSequenceClassification

from dynconv_nlp import DynConvForConditionalGeneration, DynConvModel
from dynconv_nlp.plotting import plot_widths, width_grid

matplotlib = pytest.importorskip("matplotlib")
matplotlib_image = pytest.importorskip("matplotlib.image")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXTS = ["the cat sat on the mat", "this film was a delight from start to end", "das ist ein kleines haus"]


def _read_png(path):
    """The image [height, width, channels] as matplotlib reads it back."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    return matplotlib_image.imread(path)


@pytest.mark.parametrize("texts", [TEXTS[:1], TEXTS], ids=["one text", "three texts"])
def test_writes_a_png_with_a_row_per_text(model, tokenizer, tmp_path, texts):
    path = plot_widths(model, tokenizer, texts, tmp_path / "plots" / "widths.png")
    assert path == tmp_path / "plots" / "widths.png"
    height, width, _ = _read_png(path).shape
    assert 300 < width < 3000 and 150 < height < 3000


def test_more_texts_make_a_taller_figure(model, tokenizer, tmp_path):
    one = _read_png(plot_widths(model, tokenizer, TEXTS[:1], tmp_path / "one.png")).shape[0]
    three = _read_png(plot_widths(model, tokenizer, TEXTS, tmp_path / "three.png")).shape[0]
    assert three > 2 * one


@pytest.mark.parametrize("training", [True, False])
def test_restores_the_training_mode(model, tokenizer, tmp_path, training):
    model.train(training)
    plot_widths(model, tokenizer, TEXTS[:1], tmp_path / "widths.png")
    assert model.training is training
    assert all(module.training is training for module in model.modules())


def test_grid_is_the_models_widths_averaged_over_heads(model, tokenizer):
    tokens, left, right = width_grid(model, tokenizer, TEXTS[1], max_tokens=40)
    encoding = tokenizer(TEXTS[1], return_tensors="pt")
    assert tokens == tokenizer.convert_ids_to_tokens(encoding["input_ids"][0].tolist())
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    with torch.no_grad():
        widths = model.eval()(**encoding, output_widths=True).widths  # L x [1, T, H, 2]
    assert left.shape == right.shape == (2, len(tokens))
    torch.testing.assert_close(left, torch.stack([w[0, :, :, 0].mean(-1) for w in widths]))
    torch.testing.assert_close(right, torch.stack([w[0, :, :, 1].mean(-1) for w in widths]))
    # Centred kernels of K = 3 and 9 taps reach at most K // 2 taps to each side.
    for grid in (left, right):
        assert float(grid.min()) >= 0 and float(grid[0].max()) <= 1 and float(grid[1].max()) <= 4


def test_grid_truncates_to_max_tokens_keeping_special_tokens(model, tokenizer):
    tokens, left, right = width_grid(model, tokenizer, TEXTS[1], max_tokens=5)
    assert len(tokens) == 5 and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert left.shape == right.shape == (2, 5)


def test_base_model_and_encoder_decoder(tokenizer, tmp_path):
    torch.manual_seed(0)
    # A config each, as a user would make them.
    for model_class in (DynConvModel, DynConvForConditionalGeneration):
        model = model_class(tiny_config(vocab_size=len(tokenizer)))
        tokens, left, _ = width_grid(model, tokenizer, TEXTS[0])
        assert left.shape == (2, len(tokens))
        assert plot_widths(model, tokenizer, TEXTS[:2], tmp_path / "widths.png").is_file()


def test_a_model_without_widths_is_refused(tokenizer, tmp_path):
    bert = BertForSequenceClassification(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=2,
        )
    )
    with pytest.raises(ValueError, match="only DynConv models"):
        plot_widths(bert, tokenizer, TEXTS[:1], tmp_path / "widths.png")
    with pytest.raises(ValueError, match="only DynConv models"):
        width_grid(bert, tokenizer, TEXTS[0])
    assert not (tmp_path / "widths.png").exists()


def test_no_texts_is_refused(model, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="at least one text"):
        plot_widths(model, tokenizer, [], tmp_path / "widths.png")


def test_missing_matplotlib_says_how_to_install_it(model, tokenizer, tmp_path, monkeypatch):
    # None in sys.modules makes `import matplotlib...` raise ImportError, as if it were not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'dynconv_nlp\[plots\]'"):
        plot_widths(model, tokenizer, TEXTS[:1], tmp_path / "widths.png")


def test_does_not_touch_pyplot(model, tokenizer, tmp_path):
    backend = matplotlib.get_backend()
    plot_widths(model, tokenizer, TEXTS[:1], tmp_path / "widths.png")
    assert matplotlib.get_backend() == backend
    assert "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_model_on_a_gpu(model, tokenizer, tmp_path):
    model.cuda()
    tokens, left, _ = width_grid(model, tokenizer, TEXTS[0])
    assert left.device.type == "cpu" and left.shape == (2, len(tokens))
    assert plot_widths(model, tokenizer, TEXTS[:2], tmp_path / "widths.png").is_file()
