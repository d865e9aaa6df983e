"""Real training processes stopped by signals and by ``kill -9``: nothing is lost, and a resume finishes the run.

Each test starts ``scripts/run_glue.py`` in its own process (one thread, so its sums are those of the
uninterrupted reference), stops it at a random moment once training is under way, resumes it with
``--resume_from_checkpoint latest`` and compares the final metrics with a run that was never stopped.
All runs share one tokenizer, trained once (each run would train the same one again).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dynconv_nlp.data.synthetic import negation_scope_splits
from dynconv_nlp.data.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TINY_MODEL = {
    "model_type": "dynconv", "hidden_size": 32, "encoder_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "kernel_size": [3, 7], "hidden_dropout_prob": 0.1, "weight_dropout": 0.1,
}  # fmt: skip
STEPS = 60


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(negation_scope_splits()["train"]["sentence"], vocab_size=300).save_pretrained(path)
    return path


def _command(tmp_path: Path, output_dir: Path, tokenizer_dir: Path, *extra: str) -> list[str]:
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_MODEL))
    return [
        sys.executable, str(ROOT / "scripts/run_glue.py"), "--task_name", "negation_scope",
        "--config_name", str(config), "--tokenizer_name", str(tokenizer_dir), "--max_train_samples", "256",
        "--max_eval_samples", "64", "--per_device_train_batch_size", "8", "--max_train_steps", str(STEPS),
        "--learning_rate", "1e-3", "--seed", "3", "--output_dir", str(output_dir), *extra,
    ]  # fmt: skip


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")


def _run(command: list[str]) -> dict:
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    output_dir = Path(command[command.index("--output_dir") + 1])
    return json.loads((output_dir / "all_results.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tokenizer_dir):
    """The run that is never stopped, checkpointing every step as the stopped ones do."""
    tmp_path = tmp_path_factory.mktemp("reference")
    return _run(_command(tmp_path, tmp_path / "out", tokenizer_dir, "--checkpointing_steps", "1"))


def _start_and_stop(command: list[str], output_dir: Path, how: int, seed: int) -> subprocess.CompletedProcess:
    """Start ``command``; once it has saved a new checkpoint, wait a random moment and send signal ``how``."""
    before = set(output_dir.glob("step_*"))
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
        # Default handlers in the child, even where the tests run as a shell's background job (SIGINT ignored).
        preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)],
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not set(output_dir.glob("step_*")) - before:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(random.Random(seed).uniform(0.0, 1.0))
    assert process.poll() is None, "the run finished before it could be stopped: give it more steps"
    process.send_signal(how)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _same_run(resumed: dict, reference: dict) -> None:
    for key in ("eval_accuracy", "train_loss", "steps", "best_epoch"):
        assert resumed[key] == reference[key], key
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in reference["history"]]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_a_checkpoint_stops_cleanly_and_the_resume_matches(tmp_path, tokenizer_dir, reference, how):
    out = tmp_path / "out"
    command = _command(tmp_path, out, tokenizer_dir, "--checkpointing_steps", "1")
    stopped = _start_and_stop(command, out, how, seed=int(how))
    assert stopped.returncode == 128 + how, stopped.stderr[-3000:]
    last_line = stopped.stderr.strip().splitlines()[-1]
    assert "Traceback" not in stopped.stderr
    assert last_line.startswith(f"run_glue.py: error: stopped by {signal.Signals(how).name} at step ")
    step = int(last_line.split(" at step ")[1].split(":")[0])
    assert 1 <= step < STEPS and f"{out / f'step_{step}'}" in last_line
    assert json.loads((out / f"step_{step}" / "training_progress.json").read_text())["completed_steps"] == step
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())
    _same_run(_run(command + ["--resume_from_checkpoint", "latest"]), reference)


def test_after_kill_9_at_random_moments_every_checkpoint_is_whole_and_the_run_finishes(
    tmp_path, tokenizer_dir, reference
):
    out = tmp_path / "out"
    command = _command(tmp_path, out, tokenizer_dir, "--checkpointing_steps", "1")
    for attempt in range(3):  # killed three times, each time resumed from what the last one left
        argv = command + (["--resume_from_checkpoint", "latest"] if attempt else [])
        killed = _start_and_stop(argv, out, signal.SIGKILL, seed=attempt)
        assert killed.returncode == -signal.SIGKILL
        for folder in out.glob("step_*"):  # a folder under its final name is complete
            names = {p.name for p in folder.iterdir()}
            assert {"model.safetensors", "optimizer.bin", "scheduler.bin", "training_progress.json"} <= names
            assert json.loads((folder / "training_progress.json").read_text())["completed_steps"] == int(
                folder.name[5:]
            )
    _same_run(_run(command + ["--resume_from_checkpoint", "latest"]), reference)
