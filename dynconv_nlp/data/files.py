"""The user's own data: CSV, TSV or JSON-lines files with text column(s) and a label column.

Files are read with ``datasets`` (``--train_file``, ``--validation_file``, ``--test_file``); every
problem a user can fix (a missing or empty file, a wrong encoding, a missing column, labels the
training data never showed) is a :class:`UsageError` with one line that says how.
"""

from pathlib import Path

import datasets

from ..errors import UsageError

FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}
TEXT_COLUMN_CHOICES = (("sentence1", "sentence2"), ("sentence",), ("text",), ("question", "sentence"))


def read_text_file(path: Path, encoding: str = "utf-8") -> str:
    """The whole file as text; a missing, empty or wrongly-encoded file is a :class:`UsageError`."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    data = path.read_bytes()
    if not data.strip():
        raise UsageError(f"{path} is empty")
    try:
        return data.decode(python_codec(encoding))
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path} is not {encoding} (byte 0x{data[error.start]:02x} at offset {error.start}): "
            "pass --encoding with the file's encoding, e.g. --encoding latin-1 or --encoding cp1252"
        ) from None
    except LookupError:
        raise UsageError(f"unknown --encoding {encoding!r}; e.g. utf-8, latin-1, cp1252") from None


def load_data_files(files: dict[str, str | None], encoding: str = "utf-8") -> datasets.DatasetDict:
    """``{"train": path, "validation": path, "test": path or None}`` -> a DatasetDict of the given files."""
    files = {split: Path(path) for split, path in files.items() if path is not None}
    for split, path in files.items():
        if path.suffix.lower() not in FORMATS:
            raise UsageError(f"--{split}_file {path} must end in .csv, .tsv, .json or .jsonl")
        # Decode once ourselves, before reading any: pandas' and pyarrow's decoding errors do not say
        # which option fixes them.
        text = read_text_file(path, encoding)
        if FORMATS[path.suffix.lower()] == "csv" and len([line for line in text.splitlines() if line.strip()]) < 2:
            raise UsageError(f"{path} has no examples, only a header")
    bars_were_on = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # the bars would bury the one-line messages below
    try:
        splits = {split: _read(path, encoding) for split, path in files.items()}
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    return datasets.DatasetDict(splits)


def _read(path: Path, encoding: str) -> datasets.Dataset:
    suffix = path.suffix.lower()
    try:
        if FORMATS[suffix] == "json":
            dataset = datasets.Dataset.from_json(str(path), encoding=encoding)
        else:
            # TSV as GLUE writes it: no quote handling, a " inside a sentence is text.
            options = {"delimiter": "\t", "quoting": 3} if suffix == ".tsv" else {}
            dataset = datasets.Dataset.from_csv(str(path), encoding=python_codec(encoding), keep_default_na=False, **options)
    except Exception as error:  # pandas and pyarrow parse errors: name the file, keep their first line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"could not read {path} as {suffix[1:].upper()}: {reason}") from None
    if len(dataset) == 0:
        raise UsageError(f"{path} has no examples")
    return dataset


def python_codec(encoding: str) -> str:
    """utf-8-sig also reads UTF-8 files that start with a byte-order mark (GLUE's MRPC does)."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def choose_text_columns(columns: list[str], text_columns: list[str] | None, label_column: str, path: str) -> list[str]:
    """The one or two text columns: the given ones, else a usual pair or single, else the only text-like ones."""
    if text_columns:
        missing = [c for c in text_columns if c not in columns]
        if missing:
            raise UsageError(f"{path} has no column {', '.join(missing)} (its columns: {', '.join(columns)})")
        if len(text_columns) > 2:
            raise UsageError(f"--text_columns takes one or two columns, got {len(text_columns)}")
        return list(text_columns)
    for choice in TEXT_COLUMN_CHOICES:
        if all(c in columns for c in choice):
            return list(choice)
    others = [c for c in columns if c not in (label_column, "idx", "id", "index")]
    if 1 <= len(others) <= 2:
        return others
    raise UsageError(
        f"cannot tell which columns of {path} hold the text ({', '.join(columns)}): pass --text_columns NAME [NAME]"
    )


def check_label_column(dataset: datasets.Dataset, label_column: str, path: str) -> None:
    if label_column not in dataset.column_names:
        raise UsageError(
            f"{path} has no label column {label_column!r} (its columns: {', '.join(dataset.column_names)}): "
            "pass --label_column NAME"
        )


def is_regression_column(dataset: datasets.Dataset, label_column: str) -> bool:
    """Float labels mean regression, as in transformers' run_glue."""
    feature = dataset.features[label_column]
    return isinstance(feature, datasets.Value) and feature.dtype.startswith("float")


def check_cells(dataset: datasets.Dataset, columns: list[str], path: str) -> None:
    """Every text and label cell must be filled, and texts must be strings."""
    for column in columns:
        for row, value in enumerate(dataset[column], start=1):
            if value is None or (isinstance(value, str) and not value.strip()):
                raise UsageError(f"{path}: example {row} has no {column!r}; fill it in or remove the example")
            if isinstance(value, float) and value != value:  # NaN
                raise UsageError(f"{path}: example {row} has no {column!r} (NaN); fill it in or remove the example")


def check_text_is_text(dataset: datasets.Dataset, columns: list[str], path: str) -> None:
    for column in columns:
        feature = dataset.features[column]
        if not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
            raise UsageError(f"{path}: column {column!r} holds {feature}, not text; pick text columns with --text_columns")


def label_names_of(train: datasets.Dataset, label_column: str) -> list[str]:
    """The training labels' distinct values as strings, sorted (numbers by value)."""
    values = set(train[label_column])
    if all(isinstance(v, (int, float)) for v in values):
        return [_name(v) for v in sorted(values)]
    return sorted(str(v) for v in values)


def _name(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def labels_to_ids(dataset: datasets.Dataset, label_column: str, label2id: dict[str, int], path: str) -> datasets.Dataset:
    """Replace the label column by ``label`` ids; labels absent from ``label2id`` are a :class:`UsageError`."""
    names = [_name(v) if isinstance(v, (int, float)) else str(v) for v in dataset[label_column]]
    unseen = sorted(set(names) - set(label2id))
    if unseen:
        shown = ", ".join(repr(v) for v in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
        raise UsageError(
            f"{path} has labels the training data never shows ({shown}; training labels: {', '.join(label2id)}): "
            "fix the labels or add examples of them to --train_file"
        )
    ids = [label2id[name] for name in names]
    dataset = dataset.remove_columns(label_column) if label_column in dataset.column_names else dataset
    if "label" in dataset.column_names:
        dataset = dataset.remove_columns("label")
    return dataset.add_column("label", ids)
