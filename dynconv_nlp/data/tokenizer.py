"""A tokenizer trained on the task's own texts, for models trained from scratch without a Hub tokenizer.

Special tokens ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0-4). For classification (``for_seq2seq=False``)
BERT-style ``[CLS] a [SEP]`` and ``[CLS] a [SEP] b [SEP]`` with token type ids, so fill-mask and pair
tasks work; for translation ``a [SEP]``: ``[SEP]`` ends a sentence (the eos) and ``[CLS]`` starts
the decoder (the bos).

Training is deterministic: the same texts give the same ``tokenizer.json``, byte for byte, in every
process. tokenizers' own trainers do not (huggingface/tokenizers#1794): they count words in a Rust
hash map whose iteration order is seeded at random in every process (neither ``PYTHONHASHSEED`` nor
the number of threads changes it), and

- WordPiece (its trainer is BPE's with the prefix ``##``) gives the ``##x`` tokens their ids in that
  order, and those ids break ties between merges of equal count, so the merges themselves differ.
  Here the trainer never makes a ``##x`` token: every character after a word's first is first
  replaced by a private-use stand-in of its own, numbered in the characters' order, so that the
  trainer's (sorted) alphabet holds both kinds of character; the vocabulary is translated back.
  This is tokenizers' WordPiece training with the ``##x`` ids in character order.
- Unigram sums its EM statistics over the words in that order, on as many threads as there are
  (scores differ in their last bits from run to run, ~1e-14 to 1e-10), gives the characters that EM
  dropped the scores ``m, m + 1e-4, m + 2e-4, ...`` (``m`` the lowest) in hash-set order, and orders
  pieces of equal score by it. Here the scores are rounded to ``UNIGRAM_SCORE_DECIMALS`` decimals,
  those characters share their scores out in character order, and pieces are ordered by score, then
  text. What is left to chance: a score that lies within its run-to-run noise of a rounding boundary
  (on Multi30k at 8000 pieces the differences add up to ~6e-10, a chance of ~1e-4 a training), or a
  pruning decision between pieces whose losses tie to the last bits (none seen on SST-2 or Multi30k).
- Byte-level BPE is deterministic as it is: its initial alphabet is sorted and it has no prefix.
"""

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
KINDS = ("wordpiece", "bpe", "unigram")
UNIGRAM_SCORE_DECIMALS = 5
# The private-use planes 15 and 16 (U+F0000-U+10FFFD): stand-ins for the characters inside words.
_PRIVATE_USE = (range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE))
# What tokenizers' unigram trainer adds, per character, to the lowest score for characters EM dropped.
_UNIGRAM_PENALTY = 0.0001


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    kind: str = "wordpiece",
    lowercase: bool = True,
    for_seq2seq: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a WordPiece, byte-level BPE or unigram vocabulary of at most ``vocab_size`` tokens on ``texts``.

    The same texts (in any order) and arguments give the same tokenizer.
    """
    if kind not in KINDS:
        raise ValueError(f"tokenizer kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "wordpiece":
        tokenizer = _train_wordpiece(texts, vocab_size, lowercase)
    elif kind == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else []))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="[UNK]")
        tokenizer.train_from_iterator(texts, trainer)
        tokenizer = _canonical_unigram(tokenizer)
    else:
        tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else []))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
        tokenizer.train_from_iterator(texts, trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if for_seq2seq:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="$A [SEP]", pair="$A [SEP] $B:1 [SEP]:1", special_tokens=[("[SEP]", sep_id)]
        )
    else:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="[CLS]" if for_seq2seq else None,
        eos_token="[SEP]" if for_seq2seq else None,
        model_input_names=["input_ids", "attention_mask"] if for_seq2seq else ["input_ids", "token_type_ids", "attention_mask"],
    )


def _train_wordpiece(texts: Iterable[str], vocab_size: int, lowercase: bool) -> Tokenizer:
    """tokenizers' WordPiece training (BPE merges, ``##`` inside words), with every id in a fixed order.

    The words are counted here, and every character after a word's first is replaced by a private-use
    stand-in: the BPE trainer (without a prefix) then sees ``##x`` as one more character of its sorted
    alphabet, where tokenizers' WordPiece trainer makes it a token, numbered in hash-map order.
    """
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    normalize, split = tokenizer.normalizer.normalize_str, tokenizer.pre_tokenizer.pre_tokenize_str
    counts = Counter()
    for text in texts:
        counts.update(word for word, _ in split(normalize(text)))
    alphabet = sorted({character for word in counts for character in word})
    inside = sorted({character for word in counts for character in word[1:]})
    used = set(alphabet)
    free = (chr(code) for code in itertools.chain(*_PRIVATE_USE) if chr(code) not in used)
    stand_ins = list(itertools.islice(free, len(inside)))
    if len(stand_ins) < len(inside):
        raise ValueError(f"the texts have {len(alphabet)} distinct characters, too many to train a WordPiece tokenizer")
    to_stand_in = str.maketrans(dict(zip(inside, stand_ins)))
    from_stand_in = str.maketrans(dict(zip(stand_ins, inside)))

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # The whole alphabet, as tokenizers' WordPiece has it: every character also on its own, not only after ##.
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=alphabet)
    words = {word[0] + word[1:].translate(to_stand_in): count for word, count in sorted(counts.items())}
    bpe.train_from_iterator(_repeated(words), trainer)

    def original(token: str) -> str:
        if ord(token[0]) in from_stand_in:  # stand-ins only: a piece inside a word
            return "##" + token.translate(from_stand_in)
        return token[0] + token[1:].translate(from_stand_in)

    vocab = {original(token): i for token, i in bpe.get_vocab(with_added_tokens=False).items()}
    tokenizer.model = models.WordPiece(vocab, unk_token="[UNK]")
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    return tokenizer


def _repeated(counts: dict[str, int], chunk: int = 10_000) -> Iterator[str]:
    """Texts that hold every word as often as it is counted, at most ``chunk`` copies a text."""
    for word, count in counts.items():
        for start in range(0, count, chunk):
            yield " ".join([word] * min(chunk, count - start))


def _canonical_unigram(tokenizer: Tokenizer) -> Tokenizer:
    """The trained unigram model without what the trainer's hash-map order put in it (module docstring).

    Scores are rounded to a grid of ``10 ** -UNIGRAM_SCORE_DECIMALS``. The characters that EM dropped
    and the trainer added back have the lowest score ``m`` and the next ones, a step apart: the single
    characters at ``m``, ``m + step``, ``m + 2 * step``, ... share those scores out in character order.
    The characters at ``m`` that EM kept cannot be told from the re-added one there, and share too.
    """
    state = json.loads(tokenizer.to_str())
    vocab = state["model"]["vocab"]
    specials, pieces = vocab[: len(SPECIAL_TOKENS)], vocab[len(SPECIAL_TOKENS) :]
    if [piece for piece, _ in specials] != SPECIAL_TOKENS:
        raise RuntimeError(f"the unigram trainer did not put {SPECIAL_TOKENS} first: {vocab[:5]}")
    grid = 10**UNIGRAM_SCORE_DECIMALS
    points = [[piece, round(score * grid)] for piece, score in pieces]  # scores in grid steps
    if points:
        step = round(_UNIGRAM_PENALTY * grid)
        single = {}
        for i, (piece, point) in enumerate(points):
            if len(piece) == 1:
                single.setdefault(point, []).append(i)
        lowest = min(point for _, point in points)
        run = [lowest]
        while run[-1] + step in single:
            run.append(run[-1] + step)
        if len(run) > 1 and lowest in single:
            rows = sorted(i for point in run for i in single[point])
            characters = sorted(points[i][0] for i in rows)
            values = sorted(points[i][1] for i in rows)
            for i, character, value in zip(rows, characters, values):
                points[i] = [character, value]
    points.sort(key=lambda p: (-p[1], p[0]))
    state["model"]["vocab"] = specials + [[piece, point / grid] for piece, point in points]
    return Tokenizer.from_str(json.dumps(state))
