"""Checkpoint averaging."""

import pytest
import torch
from safetensors.torch import save_file

from dynconv_nlp.errors import UsageError
from dynconv_nlp.training.averaging import average_checkpoints, last_checkpoints


def _checkpoint(folder, value, prefix=""):
    folder.mkdir()
    weights = {f"{prefix}w": torch.full((2, 2), float(value)), f"{prefix}n": torch.tensor([value], dtype=torch.int64)}
    save_file(weights, folder / "model.safetensors")


def test_averages_the_runs_last_n_checkpoints(tmp_path):
    for epoch, value in enumerate([1, 2, 4, 6]):
        _checkpoint(tmp_path / f"epoch_{epoch}", value)
    _checkpoint(tmp_path / "epoch_9", 100)  # left by another run: not this run's
    paths = last_checkpoints(tmp_path, 2, ["epoch_0", "epoch_1", "epoch_2", "epoch_3"])
    assert [p.name for p in paths] == ["epoch_2", "epoch_3"]
    averaged = average_checkpoints(paths)
    assert torch.equal(averaged["w"], torch.full((2, 2), 5.0)) and averaged["n"].dtype == torch.int64


def test_names_of_wrapped_models_are_unwrapped(tmp_path):
    _checkpoint(tmp_path / "step_1", 1, prefix="module.")
    _checkpoint(tmp_path / "step_2", 3, prefix="module._orig_mod.")
    assert set(average_checkpoints([tmp_path / "step_1", tmp_path / "step_2"])) == {"w", "n"}


def test_too_few_checkpoints(tmp_path):
    _checkpoint(tmp_path / "step_10", 1)
    with pytest.raises(UsageError, match="averaging 3 checkpoints needs 3 saved by this run"):
        last_checkpoints(tmp_path, 3, ["step_10", "step_20"])
