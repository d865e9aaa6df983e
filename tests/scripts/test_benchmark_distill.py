"""scripts/benchmark_distill.py: the plan, a tiny end-to-end study (distil, then fine-tune), timing and targets."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(load_script):
    return load_script("benchmark_distill")


def test_every_model_gets_the_same_settings_and_sst2_one_seed(bench, teachers, tmp_path):
    args = bench.parse_args(["--glue_dir", str(tmp_path), "--teacher", str(teachers["bert"]), "--work_dir", str(tmp_path),
                             "--lengths", "32"])  # the tiny teacher reads 64 tokens
    runs = bench.plan_runs(args)
    assert [r.name for r in runs if r.task == "sst2"] == [f"glue-sst2-{m}-seed42" for m in bench.MODELS]
    assert len(runs) == 3 * (1 + 4 * 3)
    for task in ("sst2", "cola", "mrpc", "stsb", "rte"):
        assert len({r.config_file for r in runs if r.task == task}) == 1 and not any(r.budget for r in runs)
        settings = yaml.safe_load((ROOT / f"configs/distill/glue/{task}.yaml").read_text())
        assert settings["task_name"] == task and "config_name" not in settings and "model_name_or_path" not in settings
    models = {r.model: r.arguments[r.arguments.index("--model_name_or_path") + 1] for r in runs}
    assert models == {"teacher": str(teachers["bert"]), "adaptive": str(tmp_path / "student-adaptive"),
                      "fixed": str(tmp_path / "student-fixed")}


def test_a_tiny_study_distils_then_fine_tunes_and_times(bench, teachers, text_file, tiny_glue_dir, tmp_path):
    config = tmp_path / "distill.yaml"
    config.write_text(yaml.safe_dump({
        "train_file": [str(text_file)], "line_by_line": True, "max_seq_length": 32, "max_eval_samples": 32,
        "max_train_steps": 6, "config_overrides": "kernel_size=[5,9],conv_backend=unfold", "learning_rate": 3e-3, "seed": 0,
        "output_dir": "ignored: the study sets it",
    }))
    out, work = tmp_path / "results", tmp_path / "work"
    argv = ["--glue_dir", str(tiny_glue_dir), "--teacher", str(teachers["bert"]), "--distill_config", str(config),
            "--models", "teacher", "adaptive", "--tasks", "rte", "--seeds", "42", "--jobs", "2",
            "--run_args", "--num_train_epochs 1 --max_length 32", "--lengths", "16", "--tokens_per_batch", "64",
            "--repeats", "1", "--output_dir", str(out), "--work_dir", str(work)]
    assert bench.main(argv) == 0
    runs = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert runs == ["glue-rte-adaptive-seed42.json", "glue-rte-teacher-seed42.json"]
    assert not list(work.glob("glue-*/epoch_*"))  # finished runs keep their model, not their training states
    distilled = json.loads((out / "distillation.json").read_text())["adaptive"]
    assert distilled["steps"] == 6 and len(distilled["widths"]) == 2
    inference = json.loads((out / "inference.json").read_text())
    assert set(inference["seconds"]) == {"teacher", "adaptive"}
    assert set(inference["seconds"]["teacher"]) == {"16", "64"}  # --lengths and the teacher's maximum
    table = (out / "results.md").read_text()
    assert "| teacher |" in table and "| adaptive |" in table and "Distillation" in table
    assert "faster than the teacher at T = 64" not in table  # T < 512 is not a target
    assert "| teacher / adaptive |" in table and "distillation steps: adaptive 6" in table

    # Again: nothing trains, the same records.
    before = {p.name: p.read_text() for p in (out / "runs").glob("*.json")}
    assert bench.main(argv) == 0
    assert {p.name: p.read_text() for p in (out / "runs").glob("*.json")} == before

    # Students are not committed: without their folders the tables keep the saved records.
    table = (out / "results.md").read_text()  # the second run timed the models again
    shutil.rmtree(work / "student-adaptive")
    assert bench.main([*argv, "--timing_only"]) == 0
    assert json.loads((out / "distillation.json").read_text())["adaptive"] == distilled
    assert (out / "results.md").read_text() == table


def test_targets_met_and_missed(bench):
    by = {("sst2", "adaptive"): [{"score": 0.885}], ("sst2", "teacher"): [{"score": 0.9}]}
    glue = {"by": by, "averages": {"adaptive": 0.70, "teacher": 0.73, "from scratch": 0.45},
            "tasks": ["sst2", "cola", "mrpc", "stsb", "rte"]}
    inference = {"seconds": {"teacher": {"128": 1.0, "512": 4.0}, "adaptive": {"128": 1.2, "512": 2.0}}}
    lines = bench.targets(glue, inference)
    assert lines == [
        "- adaptive SST-2 dev >= 88.0: 88.5, met",
        "- adaptive within 2 points of the teacher (5-task average): 70.0 vs 73.0, NOT met",
        "- adaptive >= 15 points above from scratch: +25.0, met",
        "- adaptive inference faster than the teacher at T = 512: 2.00x, met",
    ]
    partial = dict(glue, tasks=["sst2"])  # averages over fewer than five tasks are not the target's
    assert bench.targets(partial, None) == lines[:1]


@pytest.mark.parametrize("teacher,argv,message", [
    ("nowhere", [], "run `make teacher` (or pass --teacher)"),
    ("bert", ["--lengths", "128"], "--lengths 128 is beyond the 64 tokens the teacher reads"),
])
def test_bad_arguments_stop_with_one_line(bench, teachers, tmp_path, capsys, teacher, argv, message):
    folder = teachers.get(teacher, tmp_path / teacher)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--timing_only", "--teacher", str(folder), *argv])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith(message)
