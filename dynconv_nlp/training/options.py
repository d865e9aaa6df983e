"""The command-line options every training script shares, their checks, and the recipe a run starts from.

    parser = ArgumentParser(description=...)
    data = parser.add_argument_group("data")              # the script's own options
    groups = add_training_options(parser)                  # model, training and output options
    groups.model.add_argument("--vocab_size", ...)         # more of the script's own, in the shared groups
    parser.set_defaults(weight_decay=0.01)                 # the script's own defaults
    args = parse_args_with_config_file(parser, argv)
    check_training_options(args, argv, scratch=FROM_SCRATCH)  # one-line UsageError on bad values

The names are those of transformers' ``run_*_no_trainer.py`` examples. ``--learning_rate`` and the
warm-up have no fixed default: a model built from ``--config_name`` starts from random weights and
needs a from-scratch recipe (a larger rate, a warm-up), a checkpoint given as ``--model_name_or_path``
keeps transformers' fine-tuning defaults (5e-5, no warm-up). An option given always wins.
"""

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate.utils import is_tensorboard_available, is_trackio_available

from ..errors import UsageError

SCHEDULES = ("linear", "cosine", "inverse_sqrt", "constant_with_warmup")
TRACKERS = ("tensorboard", "trackio", "all", "none")


@dataclass(frozen=True)
class Recipe:
    """Learning rate and warm-up (a share of the run's optimizer steps) used where the user gave none;
    ``name`` and ``source`` (where the weights come from) describe it in the log."""

    learning_rate: float
    warmup_ratio: float
    name: str = "from scratch"
    source: str = "new model from --config_name"


# transformers' defaults for fine-tuning a pretrained model.
FINE_TUNING = Recipe(learning_rate=5e-5, warmup_ratio=0.0, name="fine-tuning", source="from --model_name_or_path")
# A new model: what this repository's task configs use (lr 1e-3, a warm-up over ~5-6% of the steps).
FROM_SCRATCH = Recipe(learning_rate=1e-3, warmup_ratio=0.06)


@dataclass
class OptionGroups:
    """The shared argument groups, so that a script can add its own options to them."""

    model: argparse._ArgumentGroup
    training: argparse._ArgumentGroup
    outputs: argparse._ArgumentGroup


def add_training_options(parser: argparse.ArgumentParser, scratch: Recipe = FROM_SCRATCH) -> OptionGroups:
    """Add the options every training script has; the script sets its own defaults with ``set_defaults``."""
    model = parser.add_argument_group("model and tokenizer")
    model.add_argument("--model_name_or_path", help="a checkpoint to fine-tune (folder or Hub id)")
    model.add_argument("--config_name", help="a config to train a new model from, e.g. configs/models/small.json")
    model.add_argument("--config_overrides", help='settings over the config, e.g. "width_penalty_coef=0.01,ramp=2"')
    model.add_argument("--tokenizer_name", help="default: the model's; for a new model, one trained on the data")
    # transformers 5 dropped the Python ("slow") tokenizers: AutoTokenizer ignores use_fast. The option
    # of the official examples is kept so that a command carried over gets a reason, not "unrecognized".
    model.add_argument("--use_slow_tokenizer", action="store_true", help="refused: transformers 5 has only fast tokenizers")
    model.add_argument("--trust_remote_code", action="store_true")

    training = parser.add_argument_group("training")
    training.add_argument("--per_device_train_batch_size", type=int, default=32)
    training.add_argument("--per_device_eval_batch_size", type=int, default=64)
    training.add_argument("--learning_rate", type=float,
                          help=f"default: {scratch.learning_rate:g} for a new model (--config_name), "
                               f"{FINE_TUNING.learning_rate:g} for a checkpoint (--model_name_or_path)")
    training.add_argument("--weight_decay", type=float, default=0.0)
    training.add_argument("--adam_beta1", type=float, default=0.9)
    training.add_argument("--adam_beta2", type=float, default=0.999)
    training.add_argument("--num_train_epochs", type=int, default=3)
    training.add_argument("--max_train_steps", type=int, help="overrides --num_train_epochs")
    training.add_argument("--gradient_accumulation_steps", type=int, default=1)
    training.add_argument("--lr_scheduler_type", choices=SCHEDULES, default="linear")
    training.add_argument("--num_warmup_steps", type=int, help="optimizer steps of linear warm-up (as given, whatever the run's length)")
    training.add_argument("--warmup_ratio", type=float,
                          help=f"warm-up as a share of the run's optimizer steps; default: {scratch.warmup_ratio:g} "
                               f"for a new model, {FINE_TUNING.warmup_ratio:g} for a checkpoint")
    training.add_argument("--max_grad_norm", type=float, default=1.0, help="0 turns clipping off")
    training.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), help="default: accelerate's config")
    training.add_argument("--seed", type=int, default=42)
    training.add_argument("--skip_nonfinite_loss", action="store_true",
                          help="leave out batches whose loss is NaN or inf, instead of stopping")

    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--output_dir", required=True)
    outputs.add_argument("--overwrite_output_dir", action="store_true", help="write into a folder that holds another run")
    outputs.add_argument("--checkpointing_steps", help='save the training state every N steps, or "epoch"')
    outputs.add_argument("--resume_from_checkpoint", help='a step_N / epoch_N folder, or "latest" in --output_dir')
    outputs.add_argument("--with_tracking", action="store_true")
    outputs.add_argument("--report_to", choices=TRACKERS, default="tensorboard")
    outputs.add_argument("--push_to_hub", action="store_true")
    outputs.add_argument("--hub_model_id", help="the Hub repository, e.g. user/dynconv-small")
    outputs.add_argument("--hub_token")
    outputs.add_argument("--hub_private_repo", action="store_true")
    return OptionGroups(model, training, outputs)


