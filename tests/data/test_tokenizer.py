"""Tokenizers trained on the task's own text."""

import pytest
from dynconv_testing import CORPUS
from transformers import AutoTokenizer

from dynconv_nlp.data.tokenizer import SPECIAL_TOKENS, train_tokenizer


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "unigram"])
def test_trained_tokenizer_round_trips_and_encodes_pairs(kind, tmp_path):
    tokenizer = train_tokenizer(CORPUS, vocab_size=300, kind=kind)
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    encoded = tokenizer("the cat sat", "on the mat")
    assert encoded["input_ids"][0] == tokenizer.cls_token_id and encoded["input_ids"][-1] == tokenizer.sep_token_id
    assert encoded["token_type_ids"].count(1) == len(tokenizer("on the mat")["input_ids"]) - 1  # b and its [SEP]
    assert tokenizer.decode(tokenizer("The cat sat")["input_ids"], skip_special_tokens=True).strip() == "the cat sat"
    tokenizer.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("the dog ran")["input_ids"] == tokenizer("the dog ran")["input_ids"]


def test_seq2seq_tokenizer_ends_sentences_with_eos_and_keeps_case():
    tokenizer = train_tokenizer(CORPUS + ["Das Haus ist klein"], vocab_size=300, kind="bpe", lowercase=False, for_seq2seq=True)
    ids = tokenizer("Das Haus")["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id == tokenizer.sep_token_id and tokenizer.cls_token_id not in ids
    assert tokenizer.bos_token_id == tokenizer.cls_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True).strip() == "Das Haus"
    assert "token_type_ids" not in tokenizer("Das Haus")


def test_unknown_kind():
    with pytest.raises(ValueError, match="one of wordpiece, bpe, unigram"):
        train_tokenizer(CORPUS, kind="sentencepiece")
