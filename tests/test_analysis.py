import pytest
import torch
from dynconv_testing import CORPUS, tiny_config

from dynconv_nlp import DynConvForSequenceClassification
from dynconv_nlp.analysis import (
    collect_extents,
    encode_batches,
    extents_by_token_class,
    kept_taps,
    mean_width_fractions,
    token_classes,
    word_class,
)


@pytest.mark.parametrize(
    "word, expected",
    [
        (",", "punctuation"),
        ("...", "punctuation"),
        ("n't", "negation"),
        ("isn't", "negation"),
        ("Never", "negation"),
        ("but", "contrast"),
        ("The", "function"),
        ("'s", "function"),
        ("film", "content"),
        ("42", "content"),
    ],
)
def test_word_classes(word, expected):
    assert word_class(word) == expected


def test_every_token_gets_its_words_class_in_collect_order(model, tokenizer):
    texts = [["the film is n't good , but fine", "a cat"], ["never dull", "the end"]]
    classes = token_classes(tokenizer, texts, max_length=32)
    _, token_ids = collect_extents(model, encode_batches(tokenizer, texts, max_length=32))
    assert len(classes) == len(token_ids)

    def tokens_of(words):  # each word's tokens (BERT's pre-tokenizer splits "n't" into n ' t) get its class
        return [c for word, c in words for _ in tokenizer(word, add_special_tokens=False)["input_ids"]]

    first = tokens_of([("the", "function"), ("film", "content"), ("is", "function"), ("n't", "negation")])
    first += tokens_of([("good", "content"), (",", "punctuation"), ("but", "contrast"), ("fine", "content")])
    second = tokens_of([("never", "negation"), ("dull", "content")])
    assert first.count("negation") > 1
    assert classes[: len(first) + len(second) + 3] == ["special", *first, "special", *second, "special"]


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
    summary = extents_by_token_class(extents, ["special", "function", "content"])
    assert summary == {
        "special": dict(tokens=1, left=[1.0, 4.0], right=[1.0, 4.0]),
        "function": dict(tokens=1, left=[0.0, 2.0], right=[1.0, 2.0]),
        "content": dict(tokens=1, left=[1.0, 0.0], right=[0.0, 0.0]),
    }


def test_classes_must_match_the_tokens():
    with pytest.raises(ValueError, match="2 token classes for 3 tokens"):
        extents_by_token_class([torch.zeros(3, 1, 2)], ["special", "content"])


def test_kept_taps_are_what_trimming_keeps(model, tokenizer):
    batches = encode_batches(tokenizer, [CORPUS], max_length=16, batch_size=4)
    layers = [m for m in model.modules() if hasattr(m, "active_taps")]
    with torch.no_grad():
        layers[1].width_proj.bias.fill_(-20.0)  # layer 1's extents ~0: only the centre tap (and the ramp's) stay
    taps = kept_taps(model, batches)
    assert taps[0] <= 3 and taps[1] < 9
    extents, _ = collect_extents(model, batches[:1])
    expected = layers[1].active_taps(
        extents[1][None, ..., 0], extents[1][None, ..., 1]
    )  # the one-batch answer, from the extents of its real tokens
    assert kept_taps(model, batches[:1])[1] == len(expected)
    assert not any("active_taps" in vars(layer) for layer in layers)  # the method is back


def test_a_fixed_width_model_keeps_every_tap(tokenizer):
    fixed = DynConvForSequenceClassification(tiny_config(vocab_size=len(tokenizer), width_mode="fixed"))
    assert kept_taps(fixed, encode_batches(tokenizer, [CORPUS[:2]], max_length=16)) == [3.0, 9.0]
