"""benchmarks/width/benchmark_width.py: the settings, the plan, the Pareto target and a tiny end-to-end study."""

import json
from pathlib import Path

import pytest
import torch
import yaml


@pytest.fixture
def bench(load_script):
    return load_script("benchmark_width")


def save_tiny_translation_model(folder: Path, tokenizer_dir: Path) -> None:
    """A random two-layer translation model with width budgets (K = 31) and the test tokenizer, in ``folder``."""
    from dynconv_testing import tiny_config
    from transformers import AutoTokenizer

    from dynconv_nlp import DynConvForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = tiny_config(vocab_size=len(tokenizer), kernel_size=31, decoder_kernel_size=31, width_budget=0.25,
                         decoder_width_budget=0.25, pad_token_id=tokenizer.pad_token_id)
    DynConvForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


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



def test_multi30k_runs_read_the_given_folder_relative_to_the_repository(bench, tmp_path):
    data = tmp_path / "multi30k"
    data.mkdir()
    (data / "train.de.gz").touch()
    args = bench.parse_args(["--tasks", "multi30k", "--seeds", "1", "--multi30k_dir", str(data), "--output_dir",
                             str(tmp_path / "out"), "--work_dir", str(tmp_path / "work")])
    (tmp_path / "configs").mkdir()
    runs = bench.plan_runs(args, tmp_path / "configs")
    config = yaml.safe_load((tmp_path / "configs" / "multi30k.yaml").read_text())
    assert (bench.ROOT / config["train_file"]).resolve() == data / "train" and not Path(config["test_file"]).is_absolute()
    assert all("decoder_kernel_size=" in r.arguments[-1] and r.script == "run_translation.py" for r in runs)

def test_an_adaptive_setting_is_above_the_front_only_if_it_beats_every_fixed_one_as_fast(bench):
    rows = [dict(setting="fixed-k3", score=80.0, time=0.2), dict(setting="fixed-k31", score=90.0, time=1.0),
            dict(setting="budget-k31-25", score=85.0, time=0.5), dict(setting="budget-k31-10", score=79.0, time=0.3)]
    lines = bench.pareto_lines(rows)
    assert len(lines) == 1 and lines[0].startswith("budget-k31-25 (85.00 at time 0.500")


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
    timing = run["timing"]
    assert timing["inference_seconds"] > 0 and timing["reference_seconds"] > 0 and len(timing["encoder_widths"]) == 4
    assert timing["inference_ratio"] == pytest.approx(timing["inference_seconds"] / timing["reference_seconds"], rel=1e-3)
    assert len(run["trained_widths"]) == 4 and all(0 < w <= 1 for w in run["trained_widths"])
    assert f"| budget-k31-25 | 1 | {100 * run['score']:.1f}" in (out / "results.md").read_text()
    before = (out / "runs" / "width-negation_scope-budget-k31-25-seed1.json").read_text()
    assert bench.main(argv) == 0  # again: the finished run is skipped
    assert (out / "runs" / "width-negation_scope-budget-k31-25-seed1.json").read_text() == before
    assert bench.main([*argv, "--retime"]) == 0  # timed again, nothing else changed
    again = json.loads((out / "runs" / "width-negation_scope-budget-k31-25-seed1.json").read_text())
    assert again["timing"] != run["timing"] and {k: v for k, v in again.items() if k != "timing"} == {
        k: v for k, v in run.items() if k != "timing"}
    # The learned extents, for benchmark_ops.py --trim_extents: shares of each side's maximum, per layer.
    assert bench.main([*argv, "--export_extents"]) == 0
    extents = json.loads((out / "extents" / "negation_scope-budget-k31-25-seed1.json").read_text())
    assert extents["kernel_sizes"] == [31] * 4 and extents["num_heads"] == 4 and len(extents["layers"]) == 4
    assert 0 < extents["sentences"] <= bench.EXTENT_SENTENCES == 32 and len(extents["layers"][0]) == extents["sentences"]
    tokens = [token for layer in extents["layers"] for sentence in layer for token in sentence]
    assert all(len(token) == 4 and all(0 <= share <= 1 for pair in token for share in pair) for token in tokens)


