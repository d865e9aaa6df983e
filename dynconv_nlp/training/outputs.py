"""Writing a run's outputs from an accelerate loop: the model, its training state, and results.

Everything is written under a temporary name and renamed when complete, so a process killed at any
moment (``kill -9``, a lost node) leaves the previous version whole: ``--resume_from_checkpoint
latest`` only ever sees complete ``step_N`` / ``epoch_N`` folders, and a kept model is never half old,
half new file by file.
"""

import json
import logging
import math
import os
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator

from .. import hub
from ..errors import UsageError
from .progress import PROGRESS_FILE

logger = logging.getLogger(__name__)


def save_model(model, tokenizer, accelerator: Accelerator, output_dir: Path) -> None:
    """``save_pretrained`` of the model and tokenizer, written by the main process; every process must call it."""
    accelerator.wait_for_everyone()
    staging = output_dir / ".tmp-model"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)  # left by a process killed while saving
        staging.mkdir()
    # Every process's save_pretrained lists the folder (to clean old shards): it must exist before any
    # of them starts, and stay until all have finished.
    accelerator.wait_for_everyone()
    # get_state_dict gathers the full weights under FSDP and DeepSpeed ZeRO-3 (every process must call it).
    accelerator.unwrap_model(model).save_pretrained(
        staging,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        state_dict=accelerator.get_state_dict(model),
    )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tokenizer.save_pretrained(staging)
        for path in sorted(staging.iterdir()):
            os.replace(path, output_dir / path.name)  # file by file, each whole, the weights among them
        staging.rmdir()
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator: Accelerator, output_dir: Path, name: str, progress=None) -> None:
    """The full training state (``accelerator.save_state``) in ``output_dir/name``; every process must call it.

    ``progress`` is written as JSON by the main process, so each process's share of the epoch's loss
    is gathered into it first (see :meth:`TrainingProgress.restore_process_share`). The state goes
    to ``.tmp-<name>`` and is renamed to ``name`` once every process has written its part.
    """
    if progress is not None:
        local = torch.tensor([progress.epoch_loss_sum], dtype=torch.float64, device=accelerator.device)
        progress.process_loss_sums = accelerator.gather(local).tolist()
    final, staging = output_dir / name, output_dir / f".tmp-{name}"
    if accelerator.is_main_process:  # left by a process killed while saving
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(output_dir / f".old-{name}", ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(staging)
    accelerator.wait_for_everyone()  # every process's part is written
    if accelerator.is_main_process:
        if progress is not None:
            (staging / PROGRESS_FILE).write_text(json.dumps(progress.state_dict(), indent=1) + "\n")  # renamed with it
        replace_folder(staging, final)
    accelerator.wait_for_everyone()  # the folder is complete before any process reads it
    logger.info(f"saved the training state to {final}")


def replace_folder(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an old ``target`` (a step saved again after a resume) goes first."""
    if target.exists():
        old = target.with_name(f".old-{target.name}")  # save_checkpoint removed any left by a kill
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old)
    else:
        os.replace(source, target)
    os.utime(target)  # "latest" goes by modification time


def json_safe(value):
    """NaN is not JSON (e.g. the correlation of constant predictions): write it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file: readers see the old file or the new, never half."""
    staging = path.with_name(f".tmp-{path.name}")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)
    return path


def write_results(output_dir: Path, results: dict) -> Path:
    return write_text_atomic(output_dir / "all_results.json", json.dumps(json_safe(results), indent=2) + "\n")


def push_output_dir(args) -> str:
    """Upload ``--output_dir`` (weights, tokenizer, code, card) to ``--hub_model_id``; a Hub error is a UsageError."""
    try:
        url = hub.push_to_hub(args.output_dir, args.hub_model_id, token=args.hub_token, private=args.hub_private_repo)
    except hub.HubError as error:
        raise UsageError(str(error)) from None
    logger.info(f"pushed {args.output_dir} to {url}")
    return url
