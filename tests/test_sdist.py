"""The source distribution carries its tests with everything they import and read, and they run there."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Quick ones that read the bundled cassettes, the seed tools, the README and the examples' files.
QUICK = ["tests/test_bundled.py", "tests/test_seed_scenarios.py", "tests/test_readme_plugin.py", "tests/test_cassette.py"]
HANG_S = 150  # building and running pytest twice: slow on a busy machine, still a bound on a hang

pytestmark = pytest.mark.timeout(2 * HANG_S)


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory) -> Path:
    if not (ROOT / "pyproject.toml").exists():
        pytest.skip("needs a source tree to build from")
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(out)], cwd=ROOT, check=True,
                   capture_output=True, timeout=HANG_S)
    (archive,) = out.glob("mockrealtime-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    (tree,) = (p for p in out.iterdir() if p.is_dir())
    return tree


def run_pytest(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the sdist's own package, not this checkout's
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "0", *args],
        cwd=tree, env=env, capture_output=True, text=True, timeout=HANG_S,
    )


def test_every_test_module_of_the_sdist_collects(unpacked):
    result = run_pytest(unpacked, "--collect-only")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " error" not in result.stdout.splitlines()[-1]


def test_quick_tests_pass_from_the_sdist(unpacked):
    result = run_pytest(unpacked, *QUICK)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "skipped" not in result.stdout.splitlines()[-1]  # the seed-tool checks ran, not skipped
