"""What the studies' results tables share: scores as mean ± std over seeds, the majority-class line,
and the GLUE dev set a trained model is timed on."""

import functools
import statistics
from pathlib import Path

import yaml
from transformers import AutoTokenizer

from dynconv_nlp.analysis import encode_batches
from dynconv_nlp.benchmarking.runs import MAIN_SCORE, ROOT
from dynconv_nlp.data.classification import load_classification_data
from dynconv_nlp.metrics import glue_metrics


def mean_std(values: list[float], scale: float = 1.0) -> str:
    """``"81.2 ± 0.4 (3)"``: the mean and sample std of ``values`` x ``scale``, with their count."""
    if not values:
        return "-"
    mean = statistics.mean(values) * scale
    if len(values) == 1:
        return f"{mean:.1f} (1)"
    return f"{mean:.1f} ± {statistics.stdev(values) * scale:.1f} ({len(values)})"


def score_rows(by: dict, params: dict[str, int], models: list[str], tasks: list[str], key: str):
    """Table rows of ``key`` (x100, mean ± std over seeds) per model and task, and each model's average
    over the tasks' means (None where a task has no run). ``by`` maps (task, model) to records."""
    rows, averages = [], {}
    for model in models:
        cells, means = [], []
        for task in tasks:
            scores = [r[key] for r in by.get((task, model), [])]
            cells.append(mean_std(scores, 100))
            means.append(statistics.mean(scores) if scores else None)
        averages[model] = statistics.mean(means) if None not in means and means else None
        average = "-" if averages[model] is None else f"{100 * averages[model]:.1f}"
        rows.append(f"| {model} | {params[model] / 1e6:.2f}M | " + " | ".join(cells) + f" | {average} |")
    return rows, averages


@functools.cache
def majority_class_score(glue_dir: Path, task: str) -> float:
    """The task's main dev score of a model that ignores its input and always answers the train set's
    majority class (STS-B: a constant, whose correlation is undefined, counted as 0). Cached: the
    tables are rebuilt after every run, the data does not change.

    From scratch the small tasks learn little, so this is the line a score has to clear to mean anything.
    """
    data = load_classification_data(task, str(glue_dir))
    if data.is_regression:
        return 0.0
    references = data.splits[data.eval_splits[0]]["label"]
    majority = statistics.mode(data.splits["train"]["label"])
    metrics = glue_metrics(data.metric, [majority] * len(references), references)
    return statistics.mean(metrics[name] for name in MAIN_SCORE[task])


def dev_batches(run_dir: Path, glue_dir: Path, task: str) -> list[dict]:
    """The task's dev set, tokenized by the run's tokenizer at the task's max length, as padded batches."""
    data = load_classification_data(task, str(glue_dir))
    split = data.splits[data.eval_splits[0]]
    max_length = yaml.safe_load((ROOT / f"configs/glue/{task}.yaml").read_text())["max_length"]
    texts = [split[column] for column in data.text_columns]
    return encode_batches(AutoTokenizer.from_pretrained(run_dir), texts, max_length)
