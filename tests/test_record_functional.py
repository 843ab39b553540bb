"""Record mode over real loopback sockets: the openai SDK through the recorder to a fake upstream.

The fake upstream is a replaying mockrealtime (the ``start_server`` fixture) or, for handshake and
fault cases, a few lines of aiohttp. Nothing here reaches the internet.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from openai import AsyncOpenAI
from websockets.asyncio.client import connect as ws_connect

from mockrealtime.core import cassette as _cassette
from mockrealtime.core.cassette_writer import save
from mockrealtime.net.upstream import Relay
from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session
from mockrealtime.errors import SecretLeftError
from mockrealtime.core.events import Direction
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.config import ServerConfig
from mockrealtime.net.record import FAULT_REASON, LOST_REASON, SHUTDOWN_REASON, recording_server
from mockrealtime.core.recording import SessionRecording

from replay_compare import IdBook, assert_same_replay, needs, recorded_ids, untag

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MS = 0.001 * float(os.environ.get("MOCKREALTIME_TEST_TIMEOUT_FACTOR", "1"))
TIMEOUT_S = 10_000 * MS
BUNDLED = CassetteLibrary()


def recorder_config(upstream: str, output: str, **settings) -> ServerConfig:
    """The recorder's configuration for a test: the fake upstream, the output, a free port."""
    return ServerConfig(upstream=upstream, output=output, port=0, **settings)
CASES = [(entry["name"], dialect) for entry in BUNDLED.available() for dialect in entry["dialects"]]
KEY = "sk-proj-" + "R3c0rd" * 8
KEY2 = "azure0123456789abcdef0123456789ab"
EPHEMERAL = "ek_68af296e8e408191a1120ab6383263c2"
ORG = "org-Zq8RecorderTest"
GA_CREATED = {"type": "session.created", "event_id": "event_up1", "session": {"type": "realtime", "object": "realtime.session", "model": "gpt-realtime"}}


async def until(predicate: Callable[[], object], timeout_s: float = TIMEOUT_S) -> None:
    for _ in range(int(timeout_s / (10 * MS))):
        if predicate():
            return
        await asyncio.sleep(10 * MS)
    raise AssertionError("timed out waiting")


def server_events(session: Session) -> list[dict]:
    return [e.event for e in session.events if e.direction is Direction.SERVER]


async def drive_sdk(base_url: str, session: Session, dialect: str, model: str, *, api_key: str = "sk-test-not-a-key", **client_options) -> list[dict]:
    """Send a recorded session's client events through the openai SDK; return the server events seen."""
    expected = len(server_events(session))
    client = AsyncOpenAI(api_key=api_key, websocket_base_url=base_url, **client_options)
    connect = client.beta.realtime.connect if dialect == "beta" else client.realtime.connect
    received: list[dict] = []
    ids, book = recorded_ids(server_events(session)), IdBook()
    async with connect(model=model) as conn:

        async def take() -> None:
            event = json.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S))
            book.learn(event)
            received.append(event)

        done_before = 0  # response.done events the recording shows before this client event
        for ev in session.events:
            if ev.direction is Direction.SERVER:
                done_before += ev.type == "response.done"
                continue
            # a client waits for what it needs: a call_id, or the end of the response it answers
            while needs(ev.event, ids, book) or (ev.type != "input_audio_buffer.append" and
                                                 sum(e["type"] == "response.done" for e in received) < done_before):
                await take()
            await conn.send(book.send(ev.event))
        while len(received) < expected:
            await take()
    return received


Upstream = Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[str]]


@pytest.fixture
async def fake_upstream() -> AsyncIterator[Upstream]:
    """Start an aiohttp app with one catch-all handler on port 0; returns its ws:// origin."""
    runners: list[web.AppRunner] = []

    async def start(handler) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"ws://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "dialect"), CASES, ids=[f"{n}-{d}" for n, d in CASES])
