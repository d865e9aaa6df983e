"""A study's training runs: what each is, how it is started and resumed, its record, and a pool.

A run is one call of a training script (``scripts/run_glue.py`` or ``scripts/run_translation.py``)
with a config file, model arguments and a seed. Its record, ``<output_dir>/runs/<name>.json``, holds
its scores, its wall time and the command that repeats it (paths relative to the repository), and
a fingerprint of everything that decides its result: a record made with other settings is refused,
never silently reused. A stopped run resumes from its last checkpoint the next time it is asked for.
"""

import hashlib
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig

import dynconv_nlp
from dynconv_nlp.benchmarking.params import config_parameters
from dynconv_nlp.errors import UsageError
from dynconv_nlp.training.progress import latest_checkpoint

ROOT = Path(dynconv_nlp.__file__).resolve().parents[1]  # the repository: the harnesses run from a checkout
DATA_FOLDER = "shared"  # ../shared/data beside the repository, as the configs name it
GLUE_TASKS = ("sst2", "cola", "mrpc", "stsb", "rte")
# Settings of the task configs that are not part of a study's budget: the model, where outputs go, extras.
NOT_BUDGET = ("config_name", "model_name_or_path", "output_dir", "do_predict", "plot_widths", "push_to_hub")
# GLUE's main score per task: the mean of the task's metrics where it has two.
MAIN_SCORE = {
    "sst2": ("accuracy",),
    "cola": ("matthews_correlation",),
    "mrpc": ("accuracy", "f1"),
    "stsb": ("pearson", "spearmanr"),
    "rte": ("accuracy",),
}


@dataclass
class Run:
    """One training run: a script, its config file and the model-specific arguments."""

    kind: str  # "glue", "translation", "sweep" or "width"
    task: str
    model: str
    seed: int
    script: str
    config_file: Path
    arguments: list[str] = field(default_factory=list)
    budget: list[str] = field(default_factory=list)  # settings that replace the config file's, e.g. the lr

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.task}-{self.model}-seed{self.seed}"

    def fingerprint(self, extra: list[str]) -> str:
        """A hash of what decides the result: the config file, the model (its config, or a checkpoint's config
        and weights), overrides, seed, extra arguments."""
        option = "--config_name" if "--config_name" in self.arguments else "--model_name_or_path"
        model = Path(self.arguments[self.arguments.index(option) + 1])
        if model.is_dir():  # a pretrained checkpoint: its config and every weight file
            weights = hashlib.sha256()
            for path in sorted([*model.glob("*.safetensors"), *model.glob("*.bin")]):
                weights.update(path.read_bytes())
            model_text = (model / "config.json").read_text() + weights.hexdigest()
        else:
            model_text = model.read_text()
        overrides = [a for a in self.arguments if "=" in a]
        parts = [self.config_file.read_text(), model_text, overrides, self.seed, extra]
        text = json.dumps(parts + [self.budget] if self.budget else parts)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def portable(path: str | Path) -> str:
    """A path as committed records keep it, the same on every machine: relative to the repository where it
    is in it or in the data folder beside it (``../shared/data/glue``), else only its name."""
    if not os.path.isabs(path):
        return str(path)
    relative = os.path.relpath(path, ROOT)
    inside = not relative.startswith("..") or relative.startswith(f"..{os.sep}{DATA_FOLDER}{os.sep}")
    return relative if inside else Path(path).name


def portable_command(cmd: list[str]) -> str:
    """A command line (without the interpreter) with every absolute path made :func:`portable`."""
    return " ".join(portable(arg) for arg in cmd[1:])


def command(run: Run, run_dir: Path, extra: list[str], fresh: bool = False) -> list[str]:
    """The run's command line; unless ``fresh``, resuming from its last checkpoint if it has one."""
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / run.script),
        str(run.config_file),
        *run.arguments,
        *run.budget,
        "--seed",
        str(run.seed),
        "--output_dir",
        str(run_dir),
        "--checkpointing_steps",
        "epoch",
    ]
    if run.script == "run_translation.py":
        cmd += ["--predict_file", str(run_dir / "test.hyp")]
    if fresh:
        pass
    elif latest_checkpoint(run_dir) is not None:  # an epoch's, or a step_N saved when it was stopped
        cmd += ["--resume_from_checkpoint", "latest"]
    elif run_dir.exists():
        cmd += ["--overwrite_output_dir"]  # stopped before its first checkpoint: start it again
    return cmd + extra


def execute(run: Run, args, threads: int) -> dict | None:
    """Train one run unless its record exists; return its record, or None if it failed (see its log).

    ``args`` gives ``output_dir`` (records), ``work_dir`` (models, checkpoints, logs) and ``run_args``
    (arguments passed to every run).
    """
    try:
        return _execute(run, args, threads)
    except Exception as error:  # one broken run must not stop the others, nor the tables
        print(f"FAILED {run.name}: {type(error).__name__}: {error}", flush=True)
        return None


