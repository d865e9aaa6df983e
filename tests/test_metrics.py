"""The metrics: values worked out by hand, the evaluate modules against the formulas they replace
(scikit-learn, scipy, sacreBLEU called directly), offline loading, and the modules in an installed package."""

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from dynconv_nlp.metrics import METRICS, glue_metrics, load_metric, metric_path, translation_metrics

ROOT = Path(__file__).resolve().parents[1]
KINDS = ["matthews", "accuracy_f1", "correlation", "accuracy", "accuracy_macro_f1", "regression"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}


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
    with pytest.raises(ValueError, match="no examples to score"):
        glue_metrics("accuracy", [], [])
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        glue_metrics("bleu", [0], [0])
    with pytest.raises(ValueError, match="unknown metric module 'rouge'"):
        load_metric("rouge")


# The formulas of dynconv_nlp.metrics before it became evaluate modules, written out again.
def _correlations(p, r):
    p, r = np.asarray(p, dtype=np.float64), np.asarray(r, dtype=np.float64)
    return {"pearson": float(pearsonr(p, r)[0]), "spearmanr": float(spearmanr(p, r)[0])}


FORMULAS = {
    "matthews": lambda p, r: {"matthews_correlation": float(matthews_corrcoef(r, p))},
    "accuracy_f1": lambda p, r: {"accuracy": float(accuracy_score(r, p)), "f1": float(f1_score(r, p))},
    "correlation": _correlations,
    "accuracy": lambda p, r: {"accuracy": float(accuracy_score(r, p))},
    "accuracy_macro_f1": lambda p, r: {
        "accuracy": float(accuracy_score(r, p)), "macro_f1": float(f1_score(r, p, average="macro"))
    },
    "regression": lambda p, r: {
        "mse": float(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(r, dtype=np.float64)) ** 2))
    } | _correlations(p, r),
}


def _random_inputs(kind, seed, n=157):
    """What run_glue hands over: int64 class ids, or float32 scores for regression."""
    rng = np.random.default_rng(seed)
    if kind in ("correlation", "regression"):
        references = rng.uniform(0, 5, n).astype(np.float32)
        return (references + rng.normal(0, 1.5, n)).astype(np.float32), references
    labels = 3 if kind in ("accuracy", "accuracy_macro_f1") else 2
    references = rng.integers(0, labels, n)
    return np.where(rng.random(n) < 0.7, references, rng.integers(0, labels, n)), references


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_glue_module_gives_the_old_formulas_values_exactly(kind, seed):
    predictions, references = _random_inputs(kind, seed)
    expected = FORMULAS[kind](predictions, references)
    assert glue_metrics(kind, predictions, references) == expected
    assert glue_metrics(kind, predictions.tolist(), references.tolist()) == expected  # lists, as benchmark_quality
    # Batch by batch, through the evaluate API.
    metric = load_metric("glue", config_name=kind)
    for start in range(0, len(predictions), 40):
        metric.add_batch(predictions=predictions[start : start + 40], references=references[start : start + 40])
    assert metric.compute() == expected
    assert metric.compute(predictions=predictions, references=references) == expected  # reusable


def test_glue_module_takes_task_names_as_evaluate_glue_does():
    import evaluate

    tasks = {"cola": "matthews", "mrpc": "accuracy_f1", "qqp": "accuracy_f1", "stsb": "correlation"}
    tasks |= dict.fromkeys(["sst2", "mnli", "mnli_mismatched", "qnli", "rte", "wnli"], "accuracy")
    for task, kind in tasks.items():
        metric = load_metric("glue", config_name=task)
        assert isinstance(metric, evaluate.EvaluationModule) and metric.name == "glue"
        predictions, references = _random_inputs(kind, 5)
        assert metric.compute(predictions=predictions, references=references) == FORMULAS[kind](predictions, references)


SENTENCES = "the a cat dog sat ran on under mat house big small , . ! Haus Katze über 猫 在 垫子 上".split()


def _random_corpus(seed, n=60):
    rng = np.random.default_rng(seed)
    sentence = lambda: " ".join(rng.choice(SENTENCES, rng.integers(1, 12)))  # noqa: E731
    references = [sentence() for _ in range(n)]
    hypotheses = [r if rng.random() < 0.3 else sentence() for r in references]
    return hypotheses, references


def _score(hypotheses, references, target_lang):
    """run_translation's score() before the module."""
    bleu, chrf = sacrebleu.metrics.BLEU(trg_lang=target_lang), sacrebleu.metrics.CHRF()
    bleu_score, chrf_score = bleu.corpus_score(hypotheses, [references]), chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


