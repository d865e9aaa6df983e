"""Loading what a user points the scripts at — models, tokenizers, checkpoints — with one-line errors.

A truncated ``model.safetensors``, a config with impossible values, a tokenizer folder with files
missing or a damaged checkpoint each become a :class:`UsageError` that names the file's option and
what went wrong, instead of a traceback from deep inside transformers or torch. Nothing is unpickled:
weights are safetensors, accelerate loads optimizer, scheduler and RNG states with
``torch.load(weights_only=True)``, and the training progress is JSON.
"""

import json
import pickle
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from accelerate import Accelerator
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from ..errors import UsageError, first_line
from .progress import PROGRESS_FILE, TrainingProgress

# What loaders raise on bad files: missing or unreadable (OSError), not JSON or impossible values
# (ValueError, JSONDecodeError among them), damaged safetensors, a torch.load of a damaged or
# unsafe pickle (RuntimeError, UnpicklingError), a config value of the wrong type or validate() (StrictDataclassError).
LOAD_ERRORS = (
    OSError, ValueError, SafetensorError, RuntimeError, pickle.UnpicklingError, KeyError,
    StrictDataclassError,
)  # fmt: skip


@contextmanager
def one_line_load_errors(what: str, hint: str = ""):
    """Within: a loading error becomes ``UsageError("cannot load {what}: {reason}{hint}")``."""
    try:
        yield
    except LOAD_ERRORS as error:
        raise UsageError(f"cannot load {what}: {first_line(error)}{hint}") from None


def from_pretrained(auto_class, name: str, option: str, **kwargs):
    """``auto_class.from_pretrained(name, **kwargs)``, e.g. a model given as ``--model_name_or_path``."""
    with one_line_load_errors(f"{option} {name}"):
        return auto_class.from_pretrained(name, **kwargs)


# The files a tokenizer folder keeps its vocabulary in: fast tokenizers', then slow ones'.
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")


def tokenizer_from_pretrained(name: str | Path, option: str, **kwargs):
    """A tokenizer from a folder or the Hub; one without a vocabulary (its files are missing) is an error."""
    folder = Path(name)
    if folder.is_dir() and not any((folder / file).is_file() for file in VOCABULARY_FILES):
        raise UsageError(
            f"the tokenizer of {option} {name} has no vocabulary: the folder holds none of {', '.join(VOCABULARY_FILES)}"
        )
    return from_pretrained(AutoTokenizer, str(name), f"the tokenizer of {option}", **kwargs)


def load_checkpoint(accelerator: Accelerator, checkpoint: str | Path, progress: TrainingProgress) -> None:
    """Restore weights, optimizer, schedule, RNG states (``accelerator.load_state``) and ``progress``."""
    checkpoint = Path(checkpoint)
    hint = f"; resume from another checkpoint in {checkpoint.parent}, or start again"
    with one_line_load_errors(f"the checkpoint {checkpoint}", hint):
        state = json.loads((checkpoint / PROGRESS_FILE).read_text(encoding="utf-8"))
        accelerator.load_state(str(checkpoint))
        progress.load_state_dict(state)
    progress.restore_process_share(accelerator.process_index)


def load_config(args, **kwargs):
    """The config of ``--model_name_or_path`` or ``--config_name`` with ``--config_overrides``; one-line errors."""
    name = args.model_name_or_path or args.config_name
    option = "--model_name_or_path" if args.model_name_or_path else "--config_name"
    with one_line_load_errors(f"the config of {option} {name}"):
        config = AutoConfig.from_pretrained(name, trust_remote_code=args.trust_remote_code, **kwargs)
        if args.config_overrides:
            config.update_from_string(args.config_overrides)
            config.validate()  # transformers' own configs check nothing in update_from_string
    return config


def load_or_train_tokenizer(args, accelerator: Accelerator, train: Callable[[], PreTrainedTokenizerBase]):
    """The tokenizer of ``--tokenizer_name`` or the checkpoint; for a new model, ``train()``'s, saved in ``--output_dir``.

    The main process trains and saves it, the others load it; a resumed run loads the one it trained before.
    """
    name = args.tokenizer_name or args.model_name_or_path
    if name:
        option = "--tokenizer_name" if args.tokenizer_name else "--model_name_or_path"
        return tokenizer_from_pretrained(name, option, trust_remote_code=args.trust_remote_code)
    resumed = args.resume_from_checkpoint and (Path(args.output_dir) / "tokenizer.json").is_file()
    if not resumed and accelerator.is_main_process:
        train().save_pretrained(args.output_dir)
    accelerator.wait_for_everyone()
    return AutoTokenizer.from_pretrained(args.output_dir)
