"""scripts/run_mlm.py end to end on GLUE training text: the loss falls, the encoder carries over to run_glue, resume, bad input."""

import json
from pathlib import Path

import pytest
import torch
from dynconv_testing import sigterm_at_optimizer_step
from safetensors.torch import load_file

from dynconv_nlp import DynConvForSequenceClassification
from dynconv_nlp.data.text import load_glue_training_text, load_text_file

GLUE = Path(__file__).resolve().parents[3] / "shared" / "data" / "glue"
needs_glue = pytest.mark.skipif(not GLUE.is_dir(), reason=f"GLUE is not at {GLUE} (../shared/data/glue)")

TINY_MODEL = {
    "model_type": "dynconv", "hidden_size": 32, "encoder_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "kernel_size": [3, 7], "hidden_dropout_prob": 0.1, "weight_dropout": 0.1,
}


@pytest.fixture
def run_mlm(load_script, tmp_path):
    script = load_script("run_mlm")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_MODEL))

    def run(*argv, output_dir=None):
        output_dir = Path(output_dir or tmp_path / "out")
        defaults = {
            "--glue_dir": str(GLUE), "--glue_tasks": ["cola", "rte"], "--config_name": str(config),
            "--vocab_size": "400", "--max_seq_length": "32", "--max_train_samples": "256", "--max_eval_samples": "64",
            "--per_device_train_batch_size": "16", "--num_warmup_steps": "5", "--learning_rate": "3e-3",
            "--output_dir": str(output_dir), "--seed": "0",
        }
        extra = []
        for option, value in defaults.items():
            if option not in argv:
                extra += [option, *value] if isinstance(value, list) else [option, value]
        return script.main([*argv, *extra]), output_dir

    return run


@needs_glue
def test_pretrains_and_the_encoder_carries_over_to_run_glue(run_mlm, load_script, tmp_path):
    results, out = run_mlm("--num_train_epochs", "3", "--whole_word_mask")
    losses = [h["eval_loss"] for h in results["history"]]
    assert losses[-1] < losses[0] and results["perplexity"] == pytest.approx(torch.tensor(losses[-1]).exp().item())
    assert json.loads((out / "all_results.json").read_text())["perplexity"] == results["perplexity"]
    info = json.loads((out / "run_info.json").read_text())["runs"][0]  # what it takes to repeat the run
    assert info["args"]["whole_word_mask"] is True and all(len(s["sha256"]) == 64 for s in info["data"].values())

    # The masked-LM checkpoint loads into a classifier: every encoder weight equal, only the head new.
    classifier = DynConvForSequenceClassification.from_pretrained(out, num_labels=2)
    pretrained = load_file(out / "model.safetensors")
    encoder = {k: v for k, v in classifier.state_dict().items() if k.startswith("model.")}
    assert encoder and all(torch.equal(v, pretrained[k]) for k, v in encoder.items())

    glue = load_script("run_glue")
    tuned = glue.main(["--task_name", "rte", "--glue_dir", str(GLUE), "--model_name_or_path", str(out),
                       "--max_train_samples", "64", "--max_eval_samples", "32", "--max_length", "32",
                       "--max_train_steps", "4", "--output_dir", str(tmp_path / "rte")])
    assert 0 <= tuned["eval_accuracy"] <= 1


@needs_glue
def test_sigterm_saves_a_checkpoint_and_the_resumed_run_ends_with_the_same_losses(run_mlm, tmp_path, monkeypatch):
    argv = ["--num_train_epochs", "2"]
    full, out = run_mlm(*argv, output_dir=tmp_path / "full")
    shared = ["--tokenizer_name", str(out)]  # trained once, by the full run; the other runs reuse it
    sigterm_at_optimizer_step(monkeypatch, 5)
    with pytest.raises(SystemExit) as exit_info:
        run_mlm(*argv, *shared, output_dir=tmp_path / "stopped")
    assert exit_info.value.code == 143 and (tmp_path / "stopped" / "step_5").is_dir()
    monkeypatch.undo()
    resumed, _ = run_mlm(*argv, *shared, "--resume_from_checkpoint", "latest", output_dir=tmp_path / "stopped")
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]
    assert resumed["perplexity"] == full["perplexity"]


@needs_glue
def test_resumed_run_ends_with_the_same_losses(run_mlm, tmp_path):
    argv = ["--num_train_epochs", "2", "--checkpointing_steps", "epoch"]
    full, out = run_mlm(*argv, output_dir=tmp_path / "full")
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    for path in out.iterdir():
        if path.name.startswith("tokenizer"):
            (stopped / path.name).write_bytes(path.read_bytes())
    (stopped / "epoch_0").mkdir()
    for path in (out / "epoch_0").iterdir():
        (stopped / "epoch_0" / path.name).write_bytes(path.read_bytes())
    resumed, _ = run_mlm(*argv, "--resume_from_checkpoint", str(stopped / "epoch_0"), output_dir=stopped)
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]
    assert resumed["perplexity"] == full["perplexity"]


@needs_glue
def test_glue_text_is_the_training_split_only():
    texts = load_glue_training_text(GLUE, ["cola", "rte"])["text"]
    assert len(texts) == 8551 + 2 * 2490
    dev = (GLUE / "CoLA" / "dev.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")[-1]
    assert dev not in set(texts)


def test_text_files_plain_gzip_and_columns(tmp_path):
    import gzip

    (tmp_path / "a.txt").write_text("one line\n\n  two  \n")
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"zipped\n"))
    (tmp_path / "c.jsonl").write_text('{"sentence": "a json text", "label": 1}\n')
    assert load_text_file(tmp_path / "a.txt")["text"] == ["one line", "two"]
    assert load_text_file(tmp_path / "b.gz")["text"] == ["zipped"]
    assert load_text_file(tmp_path / "c.jsonl")["text"] == ["a json text"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config_name", "x.json"], "pass --dataset_name (the Hub) or local text"),
        (["--config_name", "x.json", "--glue_tasks", "cola"], "--glue_dir and --glue_tasks go together"),
        (["--train_file", "t.txt"], "pass --model_name_or_path to fine-tune a model or --config_name"),
        (["--config_name", "x.json", "--train_file", "t.txt", "--mlm_probability", "1.5"], "--mlm_probability must be in (0, 1)"),
    ],
)
def test_bad_command_lines(load_script, capsys, tmp_path, argv, message):
    script = load_script("run_mlm")
    with pytest.raises(SystemExit) as exit_info:
        script.main([*argv, "--output_dir", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("run_mlm.py: error: ") and message in err[0]


@pytest.mark.parametrize("content, message", [("\n  \n", "has no text"), (None, "does not exist")])
def test_empty_and_missing_files_stop_with_one_line(load_script, tmp_path, capsys, content, message):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_text(content)
    script = load_script("run_mlm")
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--train_file", str(path), "--config_name", "configs/models/tiny.json", "--output_dir", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0]
