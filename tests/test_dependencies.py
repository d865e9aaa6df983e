"""pyproject.toml declares what the package imports, imports what it declares, and the environment satisfies it."""

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIRED = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = [Requirement(r) for rs in PROJECT["optional-dependencies"].values() for r in rs]


def _imported_distributions() -> dict[str, set[str]]:
    """Distribution (canonical name) -> the package's files that import it, over every module of dynconv_nlp."""
    distributions = metadata.packages_distributions()
    found = {}
    for path in (ROOT / "dynconv_nlp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "dynconv_nlp":
                    continue
                for distribution in distributions.get(top, [top]):
                    found.setdefault(canonicalize_name(distribution), set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_distribution_is_declared():
    declared = {canonicalize_name(r.name) for r in REQUIRED + EXTRAS}
    undeclared = {name: files for name, files in _imported_distributions().items() if name not in declared}
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"


def test_every_required_dependency_is_imported():
    imported = _imported_distributions()
    unused = [str(r) for r in REQUIRED if canonicalize_name(r.name) not in imported]
    assert not unused, f"declared but never imported by dynconv_nlp: {unused}"


def test_the_environment_satisfies_the_required_ranges():
    # So that installing the package over this environment installs nothing more (torch above all).
    for requirement in REQUIRED:
        version = metadata.version(requirement.name)
        assert requirement.specifier.contains(version, prereleases=True), f"{requirement.name} {version}: {requirement}"
