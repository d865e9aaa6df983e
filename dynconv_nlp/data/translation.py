"""Parallel text for translation: a Hub dataset, JSON lines, or plain line-aligned files (gzip allowed).

Every source gives one shape, transformers' translation layout: a ``translation`` column of
``{source_lang: text, target_lang: text}``. Plain files follow fairseq's naming: a prefix
``PATH`` means ``PATH.{source_lang}`` and ``PATH.{target_lang}`` (or the same with ``.gz``), e.g.
``../shared/data/multi30k/train`` for ``train.de.gz`` and ``train.en.gz``.
"""

import gzip
import json
from pathlib import Path

import datasets

from ..errors import UsageError
from .files import python_codec

JSON_SUFFIXES = (".json", ".jsonl")


def load_translation_split(path: str, source_lang: str, target_lang: str, encoding: str = "utf-8") -> datasets.Dataset:
    """One split from a JSON-lines file or a plain-text prefix, as a ``translation`` column."""
    if Path(path).suffix.lower() in JSON_SUFFIXES:
        pairs = _read_json_lines(Path(path), source_lang, target_lang, encoding)
    else:
        pairs = _read_parallel_files(path, source_lang, target_lang, encoding)
    return datasets.Dataset.from_dict({"translation": [{source_lang: s, target_lang: t} for s, t in pairs]})


def _read_json_lines(path: Path, source_lang: str, target_lang: str, encoding: str) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(read_lines(path, encoding), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"{path}:{number} is not valid JSON ({error.msg})") from None
        translation = row.get("translation") if isinstance(row, dict) else None
        if not isinstance(translation, dict):
            raise UsageError(f'{path}:{number} has no "translation" object, e.g. {{"translation": {{"de": ..., "en": ...}}}}')
        missing = [lang for lang in (source_lang, target_lang) if not isinstance(translation.get(lang), str)]
        if missing:
            raise UsageError(
                f"{path}:{number} has no {' or '.join(repr(m) for m in missing)} text (it has {', '.join(translation)}): "
                "check --source_lang and --target_lang"
            )
        pairs.append(_pair(translation[source_lang], translation[target_lang], f"{path}:{number}"))
    if not pairs:
        raise UsageError(f"{path} has no sentence pairs")
    return pairs


def _read_parallel_files(prefix: str, source_lang: str, target_lang: str, encoding: str) -> list[tuple[str, str]]:
    source_path, target_path = (_find(prefix, lang) for lang in (source_lang, target_lang))
    sources, targets = read_lines(source_path, encoding), read_lines(target_path, encoding)
    if len(sources) != len(targets):
        raise UsageError(
            f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}: parallel files must align line by line"
        )
    if not sources:
        raise UsageError(f"{source_path} and {target_path} are empty")
    return [_pair(s, t, f"line {n} of {source_path} / {target_path}") for n, (s, t) in enumerate(zip(sources, targets), 1)]


def _find(prefix: str, lang: str) -> Path:
    for candidate in (Path(f"{prefix}.{lang}"), Path(f"{prefix}.{lang}.gz")):
        if candidate.is_file():
            return candidate
    raise UsageError(
        f"found neither {prefix}.{lang} nor {prefix}.{lang}.gz: pass a JSON-lines file or the prefix of "
        "line-aligned files PREFIX.SRC and PREFIX.TGT (gzip allowed)"
    )


def read_lines(path: Path, encoding: str) -> list[str]:
    """The file's lines without line ends; gzip is read by its magic bytes, not its name."""
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise UsageError(f"{path} is a damaged gzip file ({error})") from None
    try:
        text = data.decode(python_codec(encoding))
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path} is not {encoding} (byte 0x{data[error.start]:02x} at offset {error.start}): "
            "pass --encoding with the file's encoding, e.g. --encoding latin-1"
        ) from None
    return text.splitlines()


def _pair(source: str, target: str, where: str) -> tuple[str, str]:
    source, target = source.strip(), target.strip()
    if not source or not target:
        raise UsageError(f"{where}: the {'source' if not source else 'target'} sentence is empty; remove the pair")
    return source, target
