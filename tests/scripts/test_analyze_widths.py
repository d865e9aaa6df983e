import json

import pytest
import torch
from dynconv_testing import CORPUS, tiny_config

from dynconv_nlp import DynConvForSequenceClassification


def test_analyze_widths_writes_its_files(load_script, model, tokenizer, tmp_path):
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "texts.txt").write_text("\n".join(CORPUS) + "\n")
    script = load_script("analyze_widths")
    out = tmp_path / "out"
    argv = [str(tmp_path / "model"), "--text_file", str(tmp_path / "texts.txt"), "--output_dir", str(out)]
    assert script.main(argv) == 0
    summary = json.loads((out / "widths.json").read_text())
    assert summary["texts"] == len(CORPUS) and summary["kernel_sizes"] == [3, 9]
    assert sum(row["tokens"] for row in summary["by_token_class"].values()) == summary["tokens"]
    assert "| special |" in (out / "width_by_token_class.md").read_text()
    for png in ("width_histograms.png", "widths.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")


def test_analyze_widths_refuses_a_model_without_widths(load_script, tokenizer, tmp_path, capsys):
    torch.manual_seed(0)
    fixed = DynConvForSequenceClassification(tiny_config(vocab_size=len(tokenizer), width_mode="fixed"))
    fixed.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    script = load_script("analyze_widths")
    for argv, message in (
        ([str(tmp_path / "model"), "--task_name", "sst2", "--text_file", "x.txt"], "one of them"),
        ([str(tmp_path), "--text_file", "x.txt"], "holds no config.json"),
        ([str(tmp_path / "model"), "--text_file", "x.txt"], "no extents to analyse"),
    ):
        with pytest.raises(SystemExit) as stop:
            script.main(argv + ["--output_dir", str(tmp_path / "out")])
        assert stop.value.code == 2
        assert message in capsys.readouterr().err
