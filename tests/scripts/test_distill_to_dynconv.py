"""scripts/distill_to_dynconv.py on tiny random teachers built here (BERT, RoBERTa, ELECTRA; nothing downloads):
the copied weights are the teacher's, both stages bring the student closer to the teacher, the student
loads and fine-tunes with run_glue, a resumed run equals an uninterrupted one, and bad input stops
with one line."""

import json
import re
from pathlib import Path

import pytest
import torch
from dynconv_testing import TEACHER_SIZES, launch_two_processes, sentences, sigterm_at_optimizer_step
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSequenceClassification, BertConfig, DistilBertConfig, GPT2Config

from dynconv_nlp import DynConvForSequenceClassification, DynConvModel
from dynconv_nlp.data.tokenizer import train_tokenizer
from dynconv_nlp.distillation.distiller import Distiller, run_teacher
from dynconv_nlp.models.dynconv.modeling_dynconv import DynConvEncoder
from dynconv_nlp.data.text import load_text_corpus
from dynconv_nlp.distillation.mirror import copy_teacher_weights, mirror_config, parse_config_overrides, weight_map

@pytest.fixture
def distill(load_script, teachers, text_file, tmp_path):
    """distill_to_dynconv.main on a tiny teacher and text, small settings unless given."""
    script = load_script("distill_to_dynconv")

    def run(*argv, teacher="bert", output_dir=None):
        output_dir = tmp_path / (output_dir or "student")  # a name is a folder in tmp_path
        # The unfold backend: training on 'auto' would start torch.compile in every run (seconds each).
        defaults = {
            "--teacher_name_or_path": str(teachers[teacher]), "--train_file": str(text_file), "--line_by_line": None,
            "--max_seq_length": "32", "--max_eval_samples": "64", "--per_device_train_batch_size": "16",
            "--config_overrides": "kernel_size=[5,9],weight_dropout=0.0,hidden_dropout_prob=0.0,conv_backend=unfold",
            "--learning_rate": "3e-3", "--output_dir": str(output_dir), "--seed": "0",
        }
        extra = []
        for option, value in defaults.items():
            if option not in argv:
                extra += [option] if value is None else [option, value]
        return script.main([*argv, *extra]), output_dir

    return run


