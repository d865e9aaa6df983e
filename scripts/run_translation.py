"""Train and evaluate a translation model: DynConv encoder-decoder (or any transformers seq2seq model).

transformers' ``run_translation_no_trainer.py`` with fairseq's recipe for DynamicConv: label-smoothed
cross-entropy, an inverse-sqrt schedule with warm-up, batches by token count (``--max_tokens``),
beam search, sacreBLEU BLEU and chrF, and averaging of the last checkpoints.

    python scripts/run_translation.py configs/translation/multi30k_de_en.yaml
    python scripts/run_translation.py --dataset_name wmt16 --dataset_config_name de-en --source_lang de --target_lang en \\
        --config_name configs/models/small.json --output_dir outputs/wmt16
    accelerate launch scripts/run_translation.py configs/translation/multi30k_de_en.yaml

Data: ``--train_file`` / ``--validation_file`` / ``--test_file`` are JSON-lines files of
``{"translation": {"de": ..., "en": ...}}`` or prefixes of line-aligned plain files
(``PREFIX.de[.gz]``, ``PREFIX.en[.gz]``); ``--dataset_name`` reads a Hub dataset of the same layout.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import datasets
import sacrebleu
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
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, DataCollatorForSeq2Seq, get_scheduler

import dynconv_nlp  # noqa: F401  registers the DynConv classes with the Auto classes
from dynconv_nlp import hub
from dynconv_nlp.data.batching import TokenBatchSampler
from dynconv_nlp.data.tokenizer import train_tokenizer
from dynconv_nlp.data.translation import load_translation_split
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
from dynconv_nlp.training.averaging import average_checkpoints, last_checkpoints
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
    data.add_argument("--dataset_name", help="a Hub dataset with a translation column, e.g. wmt16 or iwslt2017")
    data.add_argument("--dataset_config_name")
    data.add_argument("--train_file", help="JSON lines, or the prefix of PREFIX.SRC / PREFIX.TGT files (gzip allowed)")
    data.add_argument("--validation_file")
    data.add_argument("--test_file")
    data.add_argument("--source_lang", required=True)
    data.add_argument("--target_lang", required=True)
    data.add_argument("--encoding", default="utf-8")
    data.add_argument("--max_source_length", type=int, default=128, help="longer sources are truncated")
    data.add_argument("--max_target_length", type=int, default=128, help="longer targets are truncated")
    data.add_argument("--max_train_samples", type=int)
    data.add_argument("--max_eval_samples", type=int)
    data.add_argument("--max_predict_samples", type=int)

    model = parser.add_argument_group("model and tokenizer")
    model.add_argument("--model_name_or_path", help="a seq2seq checkpoint to fine-tune")
    model.add_argument("--config_name", help="a config to train from scratch, e.g. configs/models/small.json")
    model.add_argument("--config_overrides", help='e.g. "width_penalty_coef=0.01,hidden_dropout_prob=0.3"')
    model.add_argument("--tokenizer_name", help="default: the model's; for a new model, a joint one trained on the data")
    model.add_argument("--tokenizer_type", choices=("bpe", "unigram"), default="bpe")
    model.add_argument("--vocab_size", type=int, default=8000, help="size of the joint source+target tokenizer")
    model.add_argument("--trust_remote_code", action="store_true")

    train = parser.add_argument_group("training")
    train.add_argument("--max_tokens", type=int, help="batches of at most this many tokens (as fairseq); else by size")
    train.add_argument("--per_device_train_batch_size", type=int, default=32)
    train.add_argument("--per_device_eval_batch_size", type=int, default=64)
    train.add_argument("--learning_rate", type=float, default=5e-4)
    train.add_argument("--weight_decay", type=float, default=0.0)
    train.add_argument("--adam_beta2", type=float, default=0.98)
    train.add_argument("--num_train_epochs", type=int, default=10)
    train.add_argument("--max_train_steps", type=int, help="overrides --num_train_epochs")
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--lr_scheduler_type", choices=("inverse_sqrt", "linear", "cosine", "constant_with_warmup"),
                       default="inverse_sqrt")
    train.add_argument("--num_warmup_steps", type=int, default=1000)
    train.add_argument("--label_smoothing", type=float, default=0.1)
    train.add_argument("--max_grad_norm", type=float, default=0.0, help="0 turns clipping off")
    train.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"))
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--skip_nonfinite_loss", action="store_true", help="leave out batches whose loss is NaN or inf, instead of stopping")

    gen = parser.add_argument_group("generation")
    gen.add_argument("--num_beams", type=int, default=5)
    gen.add_argument("--length_penalty", type=float, default=1.0)
    gen.add_argument("--generation_max_length", type=int, default=128, help="the most tokens a translation gets")

    out = parser.add_argument_group("outputs")
    out.add_argument("--output_dir", required=True)
    out.add_argument("--overwrite_output_dir", action="store_true")
    out.add_argument("--checkpointing_steps", help='save the training state every N steps, or "epoch"')
    out.add_argument("--resume_from_checkpoint", help='a step_N / epoch_N folder, or "latest" in --output_dir')
    out.add_argument("--average_last_checkpoints", type=int, help="end with the mean weights of the last N checkpoints")
    out.add_argument("--predict_file", help="write the test translations here, one per line")
    out.add_argument("--with_tracking", action="store_true")
    out.add_argument("--report_to", choices=("tensorboard", "trackio", "all", "none"), default="tensorboard")
    out.add_argument("--push_to_hub", action="store_true")
    out.add_argument("--hub_model_id")
    out.add_argument("--hub_token")
    args = parse_args_with_config_file(parser, argv)

    if bool(args.model_name_or_path) == bool(args.config_name):
        raise UsageError("pass --model_name_or_path (fine-tune) or --config_name (train from scratch), one of them")
    if bool(args.dataset_name) == bool(args.train_file):
        raise UsageError("pass --dataset_name (the Hub) or --train_file (local data), one of them")
    if args.train_file and not args.validation_file:
        raise UsageError("--train_file needs --validation_file")
    if args.dataset_name and (args.train_file or args.validation_file or args.test_file):
        raise UsageError("--dataset_name brings its own splits: leave out --train_file, --validation_file, --test_file")
    if args.predict_file and not (args.test_file or args.dataset_name):
        raise UsageError("--predict_file needs test data: --test_file, or a --dataset_name with a test split")
    if args.average_last_checkpoints is not None and not args.checkpointing_steps:
        raise UsageError("--average_last_checkpoints needs checkpoints: add --checkpointing_steps epoch (or N)")
    if args.push_to_hub and not args.hub_model_id:
        raise UsageError("--push_to_hub needs --hub_model_id")
    steps = args.checkpointing_steps
    if steps is not None and steps != "epoch" and not (steps.isdigit() and int(steps) > 0):
        raise UsageError(f'--checkpointing_steps must be a number of steps (1 or more) or "epoch", got {steps!r}')
    for name in ("max_tokens", "per_device_train_batch_size", "per_device_eval_batch_size", "num_train_epochs",
                 "max_train_steps", "gradient_accumulation_steps", "num_beams", "average_last_checkpoints",
                 "max_train_samples", "max_eval_samples", "max_predict_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name} must be 1 or more, got {getattr(args, name)}")
    if args.with_tracking and args.report_to in ("tensorboard", "trackio"):
        available = is_tensorboard_available if args.report_to == "tensorboard" else is_trackio_available
        if not available():
            raise UsageError(f"--report_to {args.report_to} needs the {args.report_to} package: pip install {args.report_to}")
    for name in ("max_source_length", "max_target_length", "generation_max_length", "vocab_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be 1 or more, got {getattr(args, name)}")
    if not 0 <= args.label_smoothing < 1:
        raise UsageError(f"--label_smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise UsageError("--mixed_precision fp16 needs a GPU; on a CPU use --mixed_precision bf16 or no")
    args.output_dir = Path(args.output_dir)
    return args


def load_data(args) -> datasets.DatasetDict:
    """"train", "validation" and, when given, "test": each a ``translation`` column of {lang: text}."""
    if args.dataset_name:
        try:
            splits = datasets.load_dataset(args.dataset_name, args.dataset_config_name)
        except Exception as error:  # offline, or no such dataset
            reason = first_line(error)
            raise UsageError(f"could not load {args.dataset_name} ({reason}); for local data pass --train_file") from None
        splits = {"validation" if k == "valid" else k: v for k, v in splits.items()}
        missing = [split for split in ("train", "validation") if split not in splits]
        if missing:
            raise UsageError(f"{args.dataset_name} has no {' or '.join(missing)} split (it has {', '.join(splits)})")
        first = splits["train"][0].get("translation") if "translation" in splits["train"].column_names else None
        if not isinstance(first, dict) or not {args.source_lang, args.target_lang} <= set(first):
            raise UsageError(
                f"{args.dataset_name} has no translation column with {args.source_lang!r} and {args.target_lang!r} "
                f"(columns: {', '.join(splits['train'].column_names)}); check --dataset_config_name and the languages"
            )
        return datasets.DatasetDict(splits)
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    return datasets.DatasetDict(
        {split: load_translation_split(path, args.source_lang, args.target_lang, args.encoding)
         for split, path in files.items() if path}
    )


def load_config(args):
    name = args.model_name_or_path or args.config_name
    with one_line_load_errors(f"the config {name}"):
        config = AutoConfig.from_pretrained(name, trust_remote_code=args.trust_remote_code)
        if args.config_overrides:
            config.update_from_string(args.config_overrides)
            config.validate()  # update_from_string checks nothing
    if not config.is_encoder_decoder and config.model_type != "dynconv":
        raise UsageError(f"{name} is a {config.model_type} config, not an encoder-decoder for translation")
    return config


def load_tokenizer(args, splits: datasets.DatasetDict, accelerator: Accelerator):
    """The given tokenizer, the model's, or a joint source+target one trained on the training data."""
    name = args.tokenizer_name or args.model_name_or_path
    if name:
        option = "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path"
        return tokenizer_from_pretrained(name, option, trust_remote_code=args.trust_remote_code)
    if not (args.resume_from_checkpoint and (args.output_dir / "tokenizer.json").is_file()) and accelerator.is_main_process:
        pairs = splits["train"]["translation"]
        texts = (pair[lang] for lang in (args.source_lang, args.target_lang) for pair in pairs)
        logger.info(f"training a joint {args.tokenizer_type} tokenizer of {args.vocab_size} tokens")
        tokenizer = train_tokenizer(texts, args.vocab_size, args.tokenizer_type, lowercase=False, for_seq2seq=True)
        tokenizer.save_pretrained(args.output_dir)
    accelerator.wait_for_everyone()
    return AutoTokenizer.from_pretrained(args.output_dir)


