"""The GLUE task table and the TSV reader, on the real files in ../shared/data/glue."""

from pathlib import Path

import pytest

from dynconv_nlp.data.glue import GLUE_TASKS, get_task, load_glue
from dynconv_nlp.errors import UsageError

GLUE_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "glue"
needs_glue = pytest.mark.skipif(not GLUE_DIR.is_dir(), reason=f"the GLUE files are not at {GLUE_DIR} (../shared/data/glue)")


def test_every_glue_task_is_known_with_its_inputs_and_metric():
    assert set(GLUE_TASKS) == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli", "negation_scope"}
    assert get_task("STSB").is_regression and get_task("stsb").num_labels == 1
    assert get_task("mnli").validation_splits == ["validation_matched", "validation_mismatched"]
    assert get_task("mnli").submission_name("test_mismatched") == "MNLI-mm.tsv"
    assert [get_task(t).metric for t in ("cola", "mrpc", "qqp", "stsb", "rte")] == [
        "matthews", "accuracy_f1", "accuracy_f1", "correlation", "accuracy",
    ]
    assert get_task("qqp").text_columns == ("question1", "question2")


@needs_glue
@pytest.mark.parametrize(
    "task, rows",
    [("sst2", {"train": 67349, "validation": 872, "test": 1821}), ("cola", {"train": 8551, "validation": 1043, "test": 1063}),
     ("mrpc", {"train": 3668, "validation": 408, "test": 1725}), ("stsb", {"train": 5749, "validation": 1500, "test": 1379}),
     ("rte", {"train": 2490, "validation": 277, "test": 3000}), ("wnli", {"train": 635, "validation": 71, "test": 146})],
)
def test_reads_every_row_of_the_real_files(task, rows):
    splits = load_glue(get_task(task), GLUE_DIR)
    assert {split: len(data) for split, data in splits.items()} == rows
    assert set(splits["test"]["label"]) == {-1}


@needs_glue
def test_quirks_headerless_cola_bom_and_stray_quotes_in_mrpc():
    cola = load_glue(get_task("cola"), GLUE_DIR)["train"]
    assert cola[0] == {"sentence": "Our friends won't buy this analysis, let alone the next one we propose.", "label": 1, "idx": 0}
    mrpc = load_glue(get_task("mrpc"), GLUE_DIR)["train"]
    assert mrpc[0]["sentence1"].startswith('Amrozi accused his brother, whom he called "the witness"')
    assert sum('"' in s for s in mrpc["sentence1"]) > 100  # quotes stay text, rows stay rows
    assert set(mrpc["label"]) == {0, 1}
    rte = load_glue(get_task("rte"), GLUE_DIR)["validation"]
    assert set(rte["label"]) == {0, 1}  # "entailment" -> 0, "not_entailment" -> 1
    stsb = load_glue(get_task("stsb"), GLUE_DIR)["validation"]
    assert stsb[0]["label"] == 5.0 and stsb[1]["label"] == 4.75


@needs_glue
def test_a_task_without_training_data_says_so():
    from dynconv_nlp.data.classification import load_classification_data

    with pytest.raises(UsageError, match="lacks the split.s. train"):
        load_classification_data("qnli", str(GLUE_DIR))


def test_unknown_task_and_missing_folder(tmp_path):
    with pytest.raises(UsageError, match="unknown --task_name 'sst-3'"):
        get_task("sst-3")
    with pytest.raises(UsageError, match="has no SST-2/ folder"):
        load_glue(get_task("sst2"), tmp_path)


def test_bad_label_names_file_and_line(tmp_path):
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tmaybe\n")
    with pytest.raises(UsageError, match=r"train.tsv:3 has label 'maybe'"):
        load_glue(get_task("rte"), tmp_path)
