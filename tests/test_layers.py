"""The house plan: folders are layers, imports point down only, and the rooms stay small.

Walks every module of the five packages with ``ast`` (imports inside functions and under
``TYPE_CHECKING`` included), maps each import to its layer, and fails on an import that points up
or sideways, a cycle between layers, a third-party import in ``detectors/`` beyond numpy, scipy and
river, a file over 400 lines or a function over 60 lines.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("driftline", "detectors", "stream_processors", "producers", "retrain_worker")

# layer -> the layers it may import (besides itself); longest module prefix decides the layer
LAYERS: dict[str, set[str]] = {
    "driftline": set(),  # ground floor: errors, contracts, config, transports, registry
    "detectors": {"driftline.errors"},
    "stream_processors.core": {"detectors", "driftline", "driftline.errors"},
    "stream_processors.runners": {"stream_processors.core", "detectors", "driftline", "driftline.errors"},
    "stream_processors.control": {"driftline", "driftline.errors"},
    "producers": {"detectors", "driftline", "driftline.errors"},
    "retrain_worker": {"detectors", "driftline", "driftline.errors"},
    "driftline.app": {"*"},  # the top floor imports everything; nothing imports it
    "stream_processors": set(),  # the package root: a docstring only
}
# driftline.errors is part of the ground floor; it is named apart because detectors may import it alone
LAYER_OF_PREFIX = sorted([*LAYERS, "driftline.errors"], key=len, reverse=True)
DETECTORS_THIRD_PARTY = {"numpy", "scipy", "river"}
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60


def layer_of(module: str) -> str | None:
    for prefix in LAYER_OF_PREFIX:
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return None


def home_layer(module: str) -> str:
    layer = layer_of(module)
    assert layer is not None, module
    return "driftline" if layer == "driftline.errors" else layer


def modules() -> Iterator[tuple[str, Path]]:
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Absolute names of everything ``module`` imports, with line numbers."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno


def edges() -> list[tuple[str, str, str, int, str]]:
    """(from layer, to layer, module, line, imported name) for every import of our own code."""
    out = []
    for module, path in modules():
        src = home_layer(module)
        for name, line in imports(module, path):
            dst = layer_of(name)
            if dst is not None:
                out.append((src, dst, module, line, name))
    return out


def test_imports_point_down_only() -> None:
    wrong = []
    for src, dst, module, line, name in edges():
        allowed = LAYERS[src]
        ok = (
            "*" in allowed
            or dst in allowed
            or dst == src
            or (src == "driftline" and dst == "driftline.errors")
        )
        if not ok:
            wrong.append(f"{module}:{line} imports {name} ({src} -> {dst})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_no_cycle_between_layers() -> None:
    graph: dict[str, set[str]] = {}
    for src, dst, *_ in edges():
        dst = "driftline" if dst == "driftline.errors" else dst
        if src != dst:
            graph.setdefault(src, set()).add(dst)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("cycle between layers: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_detectors_use_only_numpy_scipy_river() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    wrong = []
    for module, path in modules():
        if home_layer(module) != "detectors":
            continue
        for name, line in imports(module, path):
            top = name.split(".")[0]
            if top not in stdlib and top not in DETECTORS_THIRD_PARTY and layer_of(name) is None:
                wrong.append(f"{module}:{line} imports {name}")
    assert not wrong, "detectors/ must stay pure (numpy, scipy, river):\n" + "\n".join(wrong)


def test_the_top_floor_is_imported_by_nothing_below() -> None:
    wrong = [f"{m}:{line} imports {n}" for s, d, m, line, n in edges() if d == "driftline.app" and s != d]
    assert not wrong, "\n".join(wrong)


def source_files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        if not {".venv", ".kafka", ".git", "build"} & set(path.relative_to(ROOT).parts):
            yield path


def test_files_and_functions_stay_small() -> None:
    big = []
    for path in source_files():
        rel = path.relative_to(ROOT)
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            big.append(f"{rel}: {text.count(chr(10))} lines (max {MAX_FILE_LINES})")
        if rel.parts[0] == "benchmarks":
            continue  # benchmark scripts may have long driver functions
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    big.append(f"{rel}:{node.lineno} {node.name}() is {n} lines (max {MAX_FUNCTION_LINES})")
    assert not big, "\n".join(big)


def test_the_layer_map_covers_every_module() -> None:
    assert all(layer_of(m) is not None for m, _ in modules())
    assert layer_of("stream_processors.core.join") == "stream_processors.core"
    assert layer_of("driftline.app.cli") == "driftline.app" and layer_of("driftline.kafka") == "driftline"
