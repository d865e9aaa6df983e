"""Translation metrics as an ``evaluate`` module that ships with dynconv_nlp and loads offline by its path.

sacreBLEU's corpus BLEU and chrF with their signatures, from one call:
``dynconv_nlp.metrics.load_metric("translation").compute(predictions=..., references=..., trg_lang="de")``.
The script imports only evaluate, datasets and sacrebleu, as ``evaluate`` copies it alone into its
modules cache.
"""

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """\
sacreBLEU's corpus-level BLEU and chrF of detokenized hypotheses against raw references, each with
its signature (which names the settings, so that scores can be compared across papers). BLEU uses
sacreBLEU's defaults for the target language (its tokenizer: "13a", or "zh", "ja-mecab" or
"ko-mecab" for those languages); chrF uses sacreBLEU's defaults (character 6-grams, beta 2).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: the detokenized hypotheses, one string per source sentence.
    references: one reference string per hypothesis, or a list of references per hypothesis (the
        same number for each).
    trg_lang: the target language code (e.g. "de"), which picks BLEU's tokenizer; "" for the default.
Returns:
    bleu, chrf: the scores in [0, 100], rounded to 2 decimals.
    bleu_signature, chrf_signature: sacreBLEU's signatures of the two metrics.
Examples:
    >>> metric = dynconv_nlp.metrics.load_metric("translation")
    >>> metric.compute(predictions=["the cat sat on the mat"], references=["the cat sat on the mat"], trg_lang="en")
    {'bleu': 100.0, 'chrf': 100.0, 'bleu_signature': 'nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:...', ...}
"""

_CITATION = """\
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    publisher = "Association for Computational Linguistics",
    url = "https://www.aclweb.org/anthology/W18-6319",
    pages = "186--191",
}
"""


def reference_streams(references) -> list[list[str]]:
    """sacreBLEU's layout: one list per reference position, each with a string per hypothesis."""
    if all(isinstance(r, str) for r in references):
        return [list(references)]
    counts = {len(r) for r in references}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"every hypothesis needs the same number (at least 1) of references, got {sorted(counts)}")
    return [list(stream) for stream in zip(*references)]


def scores(predictions, references, trg_lang: str = "") -> dict:
    """BLEU and chrF of ``predictions`` against ``references`` (one string, or a list of them, each;
    ``evaluate`` has checked that there are as many of each, and at least one: it reads the features
    off the first)."""
    predictions, streams = list(predictions), reference_streams(references)
    bleu, chrf = sacrebleu.metrics.BLEU(trg_lang=trg_lang), sacrebleu.metrics.CHRF()
    bleu_score, chrf_score = bleu.corpus_score(predictions, streams), chrf.corpus_score(predictions, streams)
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Translation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # One reference per hypothesis, or a list of them: evaluate picks by the first example.
            features=[
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
                ),
            ],
            homepage="https://github.com/mjpost/sacrebleu",
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://www.aclweb.org/anthology/W18-6319"],
        )

    def _compute(self, predictions, references, trg_lang: str = ""):
        return scores(predictions, references, trg_lang)
