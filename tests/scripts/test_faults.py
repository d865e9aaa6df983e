"""Faults a long run meets: a NaN loss, damaged or unsafe files, and what it takes to repeat a run.

The runs are run_glue's, in-process and tiny; the same guards sit in run_translation and run_mlm.
"""

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dynconv_nlp import DynConvForSequenceClassification
from dynconv_nlp.data.synthetic import negation_scope_splits
from dynconv_nlp.data.tokenizer import train_tokenizer
from dynconv_nlp.errors import TrainingError, UsageError

TINY_MODEL = {
    "model_type": "dynconv", "hidden_size": 32, "encoder_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "kernel_size": [3, 7], "hidden_dropout_prob": 0.1, "weight_dropout": 0.1,
}  # fmt: skip


@pytest.fixture(scope="module")
def saved_tokenizer(tmp_path_factory):
    """One tokenizer for every run, trained once (each run would train the same one again)."""
    path = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(negation_scope_splits()["train"]["sentence"], vocab_size=300).save_pretrained(path)
    return path


@pytest.fixture
def glue(load_script, tmp_path, saved_tokenizer, capsys):
    """run_glue.main on negation_scope with a tiny model: ``glue.run(*argv)`` returns all_results;
    ``glue.fail(code, *argv)`` expects that exit code and returns the last line on stderr."""
    script = load_script("run_glue")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_MODEL))

    def argv_for(argv, output_dir):
        defaults = {
            "--task_name": "negation_scope", "--max_train_samples": "64", "--max_eval_samples": "32",
            "--per_device_train_batch_size": "8", "--learning_rate": "1e-3", "--seed": "5",
            "--output_dir": str(output_dir or tmp_path / "out"),
        }  # fmt: skip
        if "--model_name_or_path" not in argv:
            defaults |= {"--config_name": str(config)}
        if "--model_name_or_path" not in argv and "--tokenizer_name" not in argv:
            defaults |= {"--tokenizer_name": str(saved_tokenizer)}
        return [*argv, *(item for option, value in defaults.items() if option not in argv for item in (option, value))]

    class Glue:
        def run(self, *argv, output_dir=None):
            return script.main(argv_for(argv, output_dir))

        def fail(self, code, *argv, output_dir=None):
            capsys.readouterr()
            with pytest.raises(SystemExit) as exit_info:
                script.main(argv_for(argv, output_dir))
            assert exit_info.value.code == code
            err = capsys.readouterr().err
            assert "Traceback" not in err
            return err.strip().splitlines()[-1]

    glue = Glue()
    glue.script, glue.argv_for = script, argv_for
    return glue


def _nan_at_training_call(monkeypatch, bad_calls: set[int]) -> None:
    """Make the classifier's loss NaN on the given training forward passes (counted from 1)."""
    forward, calls = DynConvForSequenceClassification.forward, []

    def poisoned(self, *args, **kwargs):
        output = forward(self, *args, **kwargs)
        if self.training and output.loss is not None:
            calls.append(1)
            if len(calls) in bad_calls:
                output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(DynConvForSequenceClassification, "forward", poisoned)