def tracking_enabled(args: argparse.Namespace) -> bool:
    """Whether the run logs to trackers: ``--with_tracking`` and a ``--report_to`` other than none."""
    return args.with_tracking and args.report_to != "none"


def require_positive(args: argparse.Namespace, names) -> None:
    """Each of ``names`` that is set must be 1 or more."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be 1 or more, got {value}")


def check_training_options(
    args: argparse.Namespace, argv: list[str] | None, scratch: Recipe = FROM_SCRATCH, needs_model: bool = True
) -> None:
    """Check the shared options (one-line :class:`UsageError`) and fill in the recipe's learning rate and warm-up.

    ``argv`` is the command line without the config file's values: a checkpoint given there replaces
    a config file's ``config_name``. ``scratch`` is the script's recipe for a new model. A script
    that builds its model otherwise (``needs_model=False``) takes no model option; ``scratch`` is its recipe.
    """
    command_line = sys.argv[1:] if argv is None else argv
    if args.model_name_or_path and args.config_name and "--config_name" not in command_line:
        args.config_name = None  # a checkpoint on the command line replaces the config file's new model
    if args.model_name_or_path and args.config_name:
        raise UsageError("pass --model_name_or_path (fine-tune) or --config_name (train from scratch), not both")
    if needs_model and not args.model_name_or_path and not args.config_name:
        raise UsageError("pass --model_name_or_path to fine-tune a model or --config_name to train one from scratch")
    if args.use_slow_tokenizer:
        raise UsageError("--use_slow_tokenizer: transformers 5 has only the fast (Rust) tokenizers; leave the option out")
    if args.push_to_hub and not args.hub_model_id:
        raise UsageError("--push_to_hub needs --hub_model_id, e.g. --hub_model_id user/dynconv-small")
    steps = args.checkpointing_steps
    if steps is not None and steps != "epoch" and not (steps.isdigit() and int(steps) > 0):
        raise UsageError(f'--checkpointing_steps must be a number of steps (1 or more) or "epoch", got {steps!r}')
    require_positive(args, ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                            "num_train_epochs", "max_train_steps"))
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise UsageError(f"--learning_rate must be above 0, got {args.learning_rate}")
    if args.num_warmup_steps is not None and args.num_warmup_steps < 0:
        raise UsageError(f"--num_warmup_steps must be 0 or more, got {args.num_warmup_steps}")
    if args.warmup_ratio is not None and not 0 <= args.warmup_ratio < 1:
        raise UsageError(f"--warmup_ratio must be in [0, 1), got {args.warmup_ratio}")
    if args.num_warmup_steps is not None and args.warmup_ratio is not None:
        raise UsageError("pass --num_warmup_steps or --warmup_ratio, not both")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(args, name) < 1:
            raise UsageError(f"--{name} must be in [0, 1), got {getattr(args, name)}")
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise UsageError("--mixed_precision fp16 needs a GPU; on a CPU use --mixed_precision bf16 or no")
    if args.with_tracking and args.report_to in ("tensorboard", "trackio"):
        available = is_tensorboard_available if args.report_to == "tensorboard" else is_trackio_available
        if not available():
            raise UsageError(f"--report_to {args.report_to} needs the {args.report_to} package: pip install {args.report_to}")
    args.output_dir = Path(args.output_dir)
    apply_recipe(args, scratch)


def apply_recipe(args: argparse.Namespace, scratch: Recipe = FROM_SCRATCH) -> None:
    """Fill in the learning rate and warm-up the user left out, and record which were chosen for them.

    Sets ``args.recipe`` (the recipe's name: "from scratch", "fine-tuning", ...), ``args.recipe_source``
    and ``args.recipe_defaults`` (the option names filled in), saved with the run's options in ``run_info.json``.
    """
    recipe = FINE_TUNING if args.model_name_or_path else scratch
    args.recipe, args.recipe_source = recipe.name, recipe.source
    args.recipe_defaults = []
    if args.learning_rate is None:
        args.learning_rate = recipe.learning_rate
        args.recipe_defaults.append("learning_rate")
    if args.num_warmup_steps is None and args.warmup_ratio is None:
        args.warmup_ratio = recipe.warmup_ratio
        args.recipe_defaults.append("warmup_ratio")


def warmup_steps(args: argparse.Namespace, max_train_steps: int) -> int:
    """Optimizer steps of warm-up: ``--num_warmup_steps`` as given, else ``--warmup_ratio`` of the run."""
    if args.num_warmup_steps is not None:
        return args.num_warmup_steps
    return math.ceil(args.warmup_ratio * max_train_steps)


def describe_recipe(args: argparse.Namespace, max_train_steps: int) -> str:
    """One line for the log: the recipe, its learning rate and warm-up, and which of them are defaults."""
    lr_source = "default" if "learning_rate" in args.recipe_defaults else "given"
    warmup = warmup_steps(args, max_train_steps)
    if args.num_warmup_steps is not None:
        warmup_text = f"{warmup} steps (given)"
    else:
        source = "default" if "warmup_ratio" in args.recipe_defaults else "given"
        warmup_text = f"{warmup} steps ({args.warmup_ratio:g} of {max_train_steps}, {source})"
    return (f"{args.recipe} recipe ({args.recipe_source}): learning rate {args.learning_rate:g} ({lr_source}), "
            f"warm-up {warmup_text}, {args.lr_scheduler_type} schedule")
