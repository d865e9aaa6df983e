"""scripts/run_glue.py end to end: tiny runs on subsets of the real GLUE files, resume, 2 processes, bad input."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForSequenceClassification

from dynconv_testing import launch_two_processes

from dynconv_nlp.data.synthetic import negation_scope_splits

GLUE_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "glue"
needs_glue = pytest.mark.skipif(not GLUE_DIR.is_dir(), reason=f"the GLUE files are not at {GLUE_DIR} (../shared/data/glue)")

# A model small enough for seconds per run: two layers, width 32.
TINY_MODEL = {
    "model_type": "dynconv", "hidden_size": 32, "encoder_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "kernel_size": [3, 7], "hidden_dropout_prob": 0.0, "weight_dropout": 0.0,
}


@pytest.fixture
def run_glue(load_script, tmp_path):
    """Call run_glue.main with a tiny from-scratch model; returns (all_results, output_dir)."""
    script = load_script("run_glue")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_MODEL))

    def run(*argv, output_dir=None, model=True):
        output_dir = Path(output_dir or tmp_path / "out")
        defaults = {"--output_dir": str(output_dir), "--seed": "0", "--per_device_eval_batch_size": "32"}
        if model:
            defaults |= {"--config_name": str(config), "--vocab_size": "400"}
        extra = [item for option, value in defaults.items() if option not in argv for item in (option, value)]
        results = script.main([*argv, *extra])
        return results, output_dir

    return run


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@needs_glue
def test_sst2_single_sentences_beat_chance_and_write_every_output(run_glue):
    results, out = run_glue(
        "--task_name", "sst2", "--glue_dir", str(GLUE_DIR), "--max_train_samples", "4000", "--max_eval_samples", "300",
        "--max_predict_samples", "50", "--num_train_epochs", "3", "--learning_rate", "3e-3", "--do_predict",
        "--plot_widths", "--per_device_train_batch_size", "32", "--vocab_size", "2000",
    )
    assert results["eval_accuracy"] > 0.6  # chance is 0.51 on these 300 (sd 0.03)
    assert results["eval_samples"] == {"validation": 300}
    assert [entry["epoch"] for entry in results["history"]] == [0, 1, 2]
    assert json.loads((out / "all_results.json").read_text())["eval_accuracy"] == results["eval_accuracy"]
    # The kept model is the best epoch's: it loads with from_pretrained and gives the logged accuracy.
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert model.config.id2label == {0: "negative", 1: "positive"}
    predictions = _lines(out / "SST-2.tsv")
    assert predictions[0] == "index\tprediction" and len(predictions) == 51
    assert {line.split("\t")[1] for line in predictions[1:]} <= {"0", "1"}
    assert (out / "widths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (out / "README.md").read_text()
    assert "GLUE SST-2" in card and "## Learned widths" in card and "accuracy" in card


@needs_glue
def test_mrpc_pairs_get_accuracy_and_f1(run_glue):
    results, out = run_glue(
        "--task_name", "mrpc", "--glue_dir", str(GLUE_DIR), "--max_train_samples", "200", "--max_eval_samples", "100",
        "--max_predict_samples", "20", "--num_train_epochs", "1", "--do_predict",
    )
    assert 0 <= results["eval_accuracy"] <= 1 and 0 <= results["eval_f1"] <= 1
    assert len(_lines(out / "MRPC.tsv")) == 21
    # Both sentences reach the model: [CLS] a [SEP] b [SEP] with token types 0 and 1.
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer("a", "b")["token_type_ids"] == [0, 0, 0, 1, 1]


@needs_glue
def test_stsb_is_a_regression_with_correlations(run_glue):
    results, out = run_glue(
        "--task_name", "stsb", "--glue_dir", str(GLUE_DIR), "--max_train_samples", "300", "--max_eval_samples", "100",
        "--max_predict_samples", "10", "--num_train_epochs", "1", "--do_predict",
    )
    assert {"eval_pearson", "eval_spearmanr"} <= set(results)
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    scores = [float(line.split("\t")[1]) for line in _lines(out / "STS-B.tsv")[1:]]
    assert len(scores) == 10 and all(0 <= s <= 5 for s in scores)


@needs_glue
def test_cola_without_header_reads_every_row(run_glue):
    results, _ = run_glue(
        "--task_name", "cola", "--glue_dir", str(GLUE_DIR), "--max_train_samples", "200", "--num_train_epochs", "1",
    )
    assert -1 <= results["eval_matthews_correlation"] <= 1
    assert results["eval_samples"] == {"validation": 1043}  # every dev row, none taken for a header


def _copy_stopped_run(out, stopped, checkpoint):
    """What a run killed right after writing ``checkpoint`` leaves: its tokenizer and that checkpoint."""
    stopped.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (stopped / name).write_bytes((out / name).read_bytes())
    (stopped / checkpoint).mkdir()
    for path in (out / checkpoint).iterdir():
        (stopped / checkpoint / path.name).write_bytes(path.read_bytes())


@needs_glue
@pytest.mark.parametrize("checkpoint", ["step_4", "step_6"])  # inside epoch 0, and at its end (6 steps an epoch)
def test_resumed_run_ends_with_the_same_metrics(run_glue, tmp_path, checkpoint):
    argv = [
        "--task_name", "rte", "--glue_dir", str(GLUE_DIR), "--max_train_samples", "96", "--max_eval_samples", "64",
        "--num_train_epochs", "2", "--per_device_train_batch_size", "16", "--learning_rate", "1e-3",
        "--checkpointing_steps", "2", "--config_overrides", "hidden_dropout_prob=0.1,weight_dropout=0.1",
    ]
    full, out = run_glue(*argv, output_dir=tmp_path / "full")
    stopped = tmp_path / "stopped"
    _copy_stopped_run(out, stopped, checkpoint)
    resumed, _ = run_glue(*argv, "--resume_from_checkpoint", str(stopped / checkpoint), output_dir=stopped)
    for key in ("eval_accuracy", "train_loss", "steps", "best_epoch"):
        assert resumed[key] == full[key], key
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]


def test_resuming_a_finished_run_trains_no_further(run_glue, tmp_path):
    argv = ["--task_name", "negation_scope", "--max_train_samples", "64", "--max_eval_samples", "32",
            "--max_train_steps", "3", "--checkpointing_steps", "3", "--per_device_train_batch_size", "8"]
    full, out = run_glue(*argv)
    resumed, _ = run_glue(*argv, "--resume_from_checkpoint", "latest", output_dir=out)
    assert resumed["steps"] == full["steps"] == 3
    assert resumed["eval_accuracy"] == full["eval_accuracy"]


def test_a_width_budget_holds_and_a_resumed_run_takes_the_same_steps(run_glue, tmp_path):
    """The budget's multipliers are training state: logged every epoch, kept in checkpoints, resumed exactly."""
    budget = "width_budget=[0.2,0.3],extent_activation=clamp,width_budget_warmup_steps=4,width_budget_step_size=0.5"
    argv = ["--task_name", "negation_scope", "--max_train_samples", "128", "--max_eval_samples", "32",
            "--num_train_epochs", "3", "--per_device_train_batch_size", "16", "--checkpointing_steps", "4",
            "--learning_rate", "1e-2", "--config_overrides", f"width_init=0.9,{budget}"]
    full, out = run_glue(*argv, output_dir=tmp_path / "full")
    last = full["history"][-1]
    assert last["width_budget_0"] == pytest.approx(0.2) and last["width_budget_1"] == pytest.approx(0.3)
    assert last["width_0"] <= 0.2 + 0.05 and last["width_1"] <= 0.3 + 0.05  # from 0.9 at the start
    assert max(h["width_multiplier_0"] for h in full["history"]) > 0
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.width_budget == [0.2, 0.3] and model.config.extent_activation == "clamp"
    assert model.width_budget.steps.item() == full["history"][full["best_epoch"]]["step"]  # the best epoch's model

    stopped = tmp_path / "stopped"
    _copy_stopped_run(out, stopped, "step_12")  # in the middle of the run, the budget warmed in
    resumed, _ = run_glue(*argv, "--resume_from_checkpoint", str(stopped / "step_12"), output_dir=stopped)
    assert resumed["history"] == full["history"]
    assert resumed["eval_accuracy"] == full["eval_accuracy"]


