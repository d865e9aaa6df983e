"""Distil a pretrained BERT-family encoder into a DynConv model that fine-tunes like any checkpoint.

The student mirrors the teacher (``dynconv_nlp.distillation.mirror``): its embeddings, feed-forward
layers, layer norms and tokenizer, and each attention's value and output projections as its
convolution's input and output projections, copied exactly. Only the generated kernels and their
widths are new. Training (``dynconv_nlp.distillation.distiller``) runs in two stages over one
schedule: first (``--stage1_ratio`` of the steps) every conv sub-layer learns, from the teacher's
input to its layer, to output what the teacher's attention sub-layer did; then the whole student
learns to match the teacher's hidden states at every layer. The teacher stays frozen.
``--keep_attention_layers 5`` makes a hybrid: layer 5 keeps the teacher's self-attention, copied
exactly and frozen; only the other layers convolve (and are distilled).

    python scripts/distill_to_dynconv.py configs/distill/minilm_offline.yaml     # offline, ../shared/data text
    python scripts/distill_to_dynconv.py --teacher_name_or_path bert-base-uncased \\
        --dataset_name wikitext --dataset_config_name wikitext-103-raw-v1 --output_dir outputs/dynconv-bert-base
    accelerate launch scripts/distill_to_dynconv.py configs/distill/minilm_offline.yaml

The saved folder (weights, config, tokenizer, card) is what ``AutoModel.from_pretrained`` and
``run_glue.py --model_name_or_path`` load. The text options are ``run_mlm.py``'s.
"""

import argparse
import math

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedDataParallelKwargs, DistributedType
from huggingface_hub.errors import StrictDataclassError
from torch.utils.data import DataLoader
from transformers import AutoConfig, AutoModel, DataCollatorWithPadding

import dynconv_nlp  # noqa: F401  registers the DynConv classes with the Auto classes
from dynconv_nlp import hub
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors, parse_args_with_config_file
from dynconv_nlp.data.text import add_text_options, check_text_options, load_text_splits, tokenize_texts
from dynconv_nlp.distillation.distiller import Distiller
from dynconv_nlp.distillation.mirror import (
    check_teacher,
    copy_teacher_weights,
    mirror_config,
    parse_config_overrides,
    teacher_max_length,
)
from dynconv_nlp.errors import UsageError, first_line
from dynconv_nlp.models.dynconv import DynConvConfig, DynConvModel
from dynconv_nlp.training.loading import from_pretrained, one_line_load_errors, tokenizer_from_pretrained
from dynconv_nlp.training.loop import count_train_steps, fit
from dynconv_nlp.training.options import Recipe, add_training_options, check_training_options, require_positive
from dynconv_nlp.training.outputs import push_output_dir, save_model, write_results
from dynconv_nlp.training.provenance import write_run_info
from dynconv_nlp.training.setup import start_run

logger = get_logger(__name__)

# The kernel and width projections are new (a from-scratch rate), the rest is the teacher's; a
# linear decay brings stage 2, which trains everything, to a lower rate.
DISTILLATION = Recipe(learning_rate=3e-4, warmup_ratio=0.06, name="distillation", source="student from --teacher_name_or_path")


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    add_text_options(parser)
    groups = add_training_options(parser, DISTILLATION)
    groups.model.add_argument("--teacher_name_or_path", required=True,
                              help="a BERT, RoBERTa or ELECTRA(-discriminator) encoder: a folder or Hub id")
    groups.model.add_argument("--keep_attention_layers", type=int, nargs="+", default=None, metavar="LAYER",
                              help="encoder layers (0-based) that keep the teacher's self-attention, copied exactly "
                                   "and not trained; the others convolve (default: none)")
    groups.training.add_argument("--stage1_ratio", type=float, default=0.3,
                                 help="share of the optimizer steps spent layer by layer (stage 1) before stage 2")
    parser.set_defaults(weight_decay=0.01, num_train_epochs=1)
    args = parse_args_with_config_file(parser, argv)

    if args.model_name_or_path or args.config_name:
        raise UsageError("the student is built from --teacher_name_or_path: leave out --model_name_or_path and "
                         "--config_name, and set the convolutions with --config_overrides")
    check_training_options(args, argv, DISTILLATION, needs_model=False)
    check_text_options(args)
    require_positive(args, ("max_train_samples", "max_eval_samples", "max_seq_length"))
    if not 0 <= args.stage1_ratio <= 1:
        raise UsageError(f"--stage1_ratio must be in [0, 1], got {args.stage1_ratio}")
    args.student_settings = parse_config_overrides(args.config_overrides)
    if args.keep_attention_layers:
        args.student_settings["attention_layers"] = sorted(args.keep_attention_layers)
    return args


def load_teacher_config(args):
    """The teacher's config, checked to be an encoder with a mapping, before any data is read."""
    with one_line_load_errors(f"--teacher_name_or_path {args.teacher_name_or_path}",
                              ": give a folder with config.json and weights, or a Hub id"):
        config = AutoConfig.from_pretrained(args.teacher_name_or_path, trust_remote_code=args.trust_remote_code)
    check_teacher(config, f"--teacher_name_or_path {args.teacher_name_or_path}")
    return config


