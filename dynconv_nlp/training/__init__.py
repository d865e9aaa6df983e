"""The training loop the scripts share, and its parts: checkpoints, resume, signals, non-finite losses."""

from ..cli import ArgumentParser, exit_on_expected_errors, parse_args_with_config_file
from ..errors import Interrupted, TrainingError, UsageError
from .guard import StopOnSignal, skip_nonfinite_loss, stop_if_requested
from .loop import Fitted, KeepBest, fit
from .options import FINE_TUNING, FROM_SCRATCH, Recipe, add_training_options, check_training_options
from .progress import TrainingProgress, latest_checkpoint, optimizer_groups
from .setup import check_output_dir, start_run

__all__ = [
    "FINE_TUNING",
    "FROM_SCRATCH",
    "ArgumentParser",
    "Fitted",
    "KeepBest",
    "Recipe",
    "Interrupted",
    "StopOnSignal",
    "TrainingError",
    "TrainingProgress",
    "UsageError",
    "add_training_options",
    "check_output_dir",
    "check_training_options",
    "exit_on_expected_errors",
    "fit",
    "latest_checkpoint",
    "optimizer_groups",
    "parse_args_with_config_file",
    "skip_nonfinite_loss",
    "start_run",
    "stop_if_requested",
]
