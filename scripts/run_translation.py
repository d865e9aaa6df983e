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
from pathlib import Path

import datasets
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

import dynconv_nlp  # noqa: F401  registers the DynConv classes with the Auto classes
from dynconv_nlp import hub
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors, parse_args_with_config_file
from dynconv_nlp.data.batching import TokenBatchSampler
from dynconv_nlp.data.tokenizer import train_tokenizer
from dynconv_nlp.data.translation import load_translation_split
from dynconv_nlp.errors import UsageError, first_line
from dynconv_nlp.metrics import translation_metrics
from dynconv_nlp.training.averaging import average_checkpoints, last_checkpoints
from dynconv_nlp.training.loading import from_pretrained, load_config, load_or_train_tokenizer
from dynconv_nlp.training.loop import fit
from dynconv_nlp.training.options import Recipe, add_training_options, check_training_options, require_positive
from dynconv_nlp.training.outputs import push_output_dir, save_model, write_results
from dynconv_nlp.training.provenance import write_run_info
from dynconv_nlp.training.setup import start_run

logger = get_logger(__name__)

# fairseq's learning rate for DynamicConv and Transformers on IWSLT; the inverse-sqrt schedule decays
# from the end of the warm-up, so the warm-up is a larger share than for a linear schedule.
FROM_SCRATCH = Recipe(learning_rate=5e-4, warmup_ratio=0.1)


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
    data.add_argument("--source_prefix", help='put before every source, as T5 expects: "translate German to English: "')
    data.add_argument("--encoding", default="utf-8")
    data.add_argument("--max_source_length", type=int, default=128, help="longer sources are truncated")
    data.add_argument("--max_target_length", type=int, default=128, help="longer training targets are truncated")
    data.add_argument("--val_max_target_length", type=int,
                      help="longer validation and test targets are truncated (default: --max_target_length)")
    data.add_argument("--pad_to_max_length", action="store_true",
                      help="pad sources and targets to their maximum lengths (fixed shapes), not to each batch's longest")
    data.add_argument("--max_train_samples", type=int)
    data.add_argument("--max_eval_samples", type=int)
    data.add_argument("--max_predict_samples", type=int)

    groups = add_training_options(parser, FROM_SCRATCH)
    groups.model.add_argument("--tokenizer_type", choices=("bpe", "unigram"), default="bpe")
    groups.model.add_argument("--vocab_size", type=int, default=8000, help="size of the joint source+target tokenizer")
    groups.training.add_argument("--max_tokens", type=int, help="batches of at most this many tokens (as fairseq); else by size")
    groups.training.add_argument("--label_smoothing", type=float, default=0.1)
    groups.outputs.add_argument("--average_last_checkpoints", type=int, help="end with the mean weights of the last N checkpoints")
    groups.outputs.add_argument("--predict_file", help="write the test translations here, one per line")
    parser.set_defaults(adam_beta2=0.98, num_train_epochs=10, lr_scheduler_type="inverse_sqrt", max_grad_norm=0.0)

    gen = parser.add_argument_group("generation")
    gen.add_argument("--num_beams", type=int, default=5)
    gen.add_argument("--length_penalty", type=float, default=1.0)
    gen.add_argument("--generation_max_length", type=int, help="the most tokens a translation gets (default: --val_max_target_length)")
    args = parse_args_with_config_file(parser, argv)

    check_training_options(args, argv, FROM_SCRATCH)
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
    args.val_max_target_length = args.val_max_target_length or args.max_target_length
    args.generation_max_length = args.generation_max_length or args.val_max_target_length
    require_positive(args, ("max_tokens", "num_beams", "average_last_checkpoints", "max_train_samples", "max_eval_samples",
                            "max_predict_samples", "max_source_length", "max_target_length", "val_max_target_length",
                            "generation_max_length", "vocab_size"))
    if not 0 <= args.label_smoothing < 1:
        raise UsageError(f"--label_smoothing must be in [0, 1), got {args.label_smoothing}")
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


