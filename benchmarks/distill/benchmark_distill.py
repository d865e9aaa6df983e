"""Pretrained DynConv by distillation: the teacher and its two converted students on GLUE, and their speed.

Three encoders, each fine-tuned on GLUE dev with the same ``run_glue.py`` settings per task
(``configs/distill/glue/<task>.yaml``, chosen before any run and not tuned on dev):

    teacher     all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), as fetched by ``make teacher``
    adaptive    the teacher distilled into DynConv with learned widths (``configs/distill/minilm_offline.yaml``)
    fixed       the same distillation with every layer's 31 taps (``--config_overrides width_mode=fixed``)

beside the from-scratch adaptive DynConv of ``benchmarks/quality`` (its committed runs). A student
that is not distilled yet is distilled first (``scripts/distill_to_dynconv.py``, resumed from its
last checkpoint after an interruption); each model's fine-tunes wait for it.

    make teacher
    python benchmarks/distill/benchmark_distill.py --glue_dir ../shared/data/glue --jobs 2
    python benchmarks/distill/benchmark_distill.py --glue_dir ../shared/data/glue --models teacher --tasks sst2 --seeds 42
    python benchmarks/distill/benchmark_distill.py --timing_only          # inference times and tables from what has run

Runs are those of ``dynconv_nlp.benchmarking.runs``: each finished one writes a small JSON to ``<output_dir>/runs/``
(commit them as they land), an interrupted one resumes, a result made with other settings is
refused. The tables (``results.md``: GLUE dev main scores x 100, mean ± std over seeds; the
distillations' wall time, losses and learned widths; inference time of teacher and students in
one process at equal tokens per batch; the issue's targets) are rebuilt from whatever has run.
"""

import argparse
import functools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

import dynconv_nlp  # noqa: F401  registers "dynconv" with the Auto classes
from dynconv_nlp.benchmarking.runs import GLUE_TASKS, ROOT, Run, execute, report_failures, run_pool, threads_per_job
from dynconv_nlp.benchmarking.tables import majority_class_score, score_rows
from dynconv_nlp.benchmarking.timing import interleaved_medians
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors
from dynconv_nlp.distillation.mirror import teacher_max_length
from dynconv_nlp.errors import UsageError
from dynconv_nlp.training.progress import latest_checkpoint

