"""Pieces the training scripts share: command lines with config files, clear errors, checkpoints."""

from .cli import UsageError, check_output_dir, exit_on_usage_error, parse_args_with_config_file
from .progress import TrainingProgress, latest_checkpoint, optimizer_groups

__all__ = [
    "TrainingProgress",
    "UsageError",
    "check_output_dir",
    "exit_on_usage_error",
    "latest_checkpoint",
    "optimizer_groups",
    "parse_args_with_config_file",
]
