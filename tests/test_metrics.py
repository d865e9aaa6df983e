"""Offline GLUE metrics against values worked out by hand."""

import math

import pytest

from dynconv_nlp.metrics import glue_metrics


def test_accuracy_and_f1():
    # 3 of 4 right; positives: predicted {0, 1}, true {0, 2}: precision 1/2, recall 1/2.
    assert glue_metrics("accuracy_f1", [1, 1, 0, 0], [1, 0, 1, 0]) == {"accuracy": 0.5, "f1": 0.5}
    assert glue_metrics("accuracy", [2, 1, 0, 0], [2, 1, 0, 1]) == {"accuracy": 0.75}


def test_matthews_correlation():
    assert glue_metrics("matthews", [1, 0, 1, 0], [1, 0, 1, 0]) == {"matthews_correlation": 1.0}
    assert glue_metrics("matthews", [0, 1, 0, 1], [1, 0, 1, 0]) == {"matthews_correlation": -1.0}


def test_correlations_of_a_regression():
    metrics = glue_metrics("correlation", [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 9.0])
    assert metrics["spearmanr"] == pytest.approx(1.0) and 0.98 < metrics["pearson"] < 1.0
    own = glue_metrics("regression", [1.0, 2.0], [1.0, 4.0])
    assert own["mse"] == 2.0 and math.isclose(own["pearson"], 1.0)


def test_macro_f1_for_many_labels():
    metrics = glue_metrics("accuracy_macro_f1", [0, 1, 2, 2], [0, 1, 2, 1])
    assert metrics["accuracy"] == 0.75 and metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_bad_calls():
    with pytest.raises(ValueError, match="3 predictions for 2 references"):
        glue_metrics("accuracy", [0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="unknown metric"):
        glue_metrics("bleu", [0], [0])
