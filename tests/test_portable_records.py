"""Committed results hold no path of the machine that made them: records are read on other machines."""

import re
from pathlib import Path

import pytest

from dynconv_nlp.benchmarking.runs import ROOT, portable, portable_command

RECORD_SUFFIXES = {".json", ".md", ".yaml", ".csv", ".txt"}
# An absolute path: a slash at the start of a word, then at least one folder (URLs have "//" and a scheme).
ABSOLUTE_PATH = re.compile(r"(?:^|[\s\"'(=,\[`])(/(?:[\w.-]+/)+[\w.-]*)")


def test_no_committed_result_holds_an_absolute_path():
    records = [p for p in (ROOT / "benchmarks").rglob("*") if p.suffix in RECORD_SUFFIXES and p.is_file()]
    assert len(records) > 100  # the studies' records are there to be checked
    found = {
        str(path.relative_to(ROOT)): match.group(1)
        for path in records
        for match in ABSOLUTE_PATH.finditer(path.read_text(errors="ignore"))
    }
    assert not found, f"absolute paths in committed results (make them relative with portable()): {found}"


def test_the_pattern_finds_what_a_record_would_hold():
    assert ABSOLUTE_PATH.search('"command": "scripts/run_glue.py /home/me/glue.yaml"').group(1) == "/home/me/glue.yaml"
    assert ABSOLUTE_PATH.search('"model": "/tmp/sst2_width"').group(1) == "/tmp/sst2_width"
    for text in ("see https://huggingface.co/docs/x", "mean l + r / its K - 1", "scripts/run_glue.py", "1/2 of K"):
        assert ABSOLUTE_PATH.search(text) is None, text


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        (ROOT / "benchmarks/quality/configs/adaptive.json", "benchmarks/quality/configs/adaptive.json"),
        (ROOT / "outputs/quality/glue-rte-light-seed1", "outputs/quality/glue-rte-light-seed1"),
        (ROOT.parent / "shared/data/glue", "../shared/data/glue"),
        (Path("/tmp/somewhere/sst2_width"), "sst2_width"),  # outside the checkout: its name only
        ("configs/glue/rte.yaml", "configs/glue/rte.yaml"),  # relative already
    ],
)
def test_paths_are_kept_relative_to_the_repository_or_by_name(path, kept):
    assert portable(str(path)) == kept


def test_a_command_is_recorded_without_the_interpreter_and_with_portable_paths():
    cmd = ["/usr/bin/python", str(ROOT / "scripts/run_glue.py"), "--glue_dir", str(ROOT.parent / "shared/data/glue"),
           "--seed", "1"]
    assert portable_command(cmd) == "scripts/run_glue.py --glue_dir ../shared/data/glue --seed 1"
