"""The folders are the layers (ARCHITECTURE.md): imports point one way and never in a circle.

Read from the source, so a cycle hidden behind a lazy import inside a function fails here too;
imports under ``if TYPE_CHECKING:`` are only for the type checker and do not count.
"""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "mockrealtime"
#: Which layers each layer may import (besides itself).
ALLOWED = {
    "top": {"top", "core", "protocol"},  # config.py, errors.py, __init__ re-exports
    "core": {"top", "core", "protocol", "scenario"},  # the library compiles a scenario where a cassette may stand
    "protocol": {"top", "core", "protocol"},
    "scenario": {"top", "core", "protocol", "scenario"},
    "net": {"top", "core", "protocol", "scenario", "net"},
    "testing": {"top", "core", "protocol", "scenario", "net", "testing"},
    "cli": {"top", "core", "protocol", "scenario", "net", "testing", "cli"},
}


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("mockrealtime",) + path.relative_to(PACKAGE).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(path: pathlib.Path, known: dict[str, pathlib.Path]) -> set[str]:
    """The package's modules ``path`` imports at run time (a ``from pkg import submodule`` counts
    as the submodule)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known.keys()
            found |= subs
            if len(subs) < len(node.names) and node.module in known:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names} & known.keys()
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    if module == "mockrealtime.__main__":
        return "cli"  # python -m mockrealtime is the command line
    return "top" if len(parts) < 3 and not (PACKAGE / parts[-1]).is_dir() else parts[1]


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(p, known) - {m} for m, p in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_imports_point_from_the_edge_to_the_core():
    wrong = sorted((m, t) for m, targets in graph().items() for t in targets if layer(t) not in ALLOWED[layer(m)])
    assert wrong == []


def test_no_module_is_over_500_lines():
    assert {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500} == {}


def test_the_checks_see_a_cycle_and_a_wrong_direction():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("mockrealtime.core.engine") == "core" and layer("mockrealtime.config") == "top"
    assert "net" not in ALLOWED["core"]
