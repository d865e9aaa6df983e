"""GLUE metrics as an ``evaluate`` module that ships with dynconv_nlp and loads offline by its path.

``evaluate.load("glue")`` fetches its script from the Hub; this one lies in the installed package:
``dynconv_nlp.metrics.load_metric("glue", config_name="sst2")`` (or ``evaluate.load(<this folder>,
config_name=...)``). The script imports only evaluate, datasets, numpy, scipy and scikit-learn, as
``evaluate`` copies it alone into its modules cache.
"""

import datasets
import evaluate
import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

_DESCRIPTION = """\
GLUE metrics, computed offline with scikit-learn and scipy. The configuration names either a GLUE
task or the kind of metric (the kinds dynconv_nlp's task descriptions use):

* "matthews" (cola): Matthews correlation.
* "accuracy_f1" (mrpc, qqp): accuracy and F1 of the positive class (label 1).
* "correlation" (stsb): Pearson and Spearman correlation.
* "accuracy" (sst2, mnli, mnli_matched, mnli_mismatched, qnli, rte, wnli, hans): accuracy.
* "accuracy_macro_f1": accuracy and macro-averaged F1 (a classification task with more than two labels).
* "regression": mean squared error, Pearson and Spearman correlation (a regression task of one's own).

Values are fractions in [0, 1] (correlations in [-1, 1]), as the GLUE metric of evaluate reports them.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: predicted class ids (int), or predicted scores (float) for "correlation" and "regression".
    references: the true class ids, or the true scores.
Returns: a dict whose keys depend on the configuration:
    matthews: {"matthews_correlation"}; accuracy_f1: {"accuracy", "f1"}; correlation: {"pearson", "spearmanr"};
    accuracy: {"accuracy"}; accuracy_macro_f1: {"accuracy", "macro_f1"}; regression: {"mse", "pearson", "spearmanr"}.
Examples:
    >>> metric = dynconv_nlp.metrics.load_metric("glue", config_name="mrpc")
    >>> metric.compute(predictions=[1, 1, 0, 0], references=[1, 0, 1, 0])
    {'accuracy': 0.5, 'f1': 0.5}
"""

_CITATION = """\
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""

KINDS = ("matthews", "accuracy_f1", "correlation", "accuracy", "accuracy_macro_f1", "regression")
TASKS = {
    "cola": "matthews",
    "mrpc": "accuracy_f1",
    "qqp": "accuracy_f1",
    "stsb": "correlation",
    **dict.fromkeys(("sst2", "mnli", "mnli_matched", "mnli_mismatched", "qnli", "rte", "wnli", "hans"), "accuracy"),
}
SCORES = ("correlation", "regression")  # kinds whose inputs are real numbers, not class ids


def kind_of(config_name: str) -> str:
    """The kind of metric ``config_name`` (a kind, or a GLUE task) stands for; ``ValueError`` if neither."""
    if config_name in KINDS:
        return config_name
    if config_name in TASKS:
        return TASKS[config_name]
    raise ValueError(
        f"unknown metric {config_name!r}: choose a kind ({', '.join(KINDS)}) or a GLUE task ({', '.join(TASKS)})"
    )


def accuracy_and_f1(predictions, references) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(references, predictions)),
        "f1": float(f1_score(references, predictions)),
    }


def correlations(predictions, references) -> dict[str, float]:
    predictions, references = np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64)
    return {
        "pearson": float(pearsonr(predictions, references)[0]),
        "spearmanr": float(spearmanr(predictions, references)[0]),
    }


def scores(kind: str, predictions, references) -> dict[str, float]:
    """The metrics of ``kind`` for ``predictions`` [N] against ``references`` [N] (``evaluate`` has checked
    that they are as many)."""
    if len(references) == 0:
        raise ValueError("no examples to score")
    if kind == "matthews":
        return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
    if kind == "accuracy_f1":
        return accuracy_and_f1(predictions, references)
    if kind == "correlation":
        return correlations(predictions, references)
    if kind == "accuracy":
        return {"accuracy": float(accuracy_score(references, predictions))}
    if kind == "accuracy_macro_f1":
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "macro_f1": float(f1_score(references, predictions, average="macro")),
        }
    if kind == "regression":
        errors = np.asarray(predictions, dtype=np.float64) - np.asarray(references, dtype=np.float64)
        return {"mse": float(np.mean(errors**2))} | correlations(predictions, references)
    raise ValueError(f"unknown metric {kind!r}")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Glue(evaluate.Metric):
    def _info(self):
        kind = kind_of(self.config_name)
        # float64 keeps float32 and float64 scores exact; class ids are integers.
        value = datasets.Value("float64" if kind in SCORES else "int64")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": value, "references": value}),
            format="numpy",
            homepage="https://gluebenchmark.com/",
            reference_urls=["https://huggingface.co/spaces/evaluate-metric/glue"],
        )

    def _compute(self, predictions, references):
        return scores(kind_of(self.config_name), predictions, references)
