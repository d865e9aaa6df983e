"""Raw text for masked-language-model pretraining: local files, GLUE training splits, or a Hub dataset.

Every source becomes one ``text`` column. Plain text files (``.txt``, gzip allowed, read by magic
bytes) hold one text a line; CSV, TSV and JSON-lines files name their column with ``text_column``
(or have one called ``text`` or ``sentence``). ``glue_tasks`` reads only the *training* split of
each task from ``glue_dir``, both sentences of pair tasks, so that pretraining never sees the dev
or test text it is later evaluated on.
"""

from pathlib import Path

import datasets

from ..errors import UsageError
from .files import FORMATS, load_data_files
from .glue import get_task, load_glue
from .translation import read_lines

TEXT_COLUMNS = ("text", "sentence")


def load_text_file(path: str | Path, text_column: str | None = None, encoding: str = "utf-8") -> datasets.Dataset:
    """One local file as a ``text`` column, empty texts dropped."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in FORMATS:
        dataset = load_data_files({"train": str(path)}, encoding)["train"]
        column = text_column or next((c for c in TEXT_COLUMNS if c in dataset.column_names), None)
        if column not in dataset.column_names:
            raise UsageError(
                f"{path} has no column {column or ' or '.join(TEXT_COLUMNS)} (columns: {', '.join(dataset.column_names)}); "
                "name the text with --text_column"
            )
        texts = [str(text) for text in dataset[column] if text is not None]
    else:
        texts = read_lines(path, encoding)
    texts = [text.strip() for text in texts if text.strip()]
    if not texts:
        raise UsageError(f"{path} has no text")
    return datasets.Dataset.from_dict({"text": texts})


def load_glue_training_text(glue_dir: str | Path, task_names: list[str], encoding: str = "utf-8") -> datasets.Dataset:
    """The texts of the training splits of ``task_names`` in a GLUE folder, every sentence of a pair on its own."""
    texts = []
    for name in task_names:
        task = get_task(name)
        splits = load_glue(task, Path(glue_dir), encoding)
        if "train" not in splits:
            raise UsageError(f"--glue_dir {glue_dir} has no training split for {name} (train.tsv); leave the task out")
        for column in task.text_columns:
            texts += [text.strip() for text in splits["train"][column] if text and text.strip()]
    return datasets.Dataset.from_dict({"text": texts})


def load_text_corpus(
    train_files: list[str] | None = None,
    glue_dir: str | None = None,
    glue_tasks: list[str] | None = None,
    validation_file: str | None = None,
    text_column: str | None = None,
    encoding: str = "utf-8",
) -> datasets.DatasetDict:
    """"train" (every local source, concatenated) and, with ``validation_file``, "validation"."""
    parts = [load_text_file(path, text_column, encoding) for path in train_files or []]
    if glue_tasks:
        parts.append(load_glue_training_text(glue_dir, glue_tasks, encoding))
    splits = {"train": datasets.concatenate_datasets(parts)}
    if validation_file:
        splits["validation"] = load_text_file(validation_file, text_column, encoding)
    return datasets.DatasetDict(splits)