@needs_glue
def test_config_file_with_command_line_overrides(run_glue, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"task_name: wnli\nglue_dir: {GLUE_DIR}\nnum_train_epochs: 5\nmax_train_samples: 64\n")
    results, _ = run_glue(str(config), "--num_train_epochs", "1")
    assert results["epochs"] == 1 and results["train_samples"] == 64


def test_negation_scope_needs_no_files(run_glue):
    results, out = run_glue(
        "--task_name", "negation_scope", "--max_train_samples", "256", "--max_eval_samples", "64",
        "--max_predict_samples", "16", "--num_train_epochs", "1", "--do_predict",
    )
    assert 0 <= results["eval_accuracy"] <= 1 and "test_accuracy" in results  # its test split has labels
    assert {line.split("\t")[1] for line in _lines(out / "negation_scope.tsv")[1:]} <= {"negative", "positive"}


def test_own_csv_files_with_string_labels(run_glue, tmp_path):
    rows = [("a fine film", "good"), ("a dull film", "bad"), ("so good", "good"), ("so bad", "bad")] * 8
    (tmp_path / "train.csv").write_text("text,sentiment\n" + "\n".join(f"{t},{l}" for t, l in rows) + "\n")
    (tmp_path / "dev.jsonl").write_text("\n".join(json.dumps({"text": t, "sentiment": l}) for t, l in rows[:6]) + "\n")
    (tmp_path / "test.tsv").write_text('text\nthe "fine" film\nso dull\n')
    results, out = run_glue(
        "--train_file", str(tmp_path / "train.csv"), "--validation_file", str(tmp_path / "dev.jsonl"),
        "--test_file", str(tmp_path / "test.tsv"), "--label_column", "sentiment", "--num_train_epochs", "1",
        "--do_predict",
    )
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "bad", "1": "good"} and config["label2id"] == {"bad": 0, "good": 1}
    assert {"eval_accuracy", "eval_f1"} <= set(results)
    predictions = _lines(out / "predict_results_test.tsv")
    assert len(predictions) == 3 and {p.split("\t")[1] for p in predictions[1:]} <= {"bad", "good"}


