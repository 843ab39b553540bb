"""The pytest plugin as a downstream suite meets it, driven through pytester.

Most runs are in-process (``pytester.runpytest``), which is fast; xdist gets a subprocess. Recording
talks to a fake upstream on loopback: a replaying mockrealtime started here on port 0.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil

import openai.resources.beta.realtime.realtime  # noqa: F401 - imported once here, not in every
import openai.resources.realtime.realtime  # noqa: F401   in-process run (pytester drops the
import websockets.asyncio.client  # noqa: F401             modules a run imported)
import websockets.sync.client  # noqa: F401
import pytest

import mockrealtime
import mockrealtime.net.record  # noqa: F401
from mockrealtime.core.cassette import load
from mockrealtime.config import ServerConfig
from mockrealtime.core.library import bundled_cassette_dir
from mockrealtime.testing.runner import BackgroundServer

# A bound on what would otherwise hang; never a timing assertion. A pytest run in a subprocess (openai
# imported afresh, maybe under coverage, on a loaded machine) can take most of a minute when all is well.
HANG_S = 100
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(mockrealtime.__file__)))
FAKE_KEY = "sk-test-fake-key-0123456789abcdef"

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def plugin_args() -> list[str]:
    """``-p mockrealtime.testing.plugin`` unless the installed entry point loads it (twice is an error)."""
    if not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") and any(
        ep.name == "mockrealtime" for ep in importlib.metadata.entry_points(group="pytest11")
    ):
        return []
    return ["-p", "mockrealtime.testing.plugin"]


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An empty downstream project that can import mockrealtime (also in subprocesses)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for var in list(os.environ):
        if var.startswith("MOCKREALTIME_"):
            monkeypatch.delenv(var)
    pytester.makeini(INI)
    return pytester


def run(suite: pytest.Pytester, *args: str) -> pytest.RunResult:
    return suite.runpytest(*plugin_args(), "-p", "no:cacheprovider", *args)


HELLO_ASYNC = '''
import pytest
from openai import AsyncOpenAI, OpenAI

HELLO = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}


async def converse(url):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "instructions": "Be friendly."})
        await conn.conversation.item.create(item=HELLO)
        await conn.response.create()
        transcript = ""
        async for event in conn:
            if event.type == "response.output_audio_transcript.delta":
                transcript += event.delta
            if event.type == "response.done":
                return transcript
'''


# -- replay ---------------------------------------------------------------------------------------


def test_replay_with_async_and_sync_clients_and_the_journal(suite):
    suite.makepyfile(test_voice=HELLO_ASYNC + '''
import re


@pytest.mark.realtime("hello")
async def test_async_client(realtime_mock):
    assert await converse(realtime_mock.websocket_base_url) == "Hi there! How can I help you today?"
    journal = realtime_mock.journal
    assert journal.types() == ["session.update", "conversation.item.create", "response.create"]
    assert journal.first("conversation.item.create", item__role="user")["item"]["content"][0]["text"] == "Hello!"
    realtime_mock.assert_all_played()


@pytest.mark.realtime("hello")
def test_sync_client(realtime_mock):
    client = OpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    with client.realtime.connect(model="gpt-realtime") as conn:
        conn.session.update(session={"type": "realtime"})
        conn.conversation.item.create(item=HELLO)
        conn.response.create()
        for event in conn:
            if event.type == "response.done":
                break
    assert realtime_mock.journal.types()[-1] == "response.create"


@pytest.mark.realtime("hello", dialect="beta")
async def test_beta_variant(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        await conn.session.update(session={"modalities": ["text", "audio"]})
        await conn.conversation.item.create(item=HELLO)
        await conn.response.create()
        async for event in conn:
            if event.type == "response.done":
                break
    assert realtime_mock.connections[0]["dialect"] == "beta"


@pytest.mark.realtime("hello", allow_unplayed=True)
def test_urls_point_at_this_tests_route(realtime_mock):
    base = realtime_mock.websocket_base_url
    assert re.fullmatch(r"ws://127\\.0\\.0\\.1:\\d+/c/t\\d+/v1", base)
    assert realtime_mock.ws_url == base + "/realtime"
    assert realtime_mock.http_url == "http" + base[2:]


class TestGrouped:
    @pytest.mark.realtime("hello", allow_unplayed=True)
    def test_in_a_class(self, realtime_mock):
        assert realtime_mock.location.bundled
''')
    result = run(suite, "-q")
    result.assert_outcomes(passed=5)


@pytest.mark.timeout(HANG_S + 50)
def test_a_test_that_leaves_its_connection_open_does_not_slow_teardown(suite):
    suite.makepyfile(test_open='''
import pytest
from openai import AsyncOpenAI, OpenAI

LEFT_OPEN = []


@pytest.mark.realtime("hello", allow_unplayed=True)
async def test_async_left_open(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    conn = await client.realtime.connect(model="gpt-realtime").enter()
    assert (await conn.recv()).type == "session.created"
    LEFT_OPEN.append(conn)  # never closed; its event loop is gone after the test


@pytest.mark.realtime("hello", allow_unplayed=True)
def test_sync_left_open(realtime_mock):
    client = OpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    conn = client.realtime.connect(model="gpt-realtime").enter()
    assert conn.recv().type == "session.created"
    LEFT_OPEN.append(conn)
''')
    # in a subprocess: the abandoned connections must not haunt this process's garbage collector.
    # aiohttp alone would wait for them at shutdown, about two minutes: a hang, not a slow run
    result = suite.runpytest_subprocess(
        *plugin_args(), "-p", "no:cacheprovider", "-q", "-W", "ignore::pytest.PytestUnraisableExceptionWarning",
        timeout=HANG_S,
    )
    result.assert_outcomes(passed=2)


# -- failures a user can act on ---------------------------------------------------------------------


def test_failure_reports(suite):
    suite.makepyfile(test_agent=HELLO_ASYNC + '''

@pytest.mark.realtime("hello", strict=True)
async def test_diverges(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "tools": [{"type": "function", "name": "get_weather"}]})
        async for event in conn:
            if event.type == "error":
                break


@pytest.mark.realtime("hello")
async def test_stops_early(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()


@pytest.mark.realtime("hello", allow_unplayed=True)
async def test_stops_early_allowed(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()


@pytest.mark.realtime("hello", strict=True, allow_unplayed=True)
async def test_divergence_expected_by_the_test(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.response.create()
        async for event in conn:
            if event.type == "error":
                assert event.error.code == "cassette_mismatch"
                break
    (divergence,) = realtime_mock.accept_divergences()
    assert divergence.received["type"] == "response.create"


@pytest.mark.realtime("hello", stirct=True)
def test_misspelt_argument(realtime_mock):
    pass


@pytest.mark.realtime(strict=True)
def test_no_cassette_yet(realtime_mock):
    pass


@pytest.mark.realtime("hello")
async def test_own_assertion_fails(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
    assert False, "the agent did not answer"
''')
    result = run(suite, "-q")
    result.assert_outcomes(passed=2, failed=3, errors=2)
    out = result.stdout.str()
    # a divergence: the cassette, the session and event, the marked field, the fixes; no plugin frames
    block = _section(out, "test_diverges")
    assert "DivergenceError: mockrealtime: the client departed from the cassette (1 divergence)" in block
    assert re.search(r"cassette: .*hello\.yaml", block)
    assert "connection 0 (session 0, ga), recorded event 1:" in block
    assert '  ! session.tools[*].name: expected <absent>, received ["get_weather"]' in block
    assert "pytest --realtime-record-mode=rewrite test_agent.py::test_diverges" in block
    assert "@pytest.mark.realtime(match={'rules': {'session.update': ['session.type', 'session.tool_choice']}})" in block
    assert "testing/plugin.py" not in block and "handle.py" not in block
    # an unplayed remainder
    block = _section(out, "test_stops_early")
    assert "mockrealtime: the client left part of the cassette unplayed" in block
    assert "the recording's client sent response.create next; this client did not" in block
    assert "@pytest.mark.realtime(allow_unplayed=True)" in block
    # bad marker arguments and a missing cassette fail at once, with what to do
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_misspelt_argument*",
        "marker @pytest.mark.realtime: unknown argument(s) stirct (did you mean strict?); valid: cassette, dialect, pace, match, strict, on_divergence, allow_unplayed, record_mode",
    ])
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_no_cassette_yet*",
        "mockrealtime: no cassette at cassettes/test_agent/test_no_cassette_yet.yaml, and record mode 'none' never goes live.",
        "Record it: pytest --realtime-record-mode=once test_agent.py::test_no_cassette_yet (the key comes from OPENAI_API_KEY)",
    ])
    # the test's own failure comes with what mockrealtime saw
    block = _section(out, "test_own_assertion_fails")
    assert "AssertionError: the agent did not answer" in block
    assert "Captured mockrealtime call" in block and "left part of the cassette unplayed" in block


def _section(out: str, test: str) -> str:
    start = out.index(f"_ {test} _")
    end = out.find("\n___", start + 1)
    end2 = out.find("short test summary", start)
    ends = [e for e in (end, end2) if e != -1]
    return out[start : min(ends)]


# -- settings and locations ------------------------------------------------------------------------------


def test_the_command_line_option_wins_over_the_marker_and_the_config_fixture(suite):
    suite.makepyfile(test_precedence='''
import pytest


@pytest.fixture
def realtime_config():
    return {"record_mode": "all", "pace": 0.5, "allow_unplayed": True}


@pytest.mark.realtime("hello", record_mode="rewrite", pace=2)
def test_flag_over_marker_over_config(realtime_mock):
    s = realtime_mock.config
    assert (s.record_mode, s.pace, s.allow_unplayed) == ("none", 2.0, True)
    assert realtime_mock.mode == "replay"
''')
    run(suite, "-q", "--realtime-record-mode=none").assert_outcomes(passed=1)


def test_cassette_dir_by_convention_and_by_fixture(suite):
    own = suite.mkdir("cassettes").joinpath("test_where")
    own.mkdir()
    shared = suite.mkdir("recordings")
    for directory, stem in ((own, "test_by_convention"), (shared, "greeting")):
        shutil.copy(os.path.join(bundled_cassette_dir(), "hello.yaml"), directory / f"{stem}.yaml")
        shutil.copy(os.path.join(bundled_cassette_dir(), "hello.s0.server.pcm16.wav"), directory)
    suite.makepyfile(test_where='''
import os
import pytest


@pytest.mark.realtime(allow_unplayed=True)
def test_by_convention(realtime_mock):
    assert realtime_mock.cassette_path == os.path.abspath("cassettes/test_where/test_by_convention.yaml")


class TestMoved:
    @pytest.fixture
    def realtime_cassette_dir(self):
        return os.path.abspath("recordings")

    @pytest.mark.realtime("greeting", allow_unplayed=True)
    def test_by_fixture(self, realtime_mock):
        assert realtime_mock.cassette_path == os.path.abspath("recordings/greeting.yaml")
''')
    run(suite, "-q").assert_outcomes(passed=2)


def test_works_beside_pytest_recording_and_pytest_asyncio(suite):
    suite.mkdir("cassettes").joinpath("test_both").mkdir()
    suite.path.joinpath("cassettes", "test_both", "test_http_and_realtime.yaml").write_text(VCR_CASSETTE)
    suite.makepyfile(test_both=HELLO_ASYNC + '''
import urllib.request


def fetch():
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open("http://example.invalid/status").read()


@pytest.mark.vcr
@pytest.mark.realtime("hello")
async def test_http_and_realtime(realtime_mock):
    assert fetch() == b"ok"  # replayed by VCR.py, never sent
    assert await converse(realtime_mock.websocket_base_url)


@pytest.mark.realtime("hello")
async def test_realtime_only(realtime_mock):
    assert await converse(realtime_mock.websocket_base_url)
''')
    result = run(suite, "-q", "--record-mode=none", "--realtime-record-mode=none")
    result.assert_outcomes(passed=2)


def test_block_network_needs_loopback_allowed_as_the_readme_says(suite):
    suite.makepyfile(test_blocked=HELLO_ASYNC + '''
@pytest.mark.realtime("hello")
async def test_realtime(realtime_mock):
    assert await converse(realtime_mock.websocket_base_url)
''')
    run(suite, "-q", "--block-network", "--allowed-hosts=127.0.0.1").assert_outcomes(passed=1)
    blocked = run(suite, "-q", "--block-network")
    blocked.assert_outcomes(failed=1)
    blocked.stdout.fnmatch_lines(["*Network is disabled*"])


VCR_CASSETTE = """\
interactions:
- request:
    body: null
    headers: {}
    method: GET
    uri: http://example.invalid/status
  response:
    body:
      string: ok
    headers: {}
    status:
      code: 200
      message: OK
