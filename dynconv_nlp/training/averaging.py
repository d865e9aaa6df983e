"""Checkpoint averaging: the mean of the weights of the last N checkpoints (fairseq's recipe for its reported numbers)."""

import re
from pathlib import Path

import torch
from safetensors.torch import load_file

from .cli import UsageError

CHECKPOINT_NAME = re.compile(r"^(step|epoch)_(\d+)$")


def last_checkpoints(output_dir: Path, count: int) -> list[Path]:
    """The last ``count`` ``epoch_N`` folders of ``output_dir`` (or ``step_N`` when it has no epoch ones), oldest first."""
    folders = {"epoch": [], "step": []}
    for path in Path(output_dir).iterdir() if Path(output_dir).is_dir() else []:
        match = CHECKPOINT_NAME.match(path.name)
        if match and (path / "model.safetensors").is_file():
            folders[match.group(1)].append((int(match.group(2)), path))
    found = sorted(folders["epoch"] or folders["step"])
    if len(found) < count:
        raise UsageError(
            f"averaging {count} checkpoints needs {count} epoch_N or step_N folders in {output_dir}, found {len(found)}: "
            "save them with --checkpointing_steps"
        )
    return [path for _, path in found[-count:]]


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the ``model.safetensors`` weights in ``paths``, in float32 then cast back."""
    total = None
    for path in paths:
        weights = load_file(str(Path(path) / "model.safetensors"))
        if total is None:
            total = {name: tensor.to(torch.float32) for name, tensor in weights.items()}
            dtypes = {name: tensor.dtype for name, tensor in weights.items()}
            continue
        if weights.keys() != total.keys():
            raise UsageError(f"{path} holds other weights than {paths[0]}: they are not checkpoints of one model")
        for name, tensor in weights.items():
            total[name] += tensor.to(torch.float32)
    return {name: (tensor / len(paths)).to(dtypes[name]) for name, tensor in total.items()}
