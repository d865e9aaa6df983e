"""Quality study: does adaptive width help? DynConv against its fixed-width and light variants and a Transformer.

Four encoders, trained from scratch with one budget per task, on GLUE:

    adaptive      DynConv, per-token kernels, learned left/right extents (this package; the
                  config's width penalty, 0 for small.json: --width_penalties sweeps it)
    fixed         DynConv, per-token kernels, all K taps (about fairseq's DynamicConv)
    light         one learned kernel per head and layer, all K taps (about fairseq's LightConv)
    transformer   a BERT encoder of the same width, depth, heads and parameter count (within 5%)

"About": the three DynConv variants share this package's block (post-norm, GLU input projection,
sinusoidal positions, mean pooling for classification, biased kernel projection); they differ only
in how the taps are made. BERT brings its own learned positions, [CLS] pooler and tanh head.

and, with ``--translation``, the DynConv translation model against the same-size Marian Transformer
(``configs/models/transformer_small_mt.json`` with the feed-forward size that matches DynConv's
parameter count) on Multi30k De->En. Every run is one call of ``scripts/run_glue.py`` (or ``run_translation.py``)
with the task's config file (``configs/glue/<task>.yaml``: batch, learning rate, schedule, warm-up,
max length; written to ``<output_dir>/configs/glue-<task>.yaml`` without its model, output and
plotting settings) and only the model changed, so the budget (steps, batch, schedule) is the same
for all models; ``--num_train_epochs`` sets it per task (default: 1 epoch of SST-2, 3 of the
others). Those settings were chosen for DynConv and are not tuned per model (nor on dev), with one
exception, ``--model_learning_rates`` (default ``transformer=1e-4``): BERT does not train from scratch
at the task configs' 5e-4 / 1e-3 (SST-2 seed 1 at 1e-3: 0.509 dev accuracy, the majority class), so
the Transformer gets BERT's own learning rate, 1e-4, taken from the BERT paper, not chosen on dev.
The DynConv variants are ``--config_name`` (default ``configs/models/small.json``) with
``width_mode`` / ``kernel_type`` changed; the BERT config takes its width, depth, heads, dropout and
activation and the feed-forward size that brings its parameter count closest.

    python benchmarks/quality/benchmark_quality.py --glue_dir ../shared/data/glue --jobs 2
    python benchmarks/quality/benchmark_quality.py --glue_dir ../shared/data/glue --tasks rte mrpc --seeds 1 --jobs 2
    python benchmarks/quality/benchmark_quality.py --translation --tasks --seeds 1       # Multi30k only
    python benchmarks/quality/benchmark_quality.py --glue_dir ../shared/data/glue --tasks --width_penalties 0 0.01 0.1

Each finished run writes a small JSON to ``<output_dir>/runs/`` (commit them as they land); the
models and checkpoints stay in ``--work_dir``. Run the same command again after an interruption:
finished runs are skipped and unfinished ones resume from their last epoch checkpoint (a result
made with other settings is refused, not reused). The tables (``results.md``, mean +- sample std
over seeds, GLUE main scores, the issue's targets, and the score of always answering the majority
class, the line a small task's score has to clear) are rebuilt from whatever runs have finished.
A run scores its best epoch on the dev set (as run_glue keeps it: chosen by the task's first
metric, F1 for MRPC, Pearson for STS-B, on the same dev set, so it is optimistic) and the last
epoch; both are reported. Wall times of runs that ran two at a time include the other's load.
"""

import argparse
import copy
import functools
import json
import statistics
import sys
from pathlib import Path

import torch
import yaml
from transformers import AutoConfig, BertConfig

