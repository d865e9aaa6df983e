"""Checkpoint averaging."""

import pytest
import torch
from safetensors.torch import save_file

from dynconv_nlp.training import UsageError
from dynconv_nlp.training.averaging import average_checkpoints, last_checkpoints


def _checkpoint(folder, value):
    folder.mkdir()
    save_file({"w": torch.full((2, 2), float(value)), "n": torch.tensor([value], dtype=torch.int64)}, folder / "model.safetensors")


def test_averages_the_last_n_epochs(tmp_path):
    for epoch, value in enumerate([1, 2, 4, 6]):
        _checkpoint(tmp_path / f"epoch_{epoch}", value)
    _checkpoint(tmp_path / "step_100", 100)  # epochs win over steps
    paths = last_checkpoints(tmp_path, 2)
    assert [p.name for p in paths] == ["epoch_2", "epoch_3"]
    averaged = average_checkpoints(paths)
    assert torch.equal(averaged["w"], torch.full((2, 2), 5.0)) and averaged["n"].dtype == torch.int64


def test_numeric_order_and_missing_checkpoints(tmp_path):
    for step in (9, 10, 100):
        _checkpoint(tmp_path / f"step_{step}", step)
    assert [p.name for p in last_checkpoints(tmp_path, 2)] == ["step_10", "step_100"]
    with pytest.raises(UsageError, match="averaging 5 checkpoints needs 5"):
        last_checkpoints(tmp_path, 5)