def load_tokenizer(args, teacher_config):
    """The teacher's tokenizer (or ``--tokenizer_name``), which must index the teacher's vocabulary."""
    name, option = (args.tokenizer_name, "--tokenizer_name") if args.tokenizer_name else (args.teacher_name_or_path, "--teacher_name_or_path")
    tokenizer = tokenizer_from_pretrained(name, option, trust_remote_code=args.trust_remote_code)
    if len(tokenizer) > teacher_config.vocab_size or tokenizer.pad_token_id != teacher_config.pad_token_id:
        raise UsageError(
            f"the tokenizer of {option} {name} does not match the teacher: {len(tokenizer)} tokens and padding id "
            f"{tokenizer.pad_token_id}, the teacher has {teacher_config.vocab_size} and {teacher_config.pad_token_id}"
        )
    if teacher_config.type_vocab_size < 2 and "token_type_ids" in tokenizer.model_input_names:
        # One segment (RoBERTa): the second sentence's type 1 would index past the table in a pair task.
        tokenizer.model_input_names = [name for name in tokenizer.model_input_names if name != "token_type_ids"]
    return tokenizer


def student_config(args, teacher_config, tokenizer) -> DynConvConfig:
    """The student's config: the teacher's mirror with ``--config_overrides``; inputs the teacher can read."""
    try:
        config = mirror_config(teacher_config, tokenizer, **args.student_settings)
    except (ValueError, TypeError, StrictDataclassError) as error:
        raise UsageError(f"--config_overrides {args.config_overrides}: {first_line(error)}") from None
    if not config.conv_layers:
        raise UsageError(f"--keep_attention_layers {' '.join(map(str, args.keep_attention_layers))} keeps every "
                         "layer's attention: leave at least one layer to convolve")
    if args.max_seq_length > teacher_max_length(teacher_config):
        raise UsageError(f"--max_seq_length {args.max_seq_length} is beyond the {teacher_max_length(teacher_config)} "
                         "positions the teacher reads: lower it")
    return config


def build_student(config: DynConvConfig, teacher) -> DynConvModel:
    """A DynConvModel mirroring the teacher, its counterpart weights copied."""
    student = DynConvModel(config)
    with torch.no_grad():
        copied = copy_teacher_weights(teacher, student)
    logger.info(f"copied {len(copied)} of the student's {len(student.state_dict())} tensors from the teacher",
                main_process_only=True)
    return student


def evaluate(args, model, dataset, collate, accelerator: Accelerator) -> dict:
    """Both stages' losses and the mean width on the held-out text, per real token of all of it.

    Each process takes its own shard, so that every text counts once (a prepared loader would pad
    the last batch with repeated texts); under ``--mixed_precision`` as in training.
    """
    shard = dataset.shard(accelerator.num_processes, accelerator.process_index, contiguous=True)
    dataloader = DataLoader(shard, batch_size=args.per_device_eval_batch_size, collate_fn=collate)
    model.eval()
    sums = torch.zeros(4, device=accelerator.device)  # layer loss, hidden loss, width (each x tokens), tokens
    with torch.no_grad(), accelerator.autocast():
        for batch in dataloader:
            batch = batch.to(accelerator.device)
            out = model(**batch)
            tokens = batch["attention_mask"].sum(-1)  # [B]
            sums += torch.stack([out["layer_loss"] * tokens.sum(), out["hidden_loss"] * tokens.sum(),
                                 (out["width"] * tokens).sum(), tokens.sum()]).float()
    layer, hidden, width, tokens = accelerator.reduce(sums, "sum").tolist()
    model.train()
    return {"eval_layer_loss": layer / tokens, "eval_hidden_loss": hidden / tokens, "eval_width": width / tokens}


def distillation_notes(args, results: dict) -> str:
    """The model card's account of where the weights came from."""
    pairs = ", sentence pairs kept whole" if args.glue_pairs else ""
    text = ", ".join(args.glue_tasks and [f"GLUE training splits ({', '.join(args.glue_tasks)}{pairs})"] or [])
    sources = [s for s in (args.dataset_name, text, " ".join(args.train_file or [])) if s]
    initial, final = results["initial"], results["final"]
    kept = args.student_settings.get("attention_layers")
    hybrid = (f"{'Layers' if len(kept) > 1 else 'Layer'} {', '.join(map(str, kept))} (0-based) "
              f"{'keep' if len(kept) > 1 else 'keeps'} the teacher's self-attention, copied exactly and frozen "
              "during distillation. ") if kept else ""
    return (
        "## Distillation\n\n"
        f"Distilled from the Transformer encoder `{args.teacher_name_or_path}` with dynconv_nlp's "
        "`scripts/distill_to_dynconv.py`: the teacher's embeddings, feed-forward layers, layer norms and "
        "value/output projections are copied; the generated kernels and widths replace its attention. "
        f"{hybrid}"
        f"Text: {'; '.join(sources)} ({results['train_samples']} examples of at most {args.max_seq_length} tokens). "
        f"{results['steps']} optimizer steps: {results['stage1_steps']} layer by layer (stage 1: each conv "
        "sub-layer reproduces the teacher's attention sub-layer from the teacher's input), then end to end "
        "(stage 2: every layer's hidden states match the teacher's).\n\n"
        "| held-out loss (MSE per channel) | before | after |\n|---|---:|---:|\n"
        f"| stage 1, attention sub-layers | {initial['eval_layer_loss']:.4f} | {final['eval_layer_loss']:.4f} |\n"
        f"| stage 2, hidden states | {initial['eval_hidden_loss']:.4f} | {final['eval_hidden_loss']:.4f} |"
    )