async def test_a_recorded_session_replays_with_the_same_client_visible_events(start_server, tmp_path, name, dialect):
    upstream = await start_server()
    source = BUNDLED.resolve(name, dialect)
    session, model = source.sessions[0], source.model or "gpt-realtime"
    out = tmp_path / f"{name}.yaml"
    async with recording_server(recorder_config(f"{upstream.ws_url}/c/{name}/v1/realtime", str(out))) as (url, handle):
        live = await drive_sdk(url + "/v1", session, dialect, model)
        await until(lambda: handle.saved_paths)
    assert_same_replay(live, server_events(session))

    recorded = _cassette.load(str(out))
    assert (recorded.dialect, recorded.model, len(recorded.sessions)) == (dialect, model, 1)
    assert server_events(recorded.sessions[0]) == live
    assert [e.type for e in recorded.sessions[0].events if e.direction is Direction.CLIENT] == [
        e.type for e in session.events if e.direction is Direction.CLIENT]
    assert recorded.sessions[0].close == Close("client", 1000, "")
    assert recorded.handshake.path == "/v1/realtime" and recorded.handshake.query == {"model": model}
    has_audio = any(e.audio_bytes for e in session.events)
    assert any(p.endswith(".wav") for p in handle.saved_paths) == has_audio  # audio went to sidecars

    replayer = await start_server(cassettes=str(out))
    replayed = await drive_sdk(replayer.base_url(), session, dialect, model)
    assert_same_replay(replayed, live)
    report = replayer.state.connections[-1]
    assert report.engine.divergences == []


async def test_several_connections_are_sessions_of_one_cassette_replayed_in_order(start_server, tmp_path):
    upstream = await start_server()
    hello, fc = (BUNDLED.resolve(n, "ga") for n in ("hello", "function_call"))
    out = tmp_path / "two.yaml"
    async with recording_server(recorder_config(upstream.ws_url, str(out))) as (url, handle):
        first = await drive_sdk(url + "/c/hello/v1", hello.sessions[0], "ga", "gpt-realtime")
        second = await drive_sdk(url + "/c/function_call/v1", fc.sessions[0], "ga", "gpt-realtime")
        await until(lambda: len(handle.recorder.recordings) == 2 and not any(r.open for r in handle.recorder.recordings))
    recorded = _cassette.load(str(out))
    assert [server_events(s) for s in recorded.sessions] == [first, second]
    assert recorded.handshake.path == "/c/hello/v1/realtime"  # the origin-only upstream got the client's path
    replayer = await start_server(cassettes=str(out))
    assert_same_replay(await drive_sdk(replayer.base_url(), hello.sessions[0], "ga", "gpt-realtime"), first)
    assert_same_replay(await drive_sdk(replayer.base_url(), fc.sessions[0], "ga", "gpt-realtime"), second)


async def test_both_dialects_in_one_run_are_written_as_name_and_name_beta(start_server, tmp_path):
    upstream = await start_server()
    out = tmp_path / "hello.yaml"
    async with recording_server(recorder_config(f"{upstream.ws_url}/c/hello/v1/realtime", str(out))) as (url, handle):
        ga = await drive_sdk(url + "/v1", BUNDLED.resolve("hello", "ga").sessions[0], "ga", "gpt-realtime")
        beta_source = BUNDLED.resolve("hello", "beta")
        beta = await drive_sdk(url + "/v1", beta_source.sessions[0], "beta", beta_source.model)
    assert server_events(_cassette.load(str(out)).sessions[0]) == ga
    assert server_events(_cassette.load(str(tmp_path / "hello.beta.yaml")).sessions[0]) == beta
    replayer = await start_server(cassettes=str(tmp_path))
    assert replayer.state.library.available() == [{"name": "hello", "dialects": ["beta", "ga"]}]


# -- the handshake -------------------------------------------------------------------------------


