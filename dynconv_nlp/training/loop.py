"""The training loop every script shares: one ``fit()`` that takes the task's loss and evaluation.

    accelerator = start_run(args)                                # setup.py
    ... the script's data, tokenizer, model, dataloaders ...
    fitted = fit(args, accelerator, model, train_dataloader,
                 loss=lambda model, batch: model(**batch).loss,
                 evaluate=lambda model, loaders: {"eval_accuracy": ...},
                 eval_dataloaders={"validation": loader}, project="run_glue",
                 keep_best=KeepBest("eval_accuracy", tokenizer))
    fitted.model, fitted.progress.history, ...                   # what the script scores and saves

In named phases (as nanoGPT's ``train.py``): the optimizer and schedule, ``accelerator.prepare``,
resuming, then epochs of optimizer steps (gradient accumulation, clipping, a non-finite loss
stopped or skipped, step checkpoints, SIGINT/SIGTERM saved at a step boundary), each epoch closed
by its mean loss over every process, the task's evaluation, trackers, the best model kept and an
epoch checkpoint. Everything a resumed run needs is in the checkpoint, so a run stopped and
resumed takes the same steps as one that was not.
"""

import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..errors import UsageError
from .guard import StopOnSignal, skip_nonfinite_loss, stop_if_requested
from .loading import load_checkpoint
from .options import describe_recipe, tracking_enabled, warmup_steps
from .outputs import save_checkpoint, save_model
from .progress import TrainingProgress, optimizer_groups

logger = get_logger(__name__)

LossFn = Callable[[nn.Module, dict], torch.Tensor]
EvaluateFn = Callable[[nn.Module, dict], dict]


def count_input_tokens(batch: dict) -> int:
    """Tokens in a batch for the tokens/s figure: the real (unpadded) input tokens."""
    return int(batch["attention_mask"].sum())


def is_better(value: float, best: float) -> bool:
    """Is ``value`` an improvement on ``best``? NaN (e.g. a correlation of constant predictions) never is."""
    return not math.isnan(value) and (math.isnan(best) or value > best)


@dataclass
class KeepBest:
    """Save the model (and tokenizer) to ``--output_dir`` whenever ``metric`` (higher is better) improves."""

    metric: str
    tokenizer: object


@dataclass
class Fitted:
    """What ``fit`` leaves: the prepared model (last step's weights) and loaders, and the run's record."""

    model: nn.Module
    eval_dataloaders: dict
    progress: TrainingProgress
    max_train_steps: int
    train_seconds: float
    recipe: dict  # learning rate, warm-up steps, schedule, and which of them were defaults


