"""Loading what a user points the scripts at — models, tokenizers, checkpoints — with one-line errors.

A truncated ``model.safetensors``, a config with impossible values, a tokenizer folder with files
missing or a damaged checkpoint each become a :class:`UsageError` that names the file's option and
what went wrong, instead of a traceback from deep inside transformers or torch. Nothing is unpickled:
weights are safetensors, accelerate loads optimizer, scheduler and RNG states with
``torch.load(weights_only=True)``, and the training progress is JSON.
"""

import json
import pickle
from contextlib import contextmanager
from pathlib import Path

from accelerate import Accelerator
from safetensors import SafetensorError
from transformers import AutoTokenizer

from .cli import UsageError
from .progress import PROGRESS_FILE, TrainingProgress

# What loaders raise on bad files: missing or unreadable (OSError), not JSON or impossible values
# (ValueError, JSONDecodeError among them), damaged safetensors, a torch.load of a damaged or
# unsafe pickle (RuntimeError, UnpicklingError).
LOAD_ERRORS = (OSError, ValueError, SafetensorError, RuntimeError, pickle.UnpicklingError, KeyError)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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


def tokenizer_from_pretrained(name: str | Path, option: str, **kwargs):
    """A tokenizer from a folder or the Hub; one without a vocabulary (its files are missing) is an error."""
    tokenizer = from_pretrained(AutoTokenizer, str(name), f"the tokenizer of {option}", **kwargs)
    if len(tokenizer) <= len(tokenizer.all_special_tokens):
        raise UsageError(
            f"the tokenizer of {option} {name} has only its special tokens: its folder lacks the vocabulary "
            "(tokenizer.json, or vocab.txt / the sentencepiece model of a slow tokenizer)"
        )
    return tokenizer


def load_checkpoint(accelerator: Accelerator, checkpoint: str | Path, progress: TrainingProgress) -> None:
    """Restore weights, optimizer, schedule, RNG states (``accelerator.load_state``) and ``progress``."""
    checkpoint = Path(checkpoint)
    hint = f"; resume from another checkpoint in {checkpoint.parent}, or start again"
    with one_line_load_errors(f"the checkpoint {checkpoint}", hint):
        state = json.loads((checkpoint / PROGRESS_FILE).read_text(encoding="utf-8"))
        accelerator.load_state(str(checkpoint))
        progress.load_state_dict(state)
    progress.restore_process_share(accelerator.process_index)
