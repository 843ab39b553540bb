"""Every frame a client can send gets an ``error`` event or a valid answer, and the session stays
open: nothing reaches the engine that it cannot read, nothing costs a traceback, and nothing the
server sends back is non-standard JSON."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest

from mockrealtime.protocol import ClientEventValidator, parse_client_frame
from mockrealtime.protocol.frames import MAX_DEPTH
from tests.oracle import server_event_errors

SURROGATE = '{"type":"conversation.item.create","event_id":"\\ud800","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"\\udc00"}]}}'


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        pytest.param(SURROGATE, "lone surrogate in hex escape at line 1 column 48.", id="lone-surrogate"),
        pytest.param('{"type":"\\ud800"}', "lone surrogate in hex escape at line 1 column 10.", id="surrogate-type"),
        pytest.param("[" * 100_000 + "]" * 100_000, "recursion limit exceeded.", id="nesting-past-the-scanner"),
        pytest.param('{"a":' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", "recursion limit exceeded.", id="nesting-past-the-limit"),
        pytest.param('{"type":"session.update","session":{"temperature":1e999}}', "number out of range.", id="1e999"),
        pytest.param('{"type":"session.update","session":{"temperature":-1e999}}', "number out of range.", id="-1e999"),
        pytest.param('{"a":' + "9" * 400 + "}", "number out of range.", id="int-past-a-double"),
        pytest.param('{"a":Infinity}', "", id="Infinity"),
    ],
)
def test_frames_python_reads_but_nothing_downstream_can_carry_are_invalid_json(frame: str, reason: str) -> None:
    event, error = parse_client_frame(frame)
    assert event is None and error is not None
    assert (error.code, error.param) == ("invalid_json", None)
    assert error.message == ("Invalid event: failed to parse JSON value. " + reason).rstrip()


@pytest.mark.parametrize(
    "frame",
    [
        '{"a":"\\ud83d\\ude00"}',  # an escaped pair is a character
        '{"a":"\\\\ud800"}',  # an escaped backslash, then text
        '{"a":' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}",
        '{"a":1e300,"b":' + "9" * 300 + "}",
    ],
)
def test_frames_at_the_edge_parse(frame: str) -> None:
    assert parse_client_frame(frame)[1] is None


@pytest.mark.parametrize("dialect", ["ga", "beta"])
@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "input_audio_buffer.append", "audio": "!!not base64"},
         ("invalid_value", "Invalid 'audio'. Expected base64-encoded audio bytes (mono PCM16 at 24kHz) but got an invalid value.", "audio.audio")),
        ({"type": "input_audio_buffer.append", "audio": "AAA"},
         ("invalid_value", "Invalid 'audio'. Expected base64-encoded audio bytes (mono PCM16 at 24kHz) but got an invalid value.", "audio.audio")),
        ({"type": "input_audio_buffer.append", "audio": ""},
         ("invalid_value", "Invalid 'audio'. Expected base64-encoded audio bytes (mono PCM16 at 24kHz) but got empty bytes.", "audio.audio")),
        ({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": "%%"}]}},
         ("invalid_value", "Invalid 'item.content[0].audio'. Expected base64-encoded audio bytes (mono PCM16 at 24kHz) but got an invalid value.", "item.content[0].audio")),
        ({"type": "response.create", "response": "x"},
         ("invalid_type", "Invalid type for 'response': expected an object, but got a string instead.", "response")),
        ({"type": "conversation.item.create", "item": [1]},
         ("invalid_type", "Invalid type for 'item': expected an object, but got an array instead.", "item")),
        ({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": {"type": "input_text"}}},
         ("invalid_type", "Invalid type for 'item.content': expected an array, but got an object instead.", "item.content")),
        ({"type": ["session.update"]},
         ("invalid_type", "Invalid type for 'type': expected a string, but got an array instead.", "type")),
    ],
)
def test_payload_and_type_errors(dialect: str, event: dict[str, Any], expected: tuple[str, str, str]) -> None:
    error = ClientEventValidator(dialect).validate(event)
    assert error is not None
    assert (error.code, error.message, error.param) == expected


def test_a_wrong_type_is_never_excused_by_the_recording_even_without_validation() -> None:
    bad = {"type": "response.create", "bogus": 1, "response": "x"}  # unknown_parameter is reported first
    validator = ClientEventValidator("ga")
    assert validator.validate(bad).code == "unknown_parameter"  # type: ignore[union-attr]
    assert validator.admit(bad, lambda event: True) is not None
    lenient = ClientEventValidator("ga", schema=False)
    assert lenient.admit(bad, lambda event: False).code == "invalid_type"  # type: ignore[union-attr]
    assert lenient.admit({"type": "response.create", "bogus": 1}, lambda event: False) is None
    missing_call_id = {"type": "conversation.item.create", "item": {"type": "function_call_output", "output": "{}"}}
    assert validator.admit(missing_call_id, lambda event: True) is None  # the recording shows the API's answer


# -- over a socket ----------------------------------------------------------------------------

FRAMES = [
    SURROGATE,
    "[" * 100_000 + "]" * 100_000,
    '{"type":"response.create","response":' + '{"a":' * 5000 + "1" + "}" * 5000 + "}",
    '{"type":"response.create","response":"x"}',
    '{"type":"response.create","bogus":1,"response":[1]}',
    '{"type":"conversation.item.create","item":"x"}',
    '{"type":"conversation.item.create","item":{"type":"message","role":"user","content":{"a":1}}}',
    '{"type":"session.update","session":{"type":"realtime","instructions":1e999}}',
    '{"type":"session.update","session":{"type":"realtime","temperature":NaN}}',
    '{"type":"input_audio_buffer.append","audio":"!!!not base64"}',
    '{"type":"input_audio_buffer.append","audio":"AAA"}',
    '{"type":"conversation.item.truncate","item_id":"x","content_index":' + "9" * 5000 + ',"audio_end_ms":1}',
]


@pytest.mark.parametrize("validate", [True, False], ids=["validate", "no-validate"])
@pytest.mark.parametrize("cassette", ["hello", "function_call"])
async def test_every_bad_frame_gets_an_error_and_the_session_goes_on(start_server, caplog, cassette: str, validate: bool) -> None:
    server = await start_server(validate=validate)
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(f"{server.ws_url}/c/{cassette}/v1/realtime", max_msg_size=0) as ws:
        assert json.loads((await ws.receive()).data)["type"] == "session.created"
        for frame in FRAMES:
            if not validate and "input_audio_buffer.append" in frame:
                continue  # audio is checked with the schemas; an append's answer is silence
            await ws.send_str(frame)
            msg = await ws.receive(timeout=10)
            assert msg.type is aiohttp.WSMsgType.TEXT, (frame[:60], msg)
            answer = json.loads(msg.data)
            assert answer["type"] == "error", (frame[:60], answer)
            assert server_event_errors(answer, "ga") == []
        # the session is still the cassette's
        await ws.send_str('{"type":"session.update","session":{"type":"realtime"}}')
        answer = json.loads((await ws.receive(timeout=10)).data)
        assert answer["type"] == "session.updated"
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


async def test_a_text_frame_that_is_not_utf8_gets_an_error_then_1007(start_server) -> None:
    """RFC 6455 makes the server fail the connection (1007); the client still learns why first."""
    import asyncio

    from websockets.asyncio.client import connect

    server = await start_server()
    async with connect(f"{server.ws_url}/v1/realtime", proxy=None) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # session.created
        await ws.send(b'{"type":"\xff"}', text=True)
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error["error"]["code"] == "invalid_json" and "not valid UTF-8" in error["error"]["message"]
        assert server_event_errors(error, "ga") == []
        await asyncio.wait_for(ws.wait_closed(), 10)
    assert ws.close_code == 1007


HANDSHAKES = [
    ("/c/%F0%9F%98%80/v1/realtime", {}),
    ("/c/%00/v1/realtime", {}),
    ("/c/" + "a" * 5000 + "/v1/realtime", {}),
    ("/v1/realtime", {"X-Mockrealtime-Cassette": "\u00e9"}),
    ("/v1/realtime", {"Sec-WebSocket-Protocol": ",,, ,"}),
    ("/v1/realtime?model=" + "x" * 3000 + "&intent=%ff", {}),
    ("/v1/realtime", {"Origin": "http://[::1"}),
    ("/v1/realtime", {"Origin": "%%%"}),
    ("/v1/realtime", {"Authorization": "Bearer"}),
]


@pytest.mark.parametrize(("path", "headers"), HANDSHAKES)
async def test_an_odd_handshake_gets_an_answer_never_a_traceback(server, caplog, path: str, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(server.ws_url + path, headers=headers) as ws:
                assert (await ws.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status in (400, 403, 404)
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
