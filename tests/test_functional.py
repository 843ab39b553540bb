"""End to end over real loopback sockets: the official openai SDK (GA and beta) against mockrealtime."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
from openai import AsyncOpenAI

from mockrealtime.core.cassette import load
from mockrealtime.core.events import Direction
from mockrealtime.core.library import CassetteLibrary

from oracle import server_event_errors
from replay_compare import IdBook, assert_same_replay, needs, recorded_ids, untag
from seed_tools import FLAT_TOOL

TIMEOUT_S = 10
BUNDLED = CassetteLibrary()
CASES = [(entry["name"], dialect) for entry in BUNDLED.available() for dialect in entry["dialects"]]


def sdk_connect(server, name: str | None, dialect: str, model: str = "gpt-realtime"):
    client = AsyncOpenAI(api_key="sk-test-not-a-key", websocket_base_url=server.base_url(name))
    if dialect == "beta":
        return client.beta.realtime.connect(model=model)
    return client.realtime.connect(model=model)


async def recv(conn) -> dict:
    raw = await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S)
    return json.loads(raw)


async def recv_until(conn, type_: str) -> list[dict]:
    out = []
    while True:
        event = await recv(conn)
        out.append(event)
        if event["type"] == type_:
            return out


@pytest.mark.parametrize(("name", "dialect"), CASES, ids=[f"{n}-{d}" for n, d in CASES])
async def test_every_bundled_cassette_replays_exactly_through_the_sdk(server, name, dialect):
    """Sending the recorded client events gets the recorded model output back, field for field, with
    this connection's fresh ids; the answers to housekeeping are made from the live session."""
    cassette = BUNDLED.resolve(name, dialect)
    session = cassette.sessions[0]
    expected = [e.event for e in session.events if e.direction is Direction.SERVER]
    ids = recorded_ids(expected)
    book = IdBook()
    received = []
    async with sdk_connect(server, name, dialect, cassette.model or "gpt-realtime") as conn:

        async def take() -> None:
            raw = await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S)
            parsed = conn.parse_event(raw)
            event = json.loads(raw)
            assert parsed.type == event["type"]
            assert server_event_errors(event, dialect) == []
            book.learn(event)
            received.append(event)

        for ev in session.events:
            if ev.direction is Direction.CLIENT:
                while needs(ev.event, ids, book):  # a call_id or item id the client must first receive
                    await take()
                await conn.send(book.send(ev.event))
        while len(received) < len(expected):
            await take()
    assert_same_replay(received, expected)
    assert all(untag(e) != e for e in received if "event_id" in e and e["type"] != "error"), "every id is fresh"
    await _wait_closed(server)
    report = server.state.connections[-1]
    assert (report.dialect, report.engine.divergences, report.engine.unplayed()) == (dialect, [], [])


async def _wait_closed(server) -> None:
    for _ in range(200):
        if not server.state.connections[-1].open:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server never saw the connection close")




@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_function_call_round_trip_as_a_real_client_runs_it(server, dialect):
    """The client reads the call from the stream, runs the tool, answers with the server's call_id."""
    session = {"tools": [FLAT_TOOL], "instructions": "You are an email assistant."}
    if dialect == "ga":
        session["type"] = "realtime"
    async with sdk_connect(server, "function_call", dialect) as conn:
        assert (await recv(conn))["type"] == "session.created"
        await conn.session.update(session=session)
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How many emails do I have?"}]}
        )
        await conn.response.create()
        first = await recv_until(conn, "response.done")
        deltas = "".join(e["delta"] for e in first if e["type"] == "response.function_call_arguments.delta")
        (done,) = [e for e in first if e["type"] == "response.function_call_arguments.done"]
        assert json.loads(deltas) == json.loads(done["arguments"]) == {"numEmails": 1}
        call = first[-1]["response"]["output"][0]
        assert (call["type"], call["name"], call["call_id"]) == ("function_call", "list_emails", done["call_id"])
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call["call_id"], "output": json.dumps({"total": 3})}
        )
        await conn.response.create()
        follow_up = await recv_until(conn, "response.done")
    transcript_type = "response.output_audio_transcript.delta" if dialect == "ga" else "response.audio_transcript.delta"
    audio_type = "response.output_audio.delta" if dialect == "ga" else "response.audio.delta"
    assert "".join(e["delta"] for e in follow_up if e["type"] == transcript_type)
    assert sum(len(base64.b64decode(e["delta"])) for e in follow_up if e["type"] == audio_type) > 48_000  # > 1 s
    assert follow_up[-1]["response"]["status"] == "completed"
    assert not [e for e in first + follow_up if e["type"] == "error"]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_function_call_output_without_call_id_gets_the_real_error(server, dialect):
    session = {"tools": [FLAT_TOOL]} | ({"type": "realtime"} if dialect == "ga" else {})
    async with sdk_connect(server, "missing_call_id", dialect) as conn:
        await recv(conn)
        await conn.session.update(session=session)
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How many emails?"}]})
        await conn.response.create()
        await recv_until(conn, "response.done")
        await conn.send({"type": "conversation.item.create", "event_id": "evt_mine_1", "item": {"type": "function_call_output", "output": "{}"}})
        error = (await recv_until(conn, "error"))[-1]
        await conn.response.create()
        silent = await recv_until(conn, "response.done")
    assert error["type"] == "error"
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "missing_required_parameter",
        "message": "Missing required parameter: 'item.call_id'.",
        "param": "item.call_id",
        "event_id": "evt_mine_1",
    }
    audio_type = "response.output_audio.delta" if dialect == "ga" else "response.audio.delta"
    assert not [e for e in silent if e["type"] == audio_type]


