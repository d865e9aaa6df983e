"""Test helpers: a tiny DynConv config, random token ids, a corpus for tokenizers, tiny BERT-family
teachers' configs and text, the scripts as modules (imported by the tests)."""

import importlib.util
import json
import os
import random
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from transformers import BertConfig, ElectraConfig, RobertaConfig

from dynconv_nlp import DynConvConfig

ROOT = Path(__file__).resolve().parents[1]


def script_path(name: str) -> Path:
    """scripts/NAME.py (a user recipe) or benchmarks/**/NAME.py (a study harness)."""
    recipe = ROOT / "scripts" / f"{name}.py"
    return recipe if recipe.exists() else next(ROOT.glob(f"benchmarks/**/{name}.py"))


def import_script(name: str):
    """A script (see :func:`script_path`) imported as a module, so that its main() can be called in-process."""
    spec = importlib.util.spec_from_file_location(name, script_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CORPUS = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the weather is nice today",
    "this film was a delight from start to end",
    "this film was dull and far too long",
    "das ist ein kleines haus",
    "the house is small",
]


def tiny_config(**overrides) -> DynConvConfig:
    """Two encoder and two decoder layers, widths 16, kernels 3 and 9 (shift and band backends)."""
    settings = dict(
        vocab_size=99,
        hidden_size=16,
        encoder_layers=2,
        decoder_layers=2,
        intermediate_size=32,
        num_attention_heads=4,
        kernel_size=[3, 9],
        decoder_kernel_size=[3, 9],
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        weight_dropout=0.0,
        # Larger than the usual 0.02, so that a random tiny model's outputs depend on its inputs.
        initializer_range=0.3,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    return DynConvConfig(**(settings | overrides))


def random_ids(batch: int, length: int, vocab_size: int = 99, seed: int = 0) -> torch.Tensor:
    """Token ids [batch, length] that avoid the special ids 0 ... 4."""
    return torch.randint(5, vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


def sigterm_at_optimizer_step(monkeypatch, step: int) -> None:
    """Send this process SIGTERM during its ``step``-th AdamW step (counted from 1), as a scheduler would."""
    import os
    import signal

    original, calls = torch.optim.AdamW.step, []

    def stepping(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", stepping)


WORDS = ("the a one every cat dog bird fish man woman child sat ran flew swam on under near over quick slow "
         "red green old young big small happy sad mat tree house river road park saw liked found").split()
# initializer_range larger than BERT's 0.02, so that a tiny random teacher's attention is far from uniform.
TEACHER_SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.2)


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + " ." for _ in range(count)]


def teacher_config(architecture: str, tokenizer):
    """A tiny random teacher's config: BERT, RoBERTa (positions from pad + 1) or ELECTRA (embeddings of 16, projected)."""
    common = TEACHER_SIZES | dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    if architecture == "bert":
        return BertConfig(max_position_embeddings=64, **common)
    if architecture == "roberta":
        return RobertaConfig(max_position_embeddings=64 + tokenizer.pad_token_id + 1, type_vocab_size=1, **common)
    return ElectraConfig(max_position_embeddings=64, embedding_size=16, **common)


def launch_two_processes(script: str, *argv: str) -> dict:
    """scripts/SCRIPT.py under ``accelerate launch`` with 2 CPU processes; returns its all_results.json."""
    with socket.socket() as s:  # a free port of its own: accelerate's 29500 may still be held by a run that just ended
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
        str(Path(__file__).resolve().parents[1] / "scripts" / f"{script}.py"), *argv,
    ]
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    output_dir = Path(argv[argv.index("--output_dir") + 1])
    return json.loads((output_dir / "all_results.json").read_text())


def run_without_dynconv_nlp(code: str, tmp_path) -> str:
    """Run ``code`` in a fresh interpreter in which ``import dynconv_nlp`` fails; return its stdout."""
    script = "import sys\nsys.modules['dynconv_nlp'] = None  # import dynconv_nlp now raises\n" + textwrap.dedent(code)
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout
