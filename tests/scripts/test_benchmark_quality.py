import json
from pathlib import Path

import pytest
import yaml
from transformers import BertConfig

from dynconv_nlp.benchmarking.runs import GLUE_TASKS, NOT_BUDGET, Run, command, result_scores
from dynconv_nlp.benchmarking.tables import majority_class_score
from dynconv_nlp.benchmarking.params import config_parameters
from dynconv_nlp.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
# The real GLUE files, for the tests that train or check real numbers (they skip without them); the others
# use tiny_glue_dir (conftest.py), a few rows in GLUE's layout, and run on a machine without ../shared.
GLUE_DIR = ROOT.parent / "shared" / "data" / "glue"
needs_glue = pytest.mark.skipif(not GLUE_DIR.is_dir(), reason=f"the GLUE files are not at {GLUE_DIR} (../shared/data/glue)")
TINY = ["--max_train_samples", "64", "--max_eval_samples", "48", "--max_length", "32", "--vocab_size", "300"]


@pytest.fixture
def quality(load_script):
    return load_script("benchmark_quality")


def test_the_four_encoders_have_matched_sizes(quality):
    configs = quality.encoder_configs(ROOT / "configs/models/small.json", vocab_size=8000, max_length=128)
    counts = {name: config_parameters(config) for name, config in configs.items()}
    assert set(counts) == {"adaptive", "fixed", "light", "transformer"}
    for name, count in counts.items():
        assert abs(count - counts["adaptive"]) / counts["adaptive"] <= 0.05, (name, counts)
    assert (configs["fixed"].width_mode, configs["fixed"].kernel_type) == ("fixed", "dynamic")
    assert (configs["light"].width_mode, configs["light"].kernel_type) == ("fixed", "light")
    bert = configs["transformer"]
    assert isinstance(bert, BertConfig)
    assert (bert.hidden_size, bert.num_hidden_layers, bert.num_attention_heads) == (256, 6, 4)
    # The feed-forward size is the one free knob; it is the closest match among multiples of 16.
    closer = [
        abs(config_parameters(quality.bert_like(configs["adaptive"], size, 128)) - counts["adaptive"])
        for size in (bert.intermediate_size - 16, bert.intermediate_size + 16)
    ]
    assert abs(counts["transformer"] - counts["adaptive"]) <= min(closer)


def test_the_translation_models_have_matched_sizes(quality, tmp_path):
    counts = quality.write_translation_configs(tmp_path)
    assert abs(counts["transformer"] - counts["dynconv"]) / counts["dynconv"] <= 0.05, counts
    marian = json.loads((tmp_path / "mt-transformer.json").read_text())
    original = json.loads((ROOT / "configs/models/transformer_small_mt.json").read_text())
    # Only the feed-forward size moved (1024 gave 6.4% more than DynConv), and it is the closest multiple of 16.
    assert marian["encoder_ffn_dim"] == marian["decoder_ffn_dim"] != original["encoder_ffn_dim"]
    assert all(marian[k] == v for k, v in original.items() if not k.endswith("ffn_dim")), marian
    configs = quality.translation_configs(vocab_size=8000)
    neighbours = []
    for size in (marian["encoder_ffn_dim"] - 16, marian["encoder_ffn_dim"] + 16):
        configs["transformer"].encoder_ffn_dim = configs["transformer"].decoder_ffn_dim = size
        neighbours.append(abs(config_parameters(configs["transformer"], seq2seq=True) - counts["dynconv"]))
    assert abs(counts["transformer"] - counts["dynconv"]) <= min(neighbours)


def test_sizes_more_than_five_percent_apart_are_refused(quality):
    quality.check_params({"adaptive": 100, "transformer": 105}, "adaptive")
    with pytest.raises(UsageError, match="transformer has .* off adaptive"):
        quality.check_params({"adaptive": 100, "transformer": 106}, "adaptive")


