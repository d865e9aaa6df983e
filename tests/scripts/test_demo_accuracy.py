"""The README's demo (`make glue`): its exact configuration, at its shipped seed, keeps the accuracy the README states.

The README gives the demo's accuracy as a mean and spread over seeds (benchmarks/negation_scope/results.json,
made by `make glue-seeds`: seed 42, the config's, gave 0.9595 validation and 0.9585 test accuracy;
seeds 1 and 2 gave 0.8665 and 0.9725) and states ``FLOOR`` for the shipped seed; this is that run,
so a change that makes the demo learn less fails here, not on a user's machine. About two minutes on 2 cores.
"""

from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "glue" / "negation_scope.yaml"
FLOOR = 0.93  # README: at the shipped seed, at least 0.93 validation and test accuracy


def test_make_glue_reaches_the_readme_floor(load_script, tmp_path):
    results = load_script("run_glue").main([str(CONFIG), "--output_dir", str(tmp_path / "demo")])
    assert results["eval_accuracy"] >= FLOOR, results["history"]
    assert results["test_accuracy"] >= FLOOR
