"""A saved checkpoint carries its code: it loads with trust_remote_code where dynconv_nlp cannot be imported."""

import json

import pytest
import torch
from dynconv_testing import random_ids, run_without_dynconv_nlp, tiny_config

from dynconv_nlp import DynConvForConditionalGeneration, DynConvForSequenceClassification


def test_saved_folder_has_auto_map_and_flat_code(tmp_path):
    DynConvForSequenceClassification(tiny_config()).save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForSequenceClassification"] == "modeling_dynconv.DynConvForSequenceClassification"
    assert auto_map["AutoConfig"] == "configuration_dynconv.DynConvConfig"
    code = {p.name for p in tmp_path.glob("*.py")}
    assert {"modeling_dynconv.py", "configuration_dynconv.py", "layers_dynamic_conv.py", "ops_dispatch.py"} <= code
    for path in tmp_path.glob("*.py"):
        for line in path.read_text().splitlines():
            assert not line.lstrip().startswith("from .."), f"{path.name}: {line}"  # only same-folder imports


@pytest.mark.parametrize("auto_class", ["AutoModelForSequenceClassification", "AutoModelForSeq2SeqLM"])
def test_loads_with_trust_remote_code_without_the_package(auto_class, tmp_path):
    torch.manual_seed(0)
    model_class = DynConvForSequenceClassification if auto_class.endswith("Classification") else DynConvForConditionalGeneration
    model = model_class(tiny_config()).eval()
    model.save_pretrained(tmp_path / "checkpoint")
    ids = random_ids(2, 7)
    if model_class is DynConvForSequenceClassification:
        expected = model(ids).logits
        call = "model(ids).logits"
    else:
        expected = model.generate(ids, max_new_tokens=5, num_beams=2).float()
        call = "model.generate(ids, max_new_tokens=5, num_beams=2).float()"
    torch.save(ids, tmp_path / "ids.pt")
    out = run_without_dynconv_nlp(
        f"""
        import torch
        from transformers import {auto_class}
        model = {auto_class}.from_pretrained("checkpoint", trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
        ids = torch.load("ids.pt")
        torch.save({call}, "out.pt")
        model.save_pretrained("resaved")  # a remote-code model writes its code again
        print("ok")
        """,
        tmp_path,
    )
    assert out.strip().endswith("ok")
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected)
    resaved = {p.name for p in (tmp_path / "resaved").glob("*.py")}
    assert resaved == {p.name for p in (tmp_path / "checkpoint").glob("*.py")}
