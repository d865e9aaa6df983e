"""The start every training script shares: the accelerator, logging, and which checkpoint to resume."""

import logging
from pathlib import Path

import datasets
import transformers
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration

from .cli import UsageError, check_output_dir
from .progress import latest_checkpoint


def create_accelerator(args, tracking: bool) -> Accelerator:
    """An accelerator for ``args`` (accumulation, precision, tracker), and logging on every process."""
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=args.report_to if tracking else None,
        # Tracker logs go to output_dir/runs, which a push leaves out.
        project_config=ProjectConfiguration(project_dir=args.output_dir, logging_dir=args.output_dir / "runs"),
        # Shuffling seeded by (seed, epoch): a resumed run sees the batches an uninterrupted run would.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if not accelerator.is_local_main_process:
        datasets.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()
    return accelerator


def resolve_resume(args) -> None:
    """Turn ``--resume_from_checkpoint latest`` into a folder, check it, and check ``--output_dir``."""
    if args.resume_from_checkpoint == "latest":
        found = latest_checkpoint(args.output_dir)
        if found is None:
            raise UsageError(f"--resume_from_checkpoint latest: {args.output_dir} holds no step_N or epoch_N folder")
        args.resume_from_checkpoint = str(found)
    if args.resume_from_checkpoint and not Path(args.resume_from_checkpoint).is_dir():
        raise UsageError(f"--resume_from_checkpoint {args.resume_from_checkpoint} is not a folder")
    check_output_dir(args.output_dir, args.overwrite_output_dir, args.resume_from_checkpoint)