@pytest.mark.parametrize("architecture", ["bert", "roberta", "electra"])
def test_the_student_mirrors_the_teacher_and_holds_its_weights(teachers, tokenizer, architecture):
    teacher = AutoModel.from_pretrained(teachers[architecture]).eval()
    config = mirror_config(teacher.config, tokenizer, kernel_size=5)
    student = DynConvModel(config).eval()
    names = copy_teacher_weights(teacher, student)
    student_state, teacher_state = student.state_dict(), teacher.state_dict()
    assert names == weight_map(config) and len(names) >= 5 + 12 * config.encoder_layers
    assert all(torch.equal(student_state[s], teacher_state[t]) for s, t in names.items())
    # What is not copied is what attention becomes: the kernel and width projections.
    new = {n.split(".")[-2] for n in student_state if n not in names}
    assert new == {"kernel_proj", "width_proj"}

    # Same embeddings (layer norm, positions from the right row, token types, ELECTRA's projection) ...
    ids = torch.tensor(tokenizer(["the cat sat on the mat .", "a dog ran ."], padding=True)["input_ids"])
    mask = (ids != tokenizer.pad_token_id).long()
    with torch.no_grad():
        theirs = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        ours = student(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    real = mask.bool()
    torch.testing.assert_close(ours[0][real], theirs[0][real])
    # ... and the same feed-forward sub-layer: fed the teacher's attention output, the block gives the teacher's layer output.
    distiller = Distiller(student, teacher, stage1_steps=0)
    targets = run_teacher(teacher, ids, mask)
    block = student.encoder.layers[0]
    ffn_out = block.ffn_sublayer.post(targets.mixed[0], block.ffn(targets.mixed[0]))
    torch.testing.assert_close(ffn_out[real], targets.hidden_states[1][real])
    assert distiller.stage == 2


def test_student_settings_come_from_config_overrides():
    assert parse_config_overrides("kernel_size=[7,15,31],width_mode=fixed,ramp=2") == {
        "kernel_size": [7, 15, 31], "width_mode": "fixed", "ramp": 2}
    assert parse_config_overrides(None) == {}


def test_both_stages_bring_the_student_closer_to_the_teacher(distill, teachers):
    """Against the fresh student (copied weights, new kernels): stage 1 lowers the attention sub-layers'
    error and trains the convolutions only; stage 2 lowers the hidden states' error."""
    stage1, out1 = distill("--max_train_steps", "30", "--stage1_ratio", "1", output_dir="stage1")
    assert stage1["stage1_steps"] == 30
    assert stage1["final"]["eval_layer_loss"] < 0.7 * stage1["initial"]["eval_layer_loss"]
    teacher = load_file(teachers["bert"] / "model.safetensors")
    student = load_file(out1 / "model.safetensors")
    for name, teacher_name in weight_map(DynConvModel.from_pretrained(out1).config).items():
        frozen = not name.startswith("encoder.layers.") or ".ffn" in name  # outside the conv sub-layers
        assert torch.equal(student[name], teacher[teacher_name]) == frozen, name

    both, out = distill("--max_train_steps", "60", "--stage1_ratio", "0.5")
    assert both["stage1_steps"] == 30
    assert both["final"]["eval_hidden_loss"] < 0.7 * both["initial"]["eval_hidden_loss"]
    assert both["final"]["eval_hidden_loss"] < stage1["final"]["eval_hidden_loss"]
    card = (out / "README.md").read_text()
    assert str(teachers["bert"]) in card and "## Distillation" in card and "| encoder 1 | 9 |" in card
    saved = json.loads((out / "all_results.json").read_text())
    assert saved["final"] == both["final"] and len(saved["widths"]) == 2


def test_a_width_budget_from_config_overrides_holds_in_distillation(distill):
    """--config_overrides width_budget=...: the clamp and its floor, a warm-in over 30% of the run, and the
    multipliers pull both layers' widths (0.5 at the start) down to the budget."""
    overrides = "kernel_size=[5,9],weight_dropout=0.0,hidden_dropout_prob=0.0,conv_backend=unfold,"
    result, out = distill("--max_train_steps", "40", "--stage1_ratio", "0.5",
                          "--config_overrides", overrides + "width_budget=0.25,width_budget_step_size=1.0")
    config = DynConvModel.from_pretrained(out).config
    assert config.width_budget == [0.25, 0.25] and (config.extent_activation, config.width_floor) == ("clamp", 0.01)
    assert all(w <= 0.3 for w in result["widths"]), result["widths"]


def test_a_hybrid_student_keeps_the_teachers_attention_exactly_and_distils_the_convolutions(distill, teachers, tokenizer):
    """--keep_attention_layers 1: layer 1's attention sub-layer is the teacher's (same output from the
    same input) and is never trained; the convolution of layer 0 is distilled."""
    result, out = distill("--keep_attention_layers", "1", "--max_train_steps", "20", "--stage1_ratio", "0.5")
    student = DynConvModel.from_pretrained(out).eval()
    assert student.config.attention_layers == [1] and student.config.conv_layers == [0]
    assert [layer.token_mixer for layer in student.encoder.layers] == ["conv", "attention"]
    teacher = AutoModel.from_pretrained(teachers["bert"]).eval()
    teacher_state, saved = teacher.state_dict(), load_file(out / "model.safetensors")
    names = weight_map(student.config)
    kept = [n for n in names if n.startswith("encoder.layers.1.attention")]
    assert len(kept) == 10  # query, key, value, output: weight and bias; the layer norm
    assert all(torch.equal(saved[n], teacher_state[names[n]]) for n in kept)
    assert not torch.equal(saved["encoder.layers.0.conv.kernel_proj.weight"],
                           DynConvModel(student.config).state_dict()["encoder.layers.0.conv.kernel_proj.weight"])
    assert result["final"]["eval_hidden_loss"] < result["initial"]["eval_hidden_loss"]
    assert len(result["widths"]) == 1  # one conv layer
    card = (out / "README.md").read_text()
    assert "Layer 1 (0-based) keeps the teacher's self-attention" in card
    assert "Encoder layer 1 (0-based) is standard multi-head self-attention; every other layer is a dynamic" in card

    ids = torch.tensor(tokenizer(["the cat sat on the mat .", "a dog ran ."], padding=True)["input_ids"])
    mask = (ids != tokenizer.pad_token_id).long()
    targets = run_teacher(teacher, ids, mask)
    with torch.no_grad():
        ours = student.encoder.layers[1].mix_tokens(targets.hidden_states[1], mask)
    real = mask.bool()
    torch.testing.assert_close(ours[real], targets.mixed[1][real])


def test_glue_pairs_distil_on_sentence_pairs_with_their_segments(distill, tiny_glue_dir, monkeypatch, tmp_path):
    """--glue_pairs: a pair task's two sentences are one example, tokenized as a pair (segment 1 on the
    second), and both the teacher and the student read them so; single-sentence tasks stay texts."""
    seen = []
    original = Distiller.forward

    def recording(self, input_ids, attention_mask, token_type_ids=None):
        seen.append(token_type_ids)
        return original(self, input_ids, attention_mask, token_type_ids)

    monkeypatch.setattr(Distiller, "forward", recording)
    text = tmp_path / "few.txt"
    text.write_text("the cat sat on the mat\na dog ran in the park\n")
    result, out = distill("--train_file", str(text), "--glue_dir", str(tiny_glue_dir), "--glue_tasks", "mrpc", "sst2",
                          "--glue_pairs", "--max_train_steps", "4", "--per_device_train_batch_size", "8")
    assert seen and all(t is not None for t in seen) and any(t.max() == 1 for t in seen)
    assert result["steps"] == 4

    # The text: 3 MRPC pairs kept whole beside 3 SST-2 sentences; a pair's ids are [CLS] a [SEP] b [SEP].
    corpus = load_text_corpus(None, str(tiny_glue_dir), ["mrpc", "sst2"], glue_pairs=True)["train"]
    assert len(corpus) == 6 and sum(p is not None for p in corpus["text_pair"]) == 3
    assert corpus[0] == {"text": "He said it would rain.", "text_pair": "He said rain was coming."}
    assert len(load_text_corpus(None, str(tiny_glue_dir), ["mrpc", "sst2"])["train"]) == 9  # without: 6 + 3 texts


def test_the_student_loads_with_auto_classes_and_fine_tunes_with_run_glue(distill, load_script, tiny_glue_dir, tmp_path,
                                                                         tokenizer):
    _, out = distill("--max_train_steps", "4", teacher="roberta")
    assert type(AutoModel.from_pretrained(out)) is DynConvModel
    classifier = AutoModelForSequenceClassification.from_pretrained(out, num_labels=2)
    assert type(classifier) is DynConvForSequenceClassification and classifier.config.position_offset == tokenizer.pad_token_id + 1
    glue = load_script("run_glue")
    tuned = glue.main(["--task_name", "mrpc", "--glue_dir", str(tiny_glue_dir), "--model_name_or_path", str(out),
                       "--max_length", "32", "--num_train_epochs", "2", "--output_dir", str(tmp_path / "mrpc")])
    assert tuned["steps"] == 2 and (tmp_path / "mrpc" / "model.safetensors").is_file()
    # The fine-tuned classifier started from the student: every encoder weight loaded, only the head new.
    student = load_file(out / "model.safetensors")
    encoder = {k.removeprefix("model."): v for k, v in classifier.state_dict().items() if k.startswith("model.")}
    assert encoder.keys() == student.keys() and all(torch.equal(v, student[k]) for k, v in encoder.items())


def test_run_glue_gives_the_model_token_types(distill, load_script, tiny_glue_dir, tmp_path, monkeypatch):
    """Sentence pairs reach the model with token_type_ids (1 on the second sentence), as BERT's tokenizer makes them."""
    _, out = distill("--max_train_steps", "2")
    seen = []
    original = DynConvEncoder.forward

    def recording(self, *args, **kwargs):
        seen.append(kwargs["token_type_ids"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DynConvEncoder, "forward", recording)
    load_script("run_glue").main(["--task_name", "rte", "--glue_dir", str(tiny_glue_dir), "--model_name_or_path",
                                  str(out), "--max_train_steps", "1", "--output_dir", str(tmp_path / "rte")])
    assert seen and all(t is not None and t.max() == 1 for t in seen)


def test_stages_switch_at_an_optimizer_step_with_gradient_accumulation(distill, teachers, tmp_path):
    """7 batches an epoch in steps of 3 (the last step of an epoch takes 1): stage 1 is the first 3
    optimizer steps, the whole first epoch; the feed-forward layers stay the teacher's through step 3
    and train from step 4 on."""
    argv = ["--max_train_samples", "100", "--gradient_accumulation_steps", "3", "--num_train_epochs", "2",
            "--stage1_ratio", "0.5", "--checkpointing_steps", "1"]
    results, out = distill(*argv)
    assert (results["steps"], results["stage1_steps"]) == (6, 3)
    teacher = load_file(teachers["bert"] / "model.safetensors")
    for step, trained in ((3, False), (4, True)):
        state = load_file(out / f"step_{step}" / "model.safetensors")
        assert int(state["optimizer_steps"]) == step
        assert torch.equal(state["student.encoder.layers.0.ffn.fc1.weight"],
                           teacher["encoder.layer.0.intermediate.dense.weight"]) != trained


def test_a_resumed_run_ends_with_the_same_losses(distill, tmp_path, monkeypatch):
    """Stopped by SIGTERM in stage 1 and resumed: the same stage switch, losses and student."""
    argv = ["--max_train_steps", "12", "--stage1_ratio", "0.5", "--checkpointing_steps", "4"]
    full, full_out = distill(*argv, output_dir=tmp_path / "full")
    sigterm_at_optimizer_step(monkeypatch, 5)
    with pytest.raises(SystemExit) as exit_info:
        distill(*argv, output_dir=tmp_path / "stopped")
    assert exit_info.value.code == 143
    monkeypatch.undo()
    resumed, out = distill(*argv, "--resume_from_checkpoint", "latest", output_dir=tmp_path / "stopped")
    assert resumed["history"] == full["history"] and resumed["final"] == full["final"]
    full_weights, resumed_weights = load_file(full_out / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(full_weights[k], resumed_weights[k]) for k in full_weights)


def test_two_processes_distil_through_both_stages(teachers, text_file, tmp_path):
    """accelerate launch with 2 processes: stage 1 leaves most weights without gradients (DDP must allow
    it), stage 2 trains them, and the student gets closer to the teacher."""
    out = tmp_path / "student"
    results = launch_two_processes(
        "distill_to_dynconv", "--teacher_name_or_path", str(teachers["bert"]), "--train_file", str(text_file),
        "--line_by_line", "--max_seq_length", "32", "--max_eval_samples", "64", "--per_device_train_batch_size", "8",
        "--config_overrides", "kernel_size=[5,9],conv_backend=unfold", "--learning_rate", "3e-3", "--max_train_steps", "16",
        "--stage1_ratio", "0.5", "--output_dir", str(out),
    )
    assert results["stage1_steps"] == 8 and results["steps"] == 16
    assert results["final"]["eval_hidden_loss"] < results["initial"]["eval_hidden_loss"]
    assert type(AutoModel.from_pretrained(out)) is DynConvModel


def test_inputs_longer_than_the_teacher_reads(distill):
    """The teacher stops at its 64 positions; the student reads 3x as many (positions beyond the table take
    its last row), and its first tokens, out of reach of the rest, are as in the input cut at 64."""
    _, out = distill("--max_train_steps", "2")
    student = DynConvModel.from_pretrained(out).eval()
    ids = torch.randint(5, student.config.vocab_size, (1, 192))
    with torch.no_grad():
        long = student(input_ids=ids).last_hidden_state
        cut = student(input_ids=ids[:, :64]).last_hidden_state
    reach = sum(k // 2 for k in student.config.kernel_size)
    torch.testing.assert_close(long[:, : 64 - reach], cut[:, : 64 - reach])
    assert long.shape == (1, 192, 32) and torch.isfinite(long).all()


def _save(folder: Path, config, tokenizer=None) -> Path:
    folder.mkdir()
    config.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("case,message", [
    ("missing", "cannot load --teacher_name_or_path .*missing"),
    ("tokenizer only", "cannot load --teacher_name_or_path .*tokenizer_only"),
    ("decoder", "is a 'gpt2' model; distillation maps the layouts of bert, camembert, electra, roberta"),
    ("bert decoder", "is configured as a decoder"),
    ("no mapping", "is a 'distilbert' model"),
    ("tokenizer mismatch", "the tokenizer of --tokenizer_name .* does not match the teacher: 300 tokens"),
    ("empty text", "has no text"),
    ("unknown setting", "--config_overrides: hidden_size is not a setting of the student's convolutions"),
    ("bad setting", "--config_overrides kernel_size=abc: .*kernel_size"),
    ("too long", "--max_seq_length 100 is beyond the 64 positions the teacher reads"),
    ("no such layer", "--config_overrides .*attention_layers must list distinct encoder layer indices in \\[0, 2\\)"),
    ("every layer", "--keep_attention_layers 0 1 keeps every layer's attention: leave at least one layer to convolve"),
])
def test_bad_input_stops_with_one_line_and_writes_nothing(distill, tokenizer, teachers, tmp_path, capsys, case, message):
    argv = []
    if case == "missing":
        argv = ["--teacher_name_or_path", str(tmp_path / "missing")]
    elif case == "tokenizer only":
        folder = tmp_path / "tokenizer_only"
        tokenizer.save_pretrained(folder)
        argv = ["--teacher_name_or_path", str(folder)]
    elif case == "decoder":
        argv = ["--teacher_name_or_path", str(_save(tmp_path / "gpt2", GPT2Config(n_layer=1, n_embd=32, n_head=4)))]
    elif case == "bert decoder":
        config = BertConfig(is_decoder=True, **TEACHER_SIZES)
        argv = ["--teacher_name_or_path", str(_save(tmp_path / "bert_decoder", config, tokenizer))]
    elif case == "no mapping":
        config = DistilBertConfig(dim=32, n_layers=1, n_heads=4, hidden_dim=64)
        argv = ["--teacher_name_or_path", str(_save(tmp_path / "distilbert", config, tokenizer))]
    elif case == "tokenizer mismatch":
        other = tmp_path / "other_tokenizer"
        train_tokenizer(sentences(300) + [f"word{i}" for i in range(400)], vocab_size=300).save_pretrained(other)
        argv = ["--tokenizer_name", str(other)]
    elif case == "empty text":
        empty = tmp_path / "empty.txt"
        empty.write_text("\n \n")
        argv = ["--train_file", str(empty)]
    elif case == "unknown setting":
        argv = ["--config_overrides", "hidden_size=64"]
    elif case == "bad setting":
        argv = ["--config_overrides", "kernel_size=abc"]
    elif case == "too long":
        argv = ["--max_seq_length", "100"]
    elif case == "no such layer":
        argv = ["--keep_attention_layers", "2"]
    elif case == "every layer":
        argv = ["--keep_attention_layers", "0", "1"]
    with pytest.raises(SystemExit) as exit_info:
        distill(*argv, output_dir=tmp_path / "out")
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), lines
    assert not (tmp_path / "out").exists()
