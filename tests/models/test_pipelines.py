"""transformers pipelines on saved DynConv folders, with a tokenizer trained here."""

import pytest
import torch
from dynconv_testing import tiny_config
from transformers import AutoTokenizer, pipeline

from dynconv_nlp import DynConvForConditionalGeneration, DynConvForMaskedLM, DynConvForSequenceClassification


def _save(model_class, tokenizer_dir, path, **config_overrides):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = tiny_config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.cls_token_id,
        **config_overrides,
    )
    model_class(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_text_classification(tokenizer_dir, tmp_path):
    path = _save(
        DynConvForSequenceClassification, tokenizer_dir, tmp_path, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    classify = pipeline("text-classification", model=str(path))
    results = classify(["this film was a delight", "dull and far too long"])
    assert [r["label"] in ("negative", "positive") for r in results] == [True, True]
    assert all(0 < r["score"] <= 1 for r in results)
    pair = classify({"text": "the cat sat", "text_pair": "on the mat"})
    assert pair["label"] in ("negative", "positive")


def test_fill_mask(tokenizer_dir, tmp_path):
    path = _save(DynConvForMaskedLM, tokenizer_dir, tmp_path)
    fill = pipeline("fill-mask", model=str(path))
    results = fill("the cat sat on the [MASK]", top_k=3)
    assert len(results) == 3
    assert all("[MASK]" not in r["sequence"] for r in results)
    assert results[0]["score"] >= results[1]["score"] >= results[2]["score"]


@pytest.mark.parametrize("task", ["text2text-generation", "translation"])
def test_generation_pipelines(task, tokenizer_dir, tmp_path):
    path = _save(DynConvForConditionalGeneration, tokenizer_dir, tmp_path)
    # transformers 5 dropped both tasks; the checkpoint carries them as custom pipelines.
    generate = pipeline(task, model=str(path), trust_remote_code=True)
    texts = ["das ist ein kleines haus", "the house is small"]
    results = generate(texts, max_new_tokens=6, num_beams=2, num_return_sequences=2)
    key = "generated_text" if task == "text2text-generation" else "translation_text"
    assert [len(r) for r in results] == [2, 2]
    # What the pipeline returns is what generate() gives for the same input.
    model, tokenizer = generate.model, generate.tokenizer
    inputs = tokenizer(texts[1], return_tensors="pt")
    expected = tokenizer.batch_decode(
        model.generate(**inputs, max_new_tokens=6, num_beams=2, num_return_sequences=2), skip_special_tokens=True
    )
    assert [r[key] for r in results[1]] == [text.strip() for text in expected]


def test_generation_pipeline_needs_trust_remote_code(tokenizer_dir, tmp_path):
    path = _save(DynConvForConditionalGeneration, tokenizer_dir, tmp_path)
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        pipeline("translation", model=str(path))
