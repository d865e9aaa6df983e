"""Config files of option values under the command line."""

import argparse

import pytest

from dynconv_nlp.cli import parse_args_with_config_file
from dynconv_nlp.errors import UsageError


def _parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--checkpointing_steps")
    parser.add_argument("--num_train_epochs", type=int, default=3)
    parser.add_argument("--lr_scheduler_type", choices=["linear", "cosine"], default="linear")
    parser.add_argument("--text_columns", nargs="+")
    parser.add_argument("--do_predict", action="store_true")
    return parser


def test_file_values_are_parsed_like_the_command_line_and_the_command_line_wins(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\ncheckpointing_steps: 4\nnum_train_epochs: 5\ntext_columns: [a, b]\ndo_predict: true\n")
    args = parse_args_with_config_file(_parser(), [str(config), "--num_train_epochs", "1"])
    assert (args.output_dir, args.checkpointing_steps, args.num_train_epochs) == ("out", "4", 1)
    assert args.text_columns == ["a", "b"] and args.do_predict is True


def test_file_values_are_checked(tmp_path, capsys):
    config = tmp_path / "run.json"
    config.write_text('{"output_dir": "out", "lr_scheduler_type": "cosine_with_restarts"}')
    with pytest.raises(SystemExit):
        parse_args_with_config_file(_parser(), [str(config)])
    assert "invalid choice: 'cosine_with_restarts'" in capsys.readouterr().err
    config.write_text('{"output_dir": "out", "num_train_epochs": 2.5}')
    with pytest.raises(SystemExit):
        parse_args_with_config_file(_parser(), [str(config)])


def test_bad_files(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        parse_args_with_config_file(_parser(), [str(tmp_path / "missing.yaml")])
    (tmp_path / "bad.yaml").write_text("output_dir: [unclosed\n")
    with pytest.raises(UsageError, match="is not valid YAML"):
        parse_args_with_config_file(_parser(), [str(tmp_path / "bad.yaml")])
    (tmp_path / "switch.yaml").write_text("do_predict: yes please\n")
    with pytest.raises(UsageError, match="do_predict is a switch"):
        parse_args_with_config_file(_parser(), [str(tmp_path / "switch.yaml")])
