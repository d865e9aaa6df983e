"""Command lines for the scripts: a YAML/JSON config file of defaults, command-line overrides, one-line errors.

    python scripts/run_glue.py configs/glue/sst2.yaml --learning_rate 3e-4
    python scripts/run_glue.py configs/glue/sst2.yaml --debug      # an error shows its traceback

The file's keys are the script's option names (without ``--``); options given on the command line
win over the file, and the file wins over the script's defaults. An expected error (bad input, a
NaN loss, an interruption) prints one line and exits non-zero; ``--debug`` on the command line
shows the traceback instead. Unexpected errors (bugs) always show theirs.
"""

import argparse
import functools
import json
import signal
import sys
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from .errors import Interrupted, TrainingError, UsageError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with ``--debug``, whose errors are :class:`UsageError` (one line, no usage dump)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="on an error, show the traceback, not one line")

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def parse_args_with_config_file(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; a first argument ending in .yaml/.yml/.json is a file of option values.

    The file's values are turned into command-line tokens placed before the real ones, so argparse
    checks their types and choices as usual, and an option given on the command line wins.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0].endswith(CONFIG_SUFFIXES):
        path = Path(argv.pop(0))
        argv = _config_file_tokens(path, parser) + argv
    return parser.parse_args(argv)


def _config_file_tokens(path: Path, parser: argparse.ArgumentParser) -> list[str]:
    values = _read_config_file(path)
    options = {action.dest: action for action in parser._actions if action.option_strings}
    unknown = sorted(set(values) - set(options))
    if unknown:
        raise UsageError(f"config file {path} sets unknown options {', '.join(unknown)}; see --help for the options")
    tokens = []
    for key, value in values.items():
        flag = options[key].option_strings[-1]
        if options[key].nargs == 0:  # a switch such as --do_predict: true turns it on
            if not isinstance(value, bool):
                raise UsageError(f"config file {path}: {key} is a switch, set it to true or false, not {value!r}")
            tokens += [flag] if value else []
        elif isinstance(value, list):
            tokens += [flag, *map(str, value)]
        elif value is not None:
            tokens += [flag, str(value)]
    return tokens


def _read_config_file(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0]
        raise UsageError(f"config file {path} is not valid {path.suffix[1:].upper()}: {reason}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"config file {path} must map option names to values, got a {type(values).__name__}")
    return values


def exit_on_expected_errors(main):
    """Wrap a script's ``main(argv=None)``: expected errors print ``script: error: message`` and exit non-zero.

    :class:`UsageError` exits with 2, :class:`TrainingError` with 1, an interruption with 128 + the
    signal's number (130 for Ctrl-C, 143 for SIGTERM), as shells report a process killed by it.
    With ``--debug`` in the command line the exception propagates, traceback and all.
    """

    @functools.wraps(main)
    def wrapper(argv=None, *args, **kwargs):
        debug = "--debug" in (sys.argv[1:] if argv is None else argv)
        script = Path(main.__code__.co_filename).name
        try:
            return main(argv, *args, **kwargs)
        except (UsageError, TrainingError, Interrupted, KeyboardInterrupt) as error:
            for bar in list(getattr(tqdm, "_instances", ())):
                bar.close()  # a bar closed later would print after the message and bury it
            if debug:
                raise
            if isinstance(error, KeyboardInterrupt):
                message, code = "interrupted (Ctrl-C); nothing was saved after the last checkpoint", 128 + signal.SIGINT
            else:
                message = str(error)
                code = 2 if isinstance(error, UsageError) else getattr(error, "exit_code", 1)
            print(f"{script}: error: {message}", file=sys.stderr)
            sys.exit(code)

    return wrapper
