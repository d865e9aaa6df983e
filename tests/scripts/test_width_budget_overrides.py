"""The README's task with a width budget set the way users set things (``--config_overrides``, nothing
else): the budget gets its clamp, floor and warm-in, holds, and the model learns. (Before, the same
command collapsed every layer to zero width and stayed at chance, 0.500, at seed 3.)"""

from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "glue" / "negation_scope.yaml"
BUDGET = 0.25


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_budget_from_config_overrides_holds_and_the_model_learns(load_script, tmp_path, seed):
    # One epoch of the README's demo (about 40 s): the budget is warmed in over its first 30%.
    results = load_script("run_glue").main([
        str(CONFIG), "--config_overrides", f"width_budget={BUDGET}", "--seed", str(seed), "--num_train_epochs", "1",
        "--output_dir", str(tmp_path / "run"),
    ])
    last = results["history"][-1]
    widths = [last[f"width_{layer}"] for layer in range(4)]
    assert all(0.1 < w <= BUDGET + 0.03 for w in widths), widths  # held, and far from the floor (0.01)
    assert results["eval_accuracy"] >= 0.85, results["history"]  # chance is 0.5