@exit_on_expected_errors
def main(argv=None) -> dict:
    args = parse_args(argv)
    # stage 1 trains the conv sub-layers only: DDP must allow weights without gradients.
    accelerator = start_run(args, [DistributedDataParallelKwargs(find_unused_parameters=True)])
    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        raise UsageError("distillation runs under DDP (or one process): stage 1 calls the student's layers one by one, "
                         "which FSDP and DeepSpeed ZeRO do not gather; choose multi-GPU DDP in `accelerate config`")
    teacher_config = load_teacher_config(args)
    tokenizer = load_tokenizer(args, teacher_config)
    config = student_config(args, teacher_config, tokenizer)

    # The text, the teacher, the student.
    splits = load_text_splits(args)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    teacher = from_pretrained(AutoModel, args.teacher_name_or_path, "--teacher_name_or_path",
                              trust_remote_code=args.trust_remote_code)
    student = build_student(config, teacher)
    if accelerator.is_main_process:
        write_run_info(args.output_dir, args, argv, splits, student.config, accelerator)
    encoded = tokenize_texts(args, splits, tokenizer, accelerator)
    collate = DataCollatorWithPadding(tokenizer)
    # Its own generator, so that starting an iterator does not move the global one that dropout uses.
    train_dataloader = DataLoader(encoded["train"], shuffle=True, batch_size=args.per_device_train_batch_size,
                                  collate_fn=collate, generator=torch.Generator().manual_seed(args.seed))

    batches_per_process = math.ceil(len(train_dataloader) / accelerator.num_processes)
    stage1_steps = round(args.stage1_ratio * count_train_steps(args, batches_per_process))
    distiller = Distiller(student, teacher.to(accelerator.device), stage1_steps).to(accelerator.device)
    initial = evaluate(args, distiller, encoded["validation"], collate, accelerator)
    logger.info("before: " + ", ".join(f"{k} {v:.4f}" for k, v in initial.items()), main_process_only=True)

    def loss(model, batch):
        value = model(**batch)["loss"]
        if accelerator.sync_gradients:  # the last micro-batch of an optimizer step
            accelerator.unwrap_model(model).count_step()
        return value

    fitted = fit(
        args, accelerator, distiller, train_dataloader, loss=loss,
        evaluate=lambda model, loaders: evaluate(args, model, encoded["validation"], collate, accelerator),
        project="distill_to_dynconv",
    )
    progress = fitted.progress
    student = accelerator.unwrap_model(fitted.model).student
    save_model(student, tokenizer, accelerator, args.output_dir)

    final = progress.history[-1] if progress.history else evaluate(args, fitted.model, encoded["validation"], collate, accelerator)
    final = {k: final[k] for k in initial}
    results = {"teacher": args.teacher_name_or_path, "steps": progress.completed_steps, "stage1_steps": stage1_steps,
               "epochs": progress.epoch, "train_seconds": round(fitted.train_seconds, 1),
               "train_samples": len(encoded["train"]), "initial": initial, "final": final,
               "recipe": fitted.recipe, "history": progress.history}
    logger.info("after: " + ", ".join(f"{k} {v:.4f}" for k, v in final.items()), main_process_only=True)
    if accelerator.is_main_process:
        sample = collate([encoded["validation"][i] for i in range(min(64, len(encoded["validation"])))]).to(accelerator.device)
        widths = hub.summarize_widths(student, sample["input_ids"], sample["attention_mask"], sample.get("token_type_ids"))
        results["widths"] = [w.mean_fraction for w in widths]
        write_results(args.output_dir, results)
        hub.write_model_card(
            args.output_dir, student.config, model_name=args.hub_model_id or args.output_dir.name,
            task="feature-extraction", dataset_name=args.dataset_name or "local text",
            dataset_type=args.dataset_name or "custom", dataset_config=args.dataset_config_name,
            metrics={"hidden_state_mse": final["eval_hidden_loss"], "attention_sublayer_mse": final["eval_layer_loss"]},
            widths=widths, base_model=args.teacher_name_or_path, notes=distillation_notes(args, results),
        )
        if args.push_to_hub:
            push_output_dir(args)
    accelerator.wait_for_everyone()
    return results


if __name__ == "__main__":
    main()
