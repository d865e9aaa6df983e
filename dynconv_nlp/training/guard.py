"""What stops a training loop: a signal from the user or the scheduler, and a loss that is not a number.

    with StopOnSignal(accelerator) as stop:          # SIGINT / SIGTERM set a flag instead of killing
        for batch in batches:
            loss = model(**batch).loss
            if not skip_nonfinite_loss(loss, progress, accelerator, args.skip_nonfinite_loss, args.output_dir):
                accelerator.backward(loss)            # (a NaN loss without the flag raised TrainingError)
                ...
            stop_if_requested(stop, args.output_dir, progress)   # after an optimizer step: save, raise Interrupted

A signal lands between two Python bytecodes, possibly inside a half-written checkpoint; the loop
only sees the flag at a step boundary, where the state is whole and can be saved. A second signal
while stopping restores the default behaviour, so pressing Ctrl-C twice quits at once (checkpoints
are written under a temporary name and renamed, so no half-written one is ever taken for complete).
"""

import logging
import math
import signal
import threading
from pathlib import Path

import torch
from accelerate import Accelerator

from ..errors import Interrupted, TrainingError
from .outputs import save_checkpoint
from .progress import TrainingProgress, latest_checkpoint

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    """Within ``with``: SIGINT and SIGTERM ask the loop to stop at the next step boundary."""

    def __init__(self, accelerator: Accelerator):
        self.accelerator = accelerator
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            return self
        for signum in STOP_SIGNALS:
            # An ignored signal stays ignored: a shell starts background jobs (`cmd &`) ignoring SIGINT.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler or signal.SIG_DFL)
        return False

    def _handle(self, signum, frame):
        if self.signum is not None:  # the second signal: stop now, the way the process would have
            signal.signal(signum, self._previous.get(signum) or signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self.signum = signum
        if self.accelerator.is_local_main_process:
            logger.warning(f"{signal.Signals(signum).name}: saving a checkpoint after this step (again to quit now)")

    def requested(self) -> int | None:
        """The signal's number if any process got one (all processes agree, so they save together), else None."""
        if self.accelerator.num_processes == 1:
            return self.signum
        flag = torch.tensor([self.signum or 0], device=self.accelerator.device)
        return int(self.accelerator.reduce(flag, "max").item()) or None


def interrupted(signum: int, checkpoint: Path, step: int) -> Interrupted:
    """The exception that ends a run stopped by ``signum`` after saving ``checkpoint``."""
    name = signal.Signals(signum).name
    return Interrupted(
        signum,
        f"stopped by {name} at step {step}: the training state is in {checkpoint}; "
        "continue with the same command and --resume_from_checkpoint latest",
    )


def skip_nonfinite_loss(
    loss: torch.Tensor, progress: TrainingProgress, accelerator: Accelerator, skip: bool, output_dir: Path
) -> bool:
    """True if ``loss`` is NaN or inf on any process and ``skip`` is set: the caller leaves the batch out.

    Without ``skip`` a non-finite loss raises :class:`TrainingError` naming the step and the last good
    checkpoint; nothing is saved, so neither the checkpoints nor the best model can hold NaN weights.
    """
    value = loss.detach().float()
    if accelerator.num_processes > 1:  # every process must skip the same batch, or DDP waits forever
        value = accelerator.reduce(value.reshape(1), "sum")
    value = value.item()
    if math.isfinite(value):
        return False
    where = f"step {progress.completed_steps + 1} (epoch {progress.epoch}, batch {progress.batches_in_epoch})"
    if skip:
        logger.warning(f"the loss is {value} at {where}: skipped that batch (--skip_nonfinite_loss)")
        return True
    last = latest_checkpoint(output_dir)
    kept = f"the last good checkpoint is {last}" if last else "no checkpoint was saved yet"
    raise TrainingError(
        f"the loss is {value} at {where}; {kept}. Lower --learning_rate or --max_grad_norm, use fp32 instead "
        "of fp16, or pass --skip_nonfinite_loss to leave such batches out"
    )


def stop_if_requested(stop: StopOnSignal, output_dir: Path, progress: TrainingProgress) -> None:
    """At a step boundary: if a signal came, save the training state as ``step_N`` and raise :class:`Interrupted`."""
    signum = stop.requested()
    if signum is None:
        return
    name = f"step_{progress.completed_steps}"
    if latest_checkpoint(output_dir) != output_dir / name:  # not just saved by --checkpointing_steps
        save_checkpoint(stop.accelerator, output_dir, name, progress)
    raise interrupted(signum, output_dir / name, progress.completed_steps)
