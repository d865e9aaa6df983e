"""Pretrain a masked language model: a DynConv encoder (or any transformers masked-LM), with accelerate.

transformers' ``run_mlm_no_trainer.py``: texts are tokenized and grouped into blocks of
``--max_seq_length`` tokens (or kept one per example with ``--line_by_line``), masked anew every
batch (15%: 80% [MASK], 10% a random token, 10% unchanged; ``--whole_word_mask`` masks every piece
of a word together), and the model learns to restore them. The saved model and tokenizer are what
``run_glue.py --model_name_or_path`` fine-tunes: the encoder carries over, the classifier is new.

    python scripts/run_mlm.py configs/mlm/offline_small.yaml      # GLUE + Multi30k training text, offline
    python scripts/run_mlm.py --dataset_name wikitext --dataset_config_name wikitext-103-raw-v1 \\
        --config_name configs/models/small.json --output_dir outputs/mlm_wikitext
    accelerate launch scripts/run_mlm.py configs/mlm/offline_small.yaml

Data: ``--dataset_name`` (a Hub dataset with a ``text`` column), or local ``--train_file`` files
(plain text one per line, gzip allowed, or CSV / TSV / JSON lines with ``--text_column``) and
``--glue_dir`` with ``--glue_tasks`` (their training splits only). Without ``--validation_file``,
``--validation_split_percentage`` of the training texts is held out for the perplexity.
"""

import argparse
import hashlib
import itertools
import math
import sys
import time
from pathlib import Path

import datasets
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import (
    is_tensorboard_available,
    is_trackio_available,
    set_seed,
)
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling, get_scheduler

import dynconv_nlp  # noqa: F401  registers the DynConv classes with the Auto classes
from dynconv_nlp import hub
from dynconv_nlp.data.text import load_text_corpus
from dynconv_nlp.data.tokenizer import KINDS, train_tokenizer
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
    first_line,
    from_pretrained,
    load_checkpoint,
    one_line_load_errors,
    tokenizer_from_pretrained,
)
from dynconv_nlp.training.outputs import save_checkpoint, save_model, write_results
from dynconv_nlp.training.provenance import write_run_info
from dynconv_nlp.training.setup import create_accelerator, resolve_resume

