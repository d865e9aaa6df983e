"""Write the model's source code next to a checkpoint, so that it loads with ``trust_remote_code=True``
where ``dynconv_nlp`` is not installed.

transformers loads remote code from one flat folder and follows only same-folder relative imports
(``from .x import y``). The model's code spans the package (``ops/``, ``layers/``, this folder), so
it is written flattened: ``dynconv_nlp/ops/band.py`` becomes ``ops_band.py`` and every relative
import is rewritten to name the flat module. Files of this folder keep their names, so ``auto_map``
entries read ``modeling_dynconv.DynConvModel`` as usual. A model that was itself loaded from remote
code is already flat and is copied as it is.
"""

import ast
import importlib.util
from pathlib import Path

# The modules whose relative imports, followed recursively, make up the bundle.
ENTRY_MODULES = ("configuration_dynconv", "modeling_dynconv")
_PACKAGE_HOME = "dynconv_nlp.models.dynconv"  # this folder inside the installed package
_PACKAGE_ROOT = "dynconv_nlp"


def save_remote_code(save_directory: str | Path) -> list[str]:
    """Write every module the model needs into ``save_directory``; returns the file names written."""
    home = __name__.rpartition(".")[0]  # this folder's package: dynconv_nlp.models.dynconv, or a flat one
    root = _PACKAGE_ROOT if home == _PACKAGE_HOME else home
    pending = [f"{home}.{name}" for name in ENTRY_MODULES]
    sources: dict[str, str] = {}
    while pending:
        module = pending.pop()
        if _flat_name(module, home, root) in sources:
            continue
        source, imported = _flatten(module, home, root)
        sources[_flat_name(module, home, root)] = source
        pending.extend(imported)
    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        (save_directory / f"{name}.py").write_text(source, encoding="utf-8")
    return sorted(f"{name}.py" for name in sources)


def _flat_name(module: str, home: str, root: str) -> str:
    """dynconv_nlp.ops.band -> ops_band; modules of this folder keep their own name."""
    if module.startswith(home + "."):
        return module[len(home) + 1 :]
    return module[len(root) + 1 :].replace(".", "_")


def _origin(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"cannot find the source of {module}")
    if spec.submodule_search_locations is not None:
        raise RuntimeError(
            f"{module} is a package: the model's code must import names from the module that defines them"
        )
    return Path(spec.origin)


def _flatten(module: str, home: str, root: str) -> tuple[str, list[str]]:
    """The source of ``module`` with its relative imports pointing at flat modules, and those modules."""
    source = _origin(module).read_text(encoding="utf-8")
    package = module.rpartition(".")[0]
    lines = source.splitlines(keepends=True)
    imported = []
    # Bottom-up, so that replacing one statement does not shift the line numbers of the next.
    nodes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.level > 0]
    for node in sorted(nodes, key=lambda n: n.lineno, reverse=True):
        if node.module is None:
            raise RuntimeError(f"{module}, line {node.lineno}: import modules by name, not 'from . import'")
        target = importlib.util.resolve_name("." * node.level + node.module, package)
        if not target.startswith(root + "."):
            raise RuntimeError(f"{module}, line {node.lineno}: {target} is outside {root}")
        _origin(target)  # fails early on an import from a package's __init__
        imported.append(target)
        flat = ast.ImportFrom(module=_flat_name(target, home, root), names=node.names, level=1)
        indent = lines[node.lineno - 1][: node.col_offset]
        lines[node.lineno - 1 : node.end_lineno] = [f"{indent}{ast.unparse(flat)}\n"]
    return "".join(lines), imported
