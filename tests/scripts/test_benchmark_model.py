import json
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[2] / "configs" / "models"


@pytest.fixture
def tiny_marian(tmp_path) -> Path:
    """The Marian baseline config cut to tiny.json's sizes."""
    config = json.loads((MODELS / "transformer_small_mt.json").read_text())
    config |= {"d_model": 128, "encoder_ffn_dim": 256, "decoder_ffn_dim": 256, "encoder_layers": 1, "decoder_layers": 1}
    path = tmp_path / "marian.json"
    path.write_text(json.dumps(config))
    return path


def tiny(tiny_marian) -> list[str]:
    # shift: the eager backend, so that no compilation runs; tiny sizes, one repeat.
    return ["--config_name", str(MODELS / "tiny.json"), "--decode_config_name", str(MODELS / "tiny.json"),
            "--baseline_config_name", str(tiny_marian), "--seq_lens", "16", "32", "--tokens", "64",
            "--decode_lengths", "4", "8", "--decode_batch_size", "2", "--source_len", "8", "--vocab_size", "100",
            "--repeats", "1", "--conv_backend", "shift"]


def test_both_parts_compare_both_models_at_every_length(load_script, tiny_marian, tmp_path, capsys):
    bench = load_script("benchmark_model")
    assert bench.main(tiny(tiny_marian) + ["--output_dir", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())

    classifier = results["classifier"]
    assert set(classifier["params"]) == {"DynConv", "BERT"}
    assert [(r["T"], r["B"]) for r in classifier["rows"]] == [(16, 4), (32, 2)]
    for r in classifier["rows"]:
        for key in ("DynConv_train_tokens_per_s", "BERT_train_tokens_per_s", "DynConv_infer_ms", "BERT_infer_ms"):
            assert r[key] > 0
    assert classifier["targets"] is None  # T = 2048 was not asked for

    decoding = results["decoding"]
    assert decoding["models"] == ["DynConv", "Marian"]
    assert [r["length"] for r in decoding["rows"]] == [4, 8]
    assert all(r["DynConv_ms_per_token"] > 0 and r["Marian_ms_per_token"] > 0 for r in decoding["rows"])
    for check in decoding["cache_checks"].values():  # one new decoder position per step, same logits as without
        assert check["incremental"] and check["max_logit_diff"] < 1e-3

    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "| 16 | 4 |" in markdown and "| 32 | 2 |" in markdown
    assert "| 4 |" in markdown and "| 8 |" in markdown
    assert "DynConv cache: incremental" in markdown and "Marian cache: incremental" in markdown
    assert "Targets: T = 2048 not measured." in capsys.readouterr().out


def test_one_part_only(load_script, tiny_marian, capsys):
    bench = load_script("benchmark_model")
    assert bench.main(tiny(tiny_marian) + ["--parts", "decoding"]) == 0
    out = capsys.readouterr().out
    assert "| output length |" in out and "Classifier" not in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--decode_lengths", "1", "8"], "every --decode_lengths value must be >= 2"),
        (["--seq_lens", "0", "16"], "every --seq_lens value must be >= 1"),
        (["--config_name", "missing.json"], "--config_name missing.json is not a file"),
        (["--baseline_config_name", str(MODELS / "tiny.json")], "not an encoder-decoder model"),
    ],
)
def test_bad_arguments_exit_with_one_line(load_script, tiny_marian, capsys, extra, message):
    bench = load_script("benchmark_model")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(tiny(tiny_marian) + extra)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.strip().splitlines()[-1].startswith("benchmark_model.py: error:")


def test_the_widths_part_times_all_taps_against_trimming_and_restores_the_layers(load_script, tmp_path):
    bench = load_script("benchmark_model")
    argv = ["--parts", "widths", "--config_name", str(MODELS / "tiny.json"), "--width_kernel_size", "15",
            "--width_seq_lens", "32", "--width_mean_widths", "0.1", "0.25", "--tokens", "64", "--vocab_size", "100",
            "--repeats", "1", "--output_dir", str(tmp_path)]
    assert bench.main(argv) == 0
    widths = json.loads((tmp_path / "results.json").read_text())["widths"]
    assert widths["kernel_size"] == 15 and [(r["T"], r["mean_width"]) for r in widths["rows"]] == [(32, 0.1), (32, 0.25)]
    assert all(r[f"{m}_ms"] > 0 for r in widths["rows"] for m in ("full", "call", "tile"))
    assert "model inference >= 1.3x faster than all K at a mean width of 25%" in (tmp_path / "results.md").read_text()
