"""The pretrained students shipped under checkpoints/: what a user loads offline and fine-tunes first."""

from pathlib import Path

import pytest
import torch
from dynconv_testing import run_without_dynconv_nlp
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (ROOT / "checkpoints").glob("*") if (p / "config.json").is_file())


def test_at_most_three_students_are_shipped():
    assert 1 <= len(SHIPPED) <= 3, [p.name for p in SHIPPED]


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_a_shipped_student_is_small_fp16_on_disk_and_float32_when_loaded(folder):
    weights = folder / "model.safetensors"
    assert weights.stat().st_size <= 50 * 2**20
    assert {t.dtype for t in load_file(weights).values() if t.is_floating_point()} == {torch.float16}
    model = AutoModel.from_pretrained(folder)
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert AutoModel.from_pretrained(folder, dtype=torch.bfloat16).dtype == torch.bfloat16
    card = (folder / "README.md").read_text()
    assert "sentence-transformers/all-MiniLM-L6-v2" in card and "## Distillation" in card and str(ROOT) not in card
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert len(tokenizer) <= model.config.vocab_size


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_a_shipped_student_fine_tunes_with_run_glue_on_sentence_pairs(folder, load_script, tiny_glue_dir, tmp_path):
    results = load_script("run_glue").main([
        "--task_name", "mrpc", "--glue_dir", str(tiny_glue_dir), "--model_name_or_path", str(folder),
        "--max_train_steps", "2", "--per_device_train_batch_size", "2", "--output_dir", str(tmp_path / "mrpc"),
        "--config_overrides", "conv_backend=unfold",  # "auto" would compile the op for training (a minute on a CPU)
    ])
    assert results["steps"] == 2 and "eval_f1" in results and results["recipe"]["recipe"] == "fine-tuning"
    assert (tmp_path / "mrpc" / "model.safetensors").is_file()


@pytest.mark.parametrize("folder", SHIPPED[:1], ids=lambda p: p.name)
def test_a_shipped_student_loads_with_its_own_code(folder, tmp_path):
    ids = torch.tensor([[101, 1037, 4937, 2938, 102, 1037, 3899, 102]])
    torch.save(ids, tmp_path / "ids.pt")
    with torch.inference_mode():
        expected = AutoModel.from_pretrained(folder).eval()(ids).last_hidden_state
    run_without_dynconv_nlp(
        f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        with torch.inference_mode():
            torch.save(model(torch.load("ids.pt")).last_hidden_state, "out.pt")
        """,
        tmp_path,
    )
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected)
