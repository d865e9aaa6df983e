"""``run_info.json``: what a run needs to be repeated — command, options, seed, versions, data hashes.

Written into ``--output_dir`` by every training script before it trains (a resumed run adds its own
entry, so a run continued with other code or data shows it)::

    {"runs": [{"command": [...], "args": {...}, "seed": 42, "versions": {...}, "git_commit": "...",
               "data": {"train": {"rows": 67349, "sha256": "..."}, ...}, "model_config": {...}, ...}]}
"""

import hashlib
import importlib.metadata
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import datasets
import pandas as pd

from .outputs import json_safe, write_text_atomic

PACKAGES = (
    "dynconv_nlp", "torch", "transformers", "accelerate", "datasets", "tokenizers", "numpy", "triton",
    "sacrebleu", "scikit-learn", "scipy", "evaluate",
)  # fmt: skip
SECRET_OPTIONS = ("hub_token",)


def split_sha256(dataset: datasets.Dataset) -> str:
    """A hash of a split's rows (columns, values, order); the same data from another file format hashes the same."""
    frame = dataset.to_pandas()
    for column in frame.columns:  # nested values (a translation's {"de": .., "en": ..}) are hashed as text
        if frame[column].dtype == object and not frame[column].map(lambda v: isinstance(v, str) or v is None).all():
            frame[column] = frame[column].map(lambda v: json.dumps(v, sort_keys=True, default=str))
    digest = hashlib.sha256(json.dumps(list(frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def versions() -> dict[str, str | None]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def git_commit() -> str | None:
    """The commit of the package's checkout, with ``-dirty`` for uncommitted changes; None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def write_run_info(
    output_dir: Path,
    args,
    argv: list[str] | None,
    splits: dict[str, datasets.Dataset],
    model_config=None,
    accelerator=None,
) -> Path:
    """Write this run's entry to ``output_dir/run_info.json`` (main process only) and return its path.

    ``argv`` is the script's command line (None: ``sys.argv[1:]``). A resumed run
    (``args.resume_from_checkpoint``) adds its entry after those of the attempts before it.
    """
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in SECRET_OPTIONS}
    entry = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "args": options,
        "seed": getattr(args, "seed", None),
        "versions": versions(),
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "data": {name: {"rows": len(split), "sha256": split_sha256(split)} for name, split in splits.items()},
    }
    if accelerator is not None:
        entry |= {
            "num_processes": accelerator.num_processes,
            "mixed_precision": accelerator.mixed_precision,
            "device": str(accelerator.device),
        }
    if model_config is not None:
        entry["model_config"] = model_config.to_dict()
    path = output_dir / "run_info.json"
    resumed = getattr(args, "resume_from_checkpoint", None) and path.is_file()
    runs = json.loads(path.read_text())["runs"] if resumed else []
    return write_text_atomic(path, json.dumps(json_safe({"runs": runs + [entry]}), indent=2, default=str) + "\n")