async def test_chat_completions_tools_are_rejected_and_audio_stays_pcm16(server):
    """The seed's Twilio bridge: a failed session.update leaves the formats at 24 kHz pcm16."""
    async with sdk_connect(server, "chat_completions_tools", "beta", "gpt-4o-realtime-preview-2024-12-17") as conn:
        created = await recv(conn)
        await conn.send({
            "type": "session.update",
            "event_id": "evt_session_1",
            "session": {
                "input_audio_format": "g711_ulaw",
                "output_audio_format": "g711_ulaw",
                "tools": [{"type": "function", "function": {"name": "list_emails", "description": "d", "parameters": {"type": "object"}}}],
            },
        })
        error = (await recv_until(conn, "error"))[-1]
        assert error["error"]["code"] == "unknown_parameter"
        assert error["error"]["param"] == "session.tools[0].function"
        assert error["error"]["event_id"] == "evt_session_1"
    assert created["session"]["output_audio_format"] == "pcm16"
    report = server.state.connections[-1]
    assert report.engine.divergences == []


async def test_turn_detected_when_the_user_speaks_over_the_assistant(server):
    """Microphone audio streamed in 20 ms chunks drives server VAD; barge-in cancels the response."""
    chunk = base64.b64encode(b"\x00\x01" * 480).decode()
    seen: list[dict] = []
    async with sdk_connect(server, "turn_detected", "ga") as conn:
        await recv(conn)
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}})

        async def listen():
            while True:
                event = await recv(conn)
                seen.append(event)
                if event["type"] == "response.done" and event["response"]["status"] == "cancelled":
                    return event

        listener = asyncio.create_task(listen())
        for _ in range(250):  # 5 s of microphone, more than the recording needs to reach barge-in
            if listener.done():
                break
            await conn.input_audio_buffer.append(audio=chunk)
            await asyncio.sleep(0)
        cancelled = await asyncio.wait_for(listener, TIMEOUT_S)
    types = [e["type"] for e in seen]
    assert types.count("input_audio_buffer.speech_started") == 2
    assert types.index("response.created") < len(types) - 1
    assert cancelled["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}


# -- handshake ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/realtime", "/realtime", "/openai/realtime", "/openai/v1/realtime", "/c/hello", "/c/hello/v1", "/c/hello/v1/realtime"])
async def test_upgrade_is_accepted_on_the_realtime_and_azure_paths(server, path):
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + path + "?model=gpt-realtime&api-version=2025-04-01-preview") as ws:
        assert json.loads((await ws.receive()).data)["type"] == "session.created"


async def test_the_realtime_subprotocol_is_selected_and_the_beta_one_picks_beta(server):
    protocols = ("realtime", "openai-insecure-api-key.sk-test", "openai-beta.realtime-v1")
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/v1/realtime", protocols=protocols) as ws:
        assert ws.protocol == "realtime"
        await ws.receive()
    assert server.state.connections[-1].dialect == "beta"


async def test_the_cassette_header_chooses_the_cassette(server):
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/v1/realtime", headers={"X-Mockrealtime-Cassette": "function_call"}) as ws:
        await ws.receive()
    assert server.state.connections[-1].cassette.endswith("function_call.yaml")


async def test_an_unknown_cassette_is_refused_with_the_list_of_available_ones(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.http_url + "/c/nope/v1/realtime") as response:
            body = await response.json()
        assert response.status == 404
        assert body["error"]["code"] == "cassette_not_found"
        assert "'nope'" in body["error"]["message"] and "function_call" in body["error"]["message"]
        async with http.get(server.http_url + "/c/..%2F..%2Fetc%2Fpasswd/v1/realtime") as response:
            assert response.status == 404