def test_a_nan_loss_stops_with_its_step_and_keeps_the_last_good_checkpoint(glue, monkeypatch, tmp_path):
    _nan_at_training_call(monkeypatch, {4})
    line = glue.fail(1, "--num_train_epochs", "2", "--checkpointing_steps", "1")
    out = tmp_path / "out"
    assert line.startswith("run_glue.py: error: the loss is nan at step 4 (epoch 0, batch 3)")
    assert f"the last good checkpoint is {out / 'step_3'}" in line and "--skip_nonfinite_loss" in line
    assert not (out / "step_4").exists()
    weights = load_file(out / "step_3" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    # That checkpoint carries on to the end (the fault was passing).
    monkeypatch.undo()
    results = glue.run("--num_train_epochs", "2", "--checkpointing_steps", "1", "--resume_from_checkpoint", "latest")
    assert results["steps"] == 16


def test_skip_nonfinite_loss_leaves_the_batch_out_and_trains_on(glue, monkeypatch, tmp_path, caplog):
    _nan_at_training_call(monkeypatch, {2, 5})
    results = glue.run("--num_train_epochs", "1", "--skip_nonfinite_loss")
    assert results["steps"] == 8 and results["train_loss"] == results["train_loss"]  # counted, and not NaN
    assert sum("skipped that batch (--skip_nonfinite_loss)" in r.getMessage() for r in caplog.records) == 2
    model = DynConvForSequenceClassification.from_pretrained(tmp_path / "out")
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.fixture
def saved_model(tmp_path, saved_tokenizer):
    """A saved tiny classifier with its tokenizer, as --model_name_or_path takes it."""
    from transformers import AutoTokenizer

    path = tmp_path / "model"
    tokenizer = AutoTokenizer.from_pretrained(saved_tokenizer)
    config = dict(TINY_MODEL, vocab_size=len(tokenizer), num_labels=2)
    config.pop("model_type")
    from dynconv_nlp import DynConvConfig

    DynConvForSequenceClassification(DynConvConfig(**config)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_a_truncated_model_file_is_one_line(glue, saved_model):
    weights = saved_model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    line = glue.fail(2, "--model_name_or_path", str(saved_model))
    assert line.startswith(f"run_glue.py: error: cannot load --model_name_or_path {saved_model}: ")
    assert "deserializing header" in line


def test_a_config_with_impossible_values_is_one_line(glue, saved_model, tmp_path):
    config = json.loads((saved_model / "config.json").read_text())
    (saved_model / "config.json").write_text(json.dumps(config | {"hidden_size": 30}))
    line = glue.fail(2, "--model_name_or_path", str(saved_model))
    assert "cannot load the config of --model_name_or_path" in line and "must divide hidden_size = 30" in line
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(TINY_MODEL | {"kernel_size": [3, -7]}))
    assert "every kernel_size must be >= 1" in glue.fail(2, "--config_name", str(bad))
    assert "must be in [0, 1)" in glue.fail(2, "--config_overrides", "hidden_dropout_prob=1.5")
    assert "width_budget" in glue.fail(2, "--config_overrides", "width_budget=wide")
    assert "not name=value with a setting of this config" in glue.fail(2, "--config_overrides", "colour=red")


def test_a_tokenizer_folder_with_missing_files_is_one_line(glue, saved_tokenizer, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "tokenizer_config.json").write_bytes((saved_tokenizer / "tokenizer_config.json").read_bytes())
    line = glue.fail(2, "--tokenizer_name", str(partial))
    assert (
        f"the tokenizer of --tokenizer_name {partial} has no vocabulary: the folder holds none of tokenizer.json"
        in line
    )
    (partial / "tokenizer.json").write_text('{"version": "1.0", "trunc')
    line = glue.fail(2, "--tokenizer_name", str(partial))
    assert line.startswith(f"run_glue.py: error: cannot load the tokenizer of --tokenizer_name {partial}: ")


def _checkpointed_run(glue, tmp_path) -> Path:
    glue.run("--max_train_steps", "2", "--checkpointing_steps", "1")
    return tmp_path / "out"


def test_a_damaged_checkpoint_is_one_line_and_says_what_to_do(glue, tmp_path):
    out = _checkpointed_run(glue, tmp_path)
    optimizer = out / "step_2" / "optimizer.bin"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    line = glue.fail(2, "--max_train_steps", "2", "--resume_from_checkpoint", str(out / "step_2"))
    assert line.startswith(f"run_glue.py: error: cannot load the checkpoint {out / 'step_2'}: ")
    assert f"resume from another checkpoint in {out}" in line
    (out / "step_1" / "training_progress.json").write_text("{")
    assert "cannot load the checkpoint" in glue.fail(2, "--resume_from_checkpoint", str(out / "step_1"))


class _Exploit:
    """A pickle that runs code when unpickled without weights_only: it would create a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_nothing_is_unpickled_from_a_checkpoint(glue, tmp_path, monkeypatch):
    out = _checkpointed_run(glue, tmp_path)
    # Every torch.load on resume is weights_only (accelerate's default), and the progress is JSON.
    loads, torch_load = [], torch.load

    def recording_load(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return torch_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    glue.run("--max_train_steps", "2", "--resume_from_checkpoint", str(out / "step_1"))
    assert loads and all(weights_only is True for weights_only in loads), loads
    monkeypatch.undo()
    # A checkpoint whose optimizer state is a booby-trapped pickle is refused, its code never run.
    marker = tmp_path / "exploited"
    torch.save(_Exploit(marker), out / "step_1" / "optimizer.bin")
    line = glue.fail(2, "--max_train_steps", "2", "--resume_from_checkpoint", str(out / "step_1"))
    assert "cannot load the checkpoint" in line and not marker.exists()


def test_the_same_seed_and_data_give_the_same_metrics_and_run_info_says_how(glue, tmp_path):
    first = glue.run("--num_train_epochs", "2", output_dir=tmp_path / "first")
    second = glue.run("--num_train_epochs", "2", output_dir=tmp_path / "second")
    for key in ("eval_accuracy", "train_loss", "best_epoch", "steps"):
        assert first[key] == second[key], key
    assert [h["train_loss"] for h in first["history"]] == [h["train_loss"] for h in second["history"]]

    info = json.loads((tmp_path / "first" / "run_info.json").read_text())["runs"]
    assert len(info) == 1
    run = info[0]
    assert run["seed"] == 5 and run["args"]["learning_rate"] == 1e-3 and "--num_train_epochs" in run["command"]
    assert {"python", "torch", "transformers", "accelerate", "datasets", "tokenizers", "dynconv_nlp"} <= set(
        run["versions"]
    )
    assert run["versions"]["torch"] == torch.__version__.split("+")[0] or run["versions"]["torch"] == torch.__version__
    assert run["model_config"]["hidden_size"] == 32 and run["num_processes"] == 1
    assert set(run["data"]) == {"train", "validation", "test"}
    assert all(len(split["sha256"]) == 64 and split["rows"] > 0 for split in run["data"].values())
    second_info = json.loads((tmp_path / "second" / "run_info.json").read_text())["runs"][0]
    assert second_info["data"] == run["data"]  # same data, same hashes
    assert "hub_token" not in run["args"]


def test_run_info_hashes_change_with_the_data_and_a_resume_adds_an_entry(glue, tmp_path):
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    train.write_text("text,label\ngood film,pos\nbad film,neg\n")
    dev.write_text("text,label\nfine film,pos\n")
    files = ["--task_name", "", "--train_file", str(train), "--validation_file", str(dev)]
    glue.run(*files, "--max_train_steps", "1", "--checkpointing_steps", "1", output_dir=tmp_path / "a")
    train.write_text("text,label\ngood film,pos\nbad movie,neg\n")
    glue.run(*files, "--max_train_steps", "1", output_dir=tmp_path / "b")
    hashes = [json.loads((tmp_path / d / "run_info.json").read_text())["runs"][0]["data"] for d in ("a", "b")]
    assert hashes[0]["train"]["sha256"] != hashes[1]["train"]["sha256"]
    assert hashes[0]["validation"] == hashes[1]["validation"]
    glue.run(*files, "--max_train_steps", "1", "--resume_from_checkpoint", "latest", output_dir=tmp_path / "a")
    assert len(json.loads((tmp_path / "a" / "run_info.json").read_text())["runs"]) == 2


@pytest.mark.parametrize(
    "script",
    [
        "run_glue", "run_translation", "run_mlm", "benchmark_model", "benchmark_ops", "benchmark_quality",
        "analyze_widths", "demo_layer",
    ],
)  # fmt: skip
def test_every_cli_gives_one_line_or_with_debug_the_traceback(load_script, capsys, script):
    main = load_script(script).main
    with pytest.raises(SystemExit) as exit_info:
        main(["--no_such_option", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{script}.py: error: ") and err[0].endswith("(see --help)"), err
    with pytest.raises(UsageError, match="unrecognized arguments|arguments are required"):
        main(["--no_such_option", "1", "--debug"])


def test_debug_shows_a_training_error_with_its_traceback(glue, monkeypatch):
    _nan_at_training_call(monkeypatch, {1})
    with pytest.raises(TrainingError, match="the loss is nan at step 1"):
        glue.script.main(glue.argv_for(["--max_train_steps", "2", "--debug"], None))
