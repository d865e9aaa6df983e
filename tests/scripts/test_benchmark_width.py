"""scripts/benchmark_width.py: the settings, the plan, the Pareto target and a tiny end-to-end study."""

import json

import pytest


@pytest.fixture
def bench(load_script):
    return load_script("benchmark_width")


def test_settings_change_only_the_convolutions(bench):
    assert bench.setting_names() == [
        "fixed-k3", "fixed-k7", "fixed-k15", "fixed-k31", "budget-k31-100", "budget-k31-50", "budget-k31-25",
        "budget-k31-10", "budget-k127-25", "budget-k127-10", "budget-k127-5",
    ]
    assert bench.setting_overrides("fixed-k7", False, 50) == "width_penalty_coef=0,kernel_size=7,width_mode=fixed"
    assert bench.setting_overrides("budget-k127-5", True, 50) == (
        "width_penalty_coef=0,kernel_size=127,decoder_kernel_size=127,width_budget=0.05,decoder_width_budget=0.05,"
        "extent_activation=clamp,width_budget_warmup_steps=50"
    )


def test_every_setting_runs_each_task_and_seed_with_the_same_budget(bench, tmp_path):
    args = bench.parse_args(["--tasks", "negation_scope", "--seeds", "1", "2", "--output_dir", str(tmp_path / "out"),
                             "--work_dir", str(tmp_path / "work")])
    (tmp_path / "configs").mkdir()
    runs = bench.plan_runs(args, tmp_path / "configs")
    assert len(runs) == 2 * 11 and len({r.config_file for r in runs}) == 1
    config = (tmp_path / "configs" / "negation_scope.yaml").read_text()
    assert "output_dir" not in config and "config_overrides" not in config and "num_train_epochs: 3" in config
    budget = next(r for r in runs if r.model == "budget-k31-25")
    # 30% of 3 epochs of 20,000 sentences in batches of 32.
    assert budget.arguments[-1].endswith("width_budget_warmup_steps=562") and budget.script == "run_glue.py"


def test_an_adaptive_setting_is_above_the_front_only_if_it_beats_every_fixed_one_as_fast(bench):
    rows = [dict(setting="fixed-k3", score=80.0, seconds=1.0), dict(setting="fixed-k31", score=90.0, seconds=3.0),
            dict(setting="budget-k31-25", score=85.0, seconds=2.0), dict(setting="budget-k31-10", score=79.0, seconds=1.5)]
    lines = bench.pareto_lines(rows)
    assert len(lines) == 1 and lines[0].startswith("budget-k31-25 (85.00 in 2.00 s")


def test_missing_multi30k_is_one_line(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--tasks", "multi30k", "--multi30k_dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert f"Multi30k is not in {tmp_path}" in capsys.readouterr().err


def test_a_tiny_study_trains_times_and_writes_its_tables(bench, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    argv = ["--tasks", "negation_scope", "--settings", "budget-k31-25", "--seeds", "1", "--warmup_steps", "2",
            "--run_args", "--max_train_samples 64 --max_eval_samples 32 --num_train_epochs 1 --vocab_size 200",
            "--repeats", "1", "--output_dir", str(out), "--work_dir", str(work)]
    assert bench.main(argv) == 0
    run = json.loads((out / "runs" / "width-negation_scope-budget-k31-25-seed1.json").read_text())
    assert 0 <= run["score"] <= 1 and "width_budget=0.25" in run["command"]
    timing = json.loads((out / "timing.json").read_text())["negation_scope"]["budget-k31-25"]
    assert timing["inference_seconds"] > 0 and len(timing["encoder_widths"]) == 4
    assert "| budget-k31-25 | 1 |" in (out / "results.md").read_text()
    before = (out / "runs" / "width-negation_scope-budget-k31-25-seed1.json").read_text()
    assert bench.main(argv) == 0  # again: the finished run is skipped
    assert (out / "runs" / "width-negation_scope-budget-k31-25-seed1.json").read_text() == before
