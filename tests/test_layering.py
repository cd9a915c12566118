"""The import-layering contract of nnunet (documentation/layers.md): layers import downwards only, the modules
declared torch-free do not import torch when imported, and no two modules import each other.

The imports are read with ``ast`` from every module of the package, those inside functions included (a
function-level import that goes upwards is a cycle or a layering problem hidden, not solved); imports under
``if TYPE_CHECKING:`` are left out (they never run).
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nnunet"

#: the layers, lowest first; a module may import its own layer and the layers below it, never one above
LAYERS: list[tuple[str, ...]] = [
    ("nnunet", "nnunet.errors", "nnunet.constants", "nnunet.paths", "nnunet.utils", "nnunet.registry"),
    ("nnunet.io",),
    ("nnunet.planning", "nnunet.fingerprint", "nnunet.preprocessing"),
    ("nnunet.networks", "nnunet.models"),
    ("nnunet.evaluation", "nnunet.postprocessing"),
    ("nnunet.inference",),
    ("nnunet.training",),
    ("nnunet.ensembling", "nnunet.sharing", "nnunet.visualization"),
    ("nnunet.cli",),
    ("nnunet.demo",),
]

#: imported without torch: every package listed, less the modules of TORCH_BOUND. Why: a command's start-up
#: (``--help``, the parsers, a CPU runtime with a cached conversion never loads torch, about 1-2 s saved), the
#: planning and preprocessing workers, and machines where torch is not wanted (OpenVINO / ONNX Runtime only).
#: Torch may still be imported inside a function of these modules, when the work needs it.
TORCH_FREE: tuple[str, ...] = (
    "nnunet", "nnunet.errors", "nnunet.constants", "nnunet.paths", "nnunet.utils", "nnunet.registry",
    "nnunet.io", "nnunet.planning", "nnunet.fingerprint", "nnunet.preprocessing", "nnunet.models",
    "nnunet.evaluation", "nnunet.postprocessing", "nnunet.inference", "nnunet.ensembling", "nnunet.sharing",
    "nnunet.visualization", "nnunet.cli", "nnunet.demo",
)
#: modules of torch-free packages that are torch code themselves (nnunet.networks and nnunet.training are
#: torch-bound as a whole): the torch sliding window and its kernels, the ONNX export
TORCH_BOUND: tuple[str, ...] = (
    "nnunet.inference.sliding_window", "nnunet.inference.torch_engine",
    "nnunet.inference.onnx_export",
)

#: upward imports that stay, each with its reason: (importing module, imported module) -> why
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # the most specific nnunet module (or "torch...") named by the statement
    line: int
    deferred: bool  # inside a function


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if modules()[importer].name != "__init__.py":
        base = base[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(importer: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    module = _resolve(importer, node)
    # ``from nnunet.io import readers`` imports the module nnunet.io.readers; ``from nnunet.io.x import f`` x
    named = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in modules()]
    return named or [module]


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST, deferred: bool):
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            continue
        inner = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, inner
        yield from _walk(child, inner)


@lru_cache(maxsize=None)
def imports() -> tuple[Import, ...]:
    found = []
    for name, path in modules().items():
        for node, deferred in _walk(ast.parse(path.read_text(encoding="utf-8")), False):
            for target in _targets(name, node):
                if target.split(".")[0] in ("nnunet", "torch"):
                    found.append(Import(name, target, node.lineno, deferred))
    return tuple(found)


def _longest_prefix(module: str, names) -> str | None:
    """The entry of ``names`` that ``module`` is or is in (``nnunet`` itself stands for its ``__init__`` only)."""
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in names:
            return ".".join(parts[:n])
    return module if module in names else None


def layer_of(module: str) -> int:
    packages = {p: i for i, layer in enumerate(LAYERS) for p in layer}
    package = _longest_prefix(module, packages)
    assert package is not None, f"{module} is in no layer: add its package to LAYERS (documentation/layers.md)"
    return packages[package]


def is_torch_free(module: str) -> bool:
    return _longest_prefix(module, set(TORCH_FREE)) is not None and _longest_prefix(module, set(TORCH_BOUND)) is None


def upward_imports() -> list[str]:
    problems = []
    for imp in imports():
        if imp.imported.startswith("torch") or (imp.importer, imp.imported) in ALLOWED_UPWARD:
            continue
        if layer_of(imp.imported) > layer_of(imp.importer):
            problems.append(f"{modules()[imp.importer].relative_to(ROOT)}:{imp.line} {imp.importer} imports "
                            f"{imp.imported}{' (in a function)' if imp.deferred else ''}: layer "
                            f"{layer_of(imp.importer) + 1} imports layer {layer_of(imp.imported) + 1} (the lowest "
                            f"is 1)")
    return problems


def torch_at_import() -> list[str]:
    """Module-level imports of torch, or of a module that is not torch-free, by a torch-free module."""
    problems = []
    for imp in imports():
        if imp.deferred or not is_torch_free(imp.importer):
            continue
        target = imp.imported
        if target == "torch" or target.startswith("torch.") or not is_torch_free(target):
            problems.append(f"{modules()[imp.importer].relative_to(ROOT)}:{imp.line} {imp.importer} (torch-free) "
                            f"imports {target} at module level (import it in the function that needs it, or, "
                            f"for torch code, list the module in TORCH_BOUND)")
    return problems


def module_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    for imp in imports():
        if imp.imported in graph and imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    return graph


def cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (every import, deferred ones included)."""
    graph = module_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