def test_freeze_scores_and_times_a_budget_model_beside_its_parent_and_fixed_twins(bench, tmp_path, tokenizer_dir):
    from transformers import AutoTokenizer
    from dynconv_testing import tiny_config

    from dynconv_nlp import DynConvForSequenceClassification

    out, work = tmp_path / "out", tmp_path / "work"
    folder = work / "width-negation_scope-budget-k31-25-seed1"
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = tiny_config(vocab_size=len(tokenizer), kernel_size=[31, 31], width_budget=0.25, num_labels=2,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    DynConvForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    argv = ["--tasks", "negation_scope", "--settings", "budget-k31-25", "--seeds", "1", "--freeze", "--max_dev_samples", "64",
            "--repeats", "1", "--output_dir", str(out), "--work_dir", str(work)]
    assert bench.main(argv) == 0
    frozen = json.loads((out / "frozen" / "width-negation_scope-budget-k31-25-seed1.json").read_text())
    assert 0 <= frozen["frozen_score"] <= 1 and 0 <= frozen["adaptive_score"] <= 1 and frozen["metric"] == "dev accuracy"
    assert len(frozen["head_windows"]) == 2 and all(k <= 31 for k in frozen["frozen_kernel_sizes"])
    assert set(frozen["time_ratio"]) == {"adaptive", "frozen", "same_taps", "fixed-k3", "fixed-k7", "fixed-k15", "fixed-k31"}
    report = (out / "results.md").read_text()
    assert "| width-negation_scope-budget-k31-25-seed1 |" in report
    assert "- negation_scope budget-k31-25 frozen (1 seed): within 0.3 points of its adaptive parent: " in report


def test_freeze_scores_a_translation_model_by_test_bleu_and_times_its_decoding(bench, tmp_path, tokenizer_dir):
    import gzip

    data, out, work = tmp_path / "multi30k", tmp_path / "out", tmp_path / "work"
    data.mkdir()
    for name, text in {"train.de": "ein hund läuft\nzwei kinder spielen\n", "train.en": "a dog runs\ntwo children play\n",
                       "test_2016_flickr.de": "ein mann\nein hund\n", "test_2016_flickr.en": "a man\na dog\n"}.items():
        with gzip.open(data / f"{name}.gz", "wt", encoding="utf-8") as handle:
            handle.write(text)
    save_tiny_translation_model(work / "width-multi30k-budget-k31-25-seed1", tokenizer_dir)
    argv = ["--tasks", "multi30k", "--settings", "budget-k31-25", "--seeds", "1", "--freeze", "--repeats", "1",
            "--decode_sentences", "1", "--multi30k_dir", str(data), "--output_dir", str(out), "--work_dir", str(work)]
    assert bench.main(argv) == 0
    frozen = json.loads((out / "frozen" / "width-multi30k-budget-k31-25-seed1.json").read_text())
    assert frozen["metric"] == "test BLEU / 100" and 0 <= frozen["frozen_score"] <= 1 and 0 <= frozen["adaptive_score"] <= 1
    assert len(frozen["frozen_decoder_kernel_sizes"]) == 2 and len(frozen["decoder_head_windows"]) == 2
    assert set(frozen["time_ratio"]) == {"adaptive", "frozen", "same_taps", "fixed-k3", "fixed-k7", "fixed-k15", "fixed-k31"}
    assert "- multi30k budget-k31-25 frozen (1 seed): within 0.3 points" in (out / "results.md").read_text()


def test_the_reference_is_the_runs_architecture_with_all_31_taps(bench, tmp_path):
    from dynconv_nlp import DynConvConfig

    config = DynConvConfig(vocab_size=50, hidden_size=16, encoder_layers=2, decoder_layers=1, intermediate_size=32,
                           num_attention_heads=2, kernel_size=127, decoder_kernel_size=127, width_budget=0.1,
                           decoder_width_budget=0.1)
    config.save_pretrained(tmp_path)
    reference = bench.reference_model(tmp_path, seq2seq=True)
    assert reference.config.kernel_size == [31, 31] and reference.config.decoder_kernel_size == [31]
    assert reference.config.width_mode == "fixed" and reference.config.width_budget is None
    assert reference.config.decoder_width_budget is None and reference.config.hidden_size == 16


def test_a_record_whose_model_is_gone_is_not_timed_but_reported(bench, tmp_path, monkeypatch, capsys):
    args = bench.parse_args(["--tasks", "negation_scope", "--output_dir", str(tmp_path), "--work_dir", str(tmp_path / "work")])
    run = bench.plan_runs(args, tmp_path)[0]
    monkeypatch.setattr(bench, "execute", lambda run, args, threads: {"score": 0.9})
    assert bench.execute_and_time(run, args, 1) is None
    assert f"delete {tmp_path / 'runs' / run.name}.json to run it again" in capsys.readouterr().out


def test_a_translation_model_is_timed_against_the_reference_doing_the_same_decoding(bench, tmp_path, tokenizer_dir):
    import gzip

    data = tmp_path / "multi30k"
    data.mkdir()
    with gzip.open(data / "test_2016_flickr.de.gz", "wt", encoding="utf-8") as handle:
        handle.write("ein hund läuft\nzwei kinder spielen im park\nein mann\n")
    args = bench.parse_args(["--tasks", "negation_scope", "--seeds", "1", "--settings", "budget-k31-25", "--repeats", "1",
                             "--multi30k_dir", str(data), "--work_dir", str(tmp_path / "work")])
    run = bench.Run("width", "multi30k", "budget-k31-25", 1, "run_translation.py", tmp_path, [])
    save_tiny_translation_model(bench.run_dir(args, "multi30k", "budget-k31-25", 1), tokenizer_dir)

    timing = bench.time_run(args, run, threads=1)
    assert timing["inference_seconds"] > 0 and timing["reference_seconds"] > 0 and timing["threads"] == 1
    assert len(timing["encoder_widths"]) == 2 and all(0 <= w <= 1 for w in timing["encoder_widths"])


def test_a_collapsed_layer_is_reported_with_its_run(bench, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    timing = {"inference_ratio": 0.5, "encoder_widths": [0.3, 0.01]}
    for setting, widths in (("budget-k31-10", [0.1, 0.005]), ("budget-k31-100", [0.6, 0.4])):
        record = {"task": "negation_scope", "model": setting, "seed": 1, "score": 0.9, "timing": timing, "trained_widths": widths}
        (runs / f"width-negation_scope-{setting}-seed1.json").write_text(json.dumps(record))
    text = bench.write_tables(bench.parse_args(["--tasks", "negation_scope", "--output_dir", str(tmp_path)]))
    assert "no layer collapses" in text and "NOT met: budget-k31-10 seed 1 layer 1 (0.005)" in text
    assert "budget-k31-100 seed" not in text and "| budget-k31-100 | 1 | 90.0 (1) | 0.500 | 0.30 0.01 | 0.60 0.40 |" in text
