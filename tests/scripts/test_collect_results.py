"""benchmarks/negation_scope/collect_results.py: per-run metrics, mean and spread, one-line errors."""

import json

import pytest


def _run_dir(folder, name, seed, **results):
    run = folder / name
    run.mkdir()
    (run / "all_results.json").write_text(json.dumps(results))
    (run / "run_info.json").write_text(json.dumps({"runs": [{"seed": seed}]}))
    return run


def test_mean_and_sample_spread_over_runs(load_script, tmp_path, capsys):
    runs = [_run_dir(tmp_path, f"s{seed}", seed, eval_accuracy=value, test_accuracy=1.0)
            for seed, value in [(1, 0.9), (2, 0.8), (3, 0.7)]]
    output = tmp_path / "results" / "r.json"
    collected = load_script("collect_results").main([*map(str, runs), "--metrics", "eval_accuracy", "test_accuracy",
                                                     "--output", str(output)])
    assert [run["seed"] for run in collected["runs"]] == [1, 2, 3]
    accuracy = collected["summary"]["eval_accuracy"]
    assert accuracy["mean"] == pytest.approx(0.8) and accuracy["std"] == pytest.approx(0.1)
    assert (accuracy["min"], accuracy["max"], accuracy["n"]) == (0.7, 0.9, 3)
    assert collected["summary"]["test_accuracy"]["std"] == 0.0
    assert json.loads(output.read_text()) == collected
    assert "eval_accuracy: 0.8000 ± 0.1000 over 3 runs" in capsys.readouterr().out


def test_an_unfinished_run_or_a_missing_metric_stops_with_one_line(load_script, tmp_path, capsys):
    script = load_script("collect_results")
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(SystemExit) as stop:
        script.main([str(tmp_path / "unfinished"), "--metrics", "eval_accuracy", "--output", str(tmp_path / "r.json")])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().endswith("holds no all_results.json: is the run finished?")
    run = _run_dir(tmp_path, "done", 1, eval_loss=0.3)
    with pytest.raises(SystemExit):
        script.main([str(run), "--metrics", "eval_accuracy", "--output", str(tmp_path / "r.json")])
    assert "has no eval_accuracy (it has eval_loss)" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
