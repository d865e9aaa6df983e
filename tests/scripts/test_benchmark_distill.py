"""benchmarks/distill/benchmark_distill.py: the plan, a tiny end-to-end study (distil, then fine-tune), timing and targets."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSequenceClassification

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(load_script):
    return load_script("benchmark_distill")


def test_every_model_gets_the_same_settings_and_sst2_one_seed(bench, teachers, tmp_path):
    models = ["teacher", "hybrid5", "teacher-window15", "hybrid5-pooler", "hybrid5-defaults"]
    args = bench.parse_args(["--glue_dir", str(tmp_path), "--teacher", str(teachers["bert"]), "--work_dir", str(tmp_path),
                             "--checkpoint_dir", str(tmp_path / "checkpoints"), "--models", *models,
                             "--lengths", "32"])  # the tiny teacher reads 64 tokens
    runs = bench.plan_runs(args)
    assert [r.name for r in runs if r.task == "sst2"] == [f"glue-sst2-{m}-seed42" for m in models]
    assert len(runs) == 5 * (1 + 4 * 3)
    for task in ("sst2", "cola", "mrpc", "stsb", "rte"):
        assert len({r.config_file for r in runs if r.task == task and r.model != "hybrid5-defaults"}) == 1
        settings = yaml.safe_load((ROOT / f"configs/distill/glue/{task}.yaml").read_text())
        assert settings["task_name"] == task and "config_name" not in settings and "model_name_or_path" not in settings
        # The defaults variant names the task only: run_glue's recipe for a checkpoint does the rest.
        (defaults_run,) = [r for r in runs if r.task == task and r.model == "hybrid5-defaults" and r.seed == 42]
        assert yaml.safe_load(defaults_run.config_file.read_text()) == {"task_name": task}
    # The variants' own options count in their runs' fingerprints (Run.budget).
    assert {r.model: r.budget for r in runs} == {"teacher": [], "hybrid5": [], "hybrid5-pooler": ["--ignore_mismatched_sizes"],
                                                 "teacher-window15": ["--attn_implementation", "sdpa_window_15"],
                                                 "hybrid5-defaults": []}
    folders = {r.model: r.arguments[r.arguments.index("--model_name_or_path") + 1] for r in runs}
    assert folders == {"teacher": str(teachers["bert"]), "teacher-window15": str(teachers["bert"]),
                       "hybrid5": str(tmp_path / "checkpoints" / "dynconv-minilm-hybrid5"),
                       "hybrid5-pooler": str(tmp_path / "hybrid5-pooler"),
                       "hybrid5-defaults": str(tmp_path / "checkpoints" / "dynconv-minilm-hybrid5")}
    command = bench.distill_command(args, "hybrid5-steps965", tmp_path / "student")
    assert command[-4:] == ["--keep_attention_layers", "5", "--max_train_steps", "965"]
    assert bench.distill_command(args, "hybrid5-pairs-steps965", tmp_path / "student")[-1] == "--glue_pairs"


def test_a_tiny_study_distils_then_fine_tunes_and_times(bench, teachers, text_file, tiny_glue_dir, tmp_path):
    config = tmp_path / "distill.yaml"
    config.write_text(yaml.safe_dump({
        "train_file": [str(text_file)], "line_by_line": True, "max_seq_length": 32, "max_eval_samples": 32,
        "max_train_steps": 6, "config_overrides": "kernel_size=[5,9],conv_backend=unfold", "learning_rate": 3e-3, "seed": 0,
        "output_dir": "ignored: the study sets it",
    }))
    out, work, shipped = tmp_path / "results", tmp_path / "work", tmp_path / "checkpoints"
    argv = ["--glue_dir", str(tiny_glue_dir), "--teacher", str(teachers["bert"]), "--distill_config", str(config),
            "--models", "teacher", "adaptive", "teacher-window15", "adaptive-pooler", "--tasks", "stsb", "--seeds", "42",
            "--jobs", "2", "--run_args", "--num_train_epochs 1 --max_length 32", "--lengths", "16", "128",
            "--tokens_per_batch", "64", "--repeats", "1", "--output_dir", str(out), "--work_dir", str(work),
            "--checkpoint_dir", str(shipped), "--teacher_hub_id", "org/tiny-teacher"]
    assert bench.main(argv) == 0
    runs = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert runs == sorted(f"glue-stsb-{m}-seed42.json" for m in ("adaptive", "adaptive-pooler", "teacher", "teacher-window15"))
    # The student ships as the repository keeps it: fp16 weights that load as float32, its tokenizer, its card.
    student = shipped / "dynconv-minilm-adaptive"
    assert {p.name for p in student.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json", "README.md"}
    assert {t.dtype for t in load_file(student / "model.safetensors").values() if t.is_floating_point()} == {torch.float16}
    assert AutoModel.from_pretrained(student).dtype == torch.float32
    assert AutoModel.from_pretrained(student, dtype=torch.float16).dtype == torch.float16
    card = (student / "README.md").read_text()
    assert "org/tiny-teacher" in card and str(teachers["bert"]) not in card
    # The card carries the student's GLUE scores beside the teacher's, from the records.
    glue_rows = card.split("## Fine-tuned on GLUE")[1]
    assert "| teacher |" in glue_rows and "| adaptive |" in glue_rows and "| adaptive-pooler |" not in glue_rows
    # The pooler variant's classifier starts from the teacher's pooler and pools the first token.
    pooler = AutoModelForSequenceClassification.from_pretrained(work / "adaptive-pooler")
    assert pooler.config.classifier_pooling == "first"
    assert torch.equal(pooler.classifier.dense.weight, load_file(teachers["bert"] / "model.safetensors")["pooler.dense.weight"])
    assert not list(work.glob("glue-*/epoch_*"))  # finished runs keep their model, not their training states
    distilled = json.loads((out / "distillation.json").read_text())["adaptive"]
    assert distilled["steps"] == 6 and len(distilled["widths"]) == 2
    inference = json.loads((out / "inference.json").read_text())
    assert set(inference["seconds"]) == {"teacher", "adaptive"}
    assert set(inference["seconds"]["teacher"]) == {"16", "64", "128"}  # --lengths and the teacher's maximum
    assert set(inference["seconds"]["adaptive"]) == {"16", "64", "128"}  # 128: the teacher's positions extended
    table = (out / "results.md").read_text()
    assert "| teacher |" in table and "| adaptive |" in table and "| teacher-window15 |" in table and "Distillation" in table
    assert "faster than the teacher at T = 64" not in table  # T < 512 is not a target
    assert "| teacher / adaptive |" in table and "distillation steps: adaptive 6" in table
    assert "At T > 64 the teacher's position table is extended" in table

    # Again: nothing trains, the same records.
    before = {p.name: p.read_text() for p in (out / "runs").glob("*.json")}
    assert bench.main(argv) == 0
    assert {p.name: p.read_text() for p in (out / "runs").glob("*.json")} == before
    assert (student / "README.md").read_text() == card  # the card's section is replaced, not added again

    # A shipped student is read from --checkpoint_dir: without its distillation folder nothing changes.
    table = (out / "results.md").read_text()  # the second run timed the models again
    shutil.rmtree(work / "student-adaptive")
    assert bench.main(argv) == 0
    assert {p.name: p.read_text() for p in (out / "runs").glob("*.json")} == before
    # Without the shipped student either, the tables keep the saved records.
    table = (out / "results.md").read_text()
    shutil.rmtree(shipped / "dynconv-minilm-adaptive")
    assert bench.main([*argv, "--timing_only"]) == 0
    assert json.loads((out / "distillation.json").read_text())["adaptive"] == distilled
    assert (out / "results.md").read_text() == table


def test_targets_met_and_missed(bench):
    by = {("sst2", "hybrid5"): [{"score": 0.885}], ("stsb", "hybrid5"): [{"score": 0.79}, {"score": 0.83}],
          ("rte", "hybrid5"): [{"score": 0.55}], ("rte", "teacher"): [{"score": 0.59}], ("sst2", "teacher"): [{"score": 0.9}]}
    glue = {"by": by, "averages": {"hybrid5": 0.70, "teacher": 0.71}, "tasks": ["sst2", "cola", "mrpc", "stsb", "rte"]}
    lines = bench.targets(glue)
    assert lines == [
        "- hybrid5 SST2 >= 88: 88.5, met",
        "- hybrid5 STSB >= 80: 81.0, met",  # the mean over seeds
        "- hybrid5 RTE within 3 points of the teacher: 55.0 vs 59.0, NOT met",
        "- hybrid5 within 2 points of the teacher (5-task average): 70.0 vs 71.0, met",
    ]
    partial = dict(glue, tasks=["sst2"])  # averages over fewer than five tasks are not the target's
    assert bench.targets(partial) == lines[:3]


@pytest.mark.parametrize("teacher,argv,message", [
    ("nowhere", [], "run `make teacher` (or pass --teacher)"),
    ("bert", ["--repeats", "0"], "--jobs, --threads, --tokens_per_batch and --repeats must be 1 or more"),
])
def test_bad_arguments_stop_with_one_line(bench, teachers, tmp_path, capsys, teacher, argv, message):
    folder = teachers.get(teacher, tmp_path / teacher)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--timing_only", "--teacher", str(folder), *argv])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith(message)