# The run machinery (plan, resume, fingerprints, score tables) is the quality study's.
TEACHER = ROOT / ".cache/teachers/all-MiniLM-L6-v2"
TEACHER_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what the shipped model cards name
# Students: distill_to_dynconv.py options added to --distill_config's (config_overrides are joined).
# Each is distilled once into --work_dir, then shipped (fp16) to checkpoints/dynconv-minilm-<name>/,
# where every fine-tune reads it: a student is never distilled again once it is committed.
STUDENTS = {
    "adaptive": {},
    "fixed": {"config_overrides": "width_mode=fixed"},
    "hybrid5": {"keep_attention_layers": [5]},
    "hybrid5-steps1930": {"keep_attention_layers": [5], "max_train_steps": 1930},
    "hybrid5-steps965": {"keep_attention_layers": [5], "max_train_steps": 965},
    "hybrid5-pairs-steps965": {"keep_attention_layers": [5], "max_train_steps": 965, "glue_pairs": True},
    "hybrid25-steps965": {"keep_attention_layers": [2, 5], "max_train_steps": 965},
    "hybrid25-steps482": {"keep_attention_layers": [2, 5], "max_train_steps": 482},
    "hybrid25-fixed-steps965": {"keep_attention_layers": [2, 5], "max_train_steps": 965,
                                "config_overrides": "width_mode=fixed"},
}
# Diagnostics: models made from another and fine-tuned like the rest; their options join the run's.
#   teacher-window15: the teacher with its attention cut to ±15 tokens, the students' window of 31 taps;
#   <student>-pooler: the student's classifier pools the first token through the teacher's pooler
#   (BERT's head) instead of the mean of the tokens;
#   <model>-defaults: fine-tuned with run_glue.py's defaults for a pretrained model (learning rate 5e-5,
#   no warm-up, no weight decay), what a user gets who names only the task and the model.
VARIANTS = {"teacher-window15": ("teacher", ["--attn_implementation", "sdpa_window_15"])}
VARIANTS |= {f"{student}-pooler": (student, ["--ignore_mismatched_sizes"]) for student in STUDENTS}
VARIANTS |= {f"{model}-defaults": (model, []) for model in ("teacher", *STUDENTS)}
GLUE_CONFIGS = ROOT / "configs/distill/glue"  # the study's per-task settings
DEFAULTS_CONFIGS = ROOT / "configs/distill/glue_defaults"  # the task alone: run_glue's own defaults
MODELS = ("teacher", *STUDENTS, *VARIANTS)
CHECKPOINTS = ROOT / "checkpoints"
SCRATCH_RUNS = ROOT / "benchmarks/quality/runs"  # the from-scratch study's results, model "adaptive"
# Targets stated in the issue before the runs (plan.md).
TARGET_FLOORS = {"sst2": 0.88, "stsb": 0.80, "mrpc": 0.80}
TARGET_RTE_GAP = 0.03
TARGET_GAP_TO_TEACHER = 0.02


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glue_dir", type=Path, help="GLUE in the TSV layout, e.g. ../shared/data/glue")
    parser.add_argument("--tasks", nargs="*", default=list(GLUE_TASKS), choices=GLUE_TASKS)
    parser.add_argument("--models", nargs="+", default=["teacher", "hybrid5"], choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2], help="SST-2 runs the first only")
    parser.add_argument("--teacher", type=Path, default=TEACHER, help="the teacher folder (make teacher)")
    parser.add_argument("--teacher_hub_id", default=TEACHER_HUB_ID, help="the teacher's name in the shipped model cards")
    parser.add_argument("--distill_config", type=Path, default=ROOT / "configs/distill/minilm_offline.yaml")
    parser.add_argument("--run_args", default="", help='passed to every fine-tuning run, e.g. "--max_train_samples 200"')
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--threads", type=int, help="threads per run (default: cpu_count // jobs)")
    parser.add_argument("--timing_only", action="store_true", help="no training: time the models and write the tables")
    parser.add_argument("--no_timing", action="store_true",
                        help="train, then write the tables without timing the models again (the committed timings "
                             "stay: time on a quiet machine, not beside running jobs)")
    parser.add_argument("--bi_encoder", action="store_true",
                        help="no training: STS-B dev with each sentence encoded alone (cosine of mean-pooled states)")
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 512, 2048],
                        help="inference lengths, plus the teacher's maximum; beyond it the teacher's position table "
                             "is extended for timing only")
    parser.add_argument("--tokens_per_batch", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "benchmarks/distill", help="results (small, commit them)")
    parser.add_argument("--work_dir", type=Path, default=ROOT / "outputs/distill", help="distillations, runs, logs")
    parser.add_argument("--checkpoint_dir", type=Path, default=CHECKPOINTS,
                        help="where students are shipped (committed) and read from")
    args = parser.parse_args(argv)
    if (args.tasks and not args.timing_only or args.bi_encoder) and args.glue_dir is None:
        raise UsageError("pass --glue_dir (GLUE in the TSV layout, e.g. ../shared/data/glue), or --timing_only")
    if args.glue_dir is not None and not args.glue_dir.is_dir():
        raise UsageError(f"--glue_dir {args.glue_dir} is not a folder")
    if not (args.teacher / "config.json").is_file():
        raise UsageError(f"the teacher is not at {args.teacher}: run `make teacher` (or pass --teacher)")
    if args.timing_only and args.no_timing:
        raise UsageError("--timing_only and --no_timing exclude each other: pass one")
    if min(args.jobs, args.threads or 1, args.tokens_per_batch, args.repeats) < 1:
        raise UsageError("--jobs, --threads, --tokens_per_batch and --repeats must be 1 or more")
    return args


def model_dir(args, model: str) -> Path:
    """Where the fine-tunes read a model: the teacher's folder, a student's shipped checkpoint, or a
    variant's folder in --work_dir."""
    if model.endswith("-pooler"):
        return args.work_dir / model
    if model in VARIANTS:
        return model_dir(args, VARIANTS[model][0])
    return args.teacher if model == "teacher" else shipped_dir(args, model)