@pytest.mark.parametrize("target_lang", ["de", "en", "zh", ""])
@pytest.mark.parametrize("seed", [0, 1])
def test_translation_module_matches_sacrebleu(target_lang, seed):
    hypotheses, references = _random_corpus(seed)
    expected = _score(hypotheses, references, target_lang)
    assert set(expected) == {"bleu", "chrf", "bleu_signature", "chrf_signature"}
    assert translation_metrics(hypotheses, references, target_lang) == expected
    metric = load_metric("translation")
    for start in range(0, len(hypotheses), 25):
        metric.add_batch(predictions=hypotheses[start : start + 25], references=references[start : start + 25])
    assert metric.compute(trg_lang=target_lang) == expected


def test_translation_signatures_name_the_tokenizer_of_the_target_language():
    hypotheses, references = _random_corpus(3)
    assert "tok:zh" in translation_metrics(hypotheses, references, "zh")["bleu_signature"]
    assert "tok:13a" in translation_metrics(hypotheses, references, "de")["bleu_signature"]
    assert translation_metrics(["the big cat sat on the mat"], ["the big cat sat on the mat"], "en")["bleu"] == 100.0


def test_translation_module_takes_several_references_per_hypothesis():
    hypotheses, first = _random_corpus(4)
    second = _random_corpus(5)[1]
    metric = load_metric("translation")
    both = [list(pair) for pair in zip(first, second)]
    result = metric.compute(predictions=hypotheses, references=both, trg_lang="de")
    bleu, chrf = sacrebleu.metrics.BLEU(trg_lang="de"), sacrebleu.metrics.CHRF()
    assert result["bleu"] == round(bleu.corpus_score(hypotheses, [first, second]).score, 2)
    assert result["chrf"] == round(chrf.corpus_score(hypotheses, [first, second]).score, 2)
    assert "nrefs:2" in result["bleu_signature"] and "nrefs:2" in result["chrf_signature"]
    with pytest.raises(ValueError, match="same number"):
        metric.compute(predictions=["a", "b"], references=[["a", "x"], ["b"]])


def test_translation_bad_calls():
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        translation_metrics(["a", "b"], ["a"], "de")
    with pytest.raises(ValueError, match="no hypotheses to score"):
        translation_metrics([], [], "de")


# Loads both modules, scores, and says where they came from; no network: sockets refuse, offline variables set.
OFFLINE_SCRIPT = """
import json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("this test forbids network access")

socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse

import dynconv_nlp
from dynconv_nlp.metrics import glue_metrics, load_metric, metric_path, translation_metrics

glue = load_metric("glue", config_name="mrpc")
glue.add_batch(predictions=[1, 1], references=[1, 0])
glue.add_batch(predictions=[0, 0], references=[1, 0])
print(json.dumps({
    "package": dynconv_nlp.__file__,
    "paths": [metric_path("glue"), metric_path("translation")],
    "glue": glue.compute(),
    "stsb": glue_metrics("stsb", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0]),
    "translation": translation_metrics(["the cat sat on the mat"], ["the cat sat on the mat"], "de"),
}))
"""


def _run_offline(tmp_path, cwd, pythonpath=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHONPATH"))}
    env |= OFFLINE | {"HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"}  # an empty cache
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["glue"] == {"accuracy": 0.5, "f1": 0.5}
    assert result["stsb"] == FORMULAS["correlation"]([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert result["translation"] == _score(["the cat sat on the mat"], ["the cat sat on the mat"], "de")
    return result


def test_modules_load_offline_without_network(tmp_path):
    result = _run_offline(tmp_path, cwd=ROOT)
    assert result["paths"] == [metric_path(name) for name in METRICS]


def test_an_installed_package_ships_the_modules(tmp_path):
    """Build a wheel of a copy of the checkout, install it into a folder, and load the modules from there."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "dynconv_nlp", source / "dynconv_nlp", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "wheels"),
                          str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "wheels").glob("dynconv_nlp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"dynconv_nlp/metrics/glue/glue.py", "dynconv_nlp/metrics/translation/translation.py"} <= names
    site = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--no-index", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=600)
    result = _run_offline(tmp_path, cwd=tmp_path, pythonpath=site)
    assert Path(result["package"]).is_relative_to(site)
    assert all(Path(path).is_relative_to(site / "dynconv_nlp" / "metrics") for path in result["paths"])
