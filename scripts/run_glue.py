"""Fine-tune and evaluate a text classifier on GLUE, the generated negation_scope task, or your own files.

transformers' ``run_glue_no_trainer.py`` for DynConv models (or any sequence-classification model, so
baselines run through the same loop), with an ``accelerate`` loop that runs unchanged on one CPU, many
GPUs, FSDP or DeepSpeed, and needs no Hub access when data, model and tokenizer are local.

    python scripts/run_glue.py configs/glue/negation_scope.yaml              # no download, minutes on a CPU
    python scripts/run_glue.py configs/glue/sst2.yaml --glue_dir ../shared/data/glue
    python scripts/run_glue.py --task_name sst2 --model_name_or_path my-dynconv --output_dir out
    python scripts/run_glue.py --train_file train.csv --validation_file dev.csv --config_name configs/models/small.json
    accelerate launch scripts/run_glue.py configs/glue/sst2.yaml              # several processes

The first argument may be a YAML or JSON file of option values; options on the command line win.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import (
    is_tensorboard_available,
    is_trackio_available,
    set_seed,
)
from safetensors.torch import load_model as load_weights
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    get_scheduler,
)

import dynconv_nlp  # noqa: F401  registers the DynConv classes with the Auto classes
from dynconv_nlp import hub
from dynconv_nlp.data.classification import ClassificationData, load_classification_data
from dynconv_nlp.data.glue import HUB_DATASET
from dynconv_nlp.data.tokenizer import KINDS, train_tokenizer
from dynconv_nlp.metrics import glue_metrics
from dynconv_nlp.training import (
    ArgumentParser,
    StopOnSignal,
    TrainingProgress,
    UsageError,
    exit_on_expected_errors,
    optimizer_groups,
    parse_args_with_config_file,
    skip_nonfinite_loss,
    stop_if_requested,
)
from dynconv_nlp.training.loading import (
    from_pretrained,
    load_checkpoint,
    one_line_load_errors,
    tokenizer_from_pretrained,
)
from dynconv_nlp.training.outputs import save_checkpoint, save_model, write_results
from dynconv_nlp.training.provenance import write_run_info
from dynconv_nlp.training.setup import create_accelerator, resolve_resume

logger = get_logger(__name__)

SCHEDULES = ("linear", "cosine", "inverse_sqrt", "constant_with_warmup")
TRACKERS = ("tensorboard", "trackio", "all", "none")


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_argument_group("data")
    data.add_argument("--task_name", help="a GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli) or negation_scope")
    data.add_argument("--glue_dir", help="read --task_name from this folder in the GLUE TSV layout instead of the Hub")
    data.add_argument("--train_file", help="your own training data: .csv, .tsv, .json or .jsonl")
    data.add_argument("--validation_file")
    data.add_argument("--test_file", help="predicted with --do_predict; labels optional")
    data.add_argument("--text_columns", nargs="+", help="one or two text columns (default: detected)")
    data.add_argument("--label_column", default="label")
    data.add_argument("--encoding", default="utf-8", help="encoding of the data files")
    data.add_argument("--max_length", type=int, default=128, help="longer inputs are truncated")
    data.add_argument("--max_train_samples", type=int, help="use only the first N training examples")
    data.add_argument("--max_eval_samples", type=int)
    data.add_argument("--max_predict_samples", type=int)

    model = parser.add_argument_group("model and tokenizer")
    model.add_argument("--model_name_or_path", help="a checkpoint to fine-tune: DynConv or any sequence classifier")
    model.add_argument("--config_name", help="a config to train from scratch, e.g. configs/models/small.json")
    model.add_argument("--config_overrides", help='settings over the config, e.g. "width_penalty_coef=0.01,ramp=2"')
    model.add_argument("--tokenizer_name", help="default: the model's; for a new model, one trained on the data")
    model.add_argument("--tokenizer_type", choices=KINDS, default="wordpiece", help="kind of tokenizer to train")
    model.add_argument("--vocab_size", type=int, default=8000, help="size of a tokenizer trained on the data")
    model.add_argument("--trust_remote_code", action="store_true")
    model.add_argument("--ignore_mismatched_sizes", action="store_true", help="allow a new head of another size")

    train = parser.add_argument_group("training")
    train.add_argument("--per_device_train_batch_size", type=int, default=32)
    train.add_argument("--per_device_eval_batch_size", type=int, default=64)
    train.add_argument("--learning_rate", type=float, default=5e-5)
    train.add_argument("--weight_decay", type=float, default=0.0)
    train.add_argument("--num_train_epochs", type=int, default=3)
    train.add_argument("--max_train_steps", type=int, help="overrides --num_train_epochs")
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--lr_scheduler_type", choices=SCHEDULES, default="linear")
    train.add_argument("--num_warmup_steps", type=int, default=0)
    train.add_argument("--max_grad_norm", type=float, default=1.0, help="0 turns clipping off")
    train.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), help="default: accelerate's config")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--skip_nonfinite_loss", action="store_true", help="leave out batches whose loss is NaN or inf, instead of stopping")

    out = parser.add_argument_group("outputs")
    out.add_argument("--output_dir", required=True)
    out.add_argument("--overwrite_output_dir", action="store_true", help="write into a folder that holds another run")
    out.add_argument("--checkpointing_steps", help='save the training state every N steps, or "epoch"')
    out.add_argument("--resume_from_checkpoint", help='a step_N / epoch_N folder, or "latest" in --output_dir')
    out.add_argument("--with_tracking", action="store_true")
    out.add_argument("--report_to", choices=TRACKERS, default="tensorboard")
    out.add_argument("--do_predict", action="store_true", help="predict the test split(s), GLUE submission format")
    out.add_argument("--plot_widths", action="store_true", help="write widths.png: learned extents on a few examples")
    out.add_argument("--push_to_hub", action="store_true")
    out.add_argument("--hub_model_id", help="the Hub repository, e.g. user/dynconv-small-sst2")
    out.add_argument("--hub_token")
    out.add_argument("--hub_private_repo", action="store_true")
    args = parse_args_with_config_file(parser, argv)

    command_line = sys.argv[1:] if argv is None else argv
    if args.model_name_or_path and args.config_name and "--config_name" not in command_line:
        # A checkpoint on the command line replaces the config file's fresh model (the file's other settings stay).
        args.config_name = None
    if args.model_name_or_path and args.config_name:
        raise UsageError("pass --model_name_or_path (fine-tune) or --config_name (train from scratch), not both")
    if not args.model_name_or_path and not args.config_name:
        raise UsageError("pass --model_name_or_path to fine-tune a model or --config_name to train one from scratch")
    if args.push_to_hub and not args.hub_model_id:
        raise UsageError("--push_to_hub needs --hub_model_id, e.g. --hub_model_id user/dynconv-small-sst2")
    steps = args.checkpointing_steps
    if steps is not None and steps != "epoch" and not (steps.isdigit() and int(steps) > 0):
        raise UsageError(f'--checkpointing_steps must be a number of steps (1 or more) or "epoch", got {steps!r}')
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                 "num_train_epochs", "max_train_steps", "max_train_samples", "max_eval_samples", "max_predict_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name} must be 1 or more, got {getattr(args, name)}")
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise UsageError("--mixed_precision fp16 needs a GPU; on a CPU use --mixed_precision bf16 or no")
    if args.task_name and (args.validation_file or args.test_file):
        raise UsageError("--validation_file and --test_file go with --train_file; --task_name brings its own splits")
    if args.with_tracking and args.report_to in ("tensorboard", "trackio"):
        available = is_tensorboard_available if args.report_to == "tensorboard" else is_trackio_available
        if not available():
            raise UsageError(f"--report_to {args.report_to} needs the {args.report_to} package: pip install {args.report_to}")
    args.output_dir = Path(args.output_dir)
    return args


def load_tokenizer(args, data: ClassificationData, accelerator: Accelerator):
    """The given tokenizer, the model's, or one trained on the training texts (by the main process, then shared)."""
    name = args.tokenizer_name or args.model_name_or_path
    if name:
        option = "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path"
        return tokenizer_from_pretrained(name, option, trust_remote_code=args.trust_remote_code)
    if args.resume_from_checkpoint and (args.output_dir / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(args.output_dir)  # the one this run trained before it stopped
    if accelerator.is_main_process:
        train = data.splits["train"]
        texts = (text for column in data.text_columns for text in train[column])
        logger.info(f"training a {args.tokenizer_type} tokenizer of {args.vocab_size} tokens on the training texts")
        train_tokenizer(texts, args.vocab_size, args.tokenizer_type).save_pretrained(args.output_dir)
    accelerator.wait_for_everyone()
    return AutoTokenizer.from_pretrained(args.output_dir)


def load_config(args, data: ClassificationData):
    """The model's config with the task's labels; a config that cannot be loaded is a :class:`UsageError`."""
    labels = {"num_labels": data.num_labels, "finetuning_task": data.task.name if data.task else None}
    if not data.is_regression:
        labels |= {"id2label": dict(enumerate(data.label_names)), "label2id": {n: i for i, n in enumerate(data.label_names)}}
    labels["problem_type"] = "regression" if data.is_regression else "single_label_classification"
    name = args.model_name_or_path or args.config_name
    option = "--model_name_or_path" if args.model_name_or_path else "--config_name"
    with one_line_load_errors(f"the config of {option} {name}"):
        config = AutoConfig.from_pretrained(name, trust_remote_code=args.trust_remote_code, **labels)
        if args.config_overrides:
            config.update_from_string(args.config_overrides)
            config.validate()  # update_from_string checks nothing
    if args.plot_widths and config.model_type != "dynconv":
        raise UsageError(f"--plot_widths needs a DynConv model; a {config.model_type} model has no learned widths")
    return config


def build_model(args, config, tokenizer):
    """A pre-trained model with a head for the task's labels, or a new model from ``--config_name``."""
    if args.model_name_or_path:
        return from_pretrained(
            AutoModelForSequenceClassification,
            args.model_name_or_path,
            "--model_name_or_path",
            config=config,
            ignore_mismatched_sizes=args.ignore_mismatched_sizes,
            trust_remote_code=args.trust_remote_code,
        )
    # A new model takes its vocabulary and special ids from the tokenizer.
    config.vocab_size = len(tokenizer)
    config.pad_token_id = tokenizer.pad_token_id
    return AutoModelForSequenceClassification.from_config(config, trust_remote_code=args.trust_remote_code)


def tokenize(args, data: ClassificationData, tokenizer, accelerator: Accelerator) -> dict[str, datasets.Dataset]:
    """Every split as model inputs plus ``labels`` (test splits without labels) and ``idx``."""
    limits = {"train": args.max_train_samples} | dict.fromkeys(data.eval_splits, args.max_eval_samples)
    if args.do_predict:
        limits |= dict.fromkeys(data.test_splits, args.max_predict_samples)

    def encode(examples):
        texts = [examples[column] for column in data.text_columns]
        return tokenizer(*texts, truncation=True, max_length=args.max_length)

    encoded = {}
    with accelerator.main_process_first():
        for split, limit in limits.items():
            dataset = data.splits[split]
            if limit is not None:
                dataset = dataset.select(range(min(limit, len(dataset))))
            keep = ["idx"] + (["label"] if "label" in dataset.column_names else [])
            dataset = dataset.map(
                encode, batched=True, remove_columns=[c for c in dataset.column_names if c not in keep],
                desc=f"tokenizing {split}",
            )
            encoded[split] = dataset.rename_column("label", "labels") if "label" in keep else dataset
    return encoded


def evaluate(model, dataloader, accelerator: Accelerator, data: ClassificationData):
    """Predictions [N] (class ids or scores) and labels [N] over the whole split, each example once."""
    model.eval()
    predictions, references = [], []
    for batch in dataloader:
        with torch.no_grad():
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        prediction = logits.squeeze(-1).float() if data.is_regression else logits.argmax(-1)
        # gather_for_metrics drops the copies that even batches add on the last step of some processes.
        prediction, labels = accelerator.gather_for_metrics((prediction, batch["labels"]))
        predictions.append(prediction.cpu())
        references.append(labels.cpu())
    return torch.cat(predictions), torch.cat(references)


def log_widths(model, dataset: datasets.Dataset, collate, accelerator: Accelerator) -> dict[str, float]:
    """Log the learned extents per layer on 64 evaluation examples; return each layer's share of K used."""
    model = accelerator.unwrap_model(model)
    if getattr(model.config, "model_type", None) != "dynconv":
        return {}
    rows = dataset.select(range(min(64, len(dataset)))).remove_columns([c for c in ("idx", "labels") if c in dataset.column_names])
    batch = collate(list(rows)).to(accelerator.device)
    summary = hub.summarize_widths(model, batch["input_ids"], batch["attention_mask"])
    logger.info("learned widths (mean over real tokens and heads):\n" + hub.format_widths(summary))
    return {f"widths/layer_{w.layer}": w.mean_fraction for w in summary}


def write_predictions(args, data: ClassificationData, split: str, predictions: torch.Tensor) -> Path:
    """A GLUE submission file (``SST-2.tsv``, ``MNLI-m.tsv``, ...): index, prediction; label names for NLI tasks."""
    name = data.task.submission_name(split) if data.task else f"predict_results_{split}.tsv"
    path = args.output_dir / name
    with path.open("w", encoding="utf-8") as f:
        f.write("index\tprediction\n")
        for index, value in enumerate(predictions.tolist()):
            if data.is_regression:
                text = f"{min(max(value, 0.0), 5.0):.3f}" if data.task else f"{value:.6g}"
            elif data.task and data.task.name in ("sst2", "cola", "mrpc", "qqp", "wnli"):
                text = str(value)  # GLUE wants 0/1 for these
            else:
                text = data.label_names[value]
            f.write(f"{index}\t{text}\n")
    return path


def _better(value: float, best: float) -> bool:
    """Is ``value`` an improvement on ``best``? NaN (e.g. a correlation of constant predictions) never is."""
    return not math.isnan(value) and (math.isnan(best) or value > best)


@exit_on_expected_errors
def main(argv=None) -> dict:
    args = parse_args(argv)
    tracking = args.with_tracking and args.report_to != "none"
    accelerator = create_accelerator(args, tracking)
    resolve_resume(args)
    accelerator.wait_for_everyone()  # every process checked before any writes
    set_seed(args.seed)

    # Data, tokenizer, model.
    data = load_classification_data(
        args.task_name, args.glue_dir, args.train_file, args.validation_file, args.test_file,
        args.text_columns, args.label_column, args.encoding,
    )
    if args.do_predict and not data.test_splits:
        raise UsageError("--do_predict needs test data: a test split in the task's data, or --test_file")
    if args.push_to_hub and not (args.hub_token or hub.get_token()):
        raise UsageError("pushing to the Hub needs a token: run `hf auth login`, set HF_TOKEN or pass --hub_token")
    config = load_config(args, data)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(args, data, accelerator)
    model = build_model(args, config, tokenizer)
    if accelerator.is_main_process:  # what it takes to repeat this run: versions, options, seed, data hashes
        write_run_info(args.output_dir, args, argv, data.splits, model.config, accelerator)
    encoded = tokenize(args, data, tokenizer, accelerator)
    collate = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if accelerator.mixed_precision != "no" else None)
    train_dataloader = DataLoader(
        encoded["train"].remove_columns("idx"), shuffle=True, collate_fn=collate,
        batch_size=args.per_device_train_batch_size,
        # Its own generator: starting an iterator draws a seed, which must not move the global RNG
        # that dropout uses, or a resumed run would diverge from an uninterrupted one.
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloaders = {
        split: DataLoader(encoded[split].remove_columns("idx"), collate_fn=collate, batch_size=args.per_device_eval_batch_size)
        for split in data.eval_splits
    }

    # Optimizer and schedule; the number of updates is known once the data is split over processes.
    optimizer = torch.optim.AdamW(optimizer_groups(model, args.weight_decay), lr=args.learning_rate)
    # One prepare call for model, optimizer and data: DeepSpeed sizes its batches from the dataloaders.
    model, optimizer, train_dataloader, *eval_list = accelerator.prepare(
        model, optimizer, train_dataloader, *eval_dataloaders.values()
    )
    eval_dataloaders = dict(zip(eval_dataloaders, eval_list))
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps if args.max_train_steps is not None else args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    # accelerate steps a prepared scheduler once per process for each optimizer step.
    lr_scheduler = get_scheduler(
        args.lr_scheduler_type, optimizer,
        num_warmup_steps=args.num_warmup_steps * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    )
    lr_scheduler = accelerator.prepare(lr_scheduler)
    progress = TrainingProgress(num_processes=accelerator.num_processes)

    if tracking:
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in vars(args).items() if k != "hub_token"}
        accelerator.init_trackers("run_glue", hparams)
    if args.resume_from_checkpoint:
        load_checkpoint(accelerator, args.resume_from_checkpoint, progress)
        if progress.num_processes != accelerator.num_processes:
            raise UsageError(
                f"{args.resume_from_checkpoint} was saved by {progress.num_processes} processes; resume it with "
                f"{progress.num_processes}, not {accelerator.num_processes} (its data position is per process)"
            )
        logger.info(f"resumed from {args.resume_from_checkpoint}: step {progress.completed_steps}, epoch {progress.epoch}")

    total_batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info(
        f"{len(encoded['train'])} training examples, {num_epochs} epochs, batch {total_batch}, "
        f"{max_train_steps} optimizer steps, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters"
    )
    bar = tqdm(
        range(max_train_steps), initial=progress.completed_steps, disable=not accelerator.is_local_main_process,
        mininterval=0.1 if sys.stderr.isatty() else 30,  # a log file gets a line every 30 s, not every step
    )
    start = time.perf_counter()
    tokens_seen, recent_loss, eval_counts = 0, None, {}

    # Train: an evaluation after every epoch; the best model by the task's main metric is kept in output_dir.
    # SIGINT / SIGTERM save the training state at the next step boundary and stop.
    with StopOnSignal(accelerator) as stop:
        for epoch in range(progress.epoch, num_epochs):
            model.train()
            train_dataloader.set_epoch(epoch)
            batches = train_dataloader
            if progress.batches_in_epoch:  # resuming in the middle of this epoch
                batches = accelerator.skip_first_batches(train_dataloader, progress.batches_in_epoch)
            for batch in batches:
                if progress.completed_steps >= max_train_steps:  # resumed from a checkpoint of the last step
                    break
                with accelerator.accumulate(model):
                    loss = model(**batch).loss
                    skipped = skip_nonfinite_loss(loss, progress, accelerator, args.skip_nonfinite_loss, args.output_dir)
                    if not skipped:  # a skipped batch ending an accumulation drops that update
                        accelerator.backward(loss)
                        if accelerator.sync_gradients and args.max_grad_norm > 0:
                            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                        optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad()
                progress.batches_in_epoch += 1
                tokens_seen += int(batch["attention_mask"].sum()) * accelerator.num_processes
                if not skipped:
                    recent_loss = loss.item() if recent_loss is None else 0.98 * recent_loss + 0.02 * loss.item()
                    progress.epoch_loss_sum += loss.item()
                if not accelerator.sync_gradients:
                    continue
                progress.completed_steps += 1
                bar.update(1)
                bar.set_postfix(loss=f"{recent_loss:.4f}" if recent_loss is not None else "-", tok_s=f"{tokens_seen / (time.perf_counter() - start):.0f}", refresh=False)
                if tracking:
                    accelerator.log({"train/loss": loss.item(), "train/lr": lr_scheduler.get_last_lr()[0]}, step=progress.completed_steps)
                if args.checkpointing_steps and args.checkpointing_steps.isdigit():
                    if progress.completed_steps % int(args.checkpointing_steps) == 0:
                        save_checkpoint(accelerator, args.output_dir, f"step_{progress.completed_steps}", progress)
                stop_if_requested(stop, args.output_dir, progress)
                if progress.completed_steps >= max_train_steps:
                    break

            # The epoch's mean loss over every process's batches.
            loss_sum, batch_count = accelerator.reduce(
                torch.tensor([progress.epoch_loss_sum, progress.batches_in_epoch], device=accelerator.device), "sum"
            ).tolist()
            train_loss = loss_sum / max(batch_count, 1)
            progress.epoch, progress.batches_in_epoch, progress.epoch_loss_sum = epoch + 1, 0, 0.0
            metrics = {}
            for split, dataloader in eval_dataloaders.items():
                predictions, references = evaluate(model, dataloader, accelerator, data)
                eval_counts[split] = len(predictions)
                prefix = "eval_mm_" if split.endswith("mismatched") else "eval_"
                metrics |= {prefix + k: v for k, v in glue_metrics(data.metric, predictions.numpy(), references.numpy()).items()}
            metrics["train_loss"] = train_loss
            widths = log_widths(model, encoded[data.eval_splits[0]], collate, accelerator)
            logger.info(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if tracking:
                accelerator.log(metrics | widths, step=progress.completed_steps)
            main_value = metrics["eval_" + data.main_metric]
            progress.history.append({"epoch": epoch, "step": progress.completed_steps} | metrics)
            if progress.best_metrics is None or _better(main_value, progress.best_metrics["eval_" + data.main_metric]):
                progress.best_metrics, progress.best_epoch = metrics, epoch
                save_model(model, tokenizer, accelerator, args.output_dir)
                logger.info(f"new best {data.main_metric} {main_value:.4f}: saved the model to {args.output_dir}")
            if args.checkpointing_steps == "epoch":
                save_checkpoint(accelerator, args.output_dir, f"epoch_{epoch}", progress)
            stop_if_requested(stop, args.output_dir, progress)  # a signal during the evaluation
            if progress.completed_steps >= max_train_steps:
                break
    train_seconds = time.perf_counter() - start
    if tracking:
        accelerator.end_training()

    # The best epoch's model, for predictions, the width plot and the card.
    accelerator.wait_for_everyone()
    best_weights = args.output_dir / "model.safetensors"
    if not best_weights.is_file():
        raise UsageError(f"{best_weights} is missing: resume into the --output_dir of the run that saved it")
    load_weights(accelerator.unwrap_model(model), str(best_weights), strict=True)
    results = dict(progress.best_metrics or {}) | {
        "best_epoch": progress.best_epoch,
        "epochs": progress.epoch,
        "steps": progress.completed_steps,
        "train_samples": len(encoded["train"]),
        "eval_samples": eval_counts,  # examples scored per split: each exactly once, however many processes
        "train_seconds": round(train_seconds, 1),
        "history": progress.history,
    }
    if args.do_predict:
        for split in data.test_splits:
            dataset = encoded[split].remove_columns("idx")
            # GLUE hides its test labels as -1.
            has_labels = "labels" in dataset.column_names and set(dataset["labels"]) != {-1}
            if not has_labels:  # evaluate() gathers a labels column all the same
                dataset = dataset.remove_columns([c for c in ["labels"] if c in dataset.column_names])
                dataset = dataset.add_column("labels", [0] * len(dataset))
            dataloader = accelerator.prepare(
                DataLoader(dataset, collate_fn=collate, batch_size=args.per_device_eval_batch_size)
            )
            predictions, references = evaluate(model, dataloader, accelerator, data)
            if has_labels:
                test_metrics = glue_metrics(data.metric, predictions.numpy(), references.numpy())
                results |= {f"{split}_{k}": v for k, v in test_metrics.items()}
            if accelerator.is_main_process:
                logger.info(f"wrote the {split} predictions to {write_predictions(args, data, split, predictions)}")

    if accelerator.is_main_process:
        write_results(args.output_dir, results)
        finish_outputs(args, data, accelerator.unwrap_model(model), tokenizer, encoded, results)
    accelerator.wait_for_everyone()
    return results


def finish_outputs(args, data: ClassificationData, model, tokenizer, encoded, results: dict) -> None:
    """Main process: the width plot, the model card and the push, from the best model."""
    is_dynconv = getattr(model.config, "model_type", None) == "dynconv"
    first_eval = data.splits[data.eval_splits[0]]
    if args.plot_widths:
        if not is_dynconv:
            raise UsageError("--plot_widths needs a DynConv model; this one has no learned widths")
        from dynconv_nlp.plotting import plot_widths

        texts = first_eval[data.text_columns[0]][:3]
        logger.info(f"wrote the width plot to {plot_widths(model, tokenizer, texts, args.output_dir / 'widths.png')}")
    best = {k: v for k, v in results.items() if k.startswith("eval_") and isinstance(v, float)}
    eval_metrics = {k.removeprefix("eval_"): v for k, v in best.items() if not k.startswith("eval_mm_")}
    widths = None
    if is_dynconv:
        sample = tokenizer(*[first_eval[c][:64] for c in data.text_columns], truncation=True, max_length=args.max_length,
                           padding=True, return_tensors="pt").to(model.device)
        widths = hub.summarize_widths(model, sample["input_ids"], sample["attention_mask"])
    task = data.task
    hub.write_model_card(
        args.output_dir,
        model.config,
        model_name=args.hub_model_id or args.output_dir.name,
        task="text-classification",
        dataset_name=("GLUE " + task.folder if not task.generated else "negation_scope (generated)") if task else "custom",
        dataset_type=(task.name if task.generated else HUB_DATASET) if task else "custom",
        dataset_config=task.name if task and not task.generated else None,
        metrics=eval_metrics,
        widths=widths,
    )
    if args.push_to_hub:
        try:
            url = hub.push_to_hub(args.output_dir, args.hub_model_id, token=args.hub_token, private=args.hub_private_repo)
        except hub.HubError as error:
            raise UsageError(str(error)) from None
        logger.info(f"pushed {args.output_dir} to {url}")


if __name__ == "__main__":
    main()
