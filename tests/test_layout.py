"""The package's shape: imports flow one way (lower layers never import higher ones), no import
cycles, no two folders that import each other, and every module small enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edenkit"
MAX_LINES = 420  # "under ~400 lines": one screenful of jobs, not one screen

# The layers, bottom first. A module may import its own layer (without cycles) and those below.
# Data flows phantom/data -> decomposer/augmentation -> model -> loss/pruner -> engine -> curriculum
# -> checkpoint users (transfer, analysis) -> viz -> notebooks (the notebooks call the top layers).
LAYERS: list[tuple[str, ...]] = [
    ("edenkit.files", "edenkit.config", "edenkit.stats", "edenkit.paper", "edenkit.dist"),
    ("edenkit.phantom", "edenkit.data"),
    ("edenkit.decomposer", "edenkit.augmentation", "edenkit.batch_augmentation", "edenkit.anatomy_anchors"),
    ("edenkit.models", "edenkit.moco", "edenkit.pruner"),
    ("edenkit.checkpoint",),
    ("edenkit.engine",),
    ("edenkit.run_folder", "edenkit.pretrain_config", "edenkit.pretrain_data", "edenkit.curriculum"),
    ("edenkit.pretrain",),
    ("edenkit.transfer", "edenkit.analysis", "edenkit.zoo"),
    ("edenkit.viz",),
    ("edenkit.doctor", "edenkit.report", "edenkit.notebooks", "edenkit.cli", "edenkit.__main__", "edenkit"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """edenkit modules that ``path`` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from edenkit.x import y` imports the submodule edenkit.x.y when there is one
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        found.update(n for n in names if n == "edenkit" or n.startswith("edenkit."))
    return found - {module_name(path)}


GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layout.py")
    return best


def folder_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else module


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_imports_never_go_up_a_layer():
    upward = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
              for m, deps in GRAPH.items() for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_modules():
    assert not _cycles(GRAPH), f"import cycles: {_cycles(GRAPH)}"


def test_no_two_folders_import_each_other():
    folders: dict[str, set[str]] = {}
    for module, deps in GRAPH.items():
        folders.setdefault(folder_of(module), set()).update(folder_of(d) for d in deps)
    pairs = sorted({tuple(sorted((a, b))) for a, deps in folders.items() for b in deps
                    if b != a and a in folders.get(b, set()) and a != "edenkit" and b != "edenkit"})
    assert not pairs, f"folders that import each other: {pairs}"


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_small_and_says_its_job(module):
    path = MODULES[module]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)}: {lines} lines (split it: one job per module)"
    if lines > 10:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and doc.strip(), f"{path.relative_to(PACKAGE.parent)}: no module docstring stating its job"