async def test_path_query_headers_and_subprotocols_are_forwarded_and_the_choice_relayed(fake_upstream, tmp_path):
    seen: list[web.Request] = []

    async def upstream(request: web.Request) -> web.WebSocketResponse:
        seen.append(request)
        ws = web.WebSocketResponse(protocols=("realtime",))
        await ws.prepare(request)
        await ws.send_json(GA_CREATED)
        await ws.receive()
        return ws

    origin = await fake_upstream(upstream)  # no path: Azure paths pass through
    protocols = ("realtime", f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1")
    headers = {"api-key": KEY2, "OpenAI-Beta": "realtime=v1", "OpenAI-Organization": ORG, "X-Custom": "1"}
    out = tmp_path / "azure.yaml"
    async with recording_server(recorder_config(origin, str(out))) as (url, handle):
        async with aiohttp.ClientSession() as http, http.ws_connect(
            url + "/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime", headers=headers, protocols=protocols
        ) as ws:
            assert ws.protocol == "realtime"
            assert (await ws.receive_json())["type"] == "session.created"
    (request,) = seen
    assert request.path == "/openai/realtime"
    assert dict(request.query) == {"api-version": "2025-04-01-preview", "deployment": "gpt-realtime"}
    assert {k: request.headers[k] for k in headers} == headers
    assert request.headers["Sec-WebSocket-Protocol"] == ",".join(protocols)
    recorded = _cassette.load(str(out))
    assert recorded.handshake.headers["api-key"] == "<redacted>" and recorded.handshake.headers["OpenAI-Beta"] == "realtime=v1"
    assert recorded.handshake.subprotocols == ["realtime", "openai-insecure-api-key.<redacted>", "openai-beta.realtime-v1"]
    assert recorded.model == "gpt-realtime" and recorded.dialect == "ga"  # the server's session.created decides


async def test_a_fixed_upstream_path_takes_every_connection_and_merges_the_query(fake_upstream, tmp_path, caplog):
    seen: list[web.Request] = []

    async def upstream(request: web.Request) -> web.WebSocketResponse:
        seen.append(request)
        ws = web.WebSocketResponse()  # chooses no subprotocol: neither does the recorder
        await ws.prepare(request)
        await ws.close()
        return ws

    origin = await fake_upstream(upstream)
    async with recording_server(recorder_config(origin + "/v1/realtime?intent=transcription", str(tmp_path / "t.yaml"))) as (url, _):
        protocols = ("realtime", f"openai-insecure-api-key.{KEY}")
        async with aiohttp.ClientSession() as http, http.ws_connect(url + "/c/anything/v1/realtime?model=m", protocols=protocols) as ws:
            assert ws.protocol is None
            await ws.receive()
    assert (seen[0].path, dict(seen[0].query)) == ("/v1/realtime", {"intent": "transcription", "model": "m"})
    # aiohttp logs the offered subprotocols when none is chosen; the recorder's filter scrubs the key
    assert "openai-insecure-api-key.<redacted>" in caplog.text and KEY not in caplog.text


async def test_what_the_upstream_sent_during_the_handshake_is_recorded_before_the_clients_first_event(fake_upstream, tmp_path, monkeypatch):
    async def upstream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(GA_CREATED)  # at once, as the real API does
        await ws.receive()
        return ws

    original = Relay.run

    async def late_run(self):  # both frames are waiting in buffers when relaying starts
        await asyncio.sleep(50 * MS)
        await original(self)

    monkeypatch.setattr(Relay, "run", late_run)
    origin = await fake_upstream(upstream)
    out = tmp_path / "order.yaml"
    async with recording_server(recorder_config(origin + "/v1/realtime", str(out))) as (url, handle):
        async with aiohttp.ClientSession() as http, http.ws_connect(url + "/v1/realtime") as ws:
            await ws.send_json({"type": "response.create"})  # a pipelining client: does not wait
            await ws.receive()
    assert [e.type for e in _cassette.load(str(out)).sessions[0].events] == ["session.created", "response.create"]


async def test_an_http_error_at_upgrade_is_relayed_with_its_status_and_body(fake_upstream, tmp_path):
    body = {"error": {"code": "OpperationNotSupported", "message": "The realtime operation does not work with the specified model"}}

    async def upstream(request: web.Request) -> web.Response:
        return web.json_response(body, status=400)

    origin = await fake_upstream(upstream)
    out = tmp_path / "refused.yaml"
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Authorization": f"Bearer {KEY}"}
    async with recording_server(recorder_config(origin + "/v1/realtime", str(out))) as (url, handle):
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(url + "/v1/realtime?model=gpt-realtime")
            assert info.value.status == 400
            async with http.get(url.replace("ws://", "http://") + "/v1/realtime", headers=upgrade) as response:
                assert (response.status, await response.json()) == (400, body)
    assert handle.saved_paths == [] and not out.exists()  # a refused upgrade is not a session


async def test_an_unreachable_upstream_is_a_502(tmp_path):
    async with recording_server(recorder_config("ws://127.0.0.1:9/v1/realtime", str(tmp_path / "x.yaml"))) as (url, _):
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(url + "/v1/realtime")
    assert info.value.status == 502


async def test_the_configured_api_key_replaces_the_clients_credentials(fake_upstream, tmp_path):
    seen: list[web.Request] = []

    async def upstream(request: web.Request) -> web.WebSocketResponse:
        seen.append(request)
        ws = web.WebSocketResponse(protocols=("realtime",))
        await ws.prepare(request)
        await ws.close()
        return ws

    origin = await fake_upstream(upstream)
    async with recording_server(recorder_config(origin + "/v1/realtime", str(tmp_path / "k.yaml"), upstream_api_key=KEY)) as (url, _):
        async with aiohttp.ClientSession() as http:
            for headers, protocols in (({"Authorization": "Bearer sk-test"}, ()), ({"api-key": "fake"}, ("realtime", "openai-insecure-api-key.fake"))):
                async with http.ws_connect(url + "/v1/realtime", headers=headers, protocols=protocols) as ws:
                    await ws.receive()
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert seen[1].headers["api-key"] == KEY and "Authorization" not in seen[1].headers
    assert seen[1].headers["Sec-WebSocket-Protocol"] == f"realtime,openai-insecure-api-key.{KEY}"
    assert KEY not in (tmp_path / "k.yaml").read_text()


# -- how sessions end ------------------------------------------------------------------------------


async def test_close_codes_and_reasons_are_relayed_and_recorded_from_either_side(fake_upstream, tmp_path):
    async def upstream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(GA_CREATED)
        if request.query.get("who") == "server":
            await ws.send_json({"type": "error", "event_id": None, "error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "Incorrect API key provided", "param": None, "event_id": None}})
            await ws.close(code=3000, message=b"invalid_request_error.invalid_api_key")
        else:
            await ws.receive()
            upstream_closes.append(ws.close_code)
        return ws

    upstream_closes: list[int | None] = []
    origin = await fake_upstream(upstream)
    out = tmp_path / "closes.yaml"
    async with recording_server(recorder_config(origin + "/v1/realtime", str(out))) as (url, handle):
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url + "/v1/realtime?who=server") as ws:
                await ws.receive()
                assert (await ws.receive_json())["type"] == "error"
                msg = await ws.receive()
                assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 3000, "invalid_request_error.invalid_api_key")
            async with http.ws_connect(url + "/v1/realtime?who=client") as ws:
                await ws.receive()
                await ws.close(code=4001, message=b"done here")
        await until(lambda: upstream_closes and len(handle.recorder.recordings) == 2 and not handle.recorder.recordings[1].open)
    assert upstream_closes == [4001]
    recorded = _cassette.load(str(out))
    assert [s.close for s in recorded.sessions] == [Close("server", 3000, "invalid_request_error.invalid_api_key"), Close("client", 4001, "done here")]
    assert [e.type for e in recorded.sessions[0].events] == ["session.created", "error"]


async def test_a_client_that_vanishes_leaves_a_valid_cassette(start_server, tmp_path):
    upstream = await start_server()
    out = tmp_path / "vanish.yaml"
    hello = BUNDLED.resolve("hello", "ga").sessions[0]
    first_cue = next(e.event for e in hello.events if e.direction is Direction.CLIENT)
    async with recording_server(recorder_config(f"{upstream.ws_url}/c/hello/v1/realtime", str(out))) as (url, handle):
        ws = await ws_connect(url + "/v1/realtime?model=gpt-realtime")
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(json.dumps(first_cue))
        await ws.recv()
        ws.transport.abort()  # no close frame: the TCP connection just goes
        await until(lambda: handle.saved_paths)
        await until(lambda: not upstream.state.connections[-1].open)
    session = _cassette.load(str(out)).sessions[0]
    assert session.close == Close("client", 1006, None, "client connection lost without a close frame")
    assert [e.type for e in session.events][:2] == ["session.created", "session.update"]
    assert upstream.state.connections[-1].close_code == 1001  # the recorder told the upstream it went away


async def test_an_upstream_that_drops_leaves_a_valid_cassette_and_the_client_gets_1014(fake_upstream, tmp_path):
    async def upstream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(GA_CREATED)
        await ws.receive()
        request.transport.abort()  # no close frame
        return ws

    origin = await fake_upstream(upstream)
    out = tmp_path / "drop.yaml"
    async with recording_server(recorder_config(origin + "/v1/realtime", str(out))) as (url, handle):
        async with aiohttp.ClientSession() as http, http.ws_connect(url + "/v1/realtime") as ws:
            await ws.receive()
            await ws.send_json({"type": "response.create"})
            msg = await ws.receive()
            assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1014, LOST_REASON)
        await until(lambda: handle.saved_paths)
    session = _cassette.load(str(out)).sessions[0]
    assert [e.type for e in session.events] == ["session.created", "response.create"]
    assert session.close == Close("server", 1014, LOST_REASON, "upstream connection lost without a close frame")