# ---- the tests ----------------------------------------------------------------------------------------------

def test_every_module_is_in_a_layer():
    for name in modules():
        layer_of(name)
    listed = [p for layer in LAYERS for p in layer] + list(TORCH_FREE)
    assert [p for p in listed if p not in modules()] == [], "LAYERS or TORCH_FREE name a package that is gone"


def test_layers_import_downwards_only():
    problems = upward_imports()
    assert not problems, "upward imports (see documentation/layers.md):\n" + "\n".join(problems)


def shortest_cycle(component: list[str]) -> list[str]:
    """A shortest import cycle through the first module of ``component``: ``[a, b, ..., a]``."""
    graph, start = module_graph(), component[0]
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph[path[-1]] & set(component)):
            if w == start:
                return path + [w]
            if w not in seen:
                seen.add(w)
                paths.append(path + [w])
    return component


def test_no_import_cycles():
    found = cycles()
    assert not found, "modules that import each other (a function-level import counts too):\n" + "\n".join(
        f"{' -> '.join(shortest_cycle(c))} ({len(c)} modules in the cycle)" for c in found)


def test_torch_free_modules_import_no_torch_at_module_level():
    problems = torch_at_import()
    assert not problems, "torch-free modules importing torch (see documentation/layers.md):\n" + "\n".join(problems)


def test_torch_free_modules_really_import_without_torch():
    names = sorted(m for m in modules() if is_torch_free(m))
    code = ("import importlib, json, sys\n"
            "first = None\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "    if first is None and 'torch' in sys.modules:\n"
            "        first = name\n"
            "print(json.dumps(first))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout.splitlines()[-1])
    assert first is None, f"importing the torch-free module {first} imported torch"


def test_the_contract_catches_a_planted_violation(monkeypatch):
    # the checks above must be able to fail: plant an upward import, a torch import and a cycle
    planted = (Import("nnunet.io.labels", "nnunet.training.trainer", 1, True),
               Import("nnunet.models.folds", "torch", 1, False),
               Import("nnunet.errors", "nnunet.io.labels", 1, True),
               Import("nnunet.io.labels", "nnunet.errors", 1, False))
    monkeypatch.setattr(sys.modules[__name__], "imports", lambda: planted)
    assert any("nnunet.io.labels imports nnunet.training.trainer" in p for p in upward_imports())
    assert any("nnunet.models.folds (torch-free) imports torch" in p for p in torch_at_import())
    assert ["nnunet.errors", "nnunet.io.labels"] in cycles()