async def test_an_unknown_cassette_in_a_url_is_logged_with_the_closest_names(server, caplog):
    async with aiohttp.ClientSession() as http, http.get(server.http_url + "/c/functoin_call/v1/realtime") as response:
        body = await response.json()
    assert response.status == 404
    assert body["error"]["closest"][0] == "function_call"  # the closest first
    assert "did you mean 'function_call'" in body["error"]["message"]
    assert "no cassette 'functoin_call' for /c/functoin_call/v1/realtime; did you mean function_call" in caplog.text


async def test_a_cassette_missing_in_the_clients_dialect_is_refused(start_server, tmp_path):
    (tmp_path / "only_ga.yaml").write_text("version: 1\ndialect: ga\nsessions:\n- events: []\n")
    server = await start_server(cassettes=str(tmp_path))
    async with aiohttp.ClientSession() as http:
        async with http.get(server.http_url + "/c/only_ga/v1/realtime", headers={"OpenAI-Beta": "realtime=v1"}) as response:
            body = await response.json()
    assert response.status == 404
    assert "exists only in the ga dialect, the client speaks beta" in body["error"]["message"]


async def test_healthz_and_plain_http_get(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.http_url + "/healthz") as response:
            assert response.status == 200
            assert "hello" in (await response.json())["cassettes"]
        async with http.get(server.http_url + "/v1/realtime") as response:
            assert response.status == 426
        async with http.get(server.http_url + "/elsewhere") as response:
            assert response.status == 404


async def test_permessage_deflate_is_declined(server):
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/v1/realtime", compress=15) as ws:
        assert ws.compress == 0
        await ws.receive()


# -- bad input ----------------------------------------------------------------------------------


async def test_bad_frames_get_error_events_and_the_session_goes_on(start_server):
    server = await start_server(max_frame_bytes=1000)
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/v1/realtime") as ws:
        await ws.receive()
        await ws.send_str("{not json")
        await ws.send_bytes(b"\x00\x01")
        await ws.send_str(json.dumps({"type": "scooby.dooby.doo", "event_id": "my_awesome_event"}))
        errors = [json.loads((await ws.receive()).data) for _ in range(3)]
        assert [e["error"]["code"] for e in errors] == ["invalid_json", "invalid_event", "invalid_value"]
        assert errors[2]["error"]["event_id"] == "my_awesome_event"
        assert errors[2]["error"]["param"] == "type"
        for e in errors:
            assert server_event_errors(e, "ga") == []
        # still serving the cassette
        await ws.send_str(json.dumps(load(BUNDLED.resolve("hello", "ga").path).sessions[0].events[1].event))
        assert json.loads((await ws.receive()).data)["type"] == "session.updated"


async def test_an_oversized_frame_gets_an_error_then_close_1009_and_spares_the_neighbours(start_server):
    """The WebSocket reader refuses the frame from its header (nothing is buffered); the client
    gets the API-shaped error first, then 1009; other connections replay on."""
    server = await start_server(max_frame_bytes=1000)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(server.ws_url + "/c/hello/v1/realtime") as neighbour, \
            http.ws_connect(server.ws_url + "/v1/realtime") as ws:
        await neighbour.receive()
        await ws.receive()
        exact = json.dumps({"type": "input_audio_buffer.append", "audio": ""})
        await ws.send_str(exact[:-2] + "A" * (1000 - len(exact)) + '"}')  # exactly the limit: accepted
        assert json.loads((await ws.receive()).data)["error"]["code"] == "invalid_value"  # not base64, but read
        await ws.send_str(json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA" * 500}))
        error = json.loads((await ws.receive()).data)
        assert error["error"]["code"] == "message_too_large" and "1000-byte limit" in error["error"]["message"]
        assert server_event_errors(error, "ga") == []
        closing = await ws.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1009
        await neighbour.send_str(json.dumps(load(BUNDLED.resolve("hello", "ga").path).sessions[0].events[1].event))
        assert json.loads((await neighbour.receive()).data)["type"] == "session.updated"


async def test_a_divergence_is_answered_with_a_mismatch_error_and_reported(server):
    async with sdk_connect(server, "hello", "ga") as conn:
        await recv(conn)
        await conn.send({"type": "response.create", "event_id": "evt_early"})
        error = await recv(conn)
    assert server_event_errors(error, "ga") == []
    assert error["error"]["code"] == "cassette_mismatch"
    assert error["error"]["event_id"] == "evt_early"
    # the state the model would see differs from the recording's: no tools, no user message yet
    assert "differing: " in error["error"]["message"] and "conversation.items" in error["error"]["message"]
    await _wait_closed(server)
    report = server.state.connections[-1].to_dict()
    assert report["divergences"][0]["received"]["type"] == "response.create"
    assert report["unplayed"][0] == {"event_index": 3, "direction": "client", "type": "response.create"}


async def test_open_connections_are_closed_with_1001_on_shutdown(start_server):
    server = await start_server()
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/v1/realtime") as ws:
        await ws.receive()
        await server.app.shutdown()
        msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1001
