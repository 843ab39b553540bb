"""CI runs what the README tells a contributor to run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readmes_test_command():
    ci = ROOT / ".ci" / "run"
    if not ci.exists():
        pytest.skip("needs the source checkout (.ci/ is not in the sdist)")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"Run the test suite[^\n]*\n\n```bash\n(.+?)\n```", readme)
    assert command in ci.read_text(encoding="utf-8").splitlines()