def test_every_model_gets_the_same_budget(quality, load_script, tmp_path, tiny_glue_dir):
    args = quality.parse_args(["--glue_dir", str(tiny_glue_dir), "--tasks", "sst2", "rte", "--seeds", "1", "2"])
    quality.write_encoder_configs(ROOT / "configs/models/small.json", tmp_path)
    runs = quality.plan_runs(args, tmp_path)
    assert len(runs) == 2 * 2 * 4
    run_glue = load_script("run_glue")
    for task, epochs in (("sst2", 1), ("rte", 3)):
        settings = yaml.safe_load((tmp_path / f"glue-{task}.yaml").read_text())
        original = yaml.safe_load((ROOT / f"configs/glue/{task}.yaml").read_text())
        assert settings["num_train_epochs"] == epochs
        # The task's budget, without its model, outputs, predictions or plots (BERT can't plot widths).
        assert settings == {k: v for k, v in original.items() if k not in NOT_BUDGET} | {
            "num_train_epochs": epochs
        }
        commands = {run.model: command(run, tmp_path / run.name, []) for run in runs if run.task == task}
        for model, cmd in commands.items():
            parsed = run_glue.parse_args(cmd[2:])
            assert parsed.num_train_epochs == epochs and not parsed.plot_widths and not parsed.do_predict
            assert parsed.max_length == original["max_length"]
            # BERT does not train at DynConv's rates; it gets its own 1e-4 (--model_learning_rates).
            assert parsed.learning_rate == (1e-4 if model == "transformer" else original["learning_rate"])
        options = ("--config_name", "--seed", "--output_dir", "--learning_rate")
        stripped = {tuple(_without(cmd, *options)) for cmd in commands.values()}
        assert len(stripped) == 1  # only the model, its learning rate, seed and folder differ
    data = run_glue.load_classification_data("rte", str(tiny_glue_dir))
    for run in runs[:4]:  # every model's config loads in run_glue, BERT's included
        assert run_glue.config_for_task(run_glue.parse_args(command(run, tmp_path / run.name, [])[2:]), data)


def test_a_learning_rate_of_its_own_changes_the_fingerprint_and_the_table_says_so(quality, tmp_path, tiny_glue_dir):
    argv = ["--glue_dir", str(tiny_glue_dir), "--tasks", "rte", "--seeds", "1"]
    quality.write_encoder_configs(ROOT / "configs/models/small.json", tmp_path)
    default = {r.model: r for r in quality.plan_runs(quality.parse_args(argv), tmp_path)}
    same = {r.model: r for r in quality.plan_runs(quality.parse_args(argv + ["--model_learning_rates"]), tmp_path)}
    assert default["transformer"].fingerprint([]) != same["transformer"].fingerprint([])
    # Runs at their config's rate keep the fingerprint they had before there were per-model rates.
    assert default["light"].budget == [] and default["light"].fingerprint([]) == same["light"].fingerprint([])
    results = [
        dict(_glue_result("rte", r.model, 1, 0.5, 0.5), command=" ".join(command(r, tmp_path, [])))
        for r in default.values()
    ]
    assert "Learning rate: the task config's, except transformer 0.0001" in quality.glue_markdown(
        results, dict.fromkeys(quality.MODELS, 6.6e6), list(quality.MODELS), ["rte"]
    )


def _without(cmd: list[str], *options: str) -> list[str]:
    kept, skip = [], False
    for token in cmd:
        if skip:
            skip = False
        elif token in options:
            skip = True
        else:
            kept.append(token)
    return kept


def test_an_interrupted_run_resumes_and_a_run_without_checkpoint_restarts(quality, tmp_path):
    run = Run("glue", "rte", "light", 1, "run_glue.py", ROOT / "configs/glue/rte.yaml")
    run_dir = tmp_path / run.name
    assert "--resume_from_checkpoint" not in command(run, run_dir, [])
    run_dir.mkdir()
    assert "--overwrite_output_dir" in command(run, run_dir, [])
    (run_dir / "step_7").mkdir()  # saved when a signal stopped it
    cmd = command(run, run_dir, [])
    assert cmd[cmd.index("--resume_from_checkpoint") + 1] == "latest"
    (run_dir / "epoch_1").mkdir()
    cmd = command(run, run_dir, [])
    assert cmd[cmd.index("--resume_from_checkpoint") + 1] == "latest"
    assert "--overwrite_output_dir" not in cmd