def fit(
    args,
    accelerator: Accelerator,
    model: nn.Module,
    train_dataloader,
    *,
    loss: LossFn,
    evaluate: EvaluateFn,
    eval_dataloaders: dict | None = None,
    project: str = "training",
    keep_best: KeepBest | None = None,
    count_tokens: Callable[[dict], int] = count_input_tokens,
    batch_samplers: Iterable = (),
    epoch_logs: Callable[[nn.Module], dict] | None = None,
) -> Fitted:
    """Train ``model`` on ``train_dataloader`` with the options of :mod:`.options`; evaluate after every epoch.

    ``loss(model, batch)`` is the scalar the optimizer minimises; ``evaluate(model, eval_dataloaders)``
    returns the epoch's metrics (``eval_dataloaders`` prepared with the model, as DeepSpeed needs);
    ``epoch_logs(model)`` adds values for the trackers only. ``batch_samplers`` are samplers that
    accelerate cannot reach once it shards a loader (e.g. by token count), to be told the epoch.
    Trackers (``project`` names the run) are on with ``--with_tracking``.
    """
    tracking = tracking_enabled(args)
    # Optimizer and schedule; the number of updates is known once the data is split over processes.
    optimizer = torch.optim.AdamW(
        optimizer_groups(model, args.weight_decay), lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2)
    )
    eval_dataloaders = dict(eval_dataloaders or {})
    # One prepare call for model, optimizer and data: DeepSpeed sizes its batches from the dataloaders.
    model, optimizer, train_dataloader, *eval_list = accelerator.prepare(
        model, optimizer, train_dataloader, *eval_dataloaders.values()
    )
    eval_dataloaders = dict(zip(eval_dataloaders, eval_list))
    max_train_steps = count_train_steps(args, len(train_dataloader))
    num_epochs = math.ceil(max_train_steps / math.ceil(len(train_dataloader) / args.gradient_accumulation_steps))
    warmup = warmup_steps(args, max_train_steps)
    if warmup > max_train_steps:
        logger.warning(f"the warm-up ({warmup} steps) is longer than the run ({max_train_steps} steps): "
                       "the learning rate never reaches --learning_rate", main_process_only=True)
    # accelerate steps a prepared scheduler once per process for each optimizer step.
    lr_scheduler = accelerator.prepare(get_scheduler(
        args.lr_scheduler_type, optimizer,
        num_warmup_steps=warmup * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    ))
    progress = TrainingProgress(num_processes=accelerator.num_processes)
    tell_run_length(model, max_train_steps)

    if tracking:
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in vars(args).items() if k != "hub_token"}
        accelerator.init_trackers(project, hparams)
    if args.resume_from_checkpoint:
        resume(accelerator, args.resume_from_checkpoint, progress)

    recipe = {"recipe": args.recipe, "learning_rate": args.learning_rate, "num_warmup_steps": warmup,
              "lr_scheduler_type": args.lr_scheduler_type, "defaults": list(args.recipe_defaults)}
    total_batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info(describe_recipe(args, max_train_steps), main_process_only=True)
    logger.info(
        f"{len(train_dataloader.dataset)} training examples, {num_epochs} epochs, batch {total_batch}, "
        f"{max_train_steps} optimizer steps, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters",
        main_process_only=True,
    )
    bar = tqdm(
        range(max_train_steps), initial=progress.completed_steps, disable=not accelerator.is_local_main_process,
        mininterval=0.1 if sys.stderr.isatty() else 30,  # a log file gets a line every 30 s, not every step
    )
    start, tokens_seen, recent_loss = time.perf_counter(), 0, None
    output_dir = Path(args.output_dir)

    # Epochs of optimizer steps. SIGINT / SIGTERM save the training state at the next step boundary and stop.
    with StopOnSignal(accelerator) as stop:
        for epoch in range(progress.epoch, num_epochs):
            model.train()
            # The prepared loader re-seeds its sampler from its own epoch count when iterated; a resumed
            # run iterated its first epoch through skip_first_batches, so that count must be set here.
            train_dataloader.set_epoch(epoch)
            for sampler in batch_samplers:
                sampler.set_epoch(epoch)
            batches = train_dataloader
            if progress.batches_in_epoch:  # resuming in the middle of this epoch
                batches = accelerator.skip_first_batches(train_dataloader, progress.batches_in_epoch)
            for batch in batches:
                if progress.completed_steps >= max_train_steps:  # resumed from a checkpoint of the last step
                    break
                with accelerator.accumulate(model):
                    batch_loss = loss(model, batch)
                    skipped = skip_nonfinite_loss(batch_loss, progress, accelerator, args.skip_nonfinite_loss, output_dir)
                    if not skipped:  # a skipped batch ending an accumulation drops that update
                        accelerator.backward(batch_loss)
                        if accelerator.sync_gradients and args.max_grad_norm > 0:
                            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                        optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad()
                progress.batches_in_epoch += 1
                tokens_seen += count_tokens(batch) * accelerator.num_processes
                value = batch_loss.item()
                if not skipped:
                    progress.epoch_loss_sum += value
                    recent_loss = value if recent_loss is None else 0.98 * recent_loss + 0.02 * value
                if not accelerator.sync_gradients:
                    continue
                progress.completed_steps += 1
                state_logs = after_optimizer_step(model)
                bar.update(1)
                bar.set_postfix(loss=f"{recent_loss:.4f}" if recent_loss is not None else "-",
                                tok_s=f"{tokens_seen / (time.perf_counter() - start):.0f}", refresh=False)
                if tracking:
                    logs = {"train/loss": value, "train/lr": lr_scheduler.get_last_lr()[0]}
                    accelerator.log(logs | {f"train/{k}": v for k, v in state_logs.items()}, step=progress.completed_steps)
                if args.checkpointing_steps and args.checkpointing_steps.isdigit():
                    if progress.completed_steps % int(args.checkpointing_steps) == 0:
                        checkpoint(accelerator, output_dir, f"step_{progress.completed_steps}", progress)
                stop_if_requested(stop, output_dir, progress)
                if progress.completed_steps >= max_train_steps:
                    break
            end_epoch(args, accelerator, model, epoch, progress, evaluate, eval_dataloaders, tracking, keep_best, epoch_logs)
            stop_if_requested(stop, output_dir, progress)  # a signal during the evaluation
            if progress.completed_steps >= max_train_steps:
                break
    train_seconds = time.perf_counter() - start
    bar.close()
    if tracking:
        accelerator.end_training()
    return Fitted(model, eval_dataloaders, progress, max_train_steps, train_seconds, recipe)


