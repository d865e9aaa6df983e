"""The learning rate and warm-up a run starts from: a from-scratch recipe for a new model, an option given always wins."""

import csv
import json
import random
from pathlib import Path

import pytest

from dynconv_nlp.cli import ArgumentParser
from dynconv_nlp.training.options import (
    FINE_TUNING,
    FROM_SCRATCH,
    add_training_options,
    check_training_options,
    describe_recipe,
    warmup_steps,
)

TOPICS = {
    "sport": ["match", "goal", "team", "coach", "league", "score", "player", "season"],
    "business": ["market", "shares", "profit", "bank", "deal", "stocks", "company", "investors"],
    "science": ["study", "cells", "planet", "research", "species", "climate", "physics", "lab"],
    "politics": ["vote", "minister", "party", "election", "law", "senate", "campaign", "policy"],
    "culture": ["film", "album", "novel", "museum", "concert", "artist", "festival", "theatre"],
}
TINY_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "models" / "tiny.json"  # the README's small model
FILLER = "the a of to in and on for with at by from this that was is are new said after over more than".split()


def _topic_documents(n: int, seed: int) -> list[dict]:
    """Short news-like texts: filler words and a few of the topic's words; the topic is the label."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        topic = rng.choice(sorted(TOPICS))
        words = rng.choices(FILLER, k=rng.randint(8, 16)) + rng.choices(TOPICS[topic], k=rng.randint(2, 3))
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "topic": topic})
    return rows


def _write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "topic"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _parse(*argv: str):
    parser = ArgumentParser()
    add_training_options(parser)
    args = parser.parse_args(["--output_dir", "out", *argv])
    check_training_options(args, list(argv))
    return args


def test_a_new_model_gets_the_from_scratch_recipe_and_a_checkpoint_the_fine_tuning_one():
    scratch = _parse("--config_name", "configs/models/tiny.json")
    assert (scratch.recipe, scratch.learning_rate, scratch.warmup_ratio) == ("from scratch", 1e-3, FROM_SCRATCH.warmup_ratio)
    assert scratch.recipe_defaults == ["learning_rate", "warmup_ratio"]
    fine_tuning = _parse("--model_name_or_path", "some-checkpoint")
    assert (fine_tuning.recipe, fine_tuning.learning_rate, fine_tuning.warmup_ratio) == ("fine-tuning", 5e-5, 0.0)
    assert FINE_TUNING.learning_rate == 5e-5  # transformers' default for fine-tuning


def test_an_option_given_always_wins():
    args = _parse("--config_name", "c.json", "--learning_rate", "3e-4", "--num_warmup_steps", "7")
    assert (args.learning_rate, args.num_warmup_steps, args.warmup_ratio, args.recipe_defaults) == (3e-4, 7, None, [])
    assert warmup_steps(args, 1000) == 7
    assert warmup_steps(args, 5) == 7  # asked for explicitly: kept even beyond the run
    ratio = _parse("--model_name_or_path", "m", "--warmup_ratio", "0.1")
    assert (ratio.learning_rate, warmup_steps(ratio, 1000), ratio.recipe_defaults) == (5e-5, 100, ["learning_rate"])


@pytest.mark.parametrize("steps", [1, 10, 750, 100_000])
def test_a_default_warm_up_is_a_share_of_the_run_never_more(steps):
    args = _parse("--config_name", "c.json")
    assert warmup_steps(args, steps) <= max(1, round(FROM_SCRATCH.warmup_ratio * steps + 0.5))
    assert warmup_steps(args, steps) < steps or steps == 1


def test_the_recipe_is_described_with_what_was_chosen_and_what_was_given():
    line = describe_recipe(_parse("--config_name", "c.json", "--learning_rate", "2e-3"), 750)
    assert line == ("from scratch recipe (new model from --config_name): learning rate 0.002 (given), "
                    "warm-up 45 steps (0.06 of 750, default), linear schedule")


@pytest.mark.parametrize("argv, message", [
    (["--num_warmup_steps", "5", "--warmup_ratio", "0.1"], "pass --num_warmup_steps or --warmup_ratio, not both"),
    (["--warmup_ratio", "1.5"], "--warmup_ratio must be in [0, 1), got 1.5"),
    (["--learning_rate", "0"], "--learning_rate must be above 0, got 0.0"),
])
def test_bad_recipe_options_stop_with_one_line(argv, message):
    from dynconv_nlp.errors import UsageError

    with pytest.raises(UsageError, match=f"^{message.replace('[', '.').replace(')', '.').replace('(', '.')}$"):
        _parse("--config_name", "c.json", *argv)


@pytest.fixture(scope="module")
def topic_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("topics")
    train, validation = _topic_documents(600, 0), _topic_documents(200, 1)
    return _write_csv(folder / "train.csv", train), _write_csv(folder / "val.csv", validation)


def _train_on_topics(load_script, tmp_path, topic_files, *argv):
    train, val = topic_files
    out = tmp_path / "out"
    results = load_script("run_glue").main([
        "--train_file", str(train), "--validation_file", str(val), "--text_columns", "text", "--label_column", "topic",
        "--config_name", str(TINY_CONFIG), "--vocab_size", "300", "--num_train_epochs", "3",
        "--per_device_train_batch_size", "16", "--output_dir", str(out), "--seed", "0", *argv,
    ])
    return results, out


def test_a_new_model_with_no_learning_rate_option_learns_a_five_class_task(load_script, tmp_path, topic_files):
    """Own CSV files, a model from a config, no --learning_rate: it must learn, not sit at the majority class."""
    results, out = _train_on_topics(load_script, tmp_path, topic_files)
    majority = max(sum(row["topic"] == t for row in _topic_documents(200, 1)) for t in TOPICS) / 200
    assert results["eval_accuracy"] > majority + 0.4, (results["eval_accuracy"], majority)
    assert results["recipe"] == {"recipe": "from scratch", "learning_rate": 1e-3, "num_warmup_steps": 7,
                                 "lr_scheduler_type": "linear", "defaults": ["learning_rate", "warmup_ratio"]}
    saved = json.loads((out / "run_info.json").read_text())["runs"][-1]["args"]
    assert (saved["recipe"], saved["learning_rate"], saved["warmup_ratio"]) == ("from scratch", 1e-3, 0.06)


def test_fine_tuning_settings_on_a_new_model_stay_near_the_majority_class(load_script, tmp_path, topic_files):
    """What the defaults were before: transformers' fine-tuning rate on random weights learns next to nothing."""
    results, _ = _train_on_topics(load_script, tmp_path, topic_files, "--learning_rate", "5e-5", "--warmup_ratio", "0")
    assert results["eval_accuracy"] < 0.5


@pytest.mark.parametrize(("script", "recipe"), [("run_glue", "FROM_SCRATCH"), ("run_translation", "FROM_SCRATCH"),
                                                ("run_mlm", "FROM_SCRATCH"), ("distill_to_dynconv", "DISTILLATION")])
def test_each_script_s_help_gives_the_recipe_it_applies(load_script, capsys, script, recipe):
    module = load_script(script)
    applied = getattr(module, recipe, FROM_SCRATCH)  # run_glue takes the shared recipe
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"default: {applied.learning_rate:g} for a new model" in help_text
    assert f"default: {applied.warmup_ratio:g} for a new model" in help_text