def test_translation_runs_keep_their_hypotheses_in_their_own_folder(quality, tmp_path):
    args = quality.parse_args(["--translation", "--tasks", "--seeds", "3"])
    runs = quality.plan_runs(args, tmp_path)
    assert [(run.script, run.model) for run in runs] == [
        ("run_translation.py", "dynconv"),
        ("run_translation.py", "transformer"),
    ]
    cmd = command(runs[1], tmp_path / runs[1].name, [])
    assert cmd[cmd.index("--config_name") + 1] == str(tmp_path / "mt-transformer.json")
    assert cmd[cmd.index("--predict_file") + 1] == str(tmp_path / runs[1].name / "test.hyp")


def _glue_result(task, model, seed, score, last):
    return dict(kind="glue", task=task, model=model, seed=seed, score=score, last_epoch_score=last)


def test_tables_average_over_seeds_and_check_the_targets(quality):
    results = [
        _glue_result("sst2", "adaptive", 1, 0.80, 0.78),
        _glue_result("sst2", "adaptive", 2, 0.84, 0.80),
        _glue_result("rte", "adaptive", 1, 0.60, 0.50),
        _glue_result("rte", "adaptive", 2, 0.60, 0.50),
        _glue_result("sst2", "fixed", 1, 0.70, 0.70),
        _glue_result("rte", "fixed", 1, 0.50, 0.50),
        _glue_result("sst2", "transformer", 1, 0.90, 0.90),
    ]
    params = dict(adaptive=6.6e6, fixed=6.58e6, light=6.46e6, transformer=6.59e6)
    text = quality.glue_markdown(results, params, list(quality.MODELS), ["sst2", "rte"], dict(sst2=0.5, rte=0.53))
    assert "| adaptive | 6.60M | 82.0 ± 2.8 (2) | 60.0 ± 0.0 (2) | 71.0 |" in text
    assert "| fixed | 6.58M | 70.0 (1) | 50.0 (1) | 60.0 |" in text
    assert "| transformer | 6.59M | 90.0 (1) | - | - |" in text  # no average over missing tasks
    assert "| adaptive | 6.60M | 79.0 ± 1.4 (2) | 50.0 ± 0.0 (2) | 64.5 |" in text  # last epochs
    assert "adaptive SST-2 dev accuracy >= 0.85: 0.820, NOT met" in text
    assert "| model | params (vocab 8000) | sst2 | rte | 2-task average |" in text  # only the tasks that ran
    assert "adaptive >= fixed on the 2-task average: 71.0 vs 60.0, met" in text
    assert "transformer on the 2-task average" not in text
    assert "| majority class, no input | 0 | 50.0 | 53.0 | 51.5 |" in text
    assert "majority class" not in quality.glue_markdown(results, params, list(quality.MODELS), ["sst2", "rte"], {})


def test_the_majority_class_scores_of_a_tiny_glue(quality, tiny_glue_dir):
    scores = {task: majority_class_score(tiny_glue_dir, task) for task in GLUE_TASKS}
    # Train majorities: SST-2 1 (dev 3 of 4), RTE entailment (dev 1 of 3), MRPC 1 (dev 3 of 4, F1 6/7);
    # a constant has no correlation with CoLA's labels, nor (counted as 0) with STS-B's scores.
    assert scores == pytest.approx(dict(sst2=3 / 4, rte=1 / 3, mrpc=(3 / 4 + 6 / 7) / 2, cola=0.0, stsb=0.0))


