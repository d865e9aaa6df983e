"""Checkpoint averaging: the mean of the weights of the last N checkpoints (fairseq's recipe for its reported numbers)."""

from pathlib import Path

import torch
from safetensors.torch import load_file

from ..errors import UsageError

# Prefixes that wrapped models add to their weights' names: DistributedDataParallel, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def last_checkpoints(output_dir: Path, count: int, names: list[str]) -> list[Path]:
    """The last ``count`` of this run's checkpoint folders ``names`` (oldest first) in ``output_dir``.

    Only the run's own checkpoints count: folders left in ``output_dir`` by another run are not averaged.
    """
    paths = [Path(output_dir) / name for name in names if (Path(output_dir) / name / "model.safetensors").is_file()]
    if len(paths) < count:
        raise UsageError(
            f"averaging {count} checkpoints needs {count} saved by this run in {output_dir}, found {len(paths)}: "
            "save more with --checkpointing_steps, or average fewer"
        )
    return paths[-count:]


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the ``model.safetensors`` weights in ``paths``, in float32 then cast back."""
    total = None
    for path in paths:
        weights = {_unwrapped_name(name): tensor for name, tensor in load_file(str(Path(path) / "model.safetensors")).items()}
        if total is None:
            total = {name: tensor.to(torch.float32) for name, tensor in weights.items()}
            dtypes = {name: tensor.dtype for name, tensor in weights.items()}
            continue
        if weights.keys() != total.keys():
            raise UsageError(f"{path} holds other weights than {paths[0]}: they are not checkpoints of one model")
        for name, tensor in weights.items():
            total[name] += tensor.to(torch.float32)
    return {name: (tensor / len(paths)).to(dtypes[name]) for name, tensor in total.items()}


def _unwrapped_name(name: str) -> str:
    for prefix in WRAPPER_PREFIXES:
        while name.startswith(prefix):
            name = name[len(prefix):]
    return name
