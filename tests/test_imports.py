"""The import graph of core/ and hpo/: no cycles, every project import at a module's top level, and hpo's
folders layered: each imports only from itself and the layers before it in LAYERS."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "hpo")
# hpo's layers, lowest first: the top-level modules (console, paths, provenance), then its folders.
LAYERS = ("hpo", "hpo.storage", "hpo.study", "hpo.results", "hpo.run", "hpo.cli")


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module in the project's packages (a package by its __init__.py)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _target(module: str, name: str, modules: dict[str, Path]) -> str:
    """What `from module import name` imports: the submodule module.name when there is one, else module."""
    return f"{module}.{name}" if f"{module}.{name}" in modules else module


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported project module, line, at top level) of each import in the file; `from P import m` names P.m
    when m is a module. Imports under `if TYPE_CHECKING:` are left out: they never run."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for n in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [_target(node.module, a.name, modules) for a in node.names]
        else:
            continue
        found += [(n, node.lineno, id(node) in top) for n in names if n in modules]
    return found


def test_no_module_imports_itself_through_others():
    modules = _modules()
    graph = {name: {m for m, _, _ in _imports(path, modules)} for name, path in modules.items()}
    state: dict[str, str] = {}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for nxt in sorted(graph[name]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt) :] + [nxt])  # the open modules are the trail
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_project_modules_are_imported_at_the_top_of_a_module():
    modules = _modules()
    local = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules.values()
        for name, line, at_top in _imports(path, modules)
        if not at_top
    ]
    assert local == []


def _layer(module: str) -> int:
    """The index in LAYERS of an hpo module's folder (its top-level modules are layer 0)."""
    parts = module.split(".")
    return LAYERS.index(".".join(parts[:2])) if len(parts) > 2 or ".".join(parts) in LAYERS[1:] else 0


def test_hpo_folders_import_only_the_layers_before_them():
    modules = _modules()
    upward = [
        f"{name} imports {target}"
        for name, path in modules.items()
        if name.startswith("hpo.") or name == "hpo"
        for target, _, _ in _imports(path, modules)
        if target.startswith("hpo") and _layer(target) > _layer(name)
    ]
    assert upward == []


def test_a_worker_whose_objective_does_not_train_imports_no_torch():
    """A spawned worker imports hpo.run.processes to unpickle its process object, and the loop (hpo.run.runner) to
    run trials: neither may pull in torch (1.3 s of CPU per process), which only the trainer's objective needs."""
    code = "import sys, hpo.run.processes, hpo.run.runner, benchmarks.probe; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"