def _execute(run: Run, args, threads: int) -> dict | None:
    extra = shlex.split(args.run_args)
    fingerprint = run.fingerprint(extra)
    result_file = args.output_dir / "runs" / f"{run.name}.json"
    if result_file.exists():
        result = json.loads(result_file.read_text())
        if result.get("fingerprint") != fingerprint:
            raise UsageError(
                f"{result_file} was made with other settings (config, model, seed or --run_args): "
                "use another --output_dir, or delete it to run it again"
            )
        return result
    run_dir = args.work_dir / run.name
    log_file = args.work_dir / f"{run.name}.log"
    attempts_file = args.work_dir / f"{run.name}.attempts.json"
    attempts = json.loads(attempts_file.read_text()) if attempts_file.exists() else []
    if not (run_dir / "all_results.json").exists():  # else it finished before its result was recorded
        cmd = command(run, run_dir, extra)
        print(f"start {run.name} (log: {log_file})", flush=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
        start = time.perf_counter()
        with open(log_file, "a") as log:
            code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
        attempts.append(round(time.perf_counter() - start, 1))
        attempts_file.write_text(json.dumps(attempts) + "\n")
        if code != 0:
            print(f"FAILED {run.name} (exit {code}): see {log_file}", flush=True)
            return None
    scores = json.loads((run_dir / "all_results.json").read_text())
    config = AutoConfig.from_pretrained(run_dir)  # the real vocabulary: that of the tokenizer trained on the task
    result = dict(
        kind=run.kind,
        task=run.task,
        model=run.model,
        seed=run.seed,
        wall_seconds=sum(attempts),
        attempts=len(attempts),  # > 1: resumed, and train_seconds counts the last attempt only
        params=config_parameters(config, seq2seq=run.script == "run_translation.py"),
        fingerprint=fingerprint,
        command=portable_command(command(run, run_dir, extra, fresh=True)),
        **result_scores(run, scores),
    )
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    print(f"done {run.name}: {result['score']:.4f} in {sum(attempts) / 60:.1f} min", flush=True)
    return result


def result_scores(run: Run, scores: dict) -> dict:
    """The run's main score (best epoch, as kept) and the last epoch's, plus everything run_glue reported."""
    if run.script == "run_translation.py":
        keep = ("test_bleu", "test_chrf", "eval_bleu", "eval_chrf", "test_bleu_signature", "test_chrf_signature")
        return dict(
            score=scores["test_bleu"],
            steps=scores["steps"],
            train_seconds=scores["train_seconds"],
            **{key: scores[key] for key in keep},
        )
    main = MAIN_SCORE.get(run.task, ("accuracy",))  # a task of run_glue's own (negation_scope): accuracy
    last = scores["history"][-1]
    return dict(
        score=mean_score(scores[f"eval_{m}"] for m in main),
        last_epoch_score=mean_score(last[f"eval_{m}"] for m in main),
        metrics={key: value for key, value in scores.items() if key.startswith("eval_") and key != "eval_samples"},
        best_epoch=scores["best_epoch"],
        epochs=scores["epochs"],
        steps=scores["steps"],
        train_seconds=scores["train_seconds"],
    )


def mean_score(values) -> float:
    """Mean of metrics; run_glue writes NaN (a constant prediction's correlation) as null."""
    return statistics.mean(math.nan if v is None else v for v in values)


def threads_per_job(jobs: int, threads: int | None = None) -> int:
    """``threads`` if given, else this process's CPUs shared among ``jobs`` runs at a time."""
    return threads or max(1, len(os.sched_getaffinity(0)) // jobs)


def run_pool(calls: dict[str, Callable[[], object]], jobs: int, after_each: Callable[[], object]) -> list[str]:
    """Run ``calls`` ``jobs`` at a time, first in first out, calling ``after_each`` (e.g. rewrite the tables)
    whenever one ends; returns the names of those that failed: returned None or False, or raised."""
    failed = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(call): name for name, call in calls.items()}
        for future in as_completed(futures):
            try:
                ok = future.result() not in (None, False)
            except Exception as error:  # one broken run must not stop the others, nor the tables
                print(f"FAILED {futures[future]}: {type(error).__name__}: {error}", flush=True)
                ok = False
            if not ok:
                failed.append(futures[future])
            after_each()
    return failed


def report_failures(script: str, failed: list[str], work_dir: Path) -> int:
    """The exit status of a study: 1, with one line naming the failed runs, if any failed."""
    if not failed:
        return 0
    print(f"{script}: error: {len(failed)} runs failed ({', '.join(failed)}); see their logs in {work_dir}",
          file=sys.stderr)
    return 1
