"""run_glue.py on bad input: one line on stderr that says what is wrong and how to fix it, exit 2, nothing lost."""

import json

import pytest
from dynconv_testing import tiny_config

from dynconv_nlp import DynConvForSequenceClassification


@pytest.fixture
def fail(load_script, tmp_path, capsys):
    """Run run_glue.main, expect exit 2; returns the one line it printed on stderr."""
    script = load_script("run_glue")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"model_type": "dynconv", "hidden_size": 16, "encoder_layers": 1, "kernel_size": 3}))

    def run(*argv, output_dir=None, after_training=False):
        argv = [*argv, "--output_dir", str(output_dir or tmp_path / "out")]
        if "--model_name_or_path" not in argv:
            argv += ["--config_name", str(config)]
        with pytest.raises(SystemExit) as exit_info:
            script.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        # Errors found before training are all there is; later ones come after the progress bars.
        assert len(lines) == 1 or after_training, lines
        assert "Traceback" not in err and lines[-1].startswith("run_glue.py: error: ")
        return lines[-1]

    run.script = script
    return run


@pytest.fixture
def files(tmp_path):
    """Small valid train and validation CSV files."""
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    train.write_text("text,label\ngood film,pos\nbad film,neg\n")
    dev.write_text("text,label\nfine film,pos\n")
    return train, dev


def test_missing_file(fail, files, tmp_path):
    line = fail("--train_file", str(tmp_path / "nope.csv"), "--validation_file", str(files[1]))
    assert line == f"run_glue.py: error: {tmp_path / 'nope.csv'} does not exist" or line.endswith("nope.csv does not exist")


def test_empty_file(fail, files, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    assert fail("--train_file", str(files[0]), "--validation_file", str(tmp_path / "empty.csv")).endswith("empty.csv is empty")


def test_file_with_a_header_only(fail, files, tmp_path):
    (tmp_path / "header.csv").write_text("text,label\n")
    assert "header.csv has no examples" in fail("--train_file", str(files[0]), "--validation_file", str(tmp_path / "header.csv"))


def test_missing_label_column(fail, files):
    line = fail("--train_file", str(files[0]), "--validation_file", str(files[1]), "--label_column", "stars")
    assert "has no label column 'stars'" in line and "--label_column" in line


def test_missing_text_column(fail, files):
    line = fail("--train_file", str(files[0]), "--validation_file", str(files[1]), "--text_columns", "review")
    assert "has no column review" in line and "text, label" in line


def test_unknown_task(fail):
    line = fail("--task_name", "sst3")
    assert "unknown --task_name 'sst3'" in line and "sst2" in line


def test_validation_labels_unseen_in_training(fail, files, tmp_path):
    (tmp_path / "dev2.csv").write_text("text,label\nfine film,pos\nso-so film,meh\n")
    line = fail("--train_file", str(files[0]), "--validation_file", str(tmp_path / "dev2.csv"))
    assert "labels the training data never shows ('meh'" in line


def test_file_that_is_not_utf8(fail, files, tmp_path):
    (tmp_path / "latin.csv").write_bytes("text,label\ncaf\xe9 film,pos\n".encode("latin-1"))
    line = fail("--train_file", str(tmp_path / "latin.csv"), "--validation_file", str(files[1]))
    assert "latin.csv is not utf-8 (byte 0xe9" in line and "--encoding latin-1" in line


def test_the_right_encoding_reads_it(load_script, files, tmp_path):
    (tmp_path / "latin.csv").write_bytes("text,label\ncaf\xe9 film,pos\nbad film,neg\n".encode("latin-1"))
    from dynconv_nlp.data.classification import load_classification_data

    data = load_classification_data(train_file=str(tmp_path / "latin.csv"), validation_file=str(files[1]), encoding="latin-1")
    assert data.splits["train"]["text"][0] == "café film"


def test_output_folder_of_another_run_is_kept(fail, files, tmp_path):
    out = tmp_path / "previous"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"weights of another run")
    line = fail("--train_file", str(files[0]), "--validation_file", str(files[1]), output_dir=out)
    assert "already holds another run (model.safetensors)" in line and "--overwrite_output_dir" in line
    assert (out / "model.safetensors").read_bytes() == b"weights of another run"
    assert [p.name for p in out.iterdir()] == ["model.safetensors"]


def test_bad_config_file_option(fail, tmp_path):
    (tmp_path / "run.yaml").write_text("task_name: sst2\nlearning_rat: 0.1\n")
    assert "sets unknown options learning_rat" in fail(str(tmp_path / "run.yaml"))


