"""The pytest plugin (entry point ``pytest11: mockrealtime``): options, the marker, the fixtures.

::

    @pytest.mark.realtime("function_call")
    async def test_tool_round_trip(realtime_mock):
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
        ...

Fixtures (nothing is autouse; a test that uses none of them pays nothing):

* ``realtime_server`` (session): mockrealtime in a background thread with its own event loop,
  on a free loopback port; one per xdist worker.
* ``realtime_mock`` (function): the test's handle, :class:`mockrealtime.testing.handle.RealtimeMock`.
* ``realtime_cassette_dir`` (module): ``<test dir>/cassettes/<module name>``; override it to move them.
* ``realtime_config`` (function): a dict of settings for every test in its scope; override it.

Settings come from ``--realtime-*`` options, the ``realtime`` marker, ``realtime_config`` and the
``MOCKREALTIME_*`` environment, in that order of precedence (:func:`mockrealtime.config.resolve`).

A divergence, or recorded events the client left unplayed, fail the test with a report
(:class:`~mockrealtime.errors.DivergenceError`, an ``AssertionError``): after the test function
returns when every connection is closed by then, else at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from mockrealtime.config import MARKER_KEYS, RECORD_MODES, ServerConfig, resolve
from mockrealtime.errors import ConfigError, DivergenceError, MockRealtimeError
from mockrealtime.testing.handle import RealtimeMock
from mockrealtime.testing.runner import BackgroundServer
from mockrealtime.testing.storage import bundled_dir, default_cassette_name, locate_cassette

HANDLE = pytest.StashKey[RealtimeMock]()
FAILED = pytest.StashKey[bool]()

_MARKER_HELP = (
    "realtime(cassette=None, *, dialect=None, pace=None, match=None, strict=None, allow_unplayed=None, "
    "record_mode=None): the cassette and replay settings of the test's realtime_mock (mockrealtime)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockrealtime", "mockrealtime: OpenAI Realtime API cassettes")
    group.addoption(
        "--realtime-record-mode",
        choices=RECORD_MODES,
        default=None,
        help="none (default: replay, never go live), once (record missing cassettes), new_episodes "
        "(replay, and record what the cassette does not hold), all (record every test), rewrite "
        "(delete, then record)",
    )
    group.addoption(
        "--realtime-upstream",
        default=None,
        metavar="URL",
        help="the live Realtime endpoint recording modes talk to (default wss://api.openai.com/v1/realtime); "
        "the key comes from OPENAI_API_KEY",
    )
    group.addoption(
        "--realtime-record-failed",
        action="store_const",
        const=True,
        default=None,
        help="save the cassettes recorded by failed tests too (by default they are thrown away)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)


# -- marker and options -------------------------------------------------------------------------


def marker_arguments(node: pytest.Item) -> dict[str, Any]:
    """The ``realtime`` markers' arguments, the closest marker winning per argument."""
    merged: dict[str, Any] = {}
    for mark in node.iter_markers("realtime"):
        kwargs = dict(mark.kwargs)
        if mark.args:
            if len(mark.args) > 1 or "cassette" in kwargs:
                raise ConfigError(
                    "marker @pytest.mark.realtime: one positional argument (the cassette) at most, "
                    f"got {mark.args!r}; valid keyword arguments: {', '.join(MARKER_KEYS)}"
                )
            kwargs["cassette"] = mark.args[0]
        for key, value in kwargs.items():
            merged.setdefault(key, value)
    return merged


def option_values(config: pytest.Config) -> dict[str, Any]:
    """The ``--realtime-*`` options that were given on the command line."""
    values = {
        "record_mode": config.getoption("realtime_record_mode", None),
        "upstream": config.getoption("realtime_upstream", None),
        "record_failed": config.getoption("realtime_record_failed", None),
    }
    return {k: v for k, v in values.items() if v is not None}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Bad marker arguments fail the test before anything runs, with or without the fixture.
    if item.get_closest_marker("realtime") is None:
        return
    try:
        resolve(marker=marker_arguments(item), environ={})
    except ConfigError as exc:
        problem = str(exc)
    else:
        return
    pytest.fail(problem, pytrace=False)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def realtime_server() -> Iterator[BackgroundServer]:
    """mockrealtime on a free loopback port, in a thread with its own event loop; one per session."""
    # websockets >= 15 honours proxy variables: with a proxy set, loopback clients would go to it
    if any(os.environ.get(v) for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")):
        for var in ("NO_PROXY", "no_proxy"):
            hosts = os.environ.get(var, "")
            if "127.0.0.1" not in hosts:
                os.environ[var] = ",".join(h for h in (hosts, "127.0.0.1,localhost") if h)
    server = BackgroundServer(ServerConfig.from_env(host="127.0.0.1", port=0)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def realtime_cassette_dir(request: pytest.FixtureRequest) -> str:
    """Where a module's cassettes are: ``cassettes/<module name>/`` beside it (pytest-recording's layout)."""
    path = request.node.path
    return str(path.parent / "cassettes" / path.stem)


@pytest.fixture
def realtime_config() -> dict[str, Any]:
    """Settings for every test in the fixture's scope (override it in a conftest or module)."""
    return {}


@pytest.fixture
def realtime_mock(
    request: pytest.FixtureRequest,
    realtime_server: BackgroundServer,
    realtime_cassette_dir: str,
    realtime_config: dict[str, Any],
) -> Iterator[RealtimeMock]:
    """This test's cassette on the shared server: URLs for the client, the journal, the checks."""
    node = request.node
    problem = None
    try:
        config = resolve(options=option_values(request.config), marker=marker_arguments(node), fixture=realtime_config)
        location = locate_cassette(
            config.cassette,
            config.dialect,
            cassette_dir=str(realtime_cassette_dir),
            default_name=default_cassette_name(node.name, request.cls.__name__ if request.cls else None),
            bundled_dir=bundled_dir(),
        )
        handle = RealtimeMock(realtime_server, config, location, nodeid=node.nodeid).start()
    except MockRealtimeError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    node.stash[HANDLE] = handle
    try:
        yield handle
    finally:
        text = handle.finish(passed=not node.stash.get(FAILED, False))
    if text:
        raise _failure(text)


# -- turning what the server saw into test outcomes ---------------------------------------------------


def _failure(text: str) -> DivergenceError:
    exc = DivergenceError(text)
    exc.mockrealtime_report = True  # type: ignore[attr-defined]
    return exc


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    handle = item.stash.get(HANDLE, None)
    if handle is None:
        return (yield)
    try:
        result = yield
    except BaseException:
        explanation = handle.explain()
        if explanation:
            item.add_report_section("call", "mockrealtime", explanation)
        raise
    text = handle.check_after_call()
    if text:
        raise _failure(text)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when in ("setup", "call") and (report.failed or report.skipped or hasattr(report, "wasxfail")):
        item.stash[FAILED] = True
    excinfo = call.excinfo
    if excinfo is not None and getattr(excinfo.value, "mockrealtime_report", False) and report.failed:
        # the report says all there is; the plugin's frames would only hide it
        report.longrepr = f"{type(excinfo.value).__name__}: {excinfo.value}"
    return report