def build_model(args, config, tokenizer):
    if args.model_name_or_path:
        return from_pretrained(AutoModelForSeq2SeqLM, args.model_name_or_path, "--model_name_or_path", config=config,
                               trust_remote_code=args.trust_remote_code)
    # A new model takes its vocabulary and special ids from the tokenizer.
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise UsageError(f"the tokenizer {args.tokenizer_name or args.output_dir} needs a pad and an eos token for translation")
    config.vocab_size = len(tokenizer)
    if hasattr(config, "decoder_vocab_size"):  # Marian keeps a separate one
        config.decoder_vocab_size = len(tokenizer)
    config.pad_token_id, config.eos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    # Decoding starts from bos; tokenizers without one (Marian, T5) start from pad.
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.pad_token_id
    config.bos_token_id = config.decoder_start_token_id = start
    if getattr(config, "forced_eos_token_id", None) is not None:
        config.forced_eos_token_id = tokenizer.eos_token_id
    return AutoModelForSeq2SeqLM.from_config(config, trust_remote_code=args.trust_remote_code)


def tokenize(args, splits, tokenizer, accelerator) -> tuple[dict[str, datasets.Dataset], dict[str, list[str]]]:
    """Every split as model inputs and labels, and each split's raw target sentences (the references)."""
    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_predict_samples}

    def encode(examples):
        sources = [pair[args.source_lang] for pair in examples["translation"]]
        targets = [pair[args.target_lang] for pair in examples["translation"]]
        inputs = tokenizer(sources, max_length=args.max_source_length, truncation=True)
        inputs["labels"] = tokenizer(text_target=targets, max_length=args.max_target_length, truncation=True)["input_ids"]
        return inputs

    encoded, references = {}, {}
    with accelerator.main_process_first():
        for split in splits:
            dataset = splits[split]
            if limits.get(split) is not None:
                dataset = dataset.select(range(min(limits[split], len(dataset))))
            encoded[split] = dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc=f"tokenizing {split}")
            references[split] = [pair[args.target_lang] for pair in dataset["translation"]]
    return encoded, references


