"""Model card, width summary and the push flow, up to the upload call (the Hub is unreachable here)."""

from pathlib import Path

import pytest
import torch
import yaml
from dynconv_testing import random_ids, tiny_config
from huggingface_hub.utils import filter_repo_objects
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from dynconv_nlp import DynConvForConditionalGeneration, DynConvForSequenceClassification, hub


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DynConvForSequenceClassification(tiny_config(num_labels=2)).eval()


def test_width_summary_is_the_mean_over_real_tokens(model):
    ids = random_ids(2, 10)
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 4:] = 0
    summary = hub.summarize_widths(model, ids, mask)
    assert [(w.layer, w.kernel_size) for w in summary] == [(0, 3), (1, 9)]
    widths = model(ids, attention_mask=mask, output_widths=True).widths[1]
    real = torch.cat([widths[0], widths[1, :4]])  # [14 tokens, H, 2]
    assert summary[1].mean_left == pytest.approx(real[..., 0].mean().item(), rel=1e-5)
    assert summary[1].mean_right == pytest.approx(real[..., 1].mean().item(), rel=1e-5)
    assert 0 < summary[1].mean_fraction < 1
    assert "| encoder 1 | 9 |" in hub.format_widths(summary)


def test_width_summary_of_an_encoder_decoder_reads_its_encoder():
    torch.manual_seed(0)
    summary = hub.summarize_widths(DynConvForConditionalGeneration(tiny_config()), random_ids(2, 6))
    assert [w.kernel_size for w in summary] == [3, 9]


def _publishable_folder(model, tokenizer_dir, path):
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(path)
    hub.write_model_card(
        path,
        model.config,
        model_name="dynconv-tiny-sst2",
        task="text-classification",
        dataset_name="GLUE SST-2",
        dataset_type="nyu-mll/glue",
        dataset_config="sst2",
        metrics={"accuracy": 0.8125},
        widths=hub.summarize_widths(model, random_ids(2, 8)),
    )
    return path


def test_model_card_has_model_index_usage_and_widths(model, tokenizer_dir, tmp_path):
    path = _publishable_folder(model, tokenizer_dir, tmp_path)
    text = (path / "README.md").read_text()
    metadata = yaml.safe_load(text.split("---")[1])
    result = metadata["model-index"][0]["results"][0]
    assert metadata["model-index"][0]["name"] == "dynconv-tiny-sst2"
    assert result["dataset"] == {"name": "GLUE SST-2", "type": "nyu-mll/glue", "config": "sst2", "split": "validation"}
    assert result["metrics"][0]["type"] == "accuracy" and result["metrics"][0]["value"] == 0.8125
    assert metadata["pipeline_tag"] == "text-classification" and metadata["datasets"] == ["nyu-mll/glue"]
    assert 'pipeline("text-classification", model="dynconv-tiny-sst2", trust_remote_code=True)' in text
    assert "## Learned widths" in text and "| encoder 1 | 9 |" in text
    assert "## Intended use and limitations" in text


def test_push_uploads_the_whole_folder_in_one_commit(model, tokenizer_dir, tmp_path, monkeypatch):
    path = _publishable_folder(model, tokenizer_dir, tmp_path / "out")
    (path / "step_3").mkdir()  # a training state that run_glue.py leaves beside the model
    (path / "step_3" / "optimizer.bin").write_bytes(b"state")
    (path / ".tmp-step_4").mkdir()  # a checkpoint half-written when its process was killed
    (path / ".tmp-step_4" / "optimizer.bin").write_bytes(b"half")
    (path / ".tmp-all_results.json").write_text("{")
    calls, uploaded = [], []

    class FakeApi:
        def __init__(self, token):
            calls.append(("token", token))

        def create_repo(self, repo_id, private, exist_ok):
            calls.append(("create_repo", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, commit_message, ignore_patterns):
            calls.append(("upload_folder", repo_id, folder_path))
            files = [p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()]
            uploaded.extend(filter_repo_objects(files, ignore_patterns=ignore_patterns))

            class Commit:
                commit_url = f"https://huggingface.co/{repo_id}/commit/abc"

            return Commit()

    monkeypatch.setattr(hub, "HfApi", FakeApi)
    url = hub.push_to_hub(path, "someone/dynconv-tiny-sst2", token="hf_test")
    assert url == "https://huggingface.co/someone/dynconv-tiny-sst2/commit/abc"
    assert calls == [
        ("token", "hf_test"),
        ("create_repo", "someone/dynconv-tiny-sst2", False, True),
        ("upload_folder", "someone/dynconv-tiny-sst2", str(path)),
    ]
    assert {"README.md", "config.json", "model.safetensors", "modeling_dynconv.py", "tokenizer.json"} <= set(uploaded)
    assert not [name for name in uploaded if name.startswith(("step_", ".tmp-"))]
    # What would go up loads back: model with its tokenizer, and the card is still ours.
    loaded = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    inputs = tokenizer(["the cat sat"], return_tensors="pt")
    torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits)
    assert "model-index" in (path / "README.md").read_text()


def test_push_refuses_an_incomplete_folder(model, tmp_path):
    model.save_pretrained(tmp_path)
    with pytest.raises(hub.HubError, match=r"lacks README.md, a tokenizer \(tokenizer.json\): save the model"):
        hub.push_to_hub(tmp_path, "someone/model", token="hf_test")


def test_push_without_a_token_fails_with_one_line(model, tokenizer_dir, tmp_path, monkeypatch):
    path = _publishable_folder(model, tokenizer_dir, tmp_path)
    monkeypatch.setattr(hub, "get_token", lambda: None)
    with pytest.raises(hub.HubError, match=r"^pushing to the Hub needs a token: run `hf auth login` or set HF_TOKEN$"):
        hub.push_to_hub(path, "someone/model")


def test_push_without_network_fails_with_one_line(model, tokenizer_dir, tmp_path, monkeypatch):
    path = _publishable_folder(model, tokenizer_dir, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.HubError) as error:
        hub.push_to_hub(path, "someone/model", token="hf_test")
    message = str(error.value)
    assert message.startswith(f"could not push {path} to someone/model: ") and "\n" not in message
