"""What a resumed run needs besides weights, optimizer and RNG states: where it was and what was best."""

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

CHECKPOINT_NAME = re.compile(r"^(step|epoch)_(\d+)$")
PROGRESS_FILE = "training_progress.json"  # beside accelerate's files in each checkpoint folder


@dataclass
class TrainingProgress:
    """Saved as JSON (:data:`PROGRESS_FILE`) in every checkpoint, beside ``accelerator.save_state``'s files.

    ``completed_steps`` counts optimizer updates; ``epoch`` and ``batches_in_epoch`` say where in the
    data the next batch is; ``epoch_loss_sum`` is the running sum for the epoch's mean loss;
    ``best_metrics`` holds the evaluation that chose the kept model.
    """

    num_processes: int = 1  # batches_in_epoch and the schedule's position count per process
    completed_steps: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    epoch_loss_sum: float = 0.0  # over this process's batches of the current epoch
    best_metrics: dict | None = None
    best_epoch: int | None = None
    history: list[dict] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)  # this run's step_N / epoch_N folders, oldest first

    process_loss_sums: list[float] = field(default_factory=list)  # every process's epoch_loss_sum, at the save

    def restore_process_share(self, process_index: int) -> None:
        """After loading: this process's own running loss sum (the saved one was the main process's)."""
        if self.process_loss_sums:
            self.epoch_loss_sum = self.process_loss_sums[process_index]

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The ``step_N`` or ``epoch_N`` folder in ``output_dir`` written last (by modification time), or None."""
    if not output_dir.is_dir():
        return None
    folders = [p for p in output_dir.iterdir() if p.is_dir() and CHECKPOINT_NAME.match(p.name)]
    return max(folders, key=lambda p: p.stat().st_mtime, default=None)


def optimizer_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: no weight decay on biases, norms and embeddings of positions."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        skip = parameter.ndim < 2 or "norm" in name.lower() or "position" in name.lower()
        (no_decay if skip else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
