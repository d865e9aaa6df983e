"""dynconv_nlp's metrics, as ``evaluate`` modules that ship inside the package and load offline.

``evaluate.load("glue")`` and ``evaluate.load("sacrebleu")`` fetch their scripts from the Hub. The
modules here are folders of this package, loaded by their path, so nothing is downloaded:

* ``"glue"``: the GLUE metrics (scikit-learn and scipy); ``config_name`` is a GLUE task
  (``"sst2"``, ``"cola"``, ``"stsb"``...) or a kind of metric (``"matthews"``, ``"accuracy_f1"``,
  ``"correlation"``, ``"accuracy"``, ``"accuracy_macro_f1"``, ``"regression"``).
* ``"translation"``: sacreBLEU's BLEU and chrF with their signatures; ``compute(..., trg_lang="de")``.

Either through the ``evaluate`` API, batch by batch::

    metric = load_metric("glue", config_name="mrpc")
    for predictions, references in batches:
        metric.add_batch(predictions=predictions, references=references)
    metric.compute()  # {"accuracy": ..., "f1": ...}

or in one call: :func:`glue_metrics` and :func:`translation_metrics`.
"""

from functools import cache
from pathlib import Path

METRICS = ("glue", "translation")


def metric_path(name: str) -> str:
    """The folder of the ``evaluate`` module ``name`` (one of :data:`METRICS`), for ``evaluate.load``."""
    if name not in METRICS:
        raise ValueError(f"unknown metric module {name!r}: choose one of {', '.join(METRICS)}")
    return str(Path(__file__).resolve().parent / name)


def load_metric(name: str, config_name: str | None = None, **kwargs):
    """``evaluate.load`` of the module ``name`` that ships with dynconv_nlp: an ``evaluate.EvaluationModule``.

    Keyword arguments go to ``evaluate.load``; ``keep_in_memory`` defaults to True (the inputs stay in
    memory, no cache files), pass ``keep_in_memory=False`` with ``num_process``/``process_id`` to
    gather predictions across processes through files as ``evaluate`` does.
    """
    import evaluate  # imports datasets, pandas and pyarrow: only when a module is wanted

    kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(metric_path(name), config_name=config_name, **kwargs)


@cache
def _loaded(name: str, config_name: str | None):
    return load_metric(name, config_name=config_name)


def glue_metrics(metric: str, predictions, references) -> dict[str, float]:
    """Score ``predictions`` [N] (class ids, or scores for regression) against ``references`` [N].

    ``metric`` names the kind: ``"matthews"`` (CoLA), ``"accuracy_f1"`` (MRPC, QQP), ``"correlation"``
    (STS-B), ``"accuracy"`` (the rest), ``"accuracy_macro_f1"`` (a classification task of the user's own
    with more than two labels) or ``"regression"`` (a regression task of the user's own); a GLUE task
    name works too. Computed by the ``"glue"`` module (loaded once per kind).
    """
    if len(predictions) != len(references):  # evaluate's own message names neither
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    return _loaded("glue", metric).compute(predictions=predictions, references=references)


def translation_metrics(hypotheses, references, target_lang: str = "") -> dict:
    """sacreBLEU BLEU and chrF of detokenized ``hypotheses`` against the raw ``references``, with their signatures.

    ``{"bleu", "chrf"}`` rounded to 2 decimals, ``{"bleu_signature", "chrf_signature"}``; ``target_lang``
    picks BLEU's tokenizer. Computed by the ``"translation"`` module.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if len(references) == 0:  # evaluate picks the references' features by the first example: there is none
        raise ValueError("no hypotheses to score")
    return _loaded("translation", None).compute(predictions=hypotheses, references=references, trg_lang=target_lang)
