"""README.md's Python examples run as written, and the paths the documentation names exist.

Each ```python block of README.md runs in a fresh interpreter whose working directory is a temporary
folder that links the repository's ``checkpoints/`` and ``configs/``: the blocks read them as a user in
the repository root would, and what they write (``outputs/...``) lands in the temporary folder. No
network: the Hub is switched off for them.

Bash blocks are not run; instead every ``scripts/*.py`` and ``benchmarks/*.py`` path, every path under
``configs/``, ``dynconv_nlp/`` and ``tests/``, every relative link and every ``make`` target that
README.md, docs/*.md and benchmarks/README.md name must exist, so that the layout the documentation
describes cannot go stale. CHANGELOG.md names paths as they were; only its links are checked. The
README's Layout tree is read too: every entry in its first column, and every file (``.py``, ``.md``,
``.yaml``) or folder (``name/``) its descriptions name, relative to the entry's folder.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
CHANGELOG = ROOT / "CHANGELOG.md"
LINKED = ("checkpoints", "configs")  # what the README's examples read, relative to the repository root

PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# A script or benchmark, or anything under configs/, dynconv_nlp/ or tests/, not inside a longer path
# (../benchmarks/... is a link, checked as one).
NAMED_PATH = re.compile(
    r"(?<![\w./-])((?:scripts|benchmarks)/[\w./-]*?\.py|(?:configs|dynconv_nlp|tests)/[\w./-]*[\w/])"
)
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A file or folder named in a Layout description: name.py, name.md, name.yaml or name/.
LAYOUT_NAME = re.compile(r"(?<![\w./-])([\w-]+(?:\.(?:py|md|yaml)|/))(?![\w-])")
MAKE_TARGET = re.compile(r"(?:^|`)make ([a-z][\w-]*)", re.M)


def python_blocks(text: str) -> list[str]:
    return PYTHON_BLOCK.findall(text)


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def existing_documents(changelog: bool = False) -> list[Path]:
    return [path for path in DOCUMENTS + [CHANGELOG] * changelog if path.is_file()]


def test_the_readme_has_its_examples_and_stays_short():
    assert len(BLOCKS) >= 3
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_a_readme_python_block_runs_as_written(index, tmp_path):
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(BLOCKS[index], encoding="utf-8")
    env = os.environ | {
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"README.md's python block {index} failed:\n{BLOCKS[index]}\n{result.stderr[-4000:]}"


def named_paths(text: str) -> set[str]:
    return {match.rstrip(".") for match in NAMED_PATH.findall(text)}


def test_named_paths_parse():
    text = ("run `python benchmarks/width/benchmark_width.py` or scripts/run_glue.py with configs/glue/<task>.yaml, "
            "configs/models/tiny.json (dynconv_nlp/freezing.py, tests/ops/). See [x](../benchmarks/width/results.md).")
    assert named_paths(text) == {"benchmarks/width/benchmark_width.py", "scripts/run_glue.py", "configs/glue/",
                                 "configs/models/tiny.json", "dynconv_nlp/freezing.py", "tests/ops/"}
    assert LINK.findall(text) == ["../benchmarks/width/results.md"]


@pytest.mark.parametrize("document", existing_documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_script_benchmark_and_config_the_documentation_names_exists(document):
    missing = sorted(path for path in named_paths(document.read_text(encoding="utf-8")) if not (ROOT / path).exists())
    assert not missing, f"{document.relative_to(ROOT)} names paths that do not exist: {missing}"


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_anchors_follow_github():
    assert anchors(ROOT / "README.md") >= {"status-and-limits", "results-at-a-glance"}


@pytest.mark.parametrize("document", existing_documents(changelog=True), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(document):
    missing = []
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"[a-z][\w+.-]*:", target):
            continue  # a URL
        path, _, anchor = target.partition("#")
        linked = document.parent / path if path else document
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            missing.append(target)
    assert not missing, f"{document.relative_to(ROOT)} links to paths or headings that do not exist: {missing}"


@pytest.mark.parametrize("document", existing_documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_make_target_the_documentation_names_exists(document):
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    missing = sorted(set(MAKE_TARGET.findall(document.read_text(encoding="utf-8"))) - targets)
    assert not missing, f"{document.relative_to(ROOT)} names make targets the Makefile lacks: {missing}"


def layout_paths(text: str) -> list[str]:
    """The paths the README's Layout tree names (an indented block: entries at 4 spaces a level, then a
    description after two or more spaces; lines indented further continue the description)."""
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    parents: dict[int, str] = {}  # indent -> the folder an entry at that indent sits in
    paths, base = [], ""
    for line in section.splitlines():
        if not line.startswith("    ") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent < 12:  # an entry: "name[, name...]  description"
            names, _, description = line.strip().partition("  ")
            parent = parents.get(indent, "")
            entries = [parent + name.strip() for name in names.split(", ")]
            paths += entries
            folder = entries[0] if len(entries) == 1 and entries[0].endswith("/") else parent
            parents[indent + 4] = folder
            base = folder
        else:
            description = line
        paths += [base + name for name in LAYOUT_NAME.findall(description)]
    return paths


def test_layout_paths_parse():
    text = ("# x\n\n## Layout\n\n    pkg/        the package\n        ops/    backends, triton/; x.py (y)\n"
            "        a.py, b.py\n    docs/       c.md,\n                d.md\n    CHANGELOG.md\n\n## Tests\n")
    assert layout_paths(text) == ["pkg/", "pkg/ops/", "pkg/ops/triton/", "pkg/ops/x.py", "pkg/a.py", "pkg/b.py",
                                  "docs/", "docs/c.md", "docs/d.md", "CHANGELOG.md"]


def test_everything_the_readme_layout_names_exists():
    paths = layout_paths(README.read_text(encoding="utf-8"))
    assert len(paths) > 40
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert not missing, f"README.md's Layout names paths that do not exist: {missing}"