@needs_glue
def test_the_majority_class_row_scores_a_model_that_ignores_its_input(quality):
    scores = {task: majority_class_score(GLUE_DIR, task) for task in ["sst2", "cola", "mrpc", "stsb", "rte"]}
    # SST-2 train is 56% positive and dev 444 / 872 positive; MRPC dev is 68.4% paraphrases (F1 0.812);
    # a constant answer has no correlation with CoLA's labels or STS-B's scores.
    assert scores["sst2"] == pytest.approx(444 / 872)
    assert scores["mrpc"] == pytest.approx((279 / 408 + 2 * 279 / (2 * 279 + 129)) / 2)
    assert scores["cola"] == 0.0 and scores["stsb"] == 0.0
    assert 0.47 < scores["rte"] < 0.53


def test_translation_table_and_targets(quality):
    results = [
        dict(
            kind="translation",
            model="dynconv",
            test_bleu=39.2,
            test_chrf=58.9,
            eval_bleu=39.9,
            steps=1896,
            wall_seconds=3300,
            test_bleu_signature="nrefs:1|tok:13a",
        ),
        dict(
            kind="translation",
            model="transformer",
            test_bleu=40.0,
            test_chrf=59.5,
            eval_bleu=40.1,
            steps=1896,
            wall_seconds=3000,
            test_bleu_signature="nrefs:1|tok:13a",
        ),
    ]
    text = quality.translation_markdown(results, dict(dynconv=7.24e6, transformer=7.58e6))
    assert "| dynconv | 7.24M | 39.2 (1) | 58.9 (1) | 39.9 (1) | 1896 | 55 |" in text
    assert "small DynConv >= 35 BLEU: 39.20, met" in text
    assert "DynConv >= Transformer: 39.20 vs 40.00, NOT met" in text


def test_bad_arguments_stop_with_one_line(quality, capsys, tmp_path, tiny_glue_dir):
    for argv, message in (
        (["--tasks", "rte"], "pass --glue_dir"),
        (["--glue_dir", str(tmp_path / "none")], "is not a folder"),
        (["--glue_dir", str(tiny_glue_dir), "--jobs", "0"], "at least 1"),
        (["--tasks"], "nothing to run"),
        (["--glue_dir", str(tiny_glue_dir), "--model_learning_rates", "bert=1e-4"], "expected MODEL=LR"),
        (["--glue_dir", str(tiny_glue_dir), "--model_learning_rates", "transformer=fast"], "expected MODEL=LR"),
    ):
        with pytest.raises(SystemExit) as stop:
            quality.main(argv + ["--output_dir", str(tmp_path / "out"), "--work_dir", str(tmp_path / "work")])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


@needs_glue
def test_real_runs_record_results_and_are_skipped_when_done(quality, tmp_path, capsys):
    argv = [
        "--glue_dir", str(GLUE_DIR), "--tasks", "rte", "--models", "light", "--seeds", "1",
        "--config_name", str(ROOT / "configs/models/tiny.json"), "--num_train_epochs", "1",
        "--width_penalties", "0.05", "--sweep_task", "rte", "--run_args", " ".join(TINY),
        "--output_dir", str(tmp_path / "out"), "--work_dir", str(tmp_path / "work"),
    ]  # fmt: skip
    assert quality.main(argv) == 0
    first = capsys.readouterr().out
    assert "start glue-rte-light-seed1" in first and "start sweep-rte-lambda0.05-seed1" in first
    result = json.loads((tmp_path / "out/runs/glue-rte-light-seed1.json").read_text())
    assert result["model"] == "light" and result["steps"] == 2 and 0 <= result["score"] <= 1
    assert result["params"] > 0 and "--seed 1" in result["command"]
    sweep = json.loads((tmp_path / "out/sweep.json").read_text())
    assert len(sweep) == 1 and len(sweep[0]["width_fraction_per_layer"]) == 4
    assert 0 < sweep[0]["mean_width_fraction"] < 1 and sweep[0]["dev_inference_seconds"] > 0
    assert len(sweep[0]["kept_taps_per_layer"]) == 4 and all(1 <= t <= 15 for t in sweep[0]["kept_taps_per_layer"])
    assert (tmp_path / "out/sweep.png").stat().st_size > 0
    assert (tmp_path / "out/configs/glue-rte.yaml").exists() and (tmp_path / "out/configs/light.json").exists()
    table = (tmp_path / "out/results.md").read_text()
    assert "| light |" in table and "| 0.05 |" in table

    assert quality.main(argv) == 0  # everything on record: nothing trains again
    assert "start " not in capsys.readouterr().out


