import pytest
import torch
from dynconv_testing import CORPUS, random_ids, tiny_config

from dynconv_nlp import DynConvForConditionalGeneration, DynConvForSequenceClassification, hub, plotting
from dynconv_nlp.analysis import (
    LayerWidths,
    collect_extents,
    encode_batches,
    extents_by_token_class,
    format_widths,
    head_means,
    kept_taps,
    mean_extents,
    mean_width_fractions,
    summarize_extents,
    summarize_widths,
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


# The width summaries: one computation, which hub (model cards, training logs) and plotting use.


def test_the_hub_and_the_plots_use_the_summaries_from_here():
    assert hub.summarize_widths is summarize_widths and hub.format_widths is format_widths
    assert hub.LayerWidths is LayerWidths
    assert plotting.collect_extents is collect_extents and plotting.head_means is head_means


def test_width_summary_by_hand():
    # Two layers (K = 3 and 9), three tokens, two heads: left and right extents in taps.
    extents = [
        torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]]),
        torch.tensor([[[4.0, 4.0], [4.0, 2.0]], [[2.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]]),
    ]
    summary = summarize_extents(extents, [3, 9])
    assert summary == [LayerWidths("encoder", 0, 3, 4 / 6, 3 / 6), LayerWidths("encoder", 1, 9, 10 / 6, 9 / 6)]
    assert [w.mean_fraction for w in summary] == pytest.approx([(4 + 3) / 6 / 2, (10 + 9) / 6 / 8])
    assert mean_width_fractions(extents, [3, 9]) == [w.mean_fraction for w in summary]
    assert mean_extents(extents[1][:1]) == (4.0, 3.0)
    assert format_widths(summary).splitlines()[2:] == [
        "| encoder 0 | 3 | 0.67 | 0.50 | 58% |",
        "| encoder 1 | 9 | 1.67 | 1.50 | 40% |",
    ]
    left, right = head_means(extents)
    torch.testing.assert_close(left, torch.tensor([[0.5, 0.5, 1.0], [4.0, 1.0, 0.0]]))
    torch.testing.assert_close(right, torch.tensor([[0.5, 1.0, 0.0], [3.0, 1.0, 0.5]]))


def test_width_summary_of_a_padded_batch_is_over_its_real_tokens_only():
    torch.manual_seed(0)
    model = DynConvForSequenceClassification(tiny_config(num_labels=2)).train()
    ids = random_ids(3, 12)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    mask[2, 9:] = 0
    summary = summarize_widths(model, ids, mask)
    assert model.training  # back in training mode; the widths were taken in eval mode

    # By hand: every sequence alone, unpadded, and the mean over its tokens and heads.
    model.eval()
    with torch.no_grad():
        alone = [model(ids[i : i + 1, :length], output_widths=True).widths for i, length in enumerate([12, 5, 9])]
    for layer, kernel_size in enumerate([3, 9]):
        real = torch.cat([widths[layer][0] for widths in alone]).double()  # [26 tokens, H, 2]
        assert len(real) == 26 and summary[layer].kernel_size == kernel_size
        assert summary[layer].mean_left == pytest.approx(real[..., 0].mean().item(), rel=1e-5)
        assert summary[layer].mean_right == pytest.approx(real[..., 1].mean().item(), rel=1e-5)
        assert summary[layer].mean_fraction == pytest.approx(real.sum(-1).mean().item() / (kernel_size - 1), rel=1e-5)

    # Other ids under the padding change nothing; the same batch without its mask does.
    other = ids.clone()
    other[mask == 0] = 7
    assert summarize_widths(model, other, mask) == summary
    assert summarize_widths(model, ids) != summary
    assert summarize_widths(model, ids) == summarize_widths(model, ids, torch.ones_like(ids))


def test_width_summary_of_an_encoder_decoder_is_its_encoders():
    torch.manual_seed(0)
    model = DynConvForConditionalGeneration(tiny_config())
    ids = random_ids(2, 6)
    summary = summarize_widths(model, ids)
    extents, _ = collect_extents(model, [{"input_ids": ids}])
    assert summary == summarize_extents(extents, [3, 9])
    assert len(extents[0]) == 12


def test_width_summary_needs_a_dynconv_model_and_real_tokens():
    from transformers import BertConfig, BertModel

    bert = BertModel(BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2))
    with pytest.raises(ValueError, match="only DynConv models have learned widths, got a BertModel"):
        summarize_widths(bert, random_ids(1, 4))
    with pytest.raises(ValueError, match="no real tokens"):
        summarize_extents([torch.zeros(0, 4, 2)], [3])
