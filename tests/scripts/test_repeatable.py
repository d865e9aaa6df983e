"""One seed, one result: the same command run twice, in two fresh processes, gives the same run to the bit."""

import json
import os
import subprocess
import sys
from pathlib import Path

from test_run_glue import TINY_MODEL

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run_glue.py"


def _run(tmp_path: Path, name: str, hash_seed: str) -> Path:
    """run_glue.py from scratch (its tokenizer trained on the data) in a new process with its own hash seed."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_MODEL))
    out = tmp_path / name
    command = [
        sys.executable, str(SCRIPT), "--task_name", "negation_scope", "--config_name", str(config), "--vocab_size", "500",
        "--max_train_samples", "400", "--max_eval_samples", "100", "--num_train_epochs", "2",
        "--per_device_train_batch_size", "16", "--config_overrides", "hidden_dropout_prob=0.1", "--seed", "7",
        "--output_dir", str(out),
    ]
    # Python's string hashing differs between processes unless pinned: set and dict orders built from
    # it must not reach the tokenizer or the data.
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_the_same_seed_gives_the_same_tokenizer_weights_and_metrics(tmp_path):
    first, second = _run(tmp_path, "first", "1"), _run(tmp_path, "second", "2")
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    results = [json.loads((out / "all_results.json").read_text()) for out in (first, second)]
    for result in results:
        result.pop("train_seconds")
    assert results[0] == results[1]
