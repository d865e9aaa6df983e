"""Tokenizers trained on the task's own text."""

import json
import os
import subprocess
import sys

import pytest
from dynconv_testing import CORPUS
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer

from dynconv_nlp.data import tokenizer as tokenizer_module
from dynconv_nlp.data.synthetic import generate_negation_scope
from dynconv_nlp.data.tokenizer import KINDS, SPECIAL_TOKENS, UNIGRAM_SCORE_DECIMALS, train_tokenizer


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


# Trains every kind on the texts in argv[1] and saves each to argv[2]/<kind>. The module is loaded from its
# file, without the package's __init__ (torch and the models): a second or so instead of several.
_TRAIN_IN_A_PROCESS = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("tokenizer", sys.argv[3])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
texts = json.loads(open(sys.argv[1]).read())
for kind in module.KINDS:
    module.train_tokenizer(texts, vocab_size=300, kind=kind).save_pretrained(f"{sys.argv[2]}/{kind}")
"""


def test_training_twice_gives_the_same_files_in_other_processes(tmp_path):
    # Thousands of generated sentences, where counts tie, and some letters beyond ASCII.
    texts = generate_negation_scope(3000, seed=0)["sentence"] + ["a naïve café über señor , a façade"] * 20
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    runs = []
    # Other hash seeds and thread counts; the Rust hash maps in tokenizers' trainers are seeded at random anyway.
    for run, (hash_seed, threads) in enumerate([("1", "1"), ("2", "2")]):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, RAYON_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="true")
        command = [sys.executable, "-c", _TRAIN_IN_A_PROCESS, str(tmp_path / "texts.json"), str(tmp_path / str(run))]
        runs.append(subprocess.Popen(command + [tokenizer_module.__file__], env=env, stderr=subprocess.PIPE, text=True))
    for process in runs:
        assert process.wait(timeout=120) == 0, process.stderr.read()
    files = {kind: [(tmp_path / run / kind / "tokenizer.json").read_bytes() for run in ("0", "1")] for kind in KINDS}
    assert [kind for kind, (first, second) in files.items() if first != second] == []


def test_training_twice_in_one_process_gives_the_same_tokenizer():
    texts = generate_negation_scope(1000, seed=1)["sentence"]
    for kind in KINDS:
        first, second = (train_tokenizer(texts, vocab_size=200, kind=kind).backend_tokenizer.to_str() for _ in range(2))
        assert first == second, kind


def test_wordpiece_training_is_tokenizers_own_where_that_is_deterministic():
    # One distinct word, whose inner letters come in alphabetical order: tokenizers' trainer then gives
    # its ##x tokens the ids that the stand-ins get here, and its merges must come out the same.
    texts = ["Xaabacabcabbcaab xaabacabcabbcaab"] * 3
    reference = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    reference.normalizer = normalizers.BertNormalizer(lowercase=True)
    reference.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    reference.decoder = decoders.WordPiece()
    reference.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=20, special_tokens=SPECIAL_TOKENS))
    ours = train_tokenizer(texts, vocab_size=20).backend_tokenizer
    ours.post_processor = None
    assert json.loads(ours.to_str()) == json.loads(reference.to_str())
    vocab = ours.get_vocab()
    assert {"x", "a", "b", "c", "##a", "##b", "##c"} <= set(vocab) and len(vocab) == 20


def test_unigram_scores_are_rounded_and_ties_ordered_by_text():
    texts = generate_negation_scope(500, seed=2)["sentence"]
    tokenizer = train_tokenizer(texts, vocab_size=150, kind="unigram").backend_tokenizer
    vocab = json.loads(tokenizer.to_str())["model"]["vocab"]
    assert [piece for piece, _ in vocab[:5]] == SPECIAL_TOKENS
    pieces = vocab[5:]
    assert all(score == round(score, UNIGRAM_SCORE_DECIMALS) for _, score in pieces)
    assert pieces == sorted(pieces, key=lambda p: (-p[1], p[0]))


def test_unigram_characters_added_back_after_em_get_their_scores_in_character_order():
    # tokenizers' unigram trainer adds back the characters that EM dropped at the lowest score and the
    # next ones, 1e-4 apart, in hash-set order; "q" has the lowest score from EM itself.
    lowest = -12.3456789

    def trained(order: str) -> Tokenizer:
        vocab = [(token, 0.0) for token in SPECIAL_TOKENS] + [("▁the", -2.5), ("e", -3.25), ("q", lowest)]
        penalty = 0.0
        for character in order:
            vocab.append((character, lowest + penalty))
            penalty += 0.0001
        return Tokenizer(models.Unigram(vocab, unk_id=1))

    first, second = (tokenizer_module._canonical_unigram(trained(order)) for order in ("éüñ", "ñéü"))
    assert first.to_str() == second.to_str()
    assert json.loads(first.to_str())["model"]["vocab"][5:] == [
        ["▁the", -2.5],
        ["e", -3.25],
        ["ü", -12.34548],
        ["ñ", -12.34558],
        ["q", -12.34568],
        ["é", -12.34568],
    ]
