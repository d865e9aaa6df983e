"""scripts/run_translation.py end to end on a few hundred Multi30k pairs: BLEU/chrF, resume, beam 1 = greedy, bad input."""

import json
from pathlib import Path

import pytest
import torch
from dynconv_testing import sigterm_at_optimizer_step
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, MarianConfig, MarianMTModel

from dynconv_nlp.data.translation import load_translation_split
from dynconv_nlp.training.averaging import average_checkpoints

MULTI30K = Path(__file__).resolve().parents[3] / "shared" / "data" / "multi30k"
needs_multi30k = pytest.mark.skipif(not MULTI30K.is_dir(), reason=f"Multi30k is not at {MULTI30K} (../shared/data/multi30k)")

TINY_MODEL = {
    "model_type": "dynconv", "hidden_size": 32, "encoder_layers": 2, "decoder_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "kernel_size": [3, 7], "decoder_kernel_size": [3, 7],
    "hidden_dropout_prob": 0.1, "weight_dropout": 0.1,
}


@pytest.fixture
def run_translation(load_script, tmp_path):
    script = load_script("run_translation")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_MODEL))

    def run(*argv, output_dir=None, model=True):
        output_dir = Path(output_dir or tmp_path / "out")
        defaults = {
            "--train_file": str(MULTI30K / "train"), "--validation_file": str(MULTI30K / "val"),
            "--test_file": str(MULTI30K / "test_2016_flickr"), "--source_lang": "de", "--target_lang": "en",
            "--max_train_samples": "300", "--max_eval_samples": "16", "--max_predict_samples": "16",
            "--num_warmup_steps": "10", "--learning_rate": "3e-3", "--generation_max_length": "16",
            "--num_beams": "2", "--output_dir": str(output_dir), "--seed": "0",
        }
        if model:
            defaults |= {"--config_name": str(config), "--vocab_size": "600"}
        extra = [item for option, value in defaults.items() if option not in argv for item in (option, value)]
        return script.main([*argv, *extra]), output_dir

    run.script = script
    return run