def train_dataloader_for(args, dataset, collate):
    """Batches by token count with ``--max_tokens`` (fairseq), else by number of sentence pairs."""
    # Its own generator: starting an iterator draws a seed, which must not move the global RNG that
    # dropout uses, or a resumed run would diverge from an uninterrupted one.
    generator = torch.Generator().manual_seed(args.seed)
    if not args.max_tokens:
        loader = DataLoader(dataset, shuffle=True, batch_size=args.per_device_train_batch_size, collate_fn=collate,
                            generator=generator)
        return loader, None
    lengths = [max(len(s), len(t)) for s, t in zip(dataset["input_ids"], dataset["labels"])]
    try:
        sampler = TokenBatchSampler(lengths, args.max_tokens, seed=args.seed)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, generator=generator), sampler


def smoothed_loss(model, batch, label_smoothing: float, width_penalty_coef: float):
    """Label-smoothed cross-entropy per target token, plus the DynConv width penalty times its coefficient."""
    outputs = model(**{k: v for k, v in batch.items() if k != "labels"})
    logits, labels = outputs.logits, batch["labels"]
    loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, label_smoothing=label_smoothing)
    if width_penalty_coef and getattr(outputs, "width_penalty", None) is not None:
        loss = loss + width_penalty_coef * outputs.width_penalty.mean()
    return loss