def test_hub_data_without_network(fail, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    line = fail("--task_name", "sst2")
    assert "could not load nyu-mll/glue/sst2 from the Hub" in line and "--glue_dir" in line


def test_push_without_hub_model_id(fail):
    assert "--push_to_hub needs --hub_model_id" in fail("--task_name", "negation_scope", "--push_to_hub")


def test_push_without_a_token_stops_before_training(fail, monkeypatch, tmp_path):
    monkeypatch.setattr(fail.script.hub, "get_token", lambda: None)
    out = tmp_path / "pushed"
    line = fail("--task_name", "negation_scope", "--push_to_hub", "--hub_model_id", "someone/dynconv-test", output_dir=out)
    assert line.endswith("pushing to the Hub needs a token: run `hf auth login`, set HF_TOKEN or pass --hub_token")
    assert not out.exists()


def test_a_config_that_cannot_be_loaded_leaves_nothing_behind(fail, tmp_path):
    out = tmp_path / "first"
    line = fail("--task_name", "negation_scope", "--model_name_or_path", str(tmp_path / "no-such-model"), output_dir=out)
    assert "cannot load the config of --model_name_or_path" in line
    assert not out.exists()  # so the corrected command is not refused as "another run"


def test_plot_widths_of_a_model_without_widths(fail, tmp_path):
    from transformers import BertConfig

    BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path / "bert")
    line = fail("--task_name", "negation_scope", "--model_name_or_path", str(tmp_path / "bert"), "--plot_widths")
    assert "--plot_widths needs a DynConv model; a bert model has no learned widths" in line


def test_empty_label_cell(fail, files, tmp_path):
    (tmp_path / "holes.csv").write_text("text,label\ngood film,pos\nbad film,\n")
    assert "example 2 has no 'label'" in fail("--train_file", str(tmp_path / "holes.csv"), "--validation_file", str(files[1]))


def test_numbers_for_text(fail, files, tmp_path):
    (tmp_path / "numbers.jsonl").write_text('{"text": 7, "label": "pos"}\n{"text": 8, "label": "neg"}\n')
    line = fail("--train_file", str(tmp_path / "numbers.jsonl"), "--validation_file", str(files[1]))
    assert "column 'text' holds" in line and "not text" in line


def test_zero_steps_and_fp16_on_cpu(fail):
    assert "--checkpointing_steps must be a number of steps (1 or more)" in fail("--task_name", "negation_scope", "--checkpointing_steps", "0")
    assert "--max_train_samples must be 1 or more, got 0" in fail("--task_name", "negation_scope", "--max_train_samples", "0")
    assert "--mixed_precision fp16 needs a GPU" in fail("--task_name", "negation_scope", "--mixed_precision", "fp16")


def test_tracker_that_is_not_installed(fail, monkeypatch):
    from dynconv_nlp.training import options  # the shared options check the tracker

    monkeypatch.setattr(options, "is_trackio_available", lambda: False)
    line = fail("--task_name", "negation_scope", "--with_tracking", "--report_to", "trackio")
    assert line.endswith("--report_to trackio needs the trackio package: pip install trackio")


def test_a_checkpoint_on_the_command_line_replaces_the_config_files_fresh_model(load_script, tmp_path):
    """configs/glue/*.yaml name a config to train from scratch; --model_name_or_path fine-tunes instead."""
    config_file = tmp_path / "task.yaml"
    config_file.write_text("task_name: rte\nconfig_name: configs/models/small.json\nlearning_rate: 0.0005\n")
    script = load_script("run_glue")
    args = script.parse_args([str(config_file), "--model_name_or_path", "pretrained", "--output_dir", str(tmp_path / "o")])
    assert args.model_name_or_path == "pretrained" and args.config_name is None and args.learning_rate == 0.0005


def test_attention_implementation_needs_a_transformer_checkpoint(fail, files, tmp_path, capsys):
    line = fail("--train_file", str(files[0]), "--validation_file", str(files[1]), "--attn_implementation", "sdpa_window_15")
    assert "--attn_implementation sets the attention of a pretrained Transformer: give --model_name_or_path" in line
    DynConvForSequenceClassification(tiny_config()).save_pretrained(tmp_path / "dynconv")
    capsys.readouterr()
    line = fail("--train_file", str(files[0]), "--validation_file", str(files[1]), "--model_name_or_path",
                str(tmp_path / "dynconv"), "--tokenizer_name", "unused", "--attn_implementation", "sdpa")
    assert "--attn_implementation is for Transformer checkpoints" in line
