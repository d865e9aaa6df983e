"""Gather the metrics of finished runs (their all_results.json) into one results file: per run, mean and spread.

    python benchmarks/negation_scope/collect_results.py outputs/negation_scope_seed* --metrics eval_accuracy test_accuracy \\
        --output benchmarks/negation_scope/results.json

Each run's seed is read from its run_info.json. The spread is the sample standard deviation over
runs (0 for a single run); the numbers a README quotes for a run that varies by seed come from here.
"""

import argparse
import json
import statistics
from pathlib import Path

from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors
from dynconv_nlp.errors import UsageError


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", help="output folders of finished runs")
    parser.add_argument("--metrics", nargs="+", required=True, help="keys of all_results.json, e.g. eval_accuracy")
    parser.add_argument("--output", required=True, help="the JSON file to write")
    return parser.parse_args(argv)


def read_run(run_dir: Path, metrics: list[str]) -> dict:
    """``{"run": name, "seed": s, metric: value, ...}`` of one finished run."""
    results_file = run_dir / "all_results.json"
    if not results_file.is_file():
        raise UsageError(f"{run_dir} holds no all_results.json: is the run finished?")
    results = json.loads(results_file.read_text())
    missing = [m for m in metrics if m not in results]
    if missing:
        raise UsageError(f"{results_file} has no {', '.join(missing)} (it has {', '.join(sorted(results))})")
    info = run_dir / "run_info.json"
    seed = json.loads(info.read_text())["runs"][-1]["seed"] if info.is_file() else None
    return {"run": run_dir.name, "seed": seed} | {m: results[m] for m in metrics}


def summarize(runs: list[dict], metrics: list[str]) -> dict:
    """Mean, sample standard deviation, min and max of each metric over the runs."""
    summary = {}
    for metric in metrics:
        values = [run[metric] for run in runs]
        summary[metric] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
            "n": len(values),
        }
    return summary


@exit_on_expected_errors
def main(argv=None) -> dict:
    args = parse_args(argv)
    runs = [read_run(Path(d), args.metrics) for d in sorted(args.run_dirs)]
    collected = {"runs": runs, "summary": summarize(runs, args.metrics)}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(collected, indent=2) + "\n")
    for metric, s in collected["summary"].items():
        print(f"{metric}: {s['mean']:.4f} ± {s['std']:.4f} over {s['n']} runs (min {s['min']:.4f}, max {s['max']:.4f})")
    return collected


if __name__ == "__main__":
    main()
