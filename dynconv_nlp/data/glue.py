"""The GLUE tasks: their inputs, labels, metrics and file layouts, and readers for them.

A task's data comes from the Hub (``nyu-mll/glue``, through ``datasets``) or from a folder in the
original GLUE TSV layout (``--glue_dir``), with its quirks: CoLA's train and dev files have no
header, MRPC's header starts with a byte-order mark, and sentences hold stray ``"`` that a CSV
reader would take for quotes. Both give the same columns: the Hub's text column names,
``label`` (a class id, or a float score for STS-B) and ``idx``.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

import datasets

from ..errors import UsageError
from .files import read_text_file
from .synthetic import LABEL_NAMES as NEGATION_SCOPE_LABELS
from .synthetic import negation_scope_splits

HUB_DATASET = "nyu-mll/glue"


@dataclass(frozen=True)
class TsvLayout:
    """Where the inputs are in a GLUE TSV file: column indices, and whether row 1 is a header."""

    text_columns: tuple[int, ...]
    label_column: int | None  # None for test files; -1 is the last column
    header: bool = True


@dataclass(frozen=True)
class GlueTask:
    """One task: ``text_columns`` are the Hub's names; ``label_names`` is None for regression (STS-B)."""

    name: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...] | None
    metric: str  # a kind known to dynconv_nlp.metrics.glue_metrics
    main_metric: str  # the one that picks the best epoch
    folder: str = ""  # the task's folder in a GLUE download, and its name in a submission
    train_layout: TsvLayout | None = None
    test_layout: TsvLayout | None = None
    # Evaluation and test splits and their file names; MNLI has matched and mismatched ones.
    eval_splits: dict[str, str] | None = None
    test_splits: dict[str, str] | None = None
    submission_names: dict[str, str] | None = None  # test split -> file name in a GLUE submission
    generated: bool = False  # made by dynconv_nlp itself: no download, no files

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_names)

    @property
    def validation_splits(self) -> list[str]:
        return list(self.eval_splits or {"validation": "dev.tsv"})

    @property
    def prediction_splits(self) -> list[str]:
        return list(self.test_splits or {"test": "test.tsv"})

    def submission_name(self, split: str) -> str:
        return (self.submission_names or {}).get(split, f"{self.folder}.tsv")


def _pair(first: str, second: str, text: tuple[int, int], label: int, test: tuple[int, int]) -> dict:
    return dict(text_columns=(first, second), train_layout=TsvLayout(text, label), test_layout=TsvLayout(test, None))


