"""Text-classification data from any source, in one shape: text column(s), ``label`` ids or scores, ``idx``.

Sources: a GLUE task (from the Hub or a ``--glue_dir``), the generated ``negation_scope`` task, or the
user's own files. Labels of the user's files are mapped to ids in the sorted order of the training
labels; validation and test labels must be among them.
"""

from dataclasses import dataclass
from pathlib import Path

import datasets

from ..errors import UsageError
from .files import (
    check_cells,
    check_label_column,
    check_text_is_text,
    choose_text_columns,
    is_regression_column,
    label_names_of,
    labels_to_ids,
    load_data_files,
)
from .glue import GlueTask, get_task, load_glue


@dataclass
class ClassificationData:
    """``splits`` holds "train", the evaluation split(s) and, when present, the test split(s)."""

    splits: datasets.DatasetDict
    text_columns: list[str]
    label_names: list[str] | None  # None for regression
    eval_splits: list[str]
    test_splits: list[str]
    metric: str  # a kind known to dynconv_nlp.metrics.glue_metrics
    main_metric: str
    task: GlueTask | None = None  # None for the user's own files

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_names)


def load_classification_data(
    task_name: str | None = None,
    glue_dir: str | None = None,
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
    text_columns: list[str] | None = None,
    label_column: str = "label",
    encoding: str = "utf-8",
) -> ClassificationData:
    if task_name and train_file:
        raise UsageError("pass either --task_name or --train_file, not both")
    if task_name:
        return _task_data(get_task(task_name), glue_dir, encoding)
    if glue_dir:
        raise UsageError("--glue_dir needs --task_name, the task to read from it")
    if not train_file or not validation_file:
        raise UsageError("pass --task_name (a GLUE task, or negation_scope) or both --train_file and --validation_file")
    return _file_data(train_file, validation_file, test_file, text_columns, label_column, encoding)


def _task_data(task: GlueTask, glue_dir: str | None, encoding: str) -> ClassificationData:
    splits = load_glue(task, Path(glue_dir) if glue_dir else None, encoding)
    needed = ["train"] + task.validation_splits
    missing = [split for split in needed if split not in splits]
    if missing:
        raise UsageError(f"the data of task {task.name} lacks the split(s) {', '.join(missing)} (found {', '.join(splits)})")
    return ClassificationData(
        splits=splits,
        text_columns=list(task.text_columns),
        label_names=None if task.is_regression else list(task.label_names),
        eval_splits=task.validation_splits,
        test_splits=[split for split in task.prediction_splits if split in splits],
        metric=task.metric,
        main_metric=task.main_metric,
        task=task,
    )


def _file_data(train_file, validation_file, test_file, text_columns, label_column, encoding) -> ClassificationData:
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    splits = load_data_files(files, encoding)
    train = splits["train"]
    check_label_column(train, label_column, train_file)
    columns = choose_text_columns(train.column_names, text_columns, label_column, train_file)
    for split, path in files.items():
        if path is not None and split != "train":
            choose_text_columns(splits[split].column_names, columns, label_column, path)
    check_label_column(splits["validation"], label_column, validation_file)
    has_test_labels = test_file is not None and label_column in splits["test"].column_names
    for split, path in files.items():
        if path is not None:
            check_text_is_text(splits[split], columns, path)
            labelled = split != "test" or has_test_labels
            check_cells(splits[split], columns + ([label_column] if labelled else []), path)

    if is_regression_column(train, label_column):
        label_names = None
        for split, data in splits.items():
            if label_column in data.column_names:
                if label_column != "label":
                    data = data.remove_columns([c for c in ["label"] if c in data.column_names])
                    data = data.rename_column(label_column, "label")
                splits[split] = data.cast_column("label", datasets.Value("float32"))
        metric, main_metric = "regression", "pearson"
    else:
        label_names = label_names_of(train, label_column)
        label2id = {name: i for i, name in enumerate(label_names)}
        for split, path in files.items():
            if path is not None and (split != "test" or has_test_labels):
                splits[split] = labels_to_ids(splits[split], label_column, label2id, path)
        binary = len(label_names) == 2
        metric, main_metric = ("accuracy_f1", "accuracy") if binary else ("accuracy_macro_f1", "accuracy")
    splits = {split: data if "idx" in data.column_names else data.add_column("idx", list(range(len(data))))
              for split, data in splits.items()}
    return ClassificationData(
        splits=datasets.DatasetDict(splits),
        text_columns=columns,
        label_names=label_names,
        eval_splits=["validation"],
        test_splits=["test"] if test_file else [],
        metric=metric,
        main_metric=main_metric,
    )