def translate(args, model, dataset, tokenizer, collate, accelerator) -> list[str]:
    """Beam search over a tokenized split: detokenized hypotheses, in the split's order."""
    model.eval()
    dataloader = accelerator.prepare(DataLoader(dataset, batch_size=args.per_device_eval_batch_size, collate_fn=collate))
    hypotheses = []
    generate = accelerator.unwrap_model(model).generate
    for batch in tqdm(dataloader, desc="translating", disable=not accelerator.is_local_main_process):
        with torch.no_grad():
            output = generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], num_beams=args.num_beams,
                length_penalty=args.length_penalty, max_new_tokens=args.generation_max_length,
            )
        output = accelerator.pad_across_processes(output, dim=1, pad_index=tokenizer.pad_token_id)
        # gather_for_metrics keeps the split's order and drops the copies that even batches add.
        hypotheses += [t.strip() for t in tokenizer.batch_decode(accelerator.gather_for_metrics(output), skip_special_tokens=True)]
    return hypotheses


def score(hypotheses: list[str], references: list[str], target_lang: str) -> dict:
    """sacreBLEU BLEU and chrF of detokenized hypotheses against the raw references, with their signatures."""
    bleu, chrf = sacrebleu.metrics.BLEU(trg_lang=target_lang), sacrebleu.metrics.CHRF()
    bleu_score, chrf_score = bleu.corpus_score(hypotheses, [references]), chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


@torch.no_grad()
def validation_loss(model, dataloader, accelerator) -> float:
    """Mean cross-entropy (no smoothing) per target token over the validation split, each example once."""
    model.eval()
    sums, counts = [], []
    for batch in dataloader:
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        token_losses = F.cross_entropy(logits.transpose(1, 2).float(), batch["labels"], ignore_index=-100, reduction="none")
        example_sums, example_counts = accelerator.gather_for_metrics((token_losses.sum(1), (batch["labels"] != -100).sum(1)))
        sums.append(example_sums)
        counts.append(example_counts)
    return (torch.cat(sums).sum() / torch.cat(counts).sum()).item()