def tell_run_length(model: nn.Module, max_train_steps: int) -> None:
    """Modules whose schedule is a share of the run (a :class:`~dynconv_nlp.layers.WidthBudget`'s
    warm-in) learn its length: their ``set_run_length(max_train_steps)``."""
    for name, module in model.named_modules():
        if callable(getattr(module, "set_run_length", None)):
            steps = module.set_run_length(max_train_steps)
            logger.info(f"{name}: warm-in over {steps} of the run's {max_train_steps} optimizer steps", main_process_only=True)


def after_optimizer_step(model: nn.Module) -> dict:
    """Step the modules that keep training state of their own beside the optimizer's (a
    :class:`~dynconv_nlp.layers.WidthBudget`'s multipliers): their ``after_optimizer_step()``, whose
    values are logged. Their state is in the model's buffers, so checkpoints keep it."""
    logs = {}
    for module in model.modules():
        if callable(getattr(module, "after_optimizer_step", None)):
            logs |= module.after_optimizer_step()
    return logs


def training_logs(model: nn.Module) -> dict:
    """The same modules' current state (``training_logs()``), for the epoch's metrics."""
    logs = {}
    for module in model.modules():
        if callable(getattr(module, "training_logs", None)):
            logs |= module.training_logs()
    return logs


def count_train_steps(args, batches_per_epoch: int) -> int:
    """Optimizer steps of the run: ``--max_train_steps``, or ``--num_train_epochs`` of ``batches_per_epoch``
    (per process: a prepared loader's length) in steps of ``--gradient_accumulation_steps`` batches."""
    if args.max_train_steps is not None:
        return args.max_train_steps
    return args.num_train_epochs * math.ceil(batches_per_epoch / args.gradient_accumulation_steps)


def resume(accelerator: Accelerator, checkpoint_dir: str, progress: TrainingProgress) -> None:
    """Load a checkpoint's training state into the prepared objects and ``progress``."""
    load_checkpoint(accelerator, checkpoint_dir, progress)
    if progress.num_processes != accelerator.num_processes:
        raise UsageError(
            f"{checkpoint_dir} was saved by {progress.num_processes} processes; resume it with "
            f"{progress.num_processes}, not {accelerator.num_processes} (its data position is per process)"
        )
    logger.info(f"resumed from {checkpoint_dir}: step {progress.completed_steps}, epoch {progress.epoch}",
                main_process_only=True)


def checkpoint(accelerator: Accelerator, output_dir: Path, name: str, progress: TrainingProgress) -> None:
    """Save the training state as ``output_dir/name`` and record it (checkpoint averaging reads the record)."""
    if name not in progress.checkpoints:
        progress.checkpoints.append(name)
    save_checkpoint(accelerator, output_dir, name, progress)


def end_epoch(args, accelerator, model, epoch, progress, evaluate, eval_dataloaders, tracking, keep_best, epoch_logs):
    """The epoch's mean loss over every process, the task's evaluation, the best model, an epoch checkpoint."""
    loss_sum, batch_count = accelerator.reduce(
        torch.tensor([progress.epoch_loss_sum, progress.batches_in_epoch], device=accelerator.device), "sum"
    ).tolist()
    progress.epoch, progress.batches_in_epoch, progress.epoch_loss_sum = epoch + 1, 0, 0.0
    metrics = {"train_loss": loss_sum / max(batch_count, 1)} | training_logs(model) | evaluate(model, eval_dataloaders)
    progress.history.append({"epoch": epoch, "step": progress.completed_steps} | metrics)
    logger.info(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), main_process_only=True)
    if tracking:
        accelerator.log(metrics | (epoch_logs(model) if epoch_logs else {}), step=progress.completed_steps)
    elif epoch_logs:
        epoch_logs(model)  # still logged to the console
    if keep_best is not None:
        value = metrics[keep_best.metric]
        if progress.best_metrics is None or is_better(value, progress.best_metrics[keep_best.metric]):
            progress.best_metrics, progress.best_epoch = metrics, epoch
            save_model(model, keep_best.tokenizer, accelerator, Path(args.output_dir))
            logger.info(f"new best {keep_best.metric} {value:.4f}: saved the model to {args.output_dir}",
                        main_process_only=True)
    if args.checkpointing_steps == "epoch":
        checkpoint(accelerator, Path(args.output_dir), f"epoch_{epoch}", progress)