NLI = ("entailment", "not_entailment")
GLUE_TASKS = {
    task.name: task
    for task in [
        GlueTask(
            "cola", ("sentence",), ("unacceptable", "acceptable"), "matthews", "matthews_correlation", "CoLA",
            train_layout=TsvLayout((3,), 1, header=False), test_layout=TsvLayout((1,), None),
        ),
        GlueTask(
            "sst2", ("sentence",), ("negative", "positive"), "accuracy", "accuracy", "SST-2",
            train_layout=TsvLayout((0,), 1), test_layout=TsvLayout((1,), None),
        ),
        GlueTask(
            "mrpc", label_names=("not_equivalent", "equivalent"), metric="accuracy_f1", main_metric="f1",
            folder="MRPC", **_pair("sentence1", "sentence2", (3, 4), 0, (3, 4)),
        ),
        GlueTask(
            "qqp", label_names=("not_duplicate", "duplicate"), metric="accuracy_f1", main_metric="f1", folder="QQP",
            **_pair("question1", "question2", (3, 4), 5, (1, 2)),
        ),
        GlueTask(
            "stsb", label_names=None, metric="correlation", main_metric="pearson", folder="STS-B",
            **_pair("sentence1", "sentence2", (7, 8), 9, (7, 8)),
        ),
        GlueTask(
            "mnli", label_names=("entailment", "neutral", "contradiction"), metric="accuracy", main_metric="accuracy",
            folder="MNLI", **_pair("premise", "hypothesis", (8, 9), -1, (8, 9)),
            eval_splits={"validation_matched": "dev_matched.tsv", "validation_mismatched": "dev_mismatched.tsv"},
            test_splits={"test_matched": "test_matched.tsv", "test_mismatched": "test_mismatched.tsv"},
            submission_names={"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
        ),
        GlueTask(
            "qnli", label_names=NLI, metric="accuracy", main_metric="accuracy", folder="QNLI",
            **_pair("question", "sentence", (1, 2), 3, (1, 2)),
        ),
        GlueTask(
            "rte", label_names=NLI, metric="accuracy", main_metric="accuracy", folder="RTE",
            **_pair("sentence1", "sentence2", (1, 2), 3, (1, 2)),
        ),
        GlueTask(
            "wnli", label_names=NLI[::-1], metric="accuracy", main_metric="accuracy", folder="WNLI",
            **_pair("sentence1", "sentence2", (1, 2), 3, (1, 2)),
        ),
        # Not GLUE: a task dynconv_nlp generates, whose labels need context of varying width.
        GlueTask(
            "negation_scope", ("sentence",), tuple(NEGATION_SCOPE_LABELS), "accuracy", "accuracy", "negation_scope",
            generated=True,
        ),
    ]
}


def get_task(name: str) -> GlueTask:
    if name.lower() not in GLUE_TASKS:
        raise UsageError(f"unknown --task_name {name!r}: choose one of {', '.join(GLUE_TASKS)}")
    return GLUE_TASKS[name.lower()]


def load_glue(task: GlueTask, glue_dir: Path | None = None, encoding: str = "utf-8") -> datasets.DatasetDict:
    """The task's splits: from ``glue_dir`` when given, generated for built-in tasks, else from the Hub.

    Splits missing from ``glue_dir`` are left out (the caller checks that the ones it needs exist).
    """
    if task.generated:
        return datasets.DatasetDict(
            {split: datasets.Dataset.from_dict(columns | {"idx": list(range(len(columns["label"])))})
             for split, columns in negation_scope_splits().items()}
        )
    if glue_dir is None:
        return _load_from_hub(task)
    folder = Path(glue_dir) / task.folder
    if not folder.is_dir():
        raise UsageError(f"--glue_dir {glue_dir} has no {task.folder}/ folder for task {task.name}")
    files = {"train": "train.tsv"} | (task.eval_splits or {"validation": "dev.tsv"}) | (task.test_splits or {"test": "test.tsv"})
    splits = {}
    for split, name in files.items():
        path = folder / name
        if path.is_file():
            layout = task.test_layout if split.startswith("test") else task.train_layout
            splits[split] = read_glue_tsv(task, path, layout, encoding)
    return datasets.DatasetDict(splits)


def _load_from_hub(task: GlueTask) -> datasets.DatasetDict:
    try:
        return datasets.load_dataset(HUB_DATASET, task.name)
    except Exception as error:  # offline, or the Hub refused: one line, and the local way
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(
            f"could not load {HUB_DATASET}/{task.name} from the Hub ({reason}); "
            "to read local GLUE files pass --glue_dir DIR (the folder that holds SST-2/, CoLA/, ...)"
        ) from None


def read_glue_tsv(task: GlueTask, path: Path, layout: TsvLayout, encoding: str = "utf-8") -> datasets.Dataset:
    """One GLUE TSV file as columns ``task.text_columns + [label] + [idx]``; test files get label -1."""
    text = read_text_file(path, encoding)
    # No quote handling: GLUE sentences hold unbalanced " that are part of the text.
    rows = list(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    if layout.header:
        rows = rows[1:]
    if not rows:
        raise UsageError(f"{path} has no examples")
    needed = max(layout.text_columns + ((layout.label_column,) if layout.label_column not in (None, -1) else ()))
    columns = {name: [] for name in task.text_columns} | {"label": [], "idx": []}
    for line_number, row in enumerate(rows, start=2 if layout.header else 1):
        if len(row) <= needed:
            raise UsageError(
                f"{path}:{line_number} has {len(row)} tab-separated fields, {task.folder} needs at least {needed + 1}"
            )
        for name, index in zip(task.text_columns, layout.text_columns):
            columns[name].append(row[index])
        columns["label"].append(-1 if layout.label_column is None else _label(task, row[layout.label_column], path, line_number))
        columns["idx"].append(len(columns["idx"]))
    features = datasets.Features(
        {name: datasets.Value("string") for name in task.text_columns}
        | {"label": datasets.Value("float32" if task.is_regression else "int64"), "idx": datasets.Value("int64")}
    )
    return datasets.Dataset.from_dict(columns, features=features)


def _label(task: GlueTask, value: str, path: Path, line_number: int) -> int | float:
    value = value.strip()
    try:
        if task.is_regression:
            return float(value)
        if value.isdigit() and int(value) < task.num_labels:
            return int(value)
        return task.label_names.index(value)
    except ValueError:
        expected = "a number" if task.is_regression else f"one of {', '.join(task.label_names)} or 0..{task.num_labels - 1}"
        raise UsageError(f"{path}:{line_number} has label {value!r}, expected {expected}") from None