def test_a_missing_correlation_is_nan_not_a_crash(quality):
    run = Run("glue", "stsb", "fixed", 1, "run_glue.py", ROOT / "configs/glue/stsb.yaml")
    scores = dict(eval_pearson=None, eval_spearmanr=None, best_epoch=0, epochs=1, steps=3, train_seconds=1.0)
    scores["history"] = [dict(eval_pearson=None, eval_spearmanr=None)]
    result = result_scores(run, scores)
    assert result["score"] != result["score"]  # NaN
    text = quality.glue_markdown(
        [dict(kind="glue", task="stsb", model="fixed", seed=1, **result)],
        dict.fromkeys(quality.MODELS, 1e6),
        list(quality.MODELS),
        ["stsb"],
    )
    assert "| fixed | 1.00M | nan (1) |" in text


def _planned(quality, tmp_path, glue_dir, run_args=""):
    argv = ["--glue_dir", str(glue_dir), "--tasks", "rte", "--models", "light", "--seeds", "1"]
    argv += ["--output_dir", str(tmp_path / "out"), "--work_dir", str(tmp_path / "work"), "--run_args", run_args]
    args = quality.parse_args(argv)
    (tmp_path / "work/configs").mkdir(parents=True)
    quality.write_encoder_configs(ROOT / "configs/models/tiny.json", tmp_path / "work/configs")

    return args, quality.plan_runs(args, tmp_path / "work/configs")[0]


def test_a_result_made_with_other_settings_is_refused(quality, tmp_path, capsys, tiny_glue_dir):
    args, run = _planned(quality, tmp_path, tiny_glue_dir, run_args="--max_train_samples 64")
    (tmp_path / "out/runs").mkdir(parents=True)
    (tmp_path / "out/runs" / f"{run.name}.json").write_text(
        json.dumps(dict(fingerprint=run.fingerprint([]), score=0.5))
    )
    assert quality.execute(run, args, threads=1) is None
    assert "made with other settings" in capsys.readouterr().out


def test_a_finished_run_is_recorded_without_training_again(quality, tmp_path, monkeypatch, tiny_glue_dir):
    args, run = _planned(quality, tmp_path, tiny_glue_dir)
    run_dir = tmp_path / "work" / run.name
    run_dir.mkdir()
    config = quality.AutoConfig.from_pretrained(tmp_path / "work/configs/light.json")
    config.save_pretrained(run_dir)
    history = [dict(eval_accuracy=0.5), dict(eval_accuracy=0.6)]
    scores = dict(eval_accuracy=0.6, best_epoch=1, epochs=2, steps=8, train_seconds=3.0, history=history)
    (run_dir / "all_results.json").write_text(json.dumps(scores))
    (tmp_path / "work" / f"{run.name}.attempts.json").write_text("[100.0, 20.5]")
    monkeypatch.setattr("dynconv_nlp.benchmarking.runs.subprocess.run", lambda *a, **k: pytest.fail("trained again"))
    result = quality.execute(run, args, threads=1)
    assert (result["score"], result["last_epoch_score"], result["wall_seconds"], result["attempts"]) == (
        0.6,
        0.6,
        120.5,
        2,
    )
    assert "--resume_from_checkpoint" not in result["command"] and str(ROOT) not in result["command"]