def write_card(args, model, results: dict) -> None:
    split = "test" if "test_bleu" in results else "eval"
    hub.write_model_card(
        args.output_dir,
        model.config,
        model_name=args.hub_model_id or args.output_dir.name,
        task="translation",
        dataset_name=args.dataset_name or Path(args.train_file).parent.name or "custom",
        dataset_type=args.dataset_name or "custom",
        dataset_config=args.dataset_config_name,
        dataset_split="test" if split == "test" else "validation",
        metrics={"bleu": results[f"{split}_bleu"], "chrf": results[f"{split}_chrf"]},
        language=[args.source_lang, args.target_lang],
    )


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
    config = load_config(args)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(args, splits, accelerator)
    model = build_model(args, config, tokenizer)
    if accelerator.is_main_process:  # what it takes to repeat this run: versions, options, seed, data hashes
        write_run_info(args.output_dir, args, argv, splits, model.config, accelerator)
    encoded, references = tokenize(args, splits, tokenizer, accelerator)
    collate = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    train_dataloader, token_sampler = train_dataloader_for(args, encoded["train"], collate)
    eval_dataloader = DataLoader(encoded["validation"], batch_size=args.per_device_eval_batch_size, collate_fn=collate)

    betas = (0.9, args.adam_beta2)
    optimizer = torch.optim.AdamW(optimizer_groups(model, args.weight_decay), lr=args.learning_rate, betas=betas)
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(model, optimizer, train_dataloader, eval_dataloader)
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps if args.max_train_steps is not None else args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    lr_scheduler = accelerator.prepare(get_scheduler(
        args.lr_scheduler_type, optimizer,
        num_warmup_steps=args.num_warmup_steps * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    ))
    progress = TrainingProgress(num_processes=accelerator.num_processes)
    width_penalty_coef = getattr(config, "width_penalty_coef", 0.0)
    if tracking:
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in vars(args).items() if k != "hub_token"}
        accelerator.init_trackers("run_translation", hparams)
    if args.resume_from_checkpoint:
        load_checkpoint(accelerator, args.resume_from_checkpoint, progress)
        if progress.num_processes != accelerator.num_processes:
            raise UsageError(f"{args.resume_from_checkpoint} was saved by {progress.num_processes} processes; resume it with as many")
        logger.info(f"resumed from {args.resume_from_checkpoint}: step {progress.completed_steps}, epoch {progress.epoch}")

    logger.info(
        f"{len(encoded['train'])} sentence pairs, {num_epochs} epochs, {max_train_steps} optimizer steps, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters"
    )
    bar = tqdm(range(max_train_steps), initial=progress.completed_steps, disable=not accelerator.is_local_main_process,
               mininterval=0.1 if sys.stderr.isatty() else 30)
    start, tokens_seen, recent_loss = time.perf_counter(), 0, None
    with StopOnSignal(accelerator) as stop:
        for epoch in range(progress.epoch, num_epochs):
            model.train()
            # The prepared loader re-seeds its sampler from its own epoch count when iterated; a resumed
            # run iterated its first epoch through skip_first_batches, so that count must be set here.
            train_dataloader.set_epoch(epoch)
            if token_sampler is not None:  # wrapped out of the loader's reach when sharded over processes
                token_sampler.set_epoch(epoch)
            batches = train_dataloader
            if progress.batches_in_epoch:
                batches = accelerator.skip_first_batches(train_dataloader, progress.batches_in_epoch)
            for batch in batches:
                if progress.completed_steps >= max_train_steps:
                    break
                with accelerator.accumulate(model):
                    loss = smoothed_loss(model, batch, args.label_smoothing, width_penalty_coef)
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
                tokens_seen += int((batch["labels"] != -100).sum() + batch["attention_mask"].sum()) * accelerator.num_processes
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
            metrics = {"train_loss": loss_sum / max(batch_count, 1), "eval_loss": validation_loss(model, eval_dataloader, accelerator)}
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

    if args.average_last_checkpoints:
        accelerator.wait_for_everyone()  # every checkpoint is written before anyone reads them
        paths = last_checkpoints(args.output_dir, args.average_last_checkpoints, progress.checkpoints)
        unwrapped = accelerator.unwrap_model(model)
        # Tied weights (the output embedding) are stored once; every other weight must be in the checkpoints.
        missing, unexpected = unwrapped.load_state_dict(average_checkpoints(paths), strict=False)
        tied = getattr(unwrapped, "all_tied_weights_keys", None) or getattr(unwrapped, "_tied_weights_keys", None) or {}
        untied = [k for k in missing if k not in set(tied) | set(tied.values())]
        if untied or unexpected:
            raise UsageError(f"the checkpoints in {args.output_dir} do not match the model ({(untied + unexpected)[:3]})")
        logger.info(f"averaged the weights of {', '.join(p.name for p in paths)}")
    save_model(model, tokenizer, accelerator, args.output_dir)

    results = {"steps": progress.completed_steps, "epochs": progress.epoch, "train_seconds": round(train_seconds, 1),
               "train_samples": len(encoded["train"]), "history": progress.history}
    hypotheses = translate(args, model, encoded["validation"], tokenizer, collate, accelerator)
    results |= {f"eval_{k}": v for k, v in score(hypotheses, references["validation"], args.target_lang).items()}
    if "test" in encoded:
        hypotheses = translate(args, model, encoded["test"], tokenizer, collate, accelerator)
        results |= {f"test_{k}": v for k, v in score(hypotheses, references["test"], args.target_lang).items()}
        if args.predict_file and accelerator.is_main_process:
            Path(args.predict_file).parent.mkdir(parents=True, exist_ok=True)
            Path(args.predict_file).write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    logger.info(", ".join(f"{k} {v}" for k, v in results.items() if "bleu" in k or "chrf" in k))
    if accelerator.is_main_process:
        write_results(args.output_dir, results)
        write_card(args, accelerator.unwrap_model(model), results)
        if args.push_to_hub:
            try:
                hub.push_to_hub(args.output_dir, args.hub_model_id, token=args.hub_token)
            except hub.HubError as error:
                raise UsageError(str(error)) from None
    accelerator.wait_for_everyone()
    return results


if __name__ == "__main__":
    main()
