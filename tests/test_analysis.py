import pytest
import torch
from dynconv_testing import CORPUS, tiny_config
from transformers import AutoTokenizer

from dynconv_nlp import DynConvForSequenceClassification
from dynconv_nlp.analysis import (
    collect_extents,
    encode_batches,
    extents_by_token_class,
    mean_width_fractions,
    token_class,
)


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture
def model(tokenizer):
    torch.manual_seed(0)
    return DynConvForSequenceClassification(tiny_config(vocab_size=len(tokenizer), num_labels=2))


@pytest.mark.parametrize(
    "token, expected",
    [
        ("[CLS]", "special"),
        ("##ing", "subword"),
        (",", "punctuation"),
        ("...", "punctuation"),
        ("n't", "negation"),
        ("Never", "negation"),
        ("but", "contrast"),
        ("the", "function"),
        ("Ġthe", "function"),  # byte-level BPE's word start
        ("film", "content"),
        ("42", "content"),
    ],
)
def test_token_classes(token, expected):
    assert token_class(token, {"[CLS]", "[SEP]", "[PAD]"}) == expected


def test_extents_are_those_of_each_text_alone_without_padding(model, tokenizer):
    batches = encode_batches(tokenizer, [CORPUS], max_length=16, batch_size=3)
    assert batches[0]["attention_mask"].min() == 0  # the batches are padded
    extents, token_ids = collect_extents(model, batches)
    assert len(extents) == 2 and extents[0].shape[1:] == (4, 2)

    alone = [tokenizer(text, return_tensors="pt") for text in CORPUS]
    model.eval()
    expected = [model.model(**enc, output_widths=True).widths for enc in alone]
    assert torch.equal(token_ids, torch.cat([enc["input_ids"][0] for enc in alone]))
    for layer in range(2):
        torch.testing.assert_close(extents[layer], torch.cat([w[layer][0] for w in expected]))


def test_collecting_keeps_the_training_mode(model, tokenizer):
    model.train()
    collect_extents(model, encode_batches(tokenizer, [CORPUS[:2]], max_length=16))
    assert model.training


def test_width_fractions_and_token_classes_by_hand(tokenizer):
    # Two layers (K = 3 and 9), three tokens, one head: left and right extents in taps.
    extents = [
        torch.tensor([[[1.0, 1.0]], [[0.0, 1.0]], [[1.0, 0.0]]]),
        torch.tensor([[[4.0, 4.0]], [[2.0, 2.0]], [[0.0, 0.0]]]),
    ]
    assert mean_width_fractions(extents, [3, 9]) == pytest.approx([(2 + 1 + 1) / 3 / 2, (8 + 4 + 0) / 3 / 8])
    ids = torch.tensor(tokenizer.convert_tokens_to_ids(["[CLS]", "the", "cat"]))
    summary = extents_by_token_class(extents, ids, tokenizer)
    assert summary == {
        "special": dict(tokens=1, left=[1.0, 4.0], right=[1.0, 4.0]),
        "function": dict(tokens=1, left=[0.0, 2.0], right=[1.0, 2.0]),
        "content": dict(tokens=1, left=[1.0, 0.0], right=[0.0, 0.0]),
    }
