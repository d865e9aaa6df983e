"""Parallel text readers: JSON lines and line-aligned (gzip) files, and their bad inputs."""

import gzip
import json
from pathlib import Path

import pytest

from dynconv_nlp.data.translation import load_translation_split
from dynconv_nlp.errors import UsageError

MULTI30K = Path(__file__).resolve().parents[3] / "shared" / "data" / "multi30k"


def _write(path: Path, lines: list[str], gz: bool = False) -> None:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.skipif(not MULTI30K.is_dir(), reason=f"Multi30k is not at {MULTI30K}")
def test_reads_gzipped_multi30k():
    split = load_translation_split(str(MULTI30K / "val"), "de", "en")
    assert len(split) == 1014
    assert split[0]["translation"]["en"] and split[0]["translation"]["de"]


def test_plain_and_json_lines_give_the_same_pairs(tmp_path):
    _write(tmp_path / "train.de", ["ein Haus", "zwei Hunde"], gz=True)
    (tmp_path / "train.de").rename(tmp_path / "train.de.gz")
    _write(tmp_path / "train.en", ["a house", "two dogs"])
    rows = [{"translation": {"de": "ein Haus", "en": "a house"}}, {"translation": {"de": "zwei Hunde", "en": "two dogs"}}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    plain = load_translation_split(str(tmp_path / "train"), "de", "en")["translation"]
    assert plain == load_translation_split(str(tmp_path / "train.jsonl"), "de", "en")["translation"] == [r["translation"] for r in rows]


def test_files_of_different_lengths(tmp_path):
    _write(tmp_path / "t.de", ["a", "b", "c"])
    _write(tmp_path / "t.en", ["a", "b"])
    with pytest.raises(UsageError, match="t.de has 3 lines but .*t.en has 2: parallel files must align"):
        load_translation_split(str(tmp_path / "t"), "de", "en")


def test_empty_line(tmp_path):
    _write(tmp_path / "t.de", ["a", "", "c"])
    _write(tmp_path / "t.en", ["a", "b", "c"])
    with pytest.raises(UsageError, match="line 2 of .*: the source sentence is empty; remove the pair"):
        load_translation_split(str(tmp_path / "t"), "de", "en")


def test_language_missing_from_a_json_row(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"translation": {"de": "a", "en": "a"}}\n{"translation": {"de": "b", "fr": "b"}}\n')
    with pytest.raises(UsageError, match=r"t.jsonl:2 has no 'en' text \(it has de, fr\): check --source_lang and --target_lang"):
        load_translation_split(str(tmp_path / "t.jsonl"), "de", "en")


def test_unreadable_files(tmp_path):
    (tmp_path / "t.de.gz").write_bytes(b"\x1f\x8b" + b"not really gzip")
    _write(tmp_path / "t.en", ["a"])
    with pytest.raises(UsageError, match="is a damaged gzip file"):
        load_translation_split(str(tmp_path / "t"), "de", "en")
    (tmp_path / "l.de").write_bytes("caf\xe9".encode("latin-1"))
    _write(tmp_path / "l.en", ["cafe"])
    with pytest.raises(UsageError, match="is not utf-8 .*--encoding latin-1"):
        load_translation_split(str(tmp_path / "l"), "de", "en")
    with pytest.raises(UsageError, match="found neither .*missing.de nor .*missing.de.gz"):
        load_translation_split(str(tmp_path / "missing"), "de", "en")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(UsageError, match="bad.jsonl:1 is not valid JSON"):
        load_translation_split(str(tmp_path / "bad.jsonl"), "de", "en")