async def test_an_error_in_the_proxy_ends_the_session_with_1011_and_saves_it(start_server, tmp_path, monkeypatch):
    upstream = await start_server()
    original = SessionRecording.server_text
    calls = []

    def failing(self, text, now_ms):
        calls.append(text)
        if len(calls) == 3:
            raise RuntimeError("injected fault")
        original(self, text, now_ms)

    monkeypatch.setattr(SessionRecording, "server_text", failing)
    out = tmp_path / "fault.yaml"
    hello = BUNDLED.resolve("hello", "ga").sessions[0]
    async with recording_server(recorder_config(f"{upstream.ws_url}/c/hello/v1/realtime", str(out))) as (url, handle):
        async with aiohttp.ClientSession() as http, http.ws_connect(url + "/v1/realtime") as ws:
            for ev in hello.events:
                if ev.direction is Direction.CLIENT:
                    await ws.send_json(ev.event)
            received = []
            while (msg := await ws.receive()).type is WSMsgType.TEXT:
                received.append(json.loads(msg.data))
            assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1011, FAULT_REASON)
        await until(lambda: handle.saved_paths)
    session = _cassette.load(str(out)).sessions[0]
    assert [e.event for e in session.events if e.direction is Direction.SERVER] == received
    created, updated = server_events(hello)[:2]
    assert untag(received[0]) == created
    # the session.updated is made from the live session; here it says what the recording's said
    assert (received[1]["type"], untag(received[1])["session"]) == ("session.updated", updated["session"])
    assert session.close == Close("server", 1011, FAULT_REASON, "recorder error: RuntimeError: injected fault")


