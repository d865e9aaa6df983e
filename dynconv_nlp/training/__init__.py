"""Pieces the training scripts share: command lines with config files, clear errors, checkpoints."""

from .cli import ArgumentParser, UsageError, check_output_dir, exit_on_expected_errors, parse_args_with_config_file
from .guard import Interrupted, StopOnSignal, TrainingError, skip_nonfinite_loss, stop_if_requested
from .progress import TrainingProgress, latest_checkpoint, optimizer_groups

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
