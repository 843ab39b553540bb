"""The core never touches a socket or a clock: no aiohttp, no asyncio, no sleeping.

Checked on the source (imports and calls), so a violation fails here before it can hide behind a
test that happens not to reach it.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "mockrealtime"
#: The sans-IO layers: every module in these folders (the scenario compiler too), plus the two top-level ones.
CORE = sorted(
    [str(p.relative_to(PACKAGE)) for folder in ("core", "protocol", "scenario") for p in (PACKAGE / folder).rglob("*.py")]
    + ["errors.py", "config.py"]
)
BANNED_MODULES = {"aiohttp", "asyncio", "socket", "selectors", "threading"}


def _violations(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            names = []
        found += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] in BANNED_MODULES]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "sleep":
            found.append(f"line {node.lineno}: calls sleep")
    return found


@pytest.mark.parametrize("module", CORE)
def test_core_module_is_sans_io(module):
    assert _violations(PACKAGE / module) == []


def test_the_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom aiohttp import web\nimport time\ntime.sleep(1)\n")
    assert _violations(bad) == ["line 1: imports asyncio", "line 2: imports aiohttp", "line 4: calls sleep"]
