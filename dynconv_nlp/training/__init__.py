"""The training loop the scripts share, and its parts: checkpoints, resume, signals, non-finite losses."""

from ..cli import ArgumentParser, exit_on_expected_errors, parse_args_with_config_file
from ..errors import Interrupted, TrainingError, UsageError
from .guard import StopOnSignal, skip_nonfinite_loss, stop_if_requested
from .progress import TrainingProgress, latest_checkpoint, optimizer_groups
from .setup import check_output_dir

__all__ = [
    "ArgumentParser",
    "Interrupted",
    "StopOnSignal",
    "TrainingError",
    "TrainingProgress",
    "UsageError",
    "check_output_dir",
    "exit_on_expected_errors",
    "latest_checkpoint",
    "optimizer_groups",
    "parse_args_with_config_file",
    "skip_nonfinite_loss",
    "stop_if_requested",
]