version: 1
"""


def test_xdist_gives_each_worker_its_own_server(suite):
    suite.makepyfile(test_parallel=HELLO_ASYNC + '''
import os


@pytest.mark.parametrize("n", range(6))
@pytest.mark.realtime("hello")
async def test_parallel(realtime_mock, n):
    assert await converse(realtime_mock.websocket_base_url)
    port = realtime_mock.websocket_base_url.split(":")[2].split("/")[0]
    with open(f"port-{os.environ['PYTEST_XDIST_WORKER']}-{n}", "w") as f:
        f.write(port)
''')
    result = suite.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider", "-n", "2", "-q")
    result.assert_outcomes(passed=6)
    ports: dict[str, set[str]] = {}
    for path in suite.path.glob("port-*"):
        ports.setdefault(path.name.split("-")[1], set()).add(path.read_text())
    assert len(ports) == 2 and all(len(p) == 1 for p in ports.values())
    assert len(set.union(*ports.values())) == 2  # one server per worker, on its own port


# -- recording --------------------------------------------------------------------------------------


@pytest.fixture
def fake_upstream():
    """The "live API" for recording tests: mockrealtime replaying the bundled hello, on port 0."""
    with BackgroundServer(ServerConfig(port=0)) as server:
        yield f"{server.ws_url}/c/hello/v1/realtime"


RECORDED_TEST = HELLO_ASYNC + '''

@pytest.mark.realtime
async def test_greeting(realtime_mock):
    assert await converse(realtime_mock.websocket_base_url) == "Hi there! How can I help you today?"
'''


def test_record_once_then_replay_offline(suite, fake_upstream, monkeypatch):
    suite.makepyfile(test_voice=RECORDED_TEST)
    result = run(suite, "-q")  # no cassette yet: record mode none never goes live
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Record it: pytest --realtime-record-mode=once test_voice.py::test_greeting*"])

    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    run(suite, "-q", "--realtime-record-mode=once", f"--realtime-upstream={fake_upstream}").assert_outcomes(passed=1)
    cassette = suite.path / "cassettes" / "test_voice" / "test_greeting.yaml"
    text = cassette.read_text()
    assert "version: 1" in text and "Hi there!" in text
    assert FAKE_KEY not in text and "<redacted>" in text
    assert (cassette.parent / "test_greeting.s0.server.pcm16.wav").exists()

    # once: the cassette exists now, so it replays; the upstream is not needed any more
    monkeypatch.delenv("OPENAI_API_KEY")
    run(suite, "-q", "--realtime-record-mode=once", "--realtime-upstream=ws://127.0.0.1:9/v1/realtime").assert_outcomes(passed=1)
    run(suite, "-q").assert_outcomes(passed=1)


def test_a_failed_test_saves_no_cassette_unless_asked(suite, fake_upstream, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    suite.makepyfile(test_voice=RECORDED_TEST.replace("== \"Hi there! How can I help you today?\"", "== \"Bonjour\""))
    args = ("-q", "--realtime-record-mode=all", f"--realtime-upstream={fake_upstream}")
    run(suite, *args).assert_outcomes(failed=1)
    assert not (suite.path / "cassettes").exists()
    run(suite, *args, "--realtime-record-failed").assert_outcomes(failed=1)
    assert (suite.path / "cassettes" / "test_voice" / "test_greeting.yaml").exists()


def test_rewrite_replaces_a_stale_cassette(suite, fake_upstream, monkeypatch):
    stale = suite.path / "cassettes" / "test_voice"
    stale.mkdir(parents=True)
    (stale / "test_greeting.yaml").write_text("this is not a cassette")
    suite.makepyfile(test_voice=RECORDED_TEST)
    run(suite, "-q").assert_outcomes(errors=1)  # the broken cassette fails at load, with its path
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    run(suite, "-q", "--realtime-record-mode=rewrite", f"--realtime-upstream={fake_upstream}").assert_outcomes(passed=1)
    monkeypatch.delenv("OPENAI_API_KEY")
    run(suite, "-q").assert_outcomes(passed=1)


# -- new_episodes ---------------------------------------------------------------------------------------

FOLLOW_UP = '''
import json

import pytest
from openai import AsyncOpenAI

TOOL = {"type": "function", "name": "list_emails", "parameters": {"type": "object", "properties": {"numEmails": {"type": "integer"}}}}
QUESTION = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How many emails do I have? Read me the latest one"}]}


async def until_done(conn):
    events = []
    async for event in conn:
        events.append(event)
        if event.type in ("response.done", "error"):
            return events


@pytest.mark.realtime
async def test_follow_up(realtime_mock, realtime_server):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "tools": [TOOL], "tool_choice": "auto"})
        await conn.conversation.item.create(item=QUESTION)
        await conn.response.create()
        call = (await until_done(conn))[-1].response.output[0]
        await conn.conversation.item.create(item={"type": "function_call_output", "call_id": call.call_id, "output": "{}"})
        await conn.response.create(response={"tool_choice": "none"})  # the agent changed: the recording has "auto"
        events = await until_done(conn)
    assert events[-1].type == "response.done", events[-1]
    transcript = "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")
    assert transcript == "Hi there! How can I help you today?"  # what the fake live API says
    # the client talks to the replay route itself, which goes live at the divergence: no relay between
    assert realtime_mock.websocket_base_url == f"{realtime_server.ws_url}/c/{realtime_mock.token}/v1"
    last = "live" if realtime_mock.mode == "episodes" else "matched"  # replayed once the cassette holds it
    assert [(e.event["type"], e.outcome) for e in realtime_mock.journal.entries] == [
        ("session.update", "matched"), ("conversation.item.create", "matched"), ("response.create", "matched"),
        ("conversation.item.create", "matched"), ("response.create", last),
    ]
'''


@pytest.fixture
def fake_live_api():
    """A "live API" that answers any state it is given: the bundled hello, matching on type only."""
    with BackgroundServer(ServerConfig(port=0, match="type")) as server:
        yield f"{server.ws_url}/c/hello/v1/realtime", server


def test_new_episodes_hands_the_rest_of_a_diverging_session_to_the_live_api(suite, fake_live_api, monkeypatch):
    upstream, live = fake_live_api
    own = suite.path / "cassettes" / "test_emails"
    own.mkdir(parents=True)
    shutil.copy(os.path.join(bundled_cassette_dir(), "function_call.yaml"), own / "test_follow_up.yaml")
    shutil.copy(os.path.join(bundled_cassette_dir(), "function_call.s0.server.pcm16.wav"), own)
    suite.makepyfile(test_emails=FOLLOW_UP)

    result = run(suite, "-q")  # replay only: the new follow-up is not in the recording
    result.assert_outcomes(failed=1)
    assert "tool_choice: none" not in (own / "test_follow_up.yaml").read_text()
    result.stdout.fnmatch_lines(["*! response.tool_choice: expected \"auto\", received \"none\"*",
                                 "*pytest --realtime-record-mode=new_episodes test_emails.py::test_follow_up*"])

    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    run(suite, "-q", "--realtime-record-mode=new_episodes", f"--realtime-upstream={upstream}").assert_outcomes(passed=1)
    # the live session was first given the client's state, without a model call: its session.update,
    # then the conversation items with the ids the client knows (question, call, output) ...
    (handed,) = [r for r in live.call(lambda: list(live.state.connections))]
    sent = [(j.event["type"], j.event.get("item", {}).get("type")) for j in handed.engine.journal]
    assert sent == [
        ("session.update", None),
        ("conversation.item.create", "message"),
        ("conversation.item.create", "function_call"),
        ("conversation.item.create", "function_call_output"),
        ("response.create", None),  # ... then the event the replay could not answer
    ]
    text = (own / "test_follow_up.yaml").read_text()
    assert "new_episodes" in text and "tool_choice: none" in text and FAKE_KEY not in text

    monkeypatch.delenv("OPENAI_API_KEY")
    live.stop()  # offline again: the cassette now holds the new branch
    run(suite, "-q").assert_outcomes(passed=1)


def test_new_episodes_records_connections_beyond_the_recorded_sessions(suite, fake_live_api, monkeypatch):
    upstream, _ = fake_live_api
    own = suite.path / "cassettes" / "test_twice"
    own.mkdir(parents=True)
    shutil.copy(os.path.join(bundled_cassette_dir(), "hello.yaml"), own / "test_two_calls.yaml")
    shutil.copy(os.path.join(bundled_cassette_dir(), "hello.s0.server.pcm16.wav"), own)
    suite.makepyfile(test_twice=HELLO_ASYNC + '''

@pytest.mark.realtime
async def test_two_calls(realtime_mock):
    assert await converse(realtime_mock.websocket_base_url)
    assert await converse(realtime_mock.websocket_base_url)
''')
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    run(suite, "-q", "--realtime-record-mode=new_episodes", f"--realtime-upstream={upstream}").assert_outcomes(passed=1)
    cassette = load(str(own / "test_two_calls.yaml"))
    assert len(cassette.sessions) == 2


def test_new_episodes_fails_the_test_when_the_live_api_cannot_be_reached_and_keeps_the_cassette(suite, monkeypatch):
    own = suite.path / "cassettes" / "test_emails"
    own.mkdir(parents=True)
    shutil.copy(os.path.join(bundled_cassette_dir(), "function_call.yaml"), own / "test_follow_up.yaml")
    shutil.copy(os.path.join(bundled_cassette_dir(), "function_call.s0.server.pcm16.wav"), own)
    before = (own / "test_follow_up.yaml").read_text()
    suite.makepyfile(test_emails=FOLLOW_UP)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    result = run(suite, "-q", "--realtime-record-mode=new_episodes", "--realtime-upstream=ws://127.0.0.1:9/v1/realtime")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*mockrealtime new_episodes: connection 0: cannot reach the live API ws://127.0.0.1:9/v1/realtime*"])
    assert FAKE_KEY not in result.stdout.str()
    assert (own / "test_follow_up.yaml").read_text() == before
