"""dynconv_nlp.training.fit on a task of its own (not a transformers model): what every script gets from it."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dynconv_nlp.cli import ArgumentParser
from dynconv_nlp.errors import UsageError
from dynconv_nlp.training import add_training_options, check_training_options, fit
from dynconv_nlp.training.setup import start_run


def _args(tmp_path, *argv):
    parser = ArgumentParser()
    add_training_options(parser)
    argv = ["--config_name", "toy", "--output_dir", str(tmp_path / "out"), "--seed", "0", *argv]
    args = parser.parse_args(argv)
    check_training_options(args, argv)
    return args


def _regression(n: int = 40):
    """y = 3 x + 1 with noise, batches of 4: 10 batches an epoch."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, generator=generator)
    y = 3 * x + 1 + 0.01 * torch.randn(n, 1, generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))


def _fit(args, accelerator, **kwargs):
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    validation = _regression(12)
    return fit(
        args, accelerator, model, _regression(),
        loss=lambda model, batch: nn.functional.mse_loss(model(batch[0]), batch[1]),
        evaluate=lambda model, loaders: {"eval_mse": sum(
            nn.functional.mse_loss(model(x), y).item() for x, y in loaders["validation"]) / len(loaders["validation"])},
        eval_dataloaders={"validation": validation}, project="toy", count_tokens=lambda batch: len(batch[0]), **kwargs,
    )


def test_fit_trains_any_model_on_the_tasks_loss_and_evaluates_every_epoch(tmp_path):
    args = _args(tmp_path, "--learning_rate", "0.3", "--num_train_epochs", "4", "--checkpointing_steps", "epoch")
    accelerator = start_run(args)
    fitted = _fit(args, accelerator)
    history = fitted.progress.history
    assert [h["epoch"] for h in history] == [0, 1, 2, 3] and [h["step"] for h in history] == [10, 20, 30, 40]
    assert history[-1]["eval_mse"] < history[0]["eval_mse"] / 5 and history[-1]["eval_mse"] < 0.2
    # Every checkpoint is recorded (checkpoint averaging reads the record) and whole on disk.
    assert fitted.progress.checkpoints == ["epoch_0", "epoch_1", "epoch_2", "epoch_3"]
    saved = json.loads((args.output_dir / "epoch_3" / "training_progress.json").read_text())
    assert saved["completed_steps"] == 40 and saved["checkpoints"] == fitted.progress.checkpoints
    assert fitted.recipe == {"recipe": "from scratch", "learning_rate": 0.3, "num_warmup_steps": 3,
                             "lr_scheduler_type": "linear", "defaults": ["warmup_ratio"]}


def test_max_train_steps_stops_in_the_middle_of_an_epoch_and_still_evaluates(tmp_path):
    args = _args(tmp_path, "--max_train_steps", "13")
    accelerator = start_run(args)
    fitted = _fit(args, accelerator)
    assert fitted.progress.completed_steps == 13 and fitted.max_train_steps == 13
    assert [(h["epoch"], h["step"]) for h in fitted.progress.history] == [(0, 10), (1, 13)]


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    options = ["--learning_rate", "0.05", "--num_train_epochs", "2", "--checkpointing_steps", "7"]
    full_args = _args(tmp_path / "full", *options)
    full = _fit(full_args, start_run(full_args))
    resumed_args = _args(tmp_path / "full", *options, "--resume_from_checkpoint", str(full_args.output_dir / "step_7"))
    resumed = _fit(resumed_args, start_run(resumed_args))
    assert [h["train_loss"] for h in resumed.progress.history] == [h["train_loss"] for h in full.progress.history]
    assert torch.equal(resumed.model.weight, full.model.weight)


def test_a_checkpoint_of_another_number_of_processes_is_refused(tmp_path):
    args = _args(tmp_path, "--num_train_epochs", "1", "--checkpointing_steps", "5")
    _fit(args, start_run(args))
    progress_file = args.output_dir / "step_5" / "training_progress.json"
    progress_file.write_text(json.dumps(json.loads(progress_file.read_text()) | {"num_processes": 2}))
    resumed = _args(tmp_path, "--num_train_epochs", "1", "--resume_from_checkpoint", str(args.output_dir / "step_5"))
    with pytest.raises(UsageError, match=r"was saved by 2 processes; resume it with 2, not 1 \(its data position"):
        _fit(resumed, start_run(resumed))


def test_an_explicit_warm_up_longer_than_the_run_is_kept_and_warned_about(tmp_path, caplog):
    args = _args(tmp_path, "--num_train_epochs", "1", "--num_warmup_steps", "50")
    with caplog.at_level("WARNING"):
        fitted = _fit(args, start_run(args))
    assert fitted.recipe["num_warmup_steps"] == 50
    assert "the warm-up (50 steps) is longer than the run (10 steps)" in caplog.text