@needs_multi30k
def test_trains_and_scores_bleu_and_chrf_with_signatures(run_translation, tmp_path):
    results, out = run_translation(
        "--num_train_epochs", "2", "--max_tokens", "600", "--checkpointing_steps", "epoch",
        "--average_last_checkpoints", "2", "--predict_file", str(tmp_path / "hyp.en"),
    )
    for split in ("eval", "test"):
        assert 0 <= results[f"{split}_bleu"] <= 100 and 0 < results[f"{split}_chrf"] <= 100
        assert results[f"{split}_bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
        assert "nc:6|nw:0" in results[f"{split}_chrf_signature"]
    assert json.loads((out / "all_results.json").read_text())["test_bleu"] == results["test_bleu"]
    assert len((tmp_path / "hyp.en").read_text().splitlines()) == 16
    info = json.loads((out / "run_info.json").read_text())["runs"][0]  # what it takes to repeat the run
    assert set(info["data"]) == {"train", "validation", "test"} and info["seed"] == 0
    assert all(len(split["sha256"]) == 64 for split in info["data"].values()) and info["model_config"]["is_encoder_decoder"]
    assert results["history"][1]["eval_loss"] < results["history"][0]["eval_loss"]
    # The saved model is the average of the two epoch checkpoints, and it loads back.
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    averaged = average_checkpoints([out / "epoch_0", out / "epoch_1"])
    for name, weights in model.state_dict().items():
        if name in averaged:
            torch.testing.assert_close(weights, averaged[name])
    assert model.config.decoder_start_token_id == AutoTokenizer.from_pretrained(out).bos_token_id
    assert "translation" in (out / "README.md").read_text()


@needs_multi30k
def test_beam_1_equals_a_hand_written_greedy_loop(run_translation, tmp_path):
    _, out = run_translation("--num_train_epochs", "1", "--num_beams", "1", "--predict_file", str(tmp_path / "hyp.en"))
    model = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    sources = [p["de"] for p in load_translation_split(str(MULTI30K / "test_2016_flickr"), "de", "en")["translation"][:16]]
    expected = []
    with torch.no_grad():
        for source in sources:
            inputs = tokenizer(source, max_length=128, truncation=True, return_tensors="pt")
            encoder_outputs = model.get_encoder()(**inputs)
            output = [model.config.decoder_start_token_id]
            for _ in range(16):  # the whole target, re-run each step: no cache involved
                logits = model(encoder_outputs=encoder_outputs, attention_mask=inputs["attention_mask"],
                               decoder_input_ids=torch.tensor([output]), use_cache=False).logits
                output.append(int(logits[0, -1].argmax()))
                if output[-1] == model.config.eos_token_id:
                    break
            expected.append(tokenizer.decode(output, skip_special_tokens=True).strip())
    assert (tmp_path / "hyp.en").read_text(encoding="utf-8").splitlines() == expected


@needs_multi30k
def test_resumed_run_ends_with_the_same_scores(run_translation, tmp_path):
    # With width budgets on both stacks: their multipliers are training state too.
    budgets = "width_budget=0.4,decoder_width_budget=0.3,extent_activation=clamp,width_budget_step_size=0.1"
    argv = ["--num_train_epochs", "2", "--max_tokens", "600", "--checkpointing_steps", "5", "--config_overrides", budgets]
    full, out = run_translation(*argv, output_dir=tmp_path / "full")
    steps = sorted(int(p.name.split("_")[1]) for p in out.glob("step_*"))
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (stopped / name).write_bytes((out / name).read_bytes())
    checkpoint = f"step_{steps[1]}"
    (stopped / checkpoint).mkdir()
    for path in (out / checkpoint).iterdir():
        (stopped / checkpoint / path.name).write_bytes(path.read_bytes())
    resumed, _ = run_translation(*argv, "--resume_from_checkpoint", str(stopped / checkpoint), output_dir=stopped)
    for key in ("steps", "eval_bleu", "eval_chrf", "test_bleu"):
        assert resumed[key] == full[key], key
    assert resumed["history"] == full["history"]
    assert full["history"][-1]["width_budget_3"] == pytest.approx(0.3)  # the decoder's layers follow the encoder's
    assert any(h[f"width_multiplier_{layer}"] > 0 for h in full["history"] for layer in range(4))


@needs_multi30k
def test_sigterm_saves_a_checkpoint_and_the_resumed_run_ends_with_the_same_scores(run_translation, tmp_path, monkeypatch):
    argv = ["--num_train_epochs", "2", "--max_tokens", "600"]
    full, out = run_translation(*argv, output_dir=tmp_path / "full")
    shared = ["--tokenizer_name", str(out)]  # trained once, by the full run; the other runs reuse it
    sigterm_at_optimizer_step(monkeypatch, 7)
    with pytest.raises(SystemExit) as exit_info:
        run_translation(*argv, *shared, output_dir=tmp_path / "stopped")
    assert exit_info.value.code == 143
    assert json.loads((tmp_path / "stopped" / "step_7" / "training_progress.json").read_text())["completed_steps"] == 7
    monkeypatch.undo()
    resumed, _ = run_translation(*argv, *shared, "--resume_from_checkpoint", "latest", output_dir=tmp_path / "stopped")
    for key in ("steps", "eval_bleu", "test_bleu"):
        assert resumed[key] == full[key], key
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]