logger = get_logger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", help="a Hub dataset with a text column, e.g. wikitext")
    data.add_argument("--dataset_config_name")
    data.add_argument("--train_file", nargs="+", help="text (one per line, gzip allowed), CSV, TSV or JSON lines")
    data.add_argument("--glue_dir", help="a GLUE folder (SST-2/, CoLA/, ...): see --glue_tasks")
    data.add_argument("--glue_tasks", nargs="+", help="pretrain on these tasks' training splits, e.g. cola sst2")
    data.add_argument("--validation_file")
    data.add_argument("--validation_split_percentage", type=float, default=5.0,
                      help="without --validation_file, hold out this share of the training texts")
    data.add_argument("--text_column", help="the text column of CSV / TSV / JSON files (default: text or sentence)")
    data.add_argument("--encoding", default="utf-8")
    data.add_argument("--max_seq_length", type=int, default=128, help="tokens per block (or per text, line by line)")
    data.add_argument("--line_by_line", action="store_true", help="one text per example instead of grouped blocks")
    data.add_argument("--max_train_samples", type=int, help="use only the first N blocks")
    data.add_argument("--max_eval_samples", type=int)

    model = parser.add_argument_group("model and tokenizer")
    model.add_argument("--model_name_or_path", help="a masked-LM checkpoint to train further")
    model.add_argument("--config_name", help="a config to train from scratch, e.g. configs/models/small.json")
    model.add_argument("--config_overrides", help='e.g. "width_penalty_coef=0.01,hidden_dropout_prob=0.1"')
    model.add_argument("--tokenizer_name", help="default: the model's; for a new model, one trained on the texts")
    model.add_argument("--tokenizer_type", choices=KINDS, default="wordpiece")
    model.add_argument("--vocab_size", type=int, default=8000, help="size of a tokenizer trained on the texts")
    model.add_argument("--trust_remote_code", action="store_true")

    train = parser.add_argument_group("training")
    train.add_argument("--mlm_probability", type=float, default=0.15)
    train.add_argument("--whole_word_mask", action="store_true")
    train.add_argument("--per_device_train_batch_size", type=int, default=32)
    train.add_argument("--per_device_eval_batch_size", type=int, default=64)
    train.add_argument("--learning_rate", type=float, default=5e-4)
    train.add_argument("--weight_decay", type=float, default=0.01)
    train.add_argument("--num_train_epochs", type=int, default=3)
    train.add_argument("--max_train_steps", type=int, help="overrides --num_train_epochs")
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--lr_scheduler_type", choices=("linear", "cosine", "inverse_sqrt", "constant_with_warmup"),
                       default="linear")
    train.add_argument("--num_warmup_steps", type=int, default=500)
    train.add_argument("--max_grad_norm", type=float, default=1.0, help="0 turns clipping off")
    train.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"))
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--skip_nonfinite_loss", action="store_true", help="leave out batches whose loss is NaN or inf, instead of stopping")

    out = parser.add_argument_group("outputs")
    out.add_argument("--output_dir", required=True)
    out.add_argument("--overwrite_output_dir", action="store_true")
    out.add_argument("--checkpointing_steps", help='save the training state every N steps, or "epoch"')
    out.add_argument("--resume_from_checkpoint", help='a step_N / epoch_N folder, or "latest" in --output_dir')
    out.add_argument("--with_tracking", action="store_true")
    out.add_argument("--report_to", choices=("tensorboard", "trackio", "all", "none"), default="tensorboard")
    out.add_argument("--push_to_hub", action="store_true")
    out.add_argument("--hub_model_id")
    out.add_argument("--hub_token")
    args = parse_args_with_config_file(parser, argv)

    if bool(args.model_name_or_path) == bool(args.config_name):
        raise UsageError("pass --model_name_or_path (train further) or --config_name (train from scratch), one of them")
    local = bool(args.train_file or args.glue_tasks)
    if bool(args.dataset_name) == local:
        raise UsageError("pass --dataset_name (the Hub) or local text (--train_file and/or --glue_dir with --glue_tasks)")
    if bool(args.glue_dir) != bool(args.glue_tasks):
        raise UsageError("--glue_dir and --glue_tasks go together")
    if args.dataset_name and args.validation_file:
        raise UsageError("--dataset_name brings its own splits: leave out --validation_file")
    if not 0 < args.validation_split_percentage < 100:
        raise UsageError(f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}")
    if not 0 < args.mlm_probability < 1:
        raise UsageError(f"--mlm_probability must be in (0, 1), got {args.mlm_probability}")
    if args.push_to_hub and not args.hub_model_id:
        raise UsageError("--push_to_hub needs --hub_model_id")
    steps = args.checkpointing_steps
    if steps is not None and steps != "epoch" and not (steps.isdigit() and int(steps) > 0):
        raise UsageError(f'--checkpointing_steps must be a number of steps (1 or more) or "epoch", got {steps!r}')
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "num_train_epochs", "max_train_steps",
                 "gradient_accumulation_steps", "max_train_samples", "max_eval_samples", "max_seq_length", "vocab_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name} must be 1 or more, got {getattr(args, name)}")
    if args.with_tracking and args.report_to in ("tensorboard", "trackio"):
        available = is_tensorboard_available if args.report_to == "tensorboard" else is_trackio_available
        if not available():
            raise UsageError(f"--report_to {args.report_to} needs the {args.report_to} package: pip install {args.report_to}")
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise UsageError("--mixed_precision fp16 needs a GPU; on a CPU use --mixed_precision bf16 or no")
    args.output_dir = Path(args.output_dir)
    return args