def load_tokenizer(args, splits: datasets.DatasetDict, accelerator: Accelerator):
    """The given tokenizer, the model's, or a joint source+target one trained on the training data."""

    def train():
        pairs = splits["train"]["translation"]
        texts = (pair[lang] for lang in (args.source_lang, args.target_lang) for pair in pairs)
        logger.info(f"training a joint {args.tokenizer_type} tokenizer of {args.vocab_size} tokens")
        return train_tokenizer(texts, args.vocab_size, args.tokenizer_type, lowercase=False, for_seq2seq=True)

    return load_or_train_tokenizer(args, accelerator, train)


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
    padding = "max_length" if args.pad_to_max_length else False

    def encoder_for(max_target_length: int):
        def encode(examples):
            sources = [(args.source_prefix or "") + pair[args.source_lang] for pair in examples["translation"]]
            targets = [pair[args.target_lang] for pair in examples["translation"]]
            inputs = tokenizer(sources, max_length=args.max_source_length, truncation=True, padding=padding)
            labels = tokenizer(text_target=targets, max_length=max_target_length, truncation=True, padding=padding)["input_ids"]
            if padding:  # padded targets are not predicted
                labels = [[t if t != tokenizer.pad_token_id else -100 for t in label] for label in labels]
            inputs["labels"] = labels
            return inputs

        return encode

    encoded, references = {}, {}
    with accelerator.main_process_first():
        for split in splits:
            dataset = splits[split]
            if limits.get(split) is not None:
                dataset = dataset.select(range(min(limits[split], len(dataset))))
            encode = encoder_for(args.max_target_length if split == "train" else args.val_max_target_length)
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


def smoothed_loss(model, batch, label_smoothing: float):
    """Label-smoothed cross-entropy per target token, plus a DynConv model's width terms (penalty, budget)."""
    outputs = model(**{k: v for k, v in batch.items() if k != "labels"})
    logits, labels = outputs.logits, batch["labels"]
    loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, label_smoothing=label_smoothing)
    if getattr(outputs, "width_loss", None) is not None:
        loss = loss + outputs.width_loss
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
    accelerator = start_run(args)

    # The task: data, tokenizer, model.
    splits = load_data(args)
    config = load_config(args)
    if not config.is_encoder_decoder and config.model_type != "dynconv":
        raise UsageError(f"{args.model_name_or_path or args.config_name} is a {config.model_type} config, "
                         "not an encoder-decoder for translation")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(args, splits, accelerator)
    model = build_model(args, config, tokenizer)
    if accelerator.is_main_process:  # what it takes to repeat this run: versions, options, seed, data hashes
        write_run_info(args.output_dir, args, argv, splits, model.config, accelerator)
    encoded, references = tokenize(args, splits, tokenizer, accelerator)
    collate = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    train_dataloader, token_sampler = train_dataloader_for(args, encoded["train"], collate)
    eval_dataloader = DataLoader(encoded["validation"], batch_size=args.per_device_eval_batch_size, collate_fn=collate)

    # Train: the validation loss after every epoch; translating is left for the end.
    fitted = fit(
        args, accelerator, model, train_dataloader,
        loss=lambda model, batch: smoothed_loss(model, batch, args.label_smoothing),
        evaluate=lambda model, loaders: {"eval_loss": validation_loss(model, loaders["validation"], accelerator)},
        eval_dataloaders={"validation": eval_dataloader}, project="run_translation",
        count_tokens=lambda batch: int((batch["labels"] != -100).sum() + batch["attention_mask"].sum()),
        batch_samplers=[token_sampler] if token_sampler is not None else [],
    )
    model, progress = fitted.model, fitted.progress

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

    results = {"steps": progress.completed_steps, "epochs": progress.epoch, "train_seconds": round(fitted.train_seconds, 1),
               "train_samples": len(encoded["train"]), "recipe": fitted.recipe, "history": progress.history}
    hypotheses = translate(args, model, encoded["validation"], tokenizer, collate, accelerator)
    results |= {f"eval_{k}": v for k, v in translation_metrics(hypotheses, references["validation"], args.target_lang).items()}
    if "test" in encoded:
        hypotheses = translate(args, model, encoded["test"], tokenizer, collate, accelerator)
        results |= {f"test_{k}": v for k, v in translation_metrics(hypotheses, references["test"], args.target_lang).items()}
        if args.predict_file and accelerator.is_main_process:
            Path(args.predict_file).parent.mkdir(parents=True, exist_ok=True)
            Path(args.predict_file).write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    logger.info(", ".join(f"{k} {v}" for k, v in results.items() if "bleu" in k or "chrf" in k))
    if accelerator.is_main_process:
        write_results(args.output_dir, results)
        write_card(args, accelerator.unwrap_model(model), results)
        if args.push_to_hub:
            push_output_dir(args)
    accelerator.wait_for_everyone()
    return results


if __name__ == "__main__":
    main()