@needs_multi30k
def test_a_marian_baseline_runs_through_the_same_script(run_translation, tmp_path):
    from dynconv_nlp.data.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(["ein Haus", "a house", "zwei Hunde", "two dogs"] * 10, vocab_size=300, kind="bpe",
                                lowercase=False, for_seq2seq=True)
    config = MarianConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id, forced_eos_token_id=None,
    )
    MarianMTModel(config).save_pretrained(tmp_path / "marian")
    tokenizer.save_pretrained(tmp_path / "marian")
    results, out = run_translation("--model_name_or_path", str(tmp_path / "marian"), "--num_train_epochs", "1", model=False)
    assert "test_bleu" in results and json.loads((out / "config.json").read_text())["model_type"] == "marian"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config_name", "x.json", "--train_file", "t"], "--train_file needs --validation_file"),
        (["--config_name", "x.json"], "pass --dataset_name (the Hub) or --train_file (local data), one of them"),
        (["--config_name", "x.json", "--train_file", "t", "--validation_file", "v", "--average_last_checkpoints", "3"],
         "--average_last_checkpoints needs checkpoints"),
        (["--train_file", "t", "--validation_file", "v"], "pass --model_name_or_path to fine-tune a model or --config_name"),
    ],
)
def test_bad_command_lines(load_script, capsys, tmp_path, argv, message):
    script = load_script("run_translation")
    with pytest.raises(SystemExit) as exit_info:
        script.main([*argv, "--source_lang", "de", "--target_lang", "en", "--output_dir", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("run_translation.py: error: ") and message in err[0]


def test_misaligned_files_stop_with_one_line(run_translation, tmp_path, capsys):
    (tmp_path / "t.de").write_text("a\nb\nc\n")
    (tmp_path / "t.en").write_text("a\nb\n")
    with pytest.raises(SystemExit):
        run_translation("--train_file", str(tmp_path / "t"), "--validation_file", str(tmp_path / "t"), "--test_file",
                        str(tmp_path / "t"))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "parallel files must align line by line" in err[0]


def test_a_hub_dataset_with_a_translation_column(run_translation, monkeypatch):
    import datasets

    pairs = [{"de": f"ein Haus {i}", "en": f"a house {i}"} for i in range(40)]
    hub_data = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"translation": pairs}),
         "validation": datasets.Dataset.from_dict({"translation": pairs[:8]}),
         "test": datasets.Dataset.from_dict({"translation": pairs[8:16]})}
    )
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append(a) or hub_data)
    results, _ = run_translation(
        "--dataset_name", "wmt16", "--dataset_config_name", "de-en", "--train_file", "", "--validation_file", "",
        "--test_file", "", "--max_train_samples", "40", "--num_train_epochs", "1", "--vocab_size", "100",
    )
    assert calls == [("wmt16", "de-en")] and "test_bleu" in results


@needs_multi30k
def test_tensorboard_tracking(run_translation):
    pytest.importorskip("tensorboard")
    _, out = run_translation("--num_train_epochs", "1", "--with_tracking", "--report_to", "tensorboard", "--hub_token", "hf_secret")
    events = list((out / "runs").rglob("events.out.tfevents.*"))
    assert events and all(b"hf_secret" not in p.read_bytes() for p in (out / "runs").rglob("*") if p.is_file())


@needs_multi30k
def test_a_transformer_baseline_from_its_config(run_translation, tmp_path):
    config = json.loads((Path(__file__).resolve().parents[2] / "configs/models/transformer_small_mt.json").read_text())
    config |= {"d_model": 32, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "encoder_layers": 1, "decoder_layers": 1}
    (tmp_path / "marian.json").write_text(json.dumps(config))
    results, out = run_translation("--config_name", str(tmp_path / "marian.json"), "--vocab_size", "600",
                                   "--num_train_epochs", "1", model=False)
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_type"] == "marian" and saved["vocab_size"] == len(AutoTokenizer.from_pretrained(out))
    assert "test_chrf" in results


@needs_multi30k
def test_scores_use_the_raw_references(run_translation, monkeypatch):
    scored = []
    original = run_translation.script.translation_metrics
    monkeypatch.setattr(run_translation.script, "translation_metrics",
                        lambda h, r, lang: scored.append(r) or original(h, r, lang))
    run_translation("--num_train_epochs", "1", "--max_target_length", "4")  # labels cut to 4 tokens, references not
    raw = [p["en"] for p in load_translation_split(str(MULTI30K / "val"), "de", "en")["translation"][:16]]
    assert scored[0] == raw
