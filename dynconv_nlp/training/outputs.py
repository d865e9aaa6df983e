"""Writing a run's outputs from an accelerate loop: the model, its training state, and results."""

import json
import logging
import math
from pathlib import Path

import torch
from accelerate import Accelerator

logger = logging.getLogger(__name__)


def save_model(model, tokenizer, accelerator: Accelerator, output_dir: Path) -> None:
    """``save_pretrained`` of the model and tokenizer, written by the main process; every process must call it."""
    accelerator.wait_for_everyone()
    # get_state_dict gathers the full weights under FSDP and DeepSpeed ZeRO-3 (every process must call it).
    accelerator.unwrap_model(model).save_pretrained(
        output_dir,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        state_dict=accelerator.get_state_dict(model),
    )
    if accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)


def save_checkpoint(accelerator: Accelerator, output_dir: Path, name: str, progress=None) -> None:
    """The full training state (``accelerator.save_state``) in ``output_dir/name``; every process must call it.

    accelerate saves ``progress`` from the main process only, so each process's share of the epoch's
    loss is gathered into it first (see :meth:`TrainingProgress.restore_process_share`).
    """
    if progress is not None:
        local = torch.tensor([progress.epoch_loss_sum], dtype=torch.float64, device=accelerator.device)
        progress.process_loss_sums = accelerator.gather(local).tolist()
    accelerator.save_state(output_dir / name)
    accelerator.wait_for_everyone()  # the folder is complete before any process reads it
    logger.info(f"saved the training state to {output_dir / name}")


def json_safe(value):
    """NaN is not JSON (e.g. the correlation of constant predictions): write it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_results(output_dir: Path, results: dict) -> Path:
    path = output_dir / "all_results.json"
    path.write_text(json.dumps(json_safe(results), indent=2) + "\n")
    return path
