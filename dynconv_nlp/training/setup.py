"""The start every training script shares: the accelerator, logging, which checkpoint to resume, the Hub token."""

import logging
from pathlib import Path

import datasets
import transformers
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

from .. import hub
from ..errors import UsageError
from .options import tracking_enabled
from .progress import latest_checkpoint


def start_run(args, kwargs_handlers=()) -> Accelerator:
    """The accelerator, once every check that needs no data has passed; seeds set.

    Everything that can fail without touching the data (the resume folder, ``--output_dir``, a Hub
    token for ``--push_to_hub``) fails here, before minutes of tokenizing and training.
    ``kwargs_handlers`` go to the ``Accelerator`` (e.g. ``DistributedDataParallelKwargs``).
    """
    accelerator = create_accelerator(args, kwargs_handlers)
    resolve_resume(args)
    if args.push_to_hub and not (args.hub_token or hub.get_token()):
        raise UsageError("pushing to the Hub needs a token: run `hf auth login`, set HF_TOKEN or pass --hub_token")
    accelerator.wait_for_everyone()  # every process checked before any writes
    set_seed(args.seed)
    return accelerator


def create_accelerator(args, kwargs_handlers=()) -> Accelerator:
    """An accelerator for ``args`` (accumulation, precision, tracker), and logging on every process."""
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=args.report_to if tracking_enabled(args) else None,
        # Tracker logs go to output_dir/runs, which a push leaves out.
        project_config=ProjectConfiguration(project_dir=args.output_dir, logging_dir=args.output_dir / "runs"),
        # Shuffling seeded by (seed, epoch): a resumed run sees the batches an uninterrupted run would.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        kwargs_handlers=list(kwargs_handlers),
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


def check_output_dir(output_dir: Path, overwrite: bool, resume_from_checkpoint: str | None) -> None:
    """Refuse to write into a folder that holds another run, unless told to (``--overwrite_output_dir``).

    Resuming from a checkpoint inside ``output_dir`` continues the same run, so it may write there.
    """
    if overwrite or not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise UsageError(f"--output_dir {output_dir} is a file, not a folder")
    contents = sorted(p.name for p in output_dir.iterdir())
    if not contents:
        return
    if resume_from_checkpoint and Path(resume_from_checkpoint).resolve().parent == output_dir.resolve():
        return
    shown = ", ".join(contents[:4]) + (", ..." if len(contents) > 4 else "")
    raise UsageError(
        f"--output_dir {output_dir} already holds another run ({shown}): choose a new folder, "
        "pass --overwrite_output_dir, or --resume_from_checkpoint one of its checkpoints"
    )