def test_a_transformers_baseline_runs_through_the_same_script(run_glue, tokenizer_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    results, out = run_glue(
        "--task_name", "negation_scope", "--model_name_or_path", str(tmp_path / "bert"), "--max_train_samples", "64",
        "--max_eval_samples", "32", "--num_train_epochs", "1", model=False,
    )
    assert "eval_accuracy" in results
    assert json.loads((out / "config.json").read_text())["model_type"] == "bert"
    card = (out / "README.md").read_text()
    assert "A bert model" in card and "trust_remote_code" not in card and "dynconv\n" not in card


def test_a_hybrid_model_trains_from_a_config(run_glue):
    """--config_overrides attention_layers=[1]: a new model whose layer 1 is self-attention trains and saves so."""
    results, out = run_glue(
        "--task_name", "negation_scope", "--max_train_samples", "64", "--max_eval_samples", "32",
        "--num_train_epochs", "1", "--config_overrides", "attention_layers=[1]",
    )
    assert "eval_accuracy" in results
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.attention_layers == [1] and model.model.encoder.layers[1].token_mixer == "attention"


def test_a_transformer_fine_tunes_with_its_attention_cut_to_a_window(run_glue, tokenizer_dir, tmp_path, monkeypatch):
    """--attn_implementation sdpa_window_1: the model runs with the window attention (each token sees ±1)."""
    import dynconv_nlp.window_attention as window_attention

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    calls = []
    original = window_attention.sdpa_attention_forward
    monkeypatch.setattr(window_attention, "sdpa_attention_forward", lambda *a, **k: calls.append(a[4]) or original(*a, **k))
    results, _ = run_glue(
        "--task_name", "negation_scope", "--model_name_or_path", str(tmp_path / "bert"), "--max_train_samples", "64",
        "--max_eval_samples", "32", "--num_train_epochs", "1", "--attn_implementation", "sdpa_window_1", model=False,
    )
    assert "eval_accuracy" in results and calls
    T = calls[0].shape[-1]
    assert not calls[0][..., 0, 2:].any() and calls[0].shape[-2:] == (T, T)  # the first token sees tokens 0 and 1


def test_tensorboard_tracking_writes_events(run_glue):
    pytest.importorskip("tensorboard")
    _, out = run_glue(
        "--task_name", "negation_scope", "--max_train_samples", "64", "--max_eval_samples", "32",
        "--num_train_epochs", "1", "--with_tracking", "--report_to", "tensorboard",
    )
    assert list(out.rglob("events.out.tfevents.*"))


def _launch_two_processes(tmp_path, *argv) -> dict:
    """run_glue.py under ``accelerate launch`` with 2 CPU processes; returns its all_results.json."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_MODEL))
    return launch_two_processes(
        "run_glue", "--task_name", "negation_scope", "--config_name", str(config), "--vocab_size", "400",
        "--max_train_samples", "128", "--per_device_train_batch_size", "16", *argv,
    )


def test_two_processes_count_each_example_once(tmp_path):
    """accelerate launch with 2 CPU processes: metrics over every example once, one writer, same as 1 process."""
    out = tmp_path / "out"
    results = _launch_two_processes(
        tmp_path, "--max_eval_samples", "75", "--max_predict_samples", "33", "--per_device_eval_batch_size", "8",
        "--num_train_epochs", "1", "--checkpointing_steps", "2", "--do_predict", "--output_dir", str(out),
    )
    # 75 and 33 do not split evenly over 2 processes x 8: the padding copies must not be counted.
    assert results["eval_samples"] == {"validation": 75}
    assert [line.split("\t")[0] for line in _lines(out / "negation_scope.tsv")[1:]] == [str(i) for i in range(33)]
    assert sorted(p.name for p in out.glob("step_*")) == ["step_2", "step_4"]
    # The accuracy logged by 2 processes is that of the saved model on the whole split, in one process.
    validation = negation_scope_splits()["validation"]
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer(validation["sentence"][:75], padding=True, return_tensors="pt")
    with torch.no_grad():
        predictions = model(**inputs).logits.argmax(-1)
    accuracy = (predictions == torch.tensor(validation["label"][:75])).float().mean().item()
    assert results["eval_accuracy"] == pytest.approx(accuracy)
    # And the test predictions are in the test set's order.
    test = negation_scope_splits()["test"]
    with torch.no_grad():
        expected = model(**tokenizer(test["sentence"][:33], padding=True, return_tensors="pt")).logits.argmax(-1)
    written = [line.split("\t")[1] for line in _lines(out / "negation_scope.tsv")[1:]]
    assert written == [model.config.id2label[i] for i in expected.tolist()]


def test_two_processes_resume_with_the_same_loss(tmp_path):
    """Each process's share of the epoch's loss survives a resume (accelerate saves the main process's state only)."""
    argv = ["--max_eval_samples", "32", "--num_train_epochs", "1", "--checkpointing_steps", "2",
            "--config_overrides", "hidden_dropout_prob=0.1"]
    full = _launch_two_processes(tmp_path, *argv, "--output_dir", str(tmp_path / "full"))
    stopped = tmp_path / "stopped"
    shutil.copytree(tmp_path / "full" / "step_2", stopped / "step_2")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tmp_path / "full" / name, stopped / name)
    resumed = _launch_two_processes(
        tmp_path, *argv, "--output_dir", str(stopped), "--resume_from_checkpoint", str(stopped / "step_2")
    )
    assert resumed["train_loss"] == pytest.approx(full["train_loss"], rel=1e-6)
    assert resumed["eval_accuracy"] == full["eval_accuracy"]