import dynconv_nlp  # noqa: F401  registers "dynconv" with the Auto classes
from dynconv_nlp.analysis import collect_extents, conv_kernel_sizes, kept_taps, mean_width_fractions
from dynconv_nlp.benchmarking.params import config_parameters
from dynconv_nlp.benchmarking.runs import GLUE_TASKS, NOT_BUDGET, ROOT, Run, execute, report_failures, run_pool, threads_per_job
from dynconv_nlp.benchmarking.tables import dev_batches, majority_class_score, mean_std, score_rows
from dynconv_nlp.benchmarking.timing import interleaved_medians
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors
from dynconv_nlp.errors import UsageError
from dynconv_nlp.models.dynconv import DynConvForSequenceClassification
MODELS = ("adaptive", "fixed", "light", "transformer")
DYNCONV_VARIANTS = {
    "adaptive": dict(kernel_type="dynamic", width_mode="adaptive"),
    "fixed": dict(kernel_type="dynamic", width_mode="fixed"),
    "light": dict(kernel_type="light", width_mode="fixed"),
}
MT_MODELS = {"dynconv": "configs/models/small_mt.json", "transformer": "configs/models/transformer_small_mt.json"}
DEFAULT_EPOCHS = {"sst2": 1}  # SST-2 has 67k sentences; the small tasks get 3 epochs
MAX_PARAM_GAP = 0.05
TARGET_SST2 = 0.85  # adaptive DynConv from scratch, SST-2 dev accuracy
TARGET_BLEU = 35.0  # small DynConv, Multi30k test_2016 De->En


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glue_dir", type=Path, help="GLUE in the TSV layout, e.g. ../shared/data/glue")
    parser.add_argument("--tasks", nargs="*", default=list(GLUE_TASKS), choices=GLUE_TASKS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument(
        "--config_name", type=Path, default=ROOT / "configs/models/small.json", help="the DynConv encoder"
    )
    parser.add_argument("--num_train_epochs", type=int, help="for every task (default: 1 for SST-2, 3 for the others)")
    parser.add_argument("--translation", action="store_true", help="also DynConv against Marian on Multi30k De->En")
    parser.add_argument("--translation_config", type=Path, default=ROOT / "configs/translation/multi30k_de_en.yaml")
    parser.add_argument("--translation_models", nargs="+", default=list(MT_MODELS), choices=MT_MODELS)
    parser.add_argument(
        "--width_penalties", nargs="*", type=float, default=[], help="sweep the adaptive model's lambda"
    )
    parser.add_argument("--sweep_task", default="sst2", choices=GLUE_TASKS)
    parser.add_argument(
        "--model_learning_rates",
        nargs="*",
        default=["transformer=1e-4"],
        metavar="MODEL=LR",
        help="a GLUE model's learning rate instead of the task config's (default: transformer=1e-4)",
    )
    parser.add_argument("--run_args", default="", help='passed to every run, e.g. "--max_train_samples 200"')
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each with cpu_count // jobs threads")
    parser.add_argument(
        "--output_dir", type=Path, default=ROOT / "benchmarks/quality", help="results (small, commit them)"
    )
    parser.add_argument("--work_dir", type=Path, default=ROOT / "outputs/quality", help="models, checkpoints, logs")
    args = parser.parse_args(argv)
    if (args.tasks or args.width_penalties) and args.glue_dir is None:
        raise UsageError("pass --glue_dir (GLUE in the TSV layout, e.g. ../shared/data/glue), or --tasks with no task")
    if args.glue_dir is not None and not args.glue_dir.is_dir():
        raise UsageError(f"--glue_dir {args.glue_dir} is not a folder")
    if not args.config_name.is_file():
        raise UsageError(f"--config_name {args.config_name} does not exist")
    if args.jobs < 1 or (args.num_train_epochs is not None and args.num_train_epochs < 1):
        raise UsageError("--jobs and --num_train_epochs must be at least 1")
    if any(penalty < 0 for penalty in args.width_penalties):
        raise UsageError("--width_penalties must be >= 0")
    args.model_learning_rates = parse_learning_rates(args.model_learning_rates)
    if not (args.tasks or args.translation or args.width_penalties):
        raise UsageError("nothing to run: give --tasks, --translation or --width_penalties")
    # The runs start in the repository's root, so that the config files' relative data paths hold.
    for name in ("glue_dir", "config_name", "translation_config", "output_dir", "work_dir"):
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    return args


def parse_learning_rates(pairs: list[str]) -> dict[str, float]:
    """``["transformer=1e-4"]`` -> ``{"transformer": 1e-4}``."""
    rates = {}
    for pair in pairs:
        model, _, rate = pair.partition("=")
        try:
            rates[model] = float(rate)
        except ValueError:
            rates[model] = -1.0
        if model not in MODELS or rates[model] <= 0:
            raise UsageError(f"--model_learning_rates {pair}: expected MODEL=LR with MODEL one of {', '.join(MODELS)}")
    return rates


# --- models with matched parameter counts -------------------------------------------------------


def bert_like(dynconv, intermediate_size: int, max_length: int) -> BertConfig:
    """A BERT encoder with the DynConv config's width, depth, heads, vocabulary, activation and dropout."""
    return BertConfig(
        vocab_size=dynconv.vocab_size,
        hidden_size=dynconv.hidden_size,
        num_hidden_layers=dynconv.encoder_layers,
        num_attention_heads=dynconv.num_attention_heads,
        intermediate_size=intermediate_size,
        hidden_act=dynconv.hidden_act,
        hidden_dropout_prob=dynconv.hidden_dropout_prob,
        attention_probs_dropout_prob=dynconv.attention_probs_dropout_prob,
        max_position_embeddings=max_length,
        type_vocab_size=max(dynconv.type_vocab_size, 1),
        layer_norm_eps=dynconv.layer_norm_eps,
        pad_token_id=dynconv.pad_token_id,
    )


def encoder_configs(config_name: Path, vocab_size: int, max_length: int) -> dict:
    """The four encoders' configs, the Transformer's feed-forward size chosen to match adaptive's parameters."""
    base = AutoConfig.from_pretrained(config_name)
    base.vocab_size = vocab_size
    configs = {}
    for name, variant in DYNCONV_VARIANTS.items():
        configs[name] = AutoConfig.from_pretrained(config_name, vocab_size=vocab_size, **variant)
    target = config_parameters(configs["adaptive"])
    sizes = range(base.hidden_size // 4, 8 * base.hidden_size + 1, 16)
    configs["transformer"] = min(
        (bert_like(base, size, max_length) for size in sizes), key=lambda c: abs(config_parameters(c) - target)
    )
    return configs


def write_encoder_configs(config_name: Path, config_dir: Path) -> dict[str, int]:
    """Write the four encoders' configs to ``config_dir/<model>.json``; return their parameter counts."""
    configs = encoder_configs(config_name, vocab_size=8000, max_length=128)
    for name, config in configs.items():
        config.to_json_file(config_dir / f"{name}.json")
    return {name: config_parameters(config) for name, config in configs.items()}


def translation_configs(vocab_size: int) -> dict:
    """DynConv's and Marian's translation configs (``MT_MODELS``); Marian's feed-forward size matched to DynConv's count."""
    configs = {
        name: AutoConfig.from_pretrained(ROOT / path, vocab_size=vocab_size, pad_token_id=0)
        for name, path in MT_MODELS.items()
    }
    target = config_parameters(configs["dynconv"], seq2seq=True)
    marian = configs["transformer"]

    def with_feed_forward(size: int):
        config = copy.deepcopy(marian)
        config.encoder_ffn_dim = config.decoder_ffn_dim = size
        return config

    # The count is linear in the feed-forward size: solve for it, then take the best multiple of 16 near it.
    low, high = (config_parameters(with_feed_forward(size), seq2seq=True) for size in (256, 512))
    guess = 16 * round((256 + (target - low) * 256 / (high - low)) / 16)
    sizes = [size for size in (guess - 16, guess, guess + 16) if size >= 16]
    counts = {size: config_parameters(with_feed_forward(size), seq2seq=True) for size in sizes}
    configs["transformer"] = with_feed_forward(min(sizes, key=lambda size: abs(counts[size] - target)))
    return configs


def write_translation_configs(config_dir: Path) -> dict[str, int]:
    """Write the translation models' configs to ``config_dir/mt-<model>.json``; return their parameter counts."""
    configs = translation_configs(vocab_size=8000)
    for name, config in configs.items():
        config.to_json_file(config_dir / f"mt-{name}.json")
    return {name: config_parameters(config, seq2seq=True) for name, config in configs.items()}


def check_params(counts: dict[str, int], reference: str) -> None:
    for name, count in counts.items():
        gap = abs(count - counts[reference]) / counts[reference]
        if gap > MAX_PARAM_GAP:
            raise UsageError(
                f"{name} has {count / 1e6:.2f}M parameters, {gap:.1%} off {reference}'s {counts[reference] / 1e6:.2f}M "
                f"(at most {MAX_PARAM_GAP:.0%}): change its config so the sizes match"
            )


# --- runs ------------------------------------------------------------------------------------------


def study_task_config(task: str, epochs: int, config_dir: Path) -> Path:
    """The task's config file as the study runs it: its budget, with the epochs set and no model or outputs."""
    settings = yaml.safe_load((ROOT / f"configs/glue/{task}.yaml").read_text())
    settings = {key: value for key, value in settings.items() if key not in NOT_BUDGET}
    settings["num_train_epochs"] = epochs
    path = config_dir / f"glue-{task}.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def plan_runs(args, config_dir: Path) -> list[Run]:
    runs = []
    # Seed by seed, so that a complete table of one seed is there first if the study is stopped.
    for seed in args.seeds:
        for task in args.tasks:
            config_file = study_task_config(task, args.num_train_epochs or DEFAULT_EPOCHS.get(task, 3), config_dir)
            for model in args.models:
                arguments = ["--glue_dir", str(args.glue_dir), "--config_name", str(config_dir / f"{model}.json")]
                lr = args.model_learning_rates.get(model)
                budget = [] if lr is None else ["--learning_rate", repr(lr)]
                runs.append(Run("glue", task, model, seed, "run_glue.py", config_file, arguments, budget))
    sweep_config = None
    if args.width_penalties:
        epochs = args.num_train_epochs or DEFAULT_EPOCHS.get(args.sweep_task, 3)
        sweep_config = study_task_config(args.sweep_task, epochs, config_dir)
    for penalty in args.width_penalties:
        arguments = ["--glue_dir", str(args.glue_dir), "--config_name", str(config_dir / "adaptive.json")]
        arguments += ["--config_overrides", f"width_penalty_coef={penalty!r}"]
        model = f"lambda{penalty!r}"
        runs.append(Run("sweep", args.sweep_task, model, args.seeds[0], "run_glue.py", sweep_config, arguments))
    if args.translation:
        for seed in args.seeds:
            for model in args.translation_models:
                runs.append(
                    Run(
                        "translation",
                        "multi30k",
                        model,
                        seed,
                        "run_translation.py",
                        args.translation_config,
                        ["--config_name", str(config_dir / f"mt-{model}.json")],
                    )
                )
    return runs


# --- the width-penalty sweep: accuracy against mean width against inference time ------------------


@torch.inference_mode()
def time_sweep(results: list[dict], args, repeats: int = 3) -> None:
    """Add widths, kept taps and dev-set inference time to each sweep result, timing all models interleaved.

    The fixed-width model of the same task and seed (from the GLUE part, if it ran) is timed alongside
    as the reference: the question is whether adaptive width with a penalty is cheaper than all K taps.
    """
    run_dirs = {r["model"]: args.work_dir / f"sweep-{r['task']}-{r['model']}-seed{r['seed']}" for r in results}
    reference = args.work_dir / f"glue-{results[0]['task']}-fixed-seed{results[0]['seed']}"
    if (reference / "config.json").exists():
        run_dirs["fixed"] = reference
    models = {name: DynConvForSequenceClassification.from_pretrained(path).eval() for name, path in run_dirs.items()}
    inputs = {name: dev_batches(path, args.glue_dir, results[0]["task"]) for name, path in run_dirs.items()}

    def infer(name):
        for batch in inputs[name]:
            models[name](**batch)

    seconds = interleaved_medians({name: functools.partial(infer, name) for name in models}, repeats)
    for result in results:
        name = result["model"]
        model, kernel_sizes = models[name], conv_kernel_sizes(models[name].config)
        extents, _ = collect_extents(model, inputs[name])
        fractions = mean_width_fractions(extents, kernel_sizes)
        result["width_fraction_per_layer"] = [round(f, 4) for f in fractions]
        # Weighted by K - 1: the share of all the model's taps in use.
        result["mean_width_fraction"] = sum(f * (k - 1) for f, k in zip(fractions, kernel_sizes)) / sum(
            k - 1 for k in kernel_sizes
        )
        result["kept_taps_per_layer"] = [round(t, 2) for t in kept_taps(model, inputs[name])]
        result["dev_inference_seconds"] = seconds[name]
        if "fixed" in seconds:
            result["fixed_width_dev_inference_seconds"] = seconds["fixed"]
        result["timing"] = (
            f"{torch.get_num_threads()} threads, batches of 64, median of {repeats}, "
            f"all sweep models{' and the fixed-width one' if 'fixed' in seconds else ''} interleaved"
        )


def plot_sweep(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = sorted(results, key=lambda r: r["mean_width_fraction"])
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, key, label in ((ax[0], "score", "dev score"), (ax[1], "dev_inference_seconds", "dev inference (s)")):
        axis.plot([r["mean_width_fraction"] for r in results], [r[key] for r in results], "o-")
        for r in results:
            axis.annotate(r["model"].replace("lambda", "λ="), (r["mean_width_fraction"], r[key]), fontsize=8)
        axis.set_xlabel("mean width (share of K - 1)")
        axis.set_ylabel(label)
    fixed_seconds = results[0].get("fixed_width_dev_inference_seconds")
    if fixed_seconds is not None:
        ax[1].axhline(fixed_seconds, linestyle="--", color="gray", label="fixed width (all K taps)")
        ax[1].legend(fontsize=8)
    fig.suptitle(f"width penalty sweep, {results[0]['task']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- tables ----------------------------------------------------------------------------------------


def learning_rate_note(results: list[dict]) -> str:
    """Which models ran at a learning rate other than their task config's (``--model_learning_rates``)."""
    rates = {}
    for r in results:
        tokens = r.get("command", "").split()
        if "--learning_rate" in tokens:
            rates.setdefault(r["model"], set()).add(tokens[tokens.index("--learning_rate") + 1])
    others = "; ".join(f"{model} {', '.join(sorted(lrs))}" for model, lrs in sorted(rates.items()))
    return "Learning rate: the task config's" + (f", except {others} (--model_learning_rates)." if others else ".")


def glue_markdown(
    results: list[dict],
    params: dict[str, int],
    models: list[str],
    tasks: list[str],
    majority: dict[str, float] | None = None,
) -> str:
    """Per task and model: best-epoch and last-epoch main score, mean ± std over seeds (x100).

    ``majority``: per task, the score of always answering the majority class (a row of its own).
    """
    by = {}
    for r in results:
        by.setdefault((r["task"], r["model"]), []).append(r)
    header = "| model | params (vocab 8000) | " + " | ".join(tasks) + f" | {len(tasks)}-task average |"
    lines = [
        "Main score x 100, best epoch on dev (as run_glue keeps it), mean ± std (seeds); "
        "MRPC: mean of accuracy and F1, STS-B: mean of Pearson and Spearman, CoLA: Matthews; "
        "the average is over the tasks' means (none where a task has no run).",
        "",
        header,
        "|---|---:|" + "---:|" * (len(tasks) + 1),
    ]
    rows, averages = score_rows(by, params, models, tasks, "score")
    lines += rows
    if majority and all(task in majority for task in tasks):
        cells = [f"{100 * majority[task]:.1f}" for task in tasks]
        average = 100 * statistics.mean(majority[task] for task in tasks)
        lines.append("| majority class, no input | 0 | " + " | ".join(cells) + f" | {average:.1f} |")
    lines += ["", learning_rate_note(results)]
    lines += ["", "Last epoch instead of the best:", "", header, "|---|---:|" + "---:|" * (len(tasks) + 1)]
    lines += score_rows(by, params, models, tasks, "last_epoch_score")[0]
    lines += ["", *glue_targets(by, averages, len(tasks))]
    return "\n".join(lines)


def glue_targets(by: dict, averages: dict, num_tasks: int) -> list[str]:
    """The issue's targets on what has run; the averages are over ``num_tasks`` tasks (the target: all 5)."""
    lines = []
    sst2 = [r["score"] for r in by.get(("sst2", "adaptive"), [])]
    if sst2:
        met = "met" if statistics.mean(sst2) >= TARGET_SST2 else "NOT met"
        lines.append(f"- adaptive SST-2 dev accuracy >= {TARGET_SST2:.2f}: {statistics.mean(sst2):.3f}, {met}")
    for other in ("fixed", "transformer"):
        if averages.get("adaptive") is not None and averages.get(other) is not None:
            met = "met" if averages["adaptive"] >= averages[other] else "NOT met"
            lines.append(
                f"- adaptive >= {other} on the {num_tasks}-task average: {100 * averages['adaptive']:.1f} vs "
                f"{100 * averages[other]:.1f}, {met}"
            )
    return lines


def translation_markdown(results: list[dict], params: dict[str, int]) -> str:
    lines = [
        "Multi30k test_2016_flickr De->En, sacreBLEU and chrF, mean ± std (seeds)",
        "",
        "| model | params | test BLEU | test chrF | valid BLEU | steps | wall min |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    bleu = {}
    for model in MT_MODELS:
        rows = [r for r in results if r["model"] == model]
        if not rows:
            continue
        bleu[model] = statistics.mean(r["test_bleu"] for r in rows)
        cells = [mean_std([r[key] / 100 for r in rows], 100) for key in ("test_bleu", "test_chrf", "eval_bleu")]
        wall = statistics.mean(r["wall_seconds"] for r in rows) / 60
        lines.append(
            f"| {model} | {params[model] / 1e6:.2f}M | " + " | ".join(cells) + f" | {rows[0]['steps']} | {wall:.0f} |"
        )
    if "dynconv" in bleu:
        lines += [
            "",
            f"- small DynConv >= {TARGET_BLEU:.0f} BLEU: {bleu['dynconv']:.2f}, "
            + ("met" if bleu["dynconv"] >= TARGET_BLEU else "NOT met"),
        ]
    if len(bleu) == 2:
        met = "met" if bleu["dynconv"] >= bleu["transformer"] else "NOT met"
        lines.append(f"- DynConv >= Transformer: {bleu['dynconv']:.2f} vs {bleu['transformer']:.2f}, {met}")
    if results:
        lines += ["", f"BLEU signature: {results[0]['test_bleu_signature']}"]
    return "\n".join(lines)


def sweep_markdown(results: list[dict]) -> str:
    lines = [
        f"Width-penalty sweep, adaptive DynConv on {results[0]['task']} (seed {results[0]['seed']}); "
        f"inference: the whole dev set, {results[0]['timing']}. Mean width: the share of all taps in use "
        "(left + right over K - 1, weighted by K - 1); kept taps: per layer, what CPU trimming keeps "
        "(set by the widest token of each batch).",
        "",
        "| lambda | dev score | mean width | width per layer | kept taps per layer | dev inference s | fixed width s |",
        "|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in sorted(results, key=lambda r: float(r["model"].removeprefix("lambda"))):
        per_layer = " ".join(f"{f:.2f}" for f in r["width_fraction_per_layer"])
        taps = " ".join(f"{t:g}" for t in r["kept_taps_per_layer"])
        fixed = r.get("fixed_width_dev_inference_seconds")
        lines.append(
            f"| {r['model'].removeprefix('lambda')} | {r['score']:.4f} | {r['mean_width_fraction']:.3f} | "
            f"{per_layer} | {taps} | {r['dev_inference_seconds']:.2f} | {'-' if fixed is None else f'{fixed:.2f}'} |"
        )
    return "\n".join(lines)


def write_tables(args, params: dict[str, int], mt_params: dict[str, int]) -> str:
    """``results.md`` from every run on record, not only this call's; returns its text."""
    recorded = [json.loads(path.read_text()) for path in sorted((args.output_dir / "runs").glob("*.json"))]
    sections = []
    glue = [r for r in recorded if r["kind"] == "glue"]
    if glue:
        tasks = [t for t in GLUE_TASKS if any(r["task"] == t for r in glue)]
        # Kept beside the runs, so that a call without --glue_dir (translation only) keeps the row.
        saved_majority = args.output_dir / "majority_class.json"
        if args.glue_dir is not None:
            majority = {task: majority_class_score(args.glue_dir, task) for task in tasks}
            saved_majority.write_text(json.dumps(majority, indent=2) + "\n")
        else:
            majority = json.loads(saved_majority.read_text()) if saved_majority.exists() else {}
        sections.append(glue_markdown(glue, params, list(MODELS), tasks, majority))
    translation = [r for r in recorded if r["kind"] == "translation"]
    if translation:
        sections.append(translation_markdown(translation, mt_params))
    saved_sweep = args.output_dir / "sweep.json"
    if saved_sweep.exists():
        sections.append(sweep_markdown(json.loads(saved_sweep.read_text())))
    text = "\n\n".join(sections)
    (args.output_dir / "results.md").write_text(text + "\n")
    return text


@exit_on_expected_errors
def main(argv=None) -> int:
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    # The study's configs (models and task budgets) sit beside the results they produced.
    config_dir = args.output_dir / "configs"
    config_dir.mkdir(parents=True, exist_ok=True)

    params = write_encoder_configs(args.config_name, config_dir)
    print("encoders (vocabulary 8000): " + ", ".join(f"{n} {p / 1e6:.2f}M parameters" for n, p in params.items()))
    check_params(params, "adaptive")
    mt_params = write_translation_configs(config_dir)
    if args.translation:
        print(
            "translation (vocabulary 8000): "
            + ", ".join(f"{n} {p / 1e6:.2f}M parameters" for n, p in mt_params.items())
        )
        check_params(mt_params, "dynconv")

    runs = plan_runs(args, config_dir)
    threads = threads_per_job(args.jobs)
    calls = {run.name: functools.partial(execute, run, args, threads) for run in runs}
    failed = run_pool(calls, args.jobs, after_each=lambda: write_tables(args, params, mt_params))

    sweep = [
        json.loads(path.read_text())
        for path in sorted((args.output_dir / "runs").glob(f"sweep-{args.sweep_task}-*.json"))
    ]
    if args.width_penalties and sweep:
        time_sweep(sweep, args)
        (args.output_dir / "sweep.json").write_text(json.dumps(sweep, indent=2) + "\n")
        plot_sweep(sweep, args.output_dir / "sweep.png")
    print(write_tables(args, params, mt_params))
    return report_failures("benchmark_quality.py", failed, args.work_dir)


if __name__ == "__main__":
    sys.exit(main())