def pooler_variant(args, student: str) -> Path:
    """The student as a classifier that pools the first token through the teacher's pooler (dense, tanh),
    as BERT's head does; the output projection is new. Made once in --work_dir."""
    folder = model_dir(args, f"{student}-pooler")
    if (folder / "config.json").exists():
        return folder
    config = AutoConfig.from_pretrained(shipped_dir(args, student), classifier_pooling="first")
    model = AutoModelForSequenceClassification.from_pretrained(shipped_dir(args, student), config=config, dtype=torch.float32)
    pooler = load_file(args.teacher / "model.safetensors")
    with torch.no_grad():
        model.classifier.dense.weight.copy_(pooler["pooler.dense.weight"])
        model.classifier.dense.bias.copy_(pooler["pooler.dense.bias"])
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(shipped_dir(args, student)).save_pretrained(folder)
    return folder


def shipped_dir(args, student: str) -> Path:
    return args.checkpoint_dir / f"dynconv-minilm-{student}"


def distill(args, model: str, threads: int) -> bool:
    """Distil ``model`` (a student) and ship it unless it is shipped; resume it after an interruption.
    False: it failed."""
    if (shipped_dir(args, model) / "config.json").exists():
        return True
    out = args.work_dir / f"student-{model}"
    if (out / "all_results.json").exists():
        ship(args, out, shipped_dir(args, model))
        return True
    command = distill_command(args, model, out)
    if latest_checkpoint(out) is not None:
        command += ["--resume_from_checkpoint", "latest"]
    elif out.exists():
        command += ["--overwrite_output_dir"]  # stopped before its first checkpoint: start again
    log = args.work_dir / f"distill-{model}.log"
    print(f"start distill-{model} (log: {log})", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    with open(log, "a") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    print(f"{'done' if code == 0 else 'FAILED'} distill-{model}", flush=True)
    if code == 0:
        ship(args, out, shipped_dir(args, model))
    return code == 0


def distill_command(args, model: str, out: Path) -> list[str]:
    """The distillation of student ``model``: --distill_config with the student's options."""
    command = [sys.executable, str(ROOT / "scripts/distill_to_dynconv.py"), str(args.distill_config),
               "--teacher_name_or_path", str(args.teacher), "--output_dir", str(out)]
    options = dict(STUDENTS[model])
    overrides = yaml.safe_load(args.distill_config.read_text()).get("config_overrides", "")
    overrides = ",".join(o for o in (overrides, options.pop("config_overrides", "")) if o)
    command += ["--config_overrides", overrides] if overrides else []
    for option, value in options.items():
        if value is True:  # a flag
            command.append(f"--{option}")
        else:
            command += [f"--{option}", *map(str, value if isinstance(value, list) else [value])]
    return command


def ship(args, distilled: Path, target: Path) -> None:
    """A distilled student as the repository keeps it: a transformers folder with fp16 weights (half the
    size; ``from_pretrained`` still gives float32 unless asked, as the config says), config, code,
    tokenizer, the model card (naming the teacher by its Hub id) and the distillation's results."""
    model = AutoModel.from_pretrained(distilled, dtype=torch.float32)
    model.half().save_pretrained(target)
    config = json.loads((target / "config.json").read_text())
    config["dtype"] = "float32"
    (target / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    AutoTokenizer.from_pretrained(distilled).save_pretrained(target)
    teacher = str(args.teacher.resolve())
    for name in ("README.md", "all_results.json"):
        text = (distilled / name).read_text().replace(teacher, args.teacher_hub_id).replace(distilled.name, target.name)
        if args.teacher.resolve().is_relative_to(ROOT):
            text = text.replace(str(args.teacher.resolve().relative_to(ROOT)), args.teacher_hub_id)
        (target / name).write_text(text)
    print(f"shipped {distilled} to {target}", flush=True)


def plan_runs(args) -> list[Run]:
    """Fine-tunes, seed by seed (SST-2 at the first seed only), each model's after its distillation is queued."""
    runs = []
    for seed in args.seeds:
        for task in args.tasks:
            if task == "sst2" and seed != args.seeds[0]:
                continue
            for model in args.models:
                config_file = (DEFAULTS_CONFIGS if model.endswith("-defaults") else GLUE_CONFIGS) / f"{task}.yaml"
                arguments = ["--glue_dir", str(args.glue_dir), "--model_name_or_path", str(model_dir(args, model))]
                options = VARIANTS[model][1] if model in VARIANTS else []  # in the run's fingerprint
                runs.append(Run("glue", task, model, seed, "run_glue.py", config_file, arguments, options))
    return runs


def run_all(args) -> list[str]:
    """Distillations and fine-tunes, ``--jobs`` at a time; returns the names of those that failed.

    The queue is first in, first out, and a student's distillation is queued before its fine-tunes:
    a fine-tune that waits for its student waits for a job that is already running, never for one
    queued behind it.
    """
    threads = threads_per_job(args.jobs, args.threads)
    wanted = {VARIANTS[m][0] if m in VARIANTS else m for m in args.models}
    distilled = {m: Future() for m in STUDENTS if m in wanted}  # each student's: True once it is distilled

    def distil(model: str) -> bool:
        ok = False
        try:
            ok = distill(args, model, threads)
        finally:  # its fine-tunes wait on it, even if it raised
            distilled[model].set_result(ok)
        return ok

    def fine_tune(run: Run):
        student = VARIANTS[run.model][0] if run.model in VARIANTS else run.model
        if student in distilled and not distilled[student].result():
            print(f"skip {run.name}: its student failed to distil", flush=True)
            return None
        if run.model.endswith("-pooler"):
            pooler_variant(args, student)
        result = execute(run, args, threads)
        if result is not None:  # its training states (a 22M model's are ~270 MB each) are not needed again
            for checkpoint in (args.work_dir / run.name).glob("epoch_*"):
                shutil.rmtree(checkpoint)
        return result

    calls = {f"distil {m}": functools.partial(distil, m) for m in distilled}
    calls |= {run.name: functools.partial(fine_tune, run) for run in plan_runs(args)}
    return run_pool(calls, args.jobs, after_each=lambda: write_tables(args))


def inference_seconds(models_by_length: dict[int, dict], tokens_per_batch: int, repeats: int) -> dict:
    """Median seconds of one forward pass of a batch of ``tokens_per_batch`` tokens per model and length;
    every model runs on the same random ids, interleaved, so that load on the machine hits all alike."""
    generator = torch.Generator().manual_seed(0)
    seconds = {}
    with torch.inference_mode():
        for length, models in models_by_length.items():
            vocab_size = min(model.config.vocab_size for model in models.values())
            low = min(1000, vocab_size // 2)  # BERT's first 1000 ids are special and unused tokens
            batch = max(1, tokens_per_batch // length)
            ids = torch.randint(low, vocab_size, (batch, length), generator=generator)
            mask = torch.ones_like(ids)
            calls = {name: functools.partial(m, input_ids=ids, attention_mask=mask) for name, m in models.items()}
            for name, median in interleaved_medians(calls, repeats).items():
                seconds.setdefault(name, {})[length] = median
    return seconds


def extend_positions(teacher, length: int):
    """The teacher with a position table of ``length`` rows (its own rows repeated), so that it runs on
    inputs longer than it reads: for timing only, its outputs there mean nothing."""
    embeddings = teacher.embeddings
    old = embeddings.position_embeddings.weight
    rows = old.repeat(math.ceil(length / old.shape[0]), 1)[:length]
    embeddings.position_embeddings = torch.nn.Embedding.from_pretrained(rows.clone(), freeze=True)
    embeddings.register_buffer("position_ids", torch.arange(length)[None], persistent=False)
    if hasattr(embeddings, "token_type_ids"):
        embeddings.register_buffer("token_type_ids", torch.zeros(1, length, dtype=torch.long), persistent=False)
    teacher.config.max_position_embeddings = length
    return teacher


@torch.inference_mode()
def sentence_embeddings(model, tokenizer, sentences: list[str], batch_size: int = 64) -> torch.Tensor:
    """[N, C]: each sentence encoded alone, its last hidden states averaged over its real tokens
    (all-MiniLM-L6-v2's own pooling as a sentence encoder)."""
    pooled = []
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(sentences[start : start + batch_size], padding=True, truncation=True, max_length=128,
                          return_tensors="pt")
        states = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled.append((states * mask).sum(1) / mask.sum(1))
    return torch.cat(pooled)


def bi_encoder(args) -> None:
    """STS-B dev, no fine-tuning: Spearman correlation of the cosine of the two sentences' embeddings with
    the gold scores, for the teacher and every shipped student, into ``bi_encoder.json``."""
    from scipy.stats import spearmanr

    from dynconv_nlp.data.glue import get_task, load_glue

    dev = load_glue(get_task("stsb"), args.glue_dir)["validation"]
    record = {"task": "stsb", "split": "validation", "pairs": len(dev), "spearman": {}}
    for name in ("teacher", *STUDENTS):
        folder = model_dir(args, name)
        if not (folder / "config.json").exists():
            continue
        model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        first, second = (sentence_embeddings(model, tokenizer, dev[column]) for column in ("sentence1", "sentence2"))
        cosine = torch.nn.functional.cosine_similarity(first, second).tolist()
        record["spearman"][name] = round(float(spearmanr(cosine, dev["label"]).statistic), 4)
        print(f"bi-encoder STS-B dev Spearman, {name}: {record['spearman'][name]:.4f}", flush=True)
    (args.output_dir / "bi_encoder.json").write_text(json.dumps(record, indent=2) + "\n")


def distillation_steps(folder: Path) -> int | None:
    """The optimizer steps a student was distilled for (a fixed-width student's cost does not depend on them)."""
    results = folder / "all_results.json"
    return json.loads(results.read_text()).get("steps") if results.exists() else None


def time_models(args) -> None:
    """Inference time of the teacher and the distilled students into ``inference.json``."""
    folders = {m: model_dir(args, m) for m in ("teacher", *STUDENTS) if (model_dir(args, m) / "config.json").exists()}
    if len(folders) < 2:
        return
    models = {name: AutoModel.from_pretrained(path, dtype=torch.float32).eval() for name, path in folders.items()}
    teacher_config = AutoConfig.from_pretrained(args.teacher)
    teacher_max = teacher_max_length(teacher_config)
    offset = teacher_config.max_position_embeddings - teacher_max  # RoBERTa's reserved rows
    long_teacher = extend_positions(AutoModel.from_pretrained(args.teacher).eval(), max(teacher_max, *args.lengths) + offset)
    by_length = {n: models if n <= teacher_max else models | {"teacher": long_teacher} for n in sorted({*args.lengths, teacher_max})}
    seconds = inference_seconds(by_length, args.tokens_per_batch, args.repeats)
    record = {"threads": torch.get_num_threads(), "tokens_per_batch": args.tokens_per_batch, "repeats": args.repeats,
              "teacher_max_length": teacher_max, "seconds": seconds,
              "conv_backend": {n: getattr(m.config, "conv_backend", None) for n, m in models.items()},
              "distillation_steps": {n: distillation_steps(folders[n]) for n in models if n != "teacher"}}
    (args.output_dir / "inference.json").write_text(json.dumps(record, indent=2) + "\n")


def distillation_record(args) -> dict:
    """Each student's distillation: wall time, steps, losses before and after, learned widths per layer.
    A student whose folder is gone (it is not committed) keeps its saved record."""
    saved = args.output_dir / "distillation.json"
    record = json.loads(saved.read_text()) if saved.exists() else {}
    for model in STUDENTS:
        results = model_dir(args, model) / "all_results.json"
        if results.exists():
            r = json.loads(results.read_text())
            record[model] = {k: r[k] for k in ("steps", "stage1_steps", "train_seconds", "train_samples", "initial", "final", "widths")}
    if record:
        saved.write_text(json.dumps(record, indent=2) + "\n")
    return record


def glue_section(args, recorded: list[dict]) -> tuple[str, dict]:
    """The GLUE table: teacher, students, and the from-scratch adaptive DynConv of benchmarks/quality."""
    scratch = [json.loads(p.read_text()) for p in sorted(SCRATCH_RUNS.glob("glue-*-adaptive-seed*.json"))]
    results = recorded + [dict(r, model="from scratch") for r in scratch]
    tasks = [t for t in GLUE_TASKS if any(r["task"] == t for r in recorded)]
    models = [m for m in (*MODELS, "from scratch") if any(r["model"] == m for r in results)]
    by = {}
    for r in results:
        by.setdefault((r["task"], r["model"]), []).append(r)
    params = {m: next(r["params"] for r in results if r["model"] == m) for m in models}
    header = "| model | params | " + " | ".join(tasks) + f" | {len(tasks)}-task average |"
    rows, averages = score_rows(by, params, models, tasks, "score")
    lines = ["GLUE dev, main score x 100, best epoch (as run_glue keeps it), mean ± std (seeds); MRPC: mean of "
             "accuracy and F1, STS-B: mean of Pearson and Spearman, CoLA: Matthews. Settings per task: "
             "`configs/distill/glue/<task>.yaml`, the same for every pretrained model. From scratch: "
             "`benchmarks/quality` (its own settings, small.json).", "", header, "|---|---:|" + "---:|" * (len(tasks) + 1), *rows]
    if args.glue_dir is not None:
        cells = [f"{100 * majority_class_score(args.glue_dir, t):.1f}" for t in tasks]
        lines.append("| majority class, no input | 0 | " + " | ".join(cells) + " | |")
    return "\n".join(lines), {"by": by, "averages": averages, "tasks": tasks, "table": lines[2:4], "rows": dict(zip(models, rows))}


CARD_SECTION = "## Fine-tuned on GLUE"


def card_glue_results(args, glue: dict) -> None:
    """Each shipped student's model card gets its GLUE dev scores beside the teacher's, fine-tuned alike
    (the study's rows; replaced on every write, so the card follows the records)."""
    for student in STUDENTS:
        card = shipped_dir(args, student) / "README.md"
        rows = [glue["rows"][m] for m in ("teacher", student, f"{student}-defaults") if m in glue["rows"]]
        if not card.exists() or student not in glue["rows"]:
            continue
        text = card.read_text().split(f"\n{CARD_SECTION}\n")[0].rstrip("\n")
        section = [CARD_SECTION, "",
                   "GLUE dev, main score x 100, best of 3 epochs (SST-2: 1), mean ± std over the seeds in brackets; "
                   "MRPC: mean of accuracy and F1, STS-B: mean of Pearson and Spearman, CoLA: Matthews. The teacher "
                   "and this student were fine-tuned with the same settings (`configs/distill/glue/<task>.yaml`: "
                   "learning rate 1e-4, warm-up 0.1, batch 32); `-defaults`: with `run_glue.py`'s defaults for a "
                   "checkpoint (5e-5, no warm-up). Reproduce with dynconv_nlp's `python benchmarks/distill/benchmark_distill.py "
                   f"--glue_dir <glue> --models teacher {student}`; the whole study is `benchmarks/distill/results.md`.",
                   "", *glue["table"], *rows]
        card.write_text(text + "\n\n" + "\n".join(section) + "\n")


def targets(glue: dict) -> list[str]:
    """The study's targets (``plan.md``) for every student with results, each met or NOT met: task scores
    are means over the seeds run; the average needs all five tasks."""
    lines, by, averages = [], glue["by"], glue["averages"]

    def mean(task, model):
        scores = [r["score"] for r in by.get((task, model), [])]
        return statistics.mean(scores) if scores else None

    for student in STUDENTS:
        if not any(model == student for _, model in by):
            continue
        for task, floor in TARGET_FLOORS.items():
            score = mean(task, student)
            if score is not None:
                lines.append(f"- {student} {task.upper()} >= {100 * floor:.0f}: {100 * score:.1f}, "
                             f"{'met' if score >= floor else 'NOT met'}")
        score, teacher = mean("rte", student), mean("rte", "teacher")
        if score is not None and teacher is not None:
            met = "met" if teacher - score <= TARGET_RTE_GAP else "NOT met"
            lines.append(f"- {student} RTE within {100 * TARGET_RTE_GAP:.0f} points of the teacher: "
                         f"{100 * score:.1f} vs {100 * teacher:.1f}, {met}")
        if len(glue["tasks"]) == len(GLUE_TASKS) and averages.get(student) is not None:
            met = "met" if averages["teacher"] - averages[student] <= TARGET_GAP_TO_TEACHER else "NOT met"
            lines.append(f"- {student} within {100 * TARGET_GAP_TO_TEACHER:.0f} points of the teacher (5-task average): "
                         f"{100 * averages[student]:.1f} vs {100 * averages['teacher']:.1f}, {met}")
    return lines


def write_tables(args) -> str:
    """``results.md`` from every record on disk; returns its text."""
    recorded = [json.loads(p.read_text()) for p in sorted((args.output_dir / "runs").glob("*.json"))]
    sections, glue = [], None
    if recorded:
        text, glue = glue_section(args, recorded)
        sections.append(text)
    distilled = distillation_record(args)
    if distilled:
        rows = ["| student | steps (stage 1) | wall min | layer loss before → after | hidden loss before → after "
                "| width per layer (share of K − 1) |", "|---|---:|---:|---:|---:|---|"]
        for model, r in distilled.items():
            widths = " ".join(f"{w:.2f}" for w in r["widths"])
            rows.append(f"| {model} | {r['steps']} ({r['stage1_steps']}) | {r['train_seconds'] / 60:.0f} | "
                        f"{r['initial']['eval_layer_loss']:.4f} → {r['final']['eval_layer_loss']:.4f} | "
                        f"{r['initial']['eval_hidden_loss']:.4f} → {r['final']['eval_hidden_loss']:.4f} | {widths} |")
        sections.append("Distillation (held-out text; losses are MSE per channel):\n\n" + "\n".join(rows))
    saved = args.output_dir / "bi_encoder.json"
    if saved.exists():
        scores = json.loads(saved.read_text())["spearman"]
        sections.append("STS-B dev as a bi-encoder, no fine-tuning (each sentence encoded alone, mean of its last "
                        "hidden states, cosine; Spearman x 100 with the gold scores; `--bi_encoder`):\n\n"
                        "| model | Spearman |\n|---|---:|\n"
                        + "\n".join(f"| {name} | {100 * value:.1f} |" for name, value in scores.items()))
    saved = args.output_dir / "inference.json"
    inference = json.loads(saved.read_text()) if saved.exists() else None
    if inference:
        names = list(inference["seconds"])
        lengths = list(inference["seconds"][names[0]])
        students = [n for n in names if n != "teacher"]
        rows = ["| T | " + " | ".join(f"{n} ms" for n in names) + "".join(f" | teacher / {s}" for s in students) + " |",
                "|---:|" + "---:|" * (len(names) + len(students))]
        for length in lengths:
            cells = [f"{1000 * inference['seconds'][n][length]:.0f}" for n in names]
            cells += [f"{inference['seconds']['teacher'][length] / inference['seconds'][s][length]:.2f}" for s in students]
            rows.append(f"| {length} | " + " | ".join(cells) + " |")
        sections.append(f"Inference, one forward pass of {inference['tokens_per_batch']} tokens per batch, "
                        f"{inference['threads']} threads, median of {inference['repeats']}, models interleaved:\n\n"
                        + "\n".join(rows))
        if any(int(n) > inference["teacher_max_length"] for n in lengths):
            sections[-1] += (f"\n\nAt T > {inference['teacher_max_length']} the teacher's position table is extended "
                             "(its rows repeated) for timing only: it was never trained to read such inputs.")
        steps = inference.get("distillation_steps", {})
        if steps:
            sections[-1] += "\n\nTimed checkpoints, distillation steps: " + ", ".join(f"{n} {s}" for n, s in steps.items())
    if glue is not None:
        sections.append("Targets (`plan.md`):\n\n" + "\n".join(targets(glue)))
        card_glue_results(args, glue)
    plan = args.output_dir / "plan.md"  # the settings and targets, written before the runs
    if plan.exists():
        sections.insert(0, plan.read_text().strip() + "\n\n# Results")
    text = "\n\n".join(sections)
    (args.output_dir / "results.md").write_text(text + "\n")
    return text


@exit_on_expected_errors
def main(argv=None) -> int:
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "runs").mkdir(parents=True, exist_ok=True)
    if args.bi_encoder:
        bi_encoder(args)
        print(write_tables(args))
        return 0
    failed = [] if args.timing_only else run_all(args)
    if not args.no_timing:
        time_models(args)
    print(write_tables(args))
    return report_failures("benchmark_distill.py", failed, args.work_dir)


if __name__ == "__main__":
    sys.exit(main())