async def test_shutting_down_with_a_connection_open_records_it_ended_by_the_recorder(start_server, tmp_path):
    upstream = await start_server()
    out = tmp_path / "down.yaml"
    server = recording_server(recorder_config(f"{upstream.ws_url}/c/hello/v1/realtime", str(out)))
    url, handle = await server.__aenter__()
    try:
        http = aiohttp.ClientSession()
        ws = await http.ws_connect(url + "/v1/realtime")
        await ws.receive()
    finally:
        await server.__aexit__(None, None, None)
    msg = await ws.receive()
    await http.close()
    assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1001, SHUTDOWN_REASON)
    session = _cassette.load(str(out)).sessions[0]
    assert [e.type for e in session.events] == ["session.created"]
    assert session.close == Close("server", 1001, SHUTDOWN_REASON, "recorder shut down")


async def read_port(stream: asyncio.StreamReader) -> int:
    while True:
        line = (await asyncio.wait_for(stream.readline(), TIMEOUT_S)).decode()
        assert line, "mockrealtime record exited before listening"
        if "listening:" in line:
            return int(line.split("ws://", 1)[1].split()[0].rsplit(":", 1)[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_to_mockrealtime_record_saves_the_open_session(start_server, tmp_path, sig):
    upstream = await start_server()
    out = tmp_path / "signalled.yaml"
    hello = BUNDLED.resolve("hello", "ga").sessions[0]
    first_cue = next(e.event for e in hello.events if e.direction is Direction.CLIENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mockrealtime", "record", "-v", "--output", str(out),
        "--upstream", f"{upstream.ws_url}/c/hello/v1/realtime", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    try:
        port = await read_port(proc.stdout)
        async with aiohttp.ClientSession() as http, http.ws_connect(
            f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", headers={"Authorization": f"Bearer {KEY}"}
        ) as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            await ws.send_json(first_cue)
            assert (await ws.receive_json())["type"] == "session.updated"
            proc.send_signal(sig)
            while (msg := await ws.receive(timeout=TIMEOUT_S)).type is WSMsgType.TEXT:
                pass
            assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1001, SHUTDOWN_REASON)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert f"saved {out}" in stdout.decode()
    assert KEY.encode() not in stdout + stderr
    session = _cassette.load(str(out)).sessions[0]
    assert [e.type for e in session.events][:3] == ["session.created", "session.update", "session.updated"]
    assert session.close == Close("server", 1001, SHUTDOWN_REASON, "recorder shut down")


# -- secrets -------------------------------------------------------------------------------------


def all_bytes(directory) -> bytes:
    blob = b""
    for base, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(base, name), "rb") as f:
                blob += f.read()
    return blob


async def test_no_key_reaches_any_file_written_or_the_log(start_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    upstream_dir, out_dir = tmp_path / "upstream", tmp_path / "out"
    created = {"type": "session.created", "event_id": "event_e1", "session": {
        "type": "realtime", "object": "realtime.session", "model": "gpt-realtime",
        "client_secret": {"value": EPHEMERAL, "expires_at": 1756888000}}}
    events = [RecordedEvent.make("server", 0, created),
              RecordedEvent.make("client", 5, {"type": "response.create"}),
              RecordedEvent.make("server", 6, {"type": "response.done", "event_id": "event_e2", "response": {"id": "resp_1", "status": "completed", "output": []}})]
    save(Cassette("eph", "ga", [Session(events, Close("client", 1000, ""))]), str(upstream_dir / "eph.yaml"))
    upstream = await start_server(cassettes=str(upstream_dir))
    out = out_dir / "eph.yaml"
    async with recording_server(recorder_config(upstream.ws_url, str(out))) as (url, handle):
        client = AsyncOpenAI(api_key=KEY, organization=ORG, project="proj_RecorderTest", websocket_base_url=url + "/c/eph/v1")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"
            await conn.response.create()
            assert (await conn.recv()).type == "response.done"
        async with aiohttp.ClientSession() as http, http.ws_connect(
            url + f"/c/eph/v1/realtime?model=gpt-realtime&api-key={KEY2}",
            headers={"api-key": KEY2}, protocols=("realtime", f"openai-insecure-api-key.{KEY2}"),
        ) as ws:
            assert EPHEMERAL in (await ws.receive()).data  # relayed untouched to the client
    written = all_bytes(out_dir)
    assert len(_cassette.load(str(out)).sessions) == 2
    # the server side's logs (the test's own websockets client logs its headers at DEBUG)
    server_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("mockrealtime", "aiohttp")))
    for secret in (KEY, KEY2, EPHEMERAL, ORG):
        assert secret.encode() not in written, secret
        assert secret not in server_log, secret
    assert "connection 2" in server_log and "> 2 session.created" in server_log  # the log did run at DEBUG


