"""Where Node is, with tests/js's packages (Chromium: tests/chromium.py).

Installed by .ci/run (``npm ci`` in tests/js). A checkout without them skips those tests, unless
``CI=true`` (.ci/run sets it) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

JS_DIR = Path(__file__).parent / "js"


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true needs the client tests to run, but {what}", pytrace=False)
    pytest.skip(what)


def node() -> str:
    """The node binary, with tests/js's packages installed."""
    found = shutil.which("node")
    if found is None:
        _missing("node is not installed")
    if not (JS_DIR / "node_modules" / "openai").is_dir():
        _missing(f"the npm packages are not installed: (cd {JS_DIR} && npm ci)")
    return found  # type: ignore[return-value]

