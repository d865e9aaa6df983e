"""Offline GLUE metrics with scikit-learn and scipy (``evaluate.load("glue")`` needs the Hub).

CoLA: Matthews correlation. MRPC, QQP: accuracy and F1 of the positive class. STS-B: Pearson and
Spearman correlation. Every other task: accuracy. Values are fractions in [0, 1] (correlations in
[-1, 1]), as the GLUE metric of ``evaluate`` reports them.
"""

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


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


def glue_metrics(metric: str, predictions, references) -> dict[str, float]:
    """Score ``predictions`` [N] (class ids, or scores for regression) against ``references`` [N].

    ``metric`` names the kind: ``"matthews"`` (CoLA), ``"accuracy_f1"`` (MRPC, QQP), ``"correlation"``
    (STS-B), ``"accuracy"`` (the rest), ``"accuracy_macro_f1"`` (a classification task of the user's own
    with more than two labels) or ``"regression"`` (a regression task of the user's own).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if len(references) == 0:
        raise ValueError("no examples to score")
    if metric == "matthews":
        return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
    if metric == "accuracy_f1":
        return accuracy_and_f1(predictions, references)
    if metric == "correlation":
        return correlations(predictions, references)
    if metric == "accuracy":
        return {"accuracy": float(accuracy_score(references, predictions))}
    if metric == "accuracy_macro_f1":
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "macro_f1": float(f1_score(references, predictions, average="macro")),
        }
    if metric == "regression":
        errors = np.asarray(predictions, dtype=np.float64) - np.asarray(references, dtype=np.float64)
        return {"mse": float(np.mean(errors**2))} | correlations(predictions, references)
    raise ValueError(f"unknown metric {metric!r}")
