"""Options of transformers' official example scripts, as run_glue.py and run_translation.py read them."""

import datasets
import pytest
from accelerate import Accelerator

from dynconv_nlp.data.classification import load_classification_data
from dynconv_nlp.data.tokenizer import train_tokenizer

PAIRS = [
    {"de": "ein hund läuft über die wiese", "en": "a dog runs across the meadow"},
    {"de": "zwei kinder spielen im park mit einem roten ball", "en": "two children play with a red ball in the park"},
    {"de": "eine frau liest", "en": "a woman reads"},
]


@pytest.fixture(scope="module")
def seq2seq_tokenizer():
    texts = [pair[lang] for pair in PAIRS for lang in ("de", "en")] * 20
    return train_tokenizer(texts, 200, "bpe", lowercase=False, for_seq2seq=True)


def _translation_args(script, tmp_path, *argv):
    return script.parse_args(["--train_file", "t", "--validation_file", "v", "--source_lang", "de", "--target_lang", "en",
                              "--config_name", "c.json", "--output_dir", str(tmp_path / "out"), *argv])


def _encode_pairs(script, args, tokenizer):
    splits = datasets.DatasetDict({name: datasets.Dataset.from_dict({"translation": PAIRS}) for name in ("train", "validation")})
    encoded, _ = script.tokenize(args, splits, tokenizer, Accelerator(cpu=True))
    return encoded


def test_source_prefix_goes_before_every_source(load_script, tmp_path, seq2seq_tokenizer):
    script = load_script("run_translation")
    prefix = "translate German to English: "
    encoded = _encode_pairs(script, _translation_args(script, tmp_path, "--source_prefix", prefix), seq2seq_tokenizer)
    expected = seq2seq_tokenizer([prefix + pair["de"] for pair in PAIRS])["input_ids"]
    assert encoded["train"]["input_ids"] == expected
    plain = _encode_pairs(script, _translation_args(script, tmp_path), seq2seq_tokenizer)
    assert plain["train"]["input_ids"] == seq2seq_tokenizer([pair["de"] for pair in PAIRS])["input_ids"] != expected


def test_val_max_target_length_truncates_validation_targets_and_bounds_generation(load_script, tmp_path, seq2seq_tokenizer):
    script = load_script("run_translation")
    args = _translation_args(script, tmp_path, "--max_target_length", "12", "--val_max_target_length", "4")
    assert args.generation_max_length == 4  # translations are as long as the targets they are scored against
    encoded = _encode_pairs(script, args, seq2seq_tokenizer)
    assert max(map(len, encoded["validation"]["labels"])) == 4
    assert max(map(len, encoded["train"]["labels"])) > 4
    defaults = _translation_args(script, tmp_path, "--max_target_length", "12")
    assert (defaults.val_max_target_length, defaults.generation_max_length) == (12, 12)
    given = _translation_args(script, tmp_path, "--val_max_target_length", "4", "--generation_max_length", "9")
    assert given.generation_max_length == 9


def test_translation_pad_to_max_length_pads_sources_and_ignores_padded_targets(load_script, tmp_path, seq2seq_tokenizer):
    script = load_script("run_translation")
    args = _translation_args(script, tmp_path, "--pad_to_max_length", "--max_source_length", "80",
                             "--max_target_length", "70")
    train = _encode_pairs(script, args, seq2seq_tokenizer)["train"]
    assert {len(ids) for ids in train["input_ids"]} == {80} and {len(ids) for ids in train["labels"]} == {70}
    unpadded = seq2seq_tokenizer(text_target=[pair["en"] for pair in PAIRS])["input_ids"]
    for labels, target in zip(train["labels"], unpadded):
        assert labels[: len(target)] == target and set(labels[len(target):]) == {-100}


def test_glue_pad_to_max_length_gives_every_example_the_same_length(load_script, tmp_path):
    script = load_script("run_glue")
    (tmp_path / "train.csv").write_text("text,label\nshort one,a\na somewhat longer sentence than that,b\n")
    (tmp_path / "val.csv").write_text("text,label\nmiddle sized one here,a\n")
    data = load_classification_data(train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "val.csv"))
    tokenizer = train_tokenizer(["short one", "a somewhat longer sentence than that", "middle sized one here"] * 5, 100)
    argv = ["--train_file", "x", "--config_name", "c.json", "--output_dir", str(tmp_path / "out"), "--max_length", "24"]
    padded = script.tokenize(script.parse_args([*argv, "--pad_to_max_length"]), data, tokenizer, Accelerator(cpu=True))
    assert {len(ids) for split in padded.values() for ids in split["input_ids"]} == {24}
    plain = script.tokenize(script.parse_args(argv), data, tokenizer, Accelerator(cpu=True))
    assert sorted({len(ids) for ids in plain["train"]["input_ids"]}) != [24]


@pytest.mark.parametrize("name", ["run_glue", "run_translation", "run_mlm"])
def test_use_slow_tokenizer_stops_with_the_reason(load_script, tmp_path, capsys, name):
    argv = ["--use_slow_tokenizer", "--config_name", "c.json", "--output_dir", str(tmp_path)]
    if name == "run_translation":
        argv += ["--source_lang", "de", "--target_lang", "en"]
    with pytest.raises(SystemExit) as stop:
        load_script(name).main(argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().endswith(
        "--use_slow_tokenizer: transformers 5 has only the fast (Rust) tokenizers; leave the option out"
    )
