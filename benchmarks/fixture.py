"""What the ``realtime_mock`` fixture costs a test, with the session's server shared.

    python benchmarks/fixture.py [--tests 300]

Runs pytest in-process on generated test modules and reads each test's setup and teardown
durations (the test bodies do nothing, so what is measured is the fixture):

* baseline: tests that use no fixture;
* shared cassette: tests with ``@pytest.mark.realtime("hello", allow_unplayed=True)``, all on the
  same bundled cassette (parsed once, then cached);
* own cassettes: every test its own copy of the cassette (each one parsed at setup), the
  convention's layout; the difference to "shared" is cassette loading;
* with a conversation: the shared cassette, and the test plays the whole hello session with the
  openai SDK (context for the above, not fixture cost).

The first test of each run, which starts the session's server, is reported apart. Target (issue
#5): per-test cost <= 5 ms plus cassette loading.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import pytest  # noqa: E402

from mockrealtime.core.library import bundled_cassette_dir  # noqa: E402

INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"

PLAIN = """
import pytest

@pytest.mark.parametrize("n", range({n}))
def test_plain(n):
    pass
"""

SHARED = """
import pytest

@pytest.mark.parametrize("n", range({n}))
@pytest.mark.realtime("hello", allow_unplayed=True)
def test_shared(realtime_mock, n):
    pass
"""

OWN = """
import pytest

@pytest.mark.parametrize("n", range({n}))
@pytest.mark.realtime(allow_unplayed=True)
def test_own(realtime_mock, n):
    pass
"""

CONVERSATION = """
import pytest
from openai import OpenAI

HELLO = {{"type": "message", "role": "user", "content": [{{"type": "input_text", "text": "Hello!"}}]}}

@pytest.mark.parametrize("n", range({n}))
@pytest.mark.realtime("hello")
def test_conversation(realtime_mock, n):
    client = OpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    with client.realtime.connect(model="gpt-realtime") as conn:
        conn.session.update(session={{"type": "realtime"}})
        conn.conversation.item.create(item=HELLO)
        conn.response.create()
        for event in conn:
            if event.type == "response.done":
                break
"""


class Durations:
    def __init__(self) -> None:
        self.by_test: dict[str, dict[str, float]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.by_test.setdefault(report.nodeid, {})[report.when] = report.duration


def measure(directory: str, module: str, source: str, plugin: bool) -> tuple[float, list[float], list[float]]:
    """(first test's setup+teardown, the others' setup+teardown, the others' call) in ms."""
    path = os.path.join(directory, f"{module}.py")
    with open(path, "w") as f:
        f.write(source)
    durations = Durations()
    args = [path, "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", directory, "-c", os.path.join(directory, "pytest.ini")]
    if plugin and not _entry_point_installed():
        args[:0] = ["-p", "mockrealtime.testing.plugin"]
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main(args, plugins=[durations])
    if code != 0:
        raise SystemExit(f"benchmark run {module} failed with exit code {code}")
    rows = list(durations.by_test.values())
    fixture = [(r.get("setup", 0) + r.get("teardown", 0)) * 1000 for r in rows]
    calls = [r.get("call", 0) * 1000 for r in rows]
    return fixture[0], fixture[1:], calls[1:]


def _entry_point_installed() -> bool:
    import importlib.metadata

    return any(ep.name == "mockrealtime" for ep in importlib.metadata.entry_points(group="pytest11"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=300)
    args = parser.parse_args()
    n = args.tests
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "pytest.ini"), "w") as f:
            f.write(INI)
        own = os.path.join(directory, "cassettes", "bench_own")
        os.makedirs(own)
        shutil.copy(os.path.join(bundled_cassette_dir(), "hello.s0.server.pcm16.wav"), own)
        for i in range(n):
            shutil.copy(os.path.join(bundled_cassette_dir(), "hello.yaml"), os.path.join(own, f"test_own[{i}].yaml"))

        _, plain, _ = measure(directory, "bench_plain", PLAIN.format(n=n), plugin=False)
        start, shared, _ = measure(directory, "bench_shared", SHARED.format(n=n), plugin=True)
        _, owned, _ = measure(directory, "bench_own", OWN.format(n=n), plugin=True)
        _, _, talk = measure(directory, "bench_conversation", CONVERSATION.format(n=min(n, 100)), plugin=True)

    base = statistics.median(plain)
    print(f"per-test setup+teardown, median of {n - 1} tests (the first, which starts the server, apart):")
    print(f"  no fixture (baseline)          {base:7.3f} ms")
    for label, values in (("realtime_mock, shared cassette", shared), ("realtime_mock, own cassettes", owned)):
        med, p95 = statistics.median(values), sorted(values)[int(len(values) * 0.95)]
        print(f"  {label:<30} {med:7.3f} ms  (p95 {p95:.3f} ms, +{med - base:.3f} ms over baseline)")
    print(f"  cassette loading (own - shared) {statistics.median(owned) - statistics.median(shared):6.3f} ms (hello.yaml, 41 events)")
    print(f"  first test (starts the server)  {start:7.1f} ms")
    print(f"  a whole hello conversation through the openai SDK (test body): {statistics.median(talk):.1f} ms median")


if __name__ == "__main__":
    main()
