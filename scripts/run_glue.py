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
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from safetensors.torch import load_model as load_weights
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
)

import dynconv_nlp  # noqa: F401  registers the DynConv classes with the Auto classes
from dynconv_nlp import hub
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors, parse_args_with_config_file
from dynconv_nlp.data.classification import ClassificationData, load_classification_data
from dynconv_nlp.data.glue import HUB_DATASET
from dynconv_nlp.data.tokenizer import KINDS, train_tokenizer
from dynconv_nlp.errors import UsageError
from dynconv_nlp.metrics import glue_metrics
from dynconv_nlp.training.loading import from_pretrained, load_config, load_or_train_tokenizer
from dynconv_nlp.training.loop import KeepBest, fit
from dynconv_nlp.training.options import add_training_options, check_training_options, require_positive
from dynconv_nlp.training.outputs import push_output_dir, write_results
from dynconv_nlp.training.provenance import write_run_info
from dynconv_nlp.training.setup import start_run
from dynconv_nlp.window_attention import register_window_attention

logger = get_logger(__name__)


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
    data.add_argument("--pad_to_max_length", action="store_true",
                      help="pad every batch to --max_length (fixed shapes, e.g. for TPUs or export), not to its longest input")
    data.add_argument("--max_train_samples", type=int, help="use only the first N training examples")
    data.add_argument("--max_eval_samples", type=int)
    data.add_argument("--max_predict_samples", type=int)

    groups = add_training_options(parser)
    groups.model.add_argument("--tokenizer_type", choices=KINDS, default="wordpiece", help="kind of tokenizer to train")
    groups.model.add_argument("--vocab_size", type=int, default=8000, help="size of a tokenizer trained on the data")
    groups.model.add_argument("--ignore_mismatched_sizes", action="store_true", help="allow a new head of another size")
    groups.model.add_argument("--attn_implementation",
                              help="a Transformer checkpoint's attention (transformers' attn_implementation: sdpa, "
                                   "eager, ...); sdpa_window_<w> lets each token attend to ±w tokens only")
    groups.outputs.add_argument("--do_predict", action="store_true", help="predict the test split(s), GLUE submission format")
    groups.outputs.add_argument("--plot_widths", action="store_true", help="write widths.png: learned extents on a few examples")
    args = parse_args_with_config_file(parser, argv)

    check_training_options(args, argv)
    require_positive(args, ("max_train_samples", "max_eval_samples", "max_predict_samples", "max_length", "vocab_size"))
    if args.task_name and (args.validation_file or args.test_file):
        raise UsageError("--validation_file and --test_file go with --train_file; --task_name brings its own splits")
    if args.attn_implementation and not args.model_name_or_path:
        raise UsageError("--attn_implementation sets the attention of a pretrained Transformer: give --model_name_or_path")
    if args.attn_implementation:
        register_window_attention(args.attn_implementation)
    return args


def load_tokenizer(args, data: ClassificationData, accelerator: Accelerator):
    """The given tokenizer, the model's, or one trained on the training texts."""

    def train():
        texts = (text for column in data.text_columns for text in data.splits["train"][column])
        logger.info(f"training a {args.tokenizer_type} tokenizer of {args.vocab_size} tokens on the training texts")
        return train_tokenizer(texts, args.vocab_size, args.tokenizer_type)

    return load_or_train_tokenizer(args, accelerator, train)


def config_for_task(args, data: ClassificationData):
    """The model's config with the task's labels; a config that cannot be loaded is a :class:`UsageError`."""
    labels = {"num_labels": data.num_labels, "finetuning_task": data.task.name if data.task else None}
    if not data.is_regression:
        labels |= {"id2label": dict(enumerate(data.label_names)), "label2id": {n: i for i, n in enumerate(data.label_names)}}
    labels["problem_type"] = "regression" if data.is_regression else "single_label_classification"
    config = load_config(args, **labels)
    if args.plot_widths and config.model_type != "dynconv":
        raise UsageError(f"--plot_widths needs a DynConv model; a {config.model_type} model has no learned widths")
    if args.attn_implementation and config.model_type == "dynconv":
        raise UsageError("--attn_implementation is for Transformer checkpoints; a DynConv model's attention_layers use SDPA")
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
            **({"attn_implementation": args.attn_implementation} if args.attn_implementation else {}),
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
        padding = "max_length" if args.pad_to_max_length else False
        return tokenizer(*texts, truncation=True, max_length=args.max_length, padding=padding)

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
    summary = hub.summarize_widths(model, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
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


@exit_on_expected_errors
def main(argv=None) -> dict:
    args = parse_args(argv)
    accelerator = start_run(args)

    # The task: data, tokenizer, model.
    data = load_classification_data(
        args.task_name, args.glue_dir, args.train_file, args.validation_file, args.test_file,
        args.text_columns, args.label_column, args.encoding,
    )
    if args.do_predict and not data.test_splits:
        raise UsageError("--do_predict needs test data: a test split in the task's data, or --test_file")
    config = config_for_task(args, data)
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
    eval_counts = {}

    def evaluate_splits(model, dataloaders) -> dict:
        metrics = {}
        for split, dataloader in dataloaders.items():
            predictions, references = evaluate(model, dataloader, accelerator, data)
            eval_counts[split] = len(predictions)
            prefix = "eval_mm_" if split.endswith("mismatched") else "eval_"
            metrics |= {prefix + k: v for k, v in glue_metrics(data.metric, predictions.numpy(), references.numpy()).items()}
        return metrics

    # Train: an evaluation after every epoch; the best model by the task's main metric is kept in output_dir.
    fitted = fit(
        args, accelerator, model, train_dataloader,
        loss=lambda model, batch: model(**batch).loss,  # DynConv's includes the width penalty the optimizer should see
        evaluate=evaluate_splits, eval_dataloaders=eval_dataloaders, project="run_glue",
        keep_best=KeepBest("eval_" + data.main_metric, tokenizer),
        epoch_logs=lambda model: log_widths(model, encoded[data.eval_splits[0]], collate, accelerator),
    )
    model, progress = fitted.model, fitted.progress

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
        "train_seconds": round(fitted.train_seconds, 1),
        "recipe": fitted.recipe,
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
        widths = hub.summarize_widths(model, sample["input_ids"], sample["attention_mask"], sample.get("token_type_ids"))
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
        push_output_dir(args)


if __name__ == "__main__":
    main()