def load_data(args) -> datasets.DatasetDict:
    """"train" and "validation", each a ``text`` column."""
    if args.dataset_name:
        try:
            splits = datasets.load_dataset(args.dataset_name, args.dataset_config_name)
        except Exception as error:  # offline, or no such dataset
            reason = first_line(error)
            raise UsageError(f"could not load {args.dataset_name} ({reason}); for local text pass --train_file") from None
        column = args.text_column or "text"
        if column not in splits["train"].column_names:
            raise UsageError(f"{args.dataset_name} has no {column!r} column ({', '.join(splits['train'].column_names)}); "
                             "pass --text_column")
        splits = datasets.DatasetDict({k: v.select_columns([column]).rename_column(column, "text") for k, v in splits.items()})
    else:
        splits = load_text_corpus(args.train_file, args.glue_dir, args.glue_tasks, args.validation_file,
                                  args.text_column, args.encoding)
    if "validation" not in splits:
        # Held out before tokenization, with the run's seed: the same texts on every process and resume.
        held_out = splits["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=args.seed)
        splits = datasets.DatasetDict(train=held_out["train"], validation=held_out["test"])
    return splits


def load_tokenizer(args, splits: datasets.DatasetDict, accelerator: Accelerator):
    """The given tokenizer, the model's, or one trained on the training texts (BERT-style, with [MASK])."""
    name = args.tokenizer_name or args.model_name_or_path
    if name:
        option = "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path"
        tokenizer = tokenizer_from_pretrained(name, option, trust_remote_code=args.trust_remote_code)
    else:
        if not (args.resume_from_checkpoint and (args.output_dir / "tokenizer.json").is_file()) and accelerator.is_main_process:
            logger.info(f"training a {args.tokenizer_type} tokenizer of {args.vocab_size} tokens")
            train_tokenizer(splits["train"]["text"], args.vocab_size, args.tokenizer_type).save_pretrained(args.output_dir)
        accelerator.wait_for_everyone()
        tokenizer = AutoTokenizer.from_pretrained(args.output_dir)
    if tokenizer.mask_token is None:
        raise UsageError(f"the tokenizer {name} has no mask token: a masked language model needs one")
    return tokenizer


def build_model(args, tokenizer):
    name = args.model_name_or_path or args.config_name
    with one_line_load_errors(f"the config {name}"):
        config = AutoConfig.from_pretrained(name, trust_remote_code=args.trust_remote_code)
        if args.config_overrides:
            config.update_from_string(args.config_overrides)
            config.validate()  # update_from_string checks nothing
    if args.model_name_or_path:
        return from_pretrained(AutoModelForMaskedLM, args.model_name_or_path, "--model_name_or_path", config=config,
                               trust_remote_code=args.trust_remote_code)
    config.vocab_size, config.pad_token_id = len(tokenizer), tokenizer.pad_token_id
    return AutoModelForMaskedLM.from_config(config, trust_remote_code=args.trust_remote_code)


def tokenize(args, splits, tokenizer, accelerator) -> dict[str, datasets.Dataset]:
    """Token ids per split: one example per text (``--line_by_line``) or blocks of ``--max_seq_length`` tokens."""
    def encode(batch):
        # Whole-word masking finds the words from the character offsets of the tokens.
        options = dict(return_special_tokens_mask=True, return_offsets_mapping=args.whole_word_mask)
        if args.line_by_line:
            return tokenizer(batch["text"], truncation=True, max_length=args.max_seq_length, **options)
        return tokenizer(batch["text"], **options)

    def group(batch):
        """Concatenate every text of the batch, then cut blocks; the remainder shorter than a block is dropped."""
        joined = {key: list(itertools.chain.from_iterable(batch[key])) for key in batch}
        total = len(joined["input_ids"]) // args.max_seq_length * args.max_seq_length
        return {key: [ids[i : i + args.max_seq_length] for i in range(0, total, args.max_seq_length)]
                for key, ids in joined.items()}

    encoded = {}
    with accelerator.main_process_first():  # the main process fills the cache, the others read it
        for split, dataset in splits.items():
            ids = dataset.map(encode, batched=True, remove_columns=["text"], desc=f"tokenizing {split}")
            if not args.line_by_line:
                ids = ids.map(group, batched=True, batch_size=1000, desc=f"grouping {split} into blocks")
            limit = args.max_train_samples if split == "train" else args.max_eval_samples
            if limit is not None:
                ids = ids.select(range(min(limit, len(ids))))
            if len(ids) == 0:
                raise UsageError(f"the {split} text makes no block of {args.max_seq_length} tokens: "
                                 "lower --max_seq_length or pass --line_by_line")
            encoded[split] = ids
    return encoded


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy over the masked tokens and their count (labels -100 elsewhere); logits [B, T, V]."""
    loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, reduction="sum")
    return loss, (labels != -100).sum()


class BatchSeededMasking:
    """A masking collator whose masks depend only on the seed and which blocks are in the batch.

    accelerate's loader collates one batch ahead of the loop; masks drawn from torch's global
    generator would then be drawn before the checkpoint of the step before, and a run resumed from
    that checkpoint would mask its next batch differently. Seeding each batch from its blocks' ids
    gives it the same masks however and whenever it is collated, and leaves the global generator to
    dropout. Each block carries its id in ``ID_COLUMN``, which this removes.
    """

    ID_COLUMN = "block_id"

    def __init__(self, collator: DataCollatorForLanguageModeling, seed: int):
        self.collator, self.seed = collator, seed

    def __call__(self, examples: list[dict]) -> dict:
        ids = [example.pop(self.ID_COLUMN) for example in examples]
        digest = hashlib.blake2b(repr((self.seed, ids)).encode(), digest_size=8).digest()
        self.collator.generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
        return self.collator(examples)


def evaluate(args, model, dataset, tokenizer, accelerator) -> dict:
    """Loss per masked token and perplexity, with the same masks at every evaluation (a collator seeded anew)."""
    # Seeded per process: the processes' masks differ, and repeat from one evaluation to the next.
    collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.mlm_probability,
                                              whole_word_mask=args.whole_word_mask, seed=args.seed + accelerator.process_index)
    # Each process takes its own shard, so that every block counts once (a prepared loader would pad
    # the last batch with repeated blocks).
    shard = dataset.shard(accelerator.num_processes, accelerator.process_index, contiguous=True)
    dataloader = DataLoader(shard, batch_size=args.per_device_eval_batch_size, collate_fn=collate)
    model.eval()
    loss_sum = torch.zeros((), device=accelerator.device)
    count = torch.zeros((), device=accelerator.device, dtype=torch.long)
    with torch.no_grad():
        for batch in dataloader:
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            loss, n = masked_lm_loss(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                                     batch["labels"])
            loss_sum, count = loss_sum + loss, count + n
    loss_sum, count = accelerator.reduce(loss_sum, "sum"), accelerator.reduce(count, "sum")
    eval_loss = (loss_sum / count.clamp_min(1)).item()
    return {"eval_loss": eval_loss, "perplexity": math.exp(min(eval_loss, 700.0))}


@exit_on_expected_errors
def main(argv=None) -> dict:
    args = parse_args(argv)
    tracking = args.with_tracking and args.report_to != "none"
    accelerator = create_accelerator(args, tracking)
    resolve_resume(args)
    if args.push_to_hub and not (args.hub_token or hub.get_token()):
        raise UsageError("pushing to the Hub needs a token: run `hf auth login`, set HF_TOKEN or pass --hub_token")
    accelerator.wait_for_everyone()
    set_seed(args.seed)

    splits = load_data(args)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(args, splits, accelerator)
    model = build_model(args, tokenizer)
    if accelerator.is_main_process:  # what it takes to repeat this run: versions, options, seed, data hashes
        write_run_info(args.output_dir, args, argv, splits, model.config, accelerator)
    encoded = tokenize(args, splits, tokenizer, accelerator)
    collate = BatchSeededMasking(
        DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.mlm_probability, whole_word_mask=args.whole_word_mask),
        args.seed,
    )
    train_set = encoded["train"].add_column(BatchSeededMasking.ID_COLUMN, range(len(encoded["train"])))
    # Its own generator: starting an iterator draws a seed, which must not move the global generator
    # that dropout uses, or a run resumed inside an epoch would drop out other units.
    train_dataloader = DataLoader(train_set, shuffle=True, batch_size=args.per_device_train_batch_size,
                                  collate_fn=collate, generator=torch.Generator().manual_seed(args.seed))

    optimizer = torch.optim.AdamW(optimizer_groups(model, args.weight_decay), lr=args.learning_rate, betas=(0.9, 0.98))
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps if args.max_train_steps is not None else args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    lr_scheduler = accelerator.prepare(get_scheduler(
        args.lr_scheduler_type, optimizer,
        num_warmup_steps=args.num_warmup_steps * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    ))
    progress = TrainingProgress(num_processes=accelerator.num_processes)
    if tracking:
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in vars(args).items() if k != "hub_token"}
        accelerator.init_trackers("run_mlm", hparams)
    if args.resume_from_checkpoint:
        load_checkpoint(accelerator, args.resume_from_checkpoint, progress)
        if progress.num_processes != accelerator.num_processes:
            raise UsageError(f"{args.resume_from_checkpoint} was saved by {progress.num_processes} processes; resume it with as many")
        logger.info(f"resumed from {args.resume_from_checkpoint}: step {progress.completed_steps}, epoch {progress.epoch}")

    logger.info(
        f"{len(encoded['train'])} training examples of <= {args.max_seq_length} tokens, {num_epochs} epochs, "
        f"{max_train_steps} optimizer steps, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters"
    )
    bar = tqdm(range(max_train_steps), initial=progress.completed_steps, disable=not accelerator.is_local_main_process,
               mininterval=0.1 if sys.stderr.isatty() else 30)
    start, tokens_seen, recent_loss = time.perf_counter(), 0, None
    with StopOnSignal(accelerator) as stop:
        for epoch in range(progress.epoch, num_epochs):
            model.train()
            train_dataloader.set_epoch(epoch)
            batches = train_dataloader
            if progress.batches_in_epoch:
                batches = accelerator.skip_first_batches(train_dataloader, progress.batches_in_epoch)
            for batch in batches:
                if progress.completed_steps >= max_train_steps:
                    break
                with accelerator.accumulate(model):
                    # The model's loss adds the width penalty (DynConv), which the optimiser should see.
                    loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
                    skipped = skip_nonfinite_loss(loss, progress, accelerator, args.skip_nonfinite_loss, args.output_dir)
                    if not skipped:  # a skipped batch ending an accumulation drops that update
                        accelerator.backward(loss)
                        if accelerator.sync_gradients and args.max_grad_norm > 0:
                            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                        optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad()
                progress.batches_in_epoch += 1
                value = loss.item()
                if not skipped:
                    progress.epoch_loss_sum += value
                    recent_loss = value if recent_loss is None else 0.98 * recent_loss + 0.02 * value
                tokens_seen += int(batch["attention_mask"].sum()) * accelerator.num_processes
                if not accelerator.sync_gradients:
                    continue
                progress.completed_steps += 1
                bar.update(1)
                bar.set_postfix(loss=f"{recent_loss:.3f}" if recent_loss is not None else "-", tok_s=f"{tokens_seen / (time.perf_counter() - start):.0f}", refresh=False)
                if tracking:
                    accelerator.log({"train/loss": value, "train/lr": lr_scheduler.get_last_lr()[0]}, step=progress.completed_steps)
                if args.checkpointing_steps and args.checkpointing_steps.isdigit():
                    if progress.completed_steps % int(args.checkpointing_steps) == 0:
                        progress.checkpoints.append(f"step_{progress.completed_steps}")
                        save_checkpoint(accelerator, args.output_dir, progress.checkpoints[-1], progress)
                stop_if_requested(stop, args.output_dir, progress)

            loss_sum, batch_count = accelerator.reduce(
                torch.tensor([progress.epoch_loss_sum, progress.batches_in_epoch], device=accelerator.device), "sum"
            ).tolist()
            progress.epoch, progress.batches_in_epoch, progress.epoch_loss_sum = epoch + 1, 0, 0.0
            metrics = {"train_loss": loss_sum / max(batch_count, 1)} | evaluate(args, model, encoded["validation"], tokenizer, accelerator)
            progress.history.append({"epoch": epoch, "step": progress.completed_steps} | metrics)
            logger.info(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if tracking:
                accelerator.log(metrics, step=progress.completed_steps)
            if args.checkpointing_steps == "epoch":
                progress.checkpoints.append(f"epoch_{epoch}")
                save_checkpoint(accelerator, args.output_dir, progress.checkpoints[-1], progress)
            stop_if_requested(stop, args.output_dir, progress)  # a signal during the evaluation
            if progress.completed_steps >= max_train_steps:
                break
    train_seconds = time.perf_counter() - start
    if tracking:
        accelerator.end_training()
    save_model(model, tokenizer, accelerator, args.output_dir)

    final = progress.history[-1] if progress.history else evaluate(args, model, encoded["validation"], tokenizer, accelerator)
    results = {"steps": progress.completed_steps, "epochs": progress.epoch, "train_seconds": round(train_seconds, 1),
               "train_samples": len(encoded["train"]), "eval_loss": final["eval_loss"],
               "perplexity": final["perplexity"], "history": progress.history}
    logger.info(f"perplexity {results['perplexity']:.2f}")
    if accelerator.is_main_process:
        write_results(args.output_dir, results)
        hub.write_model_card(
            args.output_dir, accelerator.unwrap_model(model).config,
            model_name=args.hub_model_id or args.output_dir.name, task="fill-mask",
            dataset_name=args.dataset_name or "local text", dataset_type=args.dataset_name or "custom",
            dataset_config=args.dataset_config_name, metrics={"perplexity": results["perplexity"]},
        )
        if args.push_to_hub:
            try:
                hub.push_to_hub(args.output_dir, args.hub_model_id, token=args.hub_token)
            except hub.HubError as error:
                raise UsageError(str(error)) from None
    accelerator.wait_for_everyone()
    return results


if __name__ == "__main__":
    main()