async def test_a_key_left_in_a_payload_refuses_the_save_and_says_where(start_server, tmp_path, caplog):
    upstream = await start_server()
    out_dir = tmp_path / "out"
    hello = BUNDLED.resolve("hello", "ga").sessions[0]
    first_cue = next(e.event for e in hello.events if e.direction is Direction.CLIENT)
    leaky = {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"my key is {KEY}"}]}}
    with pytest.raises(SecretLeftError) as info:
        # no checkpoint: the session is saved once, when it ends, and refused as a whole
        async with recording_server(recorder_config(f"{upstream.ws_url}/c/hello/v1/realtime", str(out_dir / "leak.yaml"), checkpoint_s=600)) as (url, handle):
            async with aiohttp.ClientSession() as http, http.ws_connect(url + "/v1/realtime", headers={"Authorization": f"Bearer {KEY}"}) as ws:
                await ws.receive()
                await ws.send_json(first_cue)
                await ws.send_json(leaky)
                await ws.receive()
    assert ("$.sessions[0].events[2].client.item.content[0].text", "an OpenAI API key (sk-...)") in info.value.findings
    assert ("$.sessions[0].events[2].client.item.content[0].text", "a credential used in this recording") in info.value.findings
    assert KEY not in str(info.value) and KEY not in caplog.text
    assert "refusing to save" in caplog.text
    assert os.listdir(out_dir) == []

    async with recording_server(recorder_config(f"{upstream.ws_url}/c/hello/v1/realtime", str(out_dir / "leak.yaml"),
                                             redact_patterns=(r"sk-[A-Za-z0-9_-]+",))) as (url, handle):
        async with aiohttp.ClientSession() as http, http.ws_connect(url + "/v1/realtime", headers={"Authorization": f"Bearer {KEY}"}) as ws:
            await ws.receive()
            await ws.send_json(first_cue)
            await ws.send_json(leaky)
            await ws.receive()
    assert KEY.encode() not in all_bytes(out_dir)
    assert "my key is <redacted>" in (out_dir / "leak.yaml").read_text()


async def test_healthz_and_plain_http(tmp_path):
    async with recording_server(recorder_config("wss://api.openai.com/v1/realtime", str(tmp_path / "h.yaml"))) as (url, _):
        async with aiohttp.ClientSession() as http:
            async with http.get(url.replace("ws://", "http://") + "/healthz") as response:
                assert (await response.json())["upstream"] == "wss://api.openai.com/v1/realtime"
            async with http.get(url.replace("ws://", "http://") + "/v1/realtime") as response:
                assert response.status == 426
