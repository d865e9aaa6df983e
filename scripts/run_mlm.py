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
import math

import datasets
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from torch.utils.data import DataLoader
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

import dynconv_nlp  # noqa: F401  registers the DynConv classes with the Auto classes
from dynconv_nlp import hub
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors, parse_args_with_config_file
from dynconv_nlp.data.text import add_text_options, check_text_options, load_text_splits, tokenize_texts
from dynconv_nlp.data.tokenizer import KINDS, train_tokenizer
from dynconv_nlp.errors import UsageError
from dynconv_nlp.training.loading import from_pretrained, load_config, load_or_train_tokenizer
from dynconv_nlp.training.loop import fit
from dynconv_nlp.training.options import Recipe, add_training_options, check_training_options, require_positive
from dynconv_nlp.training.outputs import push_output_dir, save_model, write_results
from dynconv_nlp.training.provenance import write_run_info
from dynconv_nlp.training.setup import start_run

logger = get_logger(__name__)

# RoBERTa's recipe, scaled to a small model: a larger rate than fine-tuning, a warm-up of ~6% of the steps.
FROM_SCRATCH = Recipe(learning_rate=5e-4, warmup_ratio=0.06)


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    add_text_options(parser)
    groups = add_training_options(parser, FROM_SCRATCH)
    groups.model.add_argument("--tokenizer_type", choices=KINDS, default="wordpiece")
    groups.model.add_argument("--vocab_size", type=int, default=8000, help="size of a tokenizer trained on the texts")
    groups.training.add_argument("--mlm_probability", type=float, default=0.15)
    groups.training.add_argument("--whole_word_mask", action="store_true")
    parser.set_defaults(weight_decay=0.01, adam_beta2=0.98)
    args = parse_args_with_config_file(parser, argv)

    check_training_options(args, argv, FROM_SCRATCH)
    check_text_options(args)
    if not 0 < args.mlm_probability < 1:
        raise UsageError(f"--mlm_probability must be in (0, 1), got {args.mlm_probability}")
    require_positive(args, ("max_train_samples", "max_eval_samples", "max_seq_length", "vocab_size"))
    return args


def load_tokenizer(args, splits: datasets.DatasetDict, accelerator: Accelerator):
    """The given tokenizer, the model's, or one trained on the training texts (BERT-style, with [MASK])."""

    def train():
        logger.info(f"training a {args.tokenizer_type} tokenizer of {args.vocab_size} tokens")
        return train_tokenizer(splits["train"]["text"], args.vocab_size, args.tokenizer_type)

    tokenizer = load_or_train_tokenizer(args, accelerator, train)
    if tokenizer.mask_token is None:
        raise UsageError(f"the tokenizer {args.tokenizer_name or args.model_name_or_path} has no mask token: "
                         "a masked language model needs one")
    return tokenizer


def build_model(args, tokenizer):
    config = load_config(args)
    if args.model_name_or_path:
        return from_pretrained(AutoModelForMaskedLM, args.model_name_or_path, "--model_name_or_path", config=config,
                               trust_remote_code=args.trust_remote_code)
    config.vocab_size, config.pad_token_id = len(tokenizer), tokenizer.pad_token_id
    return AutoModelForMaskedLM.from_config(config, trust_remote_code=args.trust_remote_code)


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
    accelerator = start_run(args)

    # The task: text, tokenizer, model.
    splits = load_text_splits(args)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(args, splits, accelerator)
    model = build_model(args, tokenizer)
    if accelerator.is_main_process:  # what it takes to repeat this run: versions, options, seed, data hashes
        write_run_info(args.output_dir, args, argv, splits, model.config, accelerator)
    # Whole-word masking finds the words from the character offsets of the tokens.
    encoded = tokenize_texts(args, splits, tokenizer, accelerator, return_special_tokens_mask=True,
                             return_offsets_mapping=args.whole_word_mask)
    collate = BatchSeededMasking(
        DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.mlm_probability, whole_word_mask=args.whole_word_mask),
        args.seed,
    )
    train_set = encoded["train"].add_column(BatchSeededMasking.ID_COLUMN, range(len(encoded["train"])))
    # Its own generator: starting an iterator draws a seed, which must not move the global generator
    # that dropout uses, or a run resumed inside an epoch would drop out other units.
    train_dataloader = DataLoader(train_set, shuffle=True, batch_size=args.per_device_train_batch_size,
                                  collate_fn=collate, generator=torch.Generator().manual_seed(args.seed))

    # Train: the perplexity on held-out text after every epoch.
    fitted = fit(
        args, accelerator, model, train_dataloader,
        # The model's loss adds the width penalty (DynConv), which the optimiser should see.
        loss=lambda model, batch: model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                        labels=batch["labels"]).loss,
        evaluate=lambda model, loaders: evaluate(args, model, encoded["validation"], tokenizer, accelerator),
        project="run_mlm",
    )
    model, progress = fitted.model, fitted.progress
    save_model(model, tokenizer, accelerator, args.output_dir)

    final = progress.history[-1] if progress.history else evaluate(args, model, encoded["validation"], tokenizer, accelerator)
    results = {"steps": progress.completed_steps, "epochs": progress.epoch, "train_seconds": round(fitted.train_seconds, 1),
               "train_samples": len(encoded["train"]), "eval_loss": final["eval_loss"],
               "perplexity": final["perplexity"], "recipe": fitted.recipe, "history": progress.history}
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
            push_output_dir(args)
    accelerator.wait_for_everyone()
    return results


if __name__ == "__main__":
    main()
