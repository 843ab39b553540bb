"""Property-based fuzzing of client frames, in both dialects (Hypothesis, bounded for CI).

The property: every frame a client can send gets an ``error`` event or a valid answer (every server
event standard JSON and valid for the openai package's models), never a close without an error, and
a neighbour connection's replay is unaffected. Two layers:

* sans-IO, for volume: parse, admit, the replay engine, and every frame it queues;
* a real loopback socket against one module-scoped server: after each fuzzed frame the client sends
  a *sentinel* (an unknown event type, always answered with an ``error`` naming its ``event_id``),
  so everything received before the sentinel's error is the answer to the fuzzed frame, and a
  frame that got no answer at all (a valid append) is told apart from a hung session.

Frames are recorded client events of the bundled cassettes with one value replaced somewhere, or
raw text built to hit the parser's edges (lone surrogates, deep nesting, 1e999, bad base64).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from mockrealtime.config import ServerConfig
from mockrealtime.core.engine import ReplaySession
from mockrealtime.core.events import AUDIO_APPEND, Direction
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.protocol import CLIENT_EVENT_TYPES, ClientEventValidator, parse_client_frame
from mockrealtime.testing.runner import BackgroundServer
from tests.oracle import server_event_errors
from tests.replay_compare import IdBook

BUNDLED = CassetteLibrary()
CASSETTES = ("hello", "function_call", "missing_call_id")
#: 200 examples per case in CI; MOCKREALTIME_FUZZ_EXAMPLES=5000 for a longer hunt.
FUZZ = settings(max_examples=int(os.environ.get("MOCKREALTIME_FUZZ_EXAMPLES", "200")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TIMEOUT_S = 10


def _recorded(dialect: str) -> list[dict[str, Any]]:
    events = []
    for name in CASSETTES:
        for ev in BUNDLED.resolve(name, dialect).sessions[0].events:
            if ev.direction is Direction.CLIENT and ev.type != AUDIO_APPEND:
                events.append(ev.event)
    return events


RECORDED = {dialect: _recorded(dialect) for dialect in ("ga", "beta")}

# -- strategies ---------------------------------------------------------------------------------

# Text a client can put in a frame: any code point but a raw surrogate (not encodable as UTF-8;
# escaped ones come from HOSTILE_TEXT below).
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), _text,
    st.sampled_from(["", "AAAA", "!!", "function_call", "message", "user", "auto", "realtime", "input_audio"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: _replace(node[head], rest, value)}
    copy = list(node)
    copy[head] = _replace(copy[head], rest, value)
    return copy


@st.composite
def mutated_event(draw: st.DrawFn, dialect: str) -> str:
    """A recorded client event with one value (or a new key's) replaced by arbitrary JSON."""
    event = draw(st.sampled_from(RECORDED[dialect]))
    choice = draw(st.integers(0, 3))
    if choice == 0:  # a new key somewhere
        event = {**event, draw(st.sampled_from(["response", "item", "session", "audio", "bogus", "event_id"])): draw(_json)}
    elif choice == 1:  # a type from the catalogue with arbitrary fields
        event = {"type": draw(st.sampled_from(sorted(CLIENT_EVENT_TYPES[dialect]))), **draw(st.dictionaries(_text, _json, max_size=3))}
    else:
        path = draw(st.sampled_from(_paths(event)[1:] or [()]))
        event = _replace(event, path, draw(_json))
    if not isinstance(event, dict):
        event = {"type": event}
    return json.dumps(event)


HOSTILE_TEXT = st.one_of(
    st.sampled_from([
        '{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"\\ud800"}]}}',
        '{"type":"\\udfff"}',
        '{"type":"session.update","session":{"type":"realtime","temperature":1e999}}',
        '{"type":"input_audio_buffer.append","audio":"%%%"}',
        '{"type":"input_audio_buffer.append","audio":""}',
        '{"type":"response.create","response":' + "[" * 500 + "]" * 500 + "}",
        "[" * 5000,
        '{"type":"response.create","response":NaN}',
        "",
        "null",
    ]),
    _text,
    _json.map(json.dumps),
)


def frames(dialect: str) -> st.SearchStrategy[str]:
    return st.one_of(mutated_event(dialect), HOSTILE_TEXT)


def _strict_json(text: str) -> dict[str, Any]:
    def refuse(name: str) -> Any:
        raise AssertionError(f"non-standard JSON sent: {name}")

    text.encode("utf-8")  # a lone surrogate would fail here, as it does in aiohttp's send_str
    event = json.loads(text, parse_constant=refuse)
    assert isinstance(event, dict)
    return event


# -- sans-IO, for volume ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
@pytest.mark.parametrize("schema", [True, False], ids=["validate", "no-validate"])
@FUZZ
@given(data=st.data())
def test_the_engine_never_sees_a_frame_it_cannot_answer(dialect: str, schema: bool, data: st.DataObject) -> None:
    cassette = BUNDLED.resolve(data.draw(st.sampled_from(CASSETTES)), dialect)
    validator = ClientEventValidator(dialect, schema=schema)
    engine = ReplaySession(cassette, validator=validator)  # the engine parses and validates (sans-IO)
    engine.start(0.0)
    engine.pop_due(0.0)
    for now in range(1, data.draw(st.integers(1, 4)) + 1):
        frame = data.draw(frames(dialect))
        event, error = parse_client_frame(frame)
        if error is None:
            error = validator.admit(event, lambda e: False)  # type: ignore[arg-type]
        engine.feed(frame, float(now))
        sent = engine.pop_due(math.inf)
        if error is not None:
            assert sent, frame
        for out in sent:
            assert isinstance(out, str), f"a close after {frame[:80]!r}"
            event = _strict_json(out)
            if schema:  # without validation, an invalid event may get an invalid answer: never a crash
                assert server_event_errors(event, dialect) == [], out[:200]


# -- over a real socket -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server():
    with BackgroundServer(ServerConfig(port=0)) as server:
        yield server


def _open(server: BackgroundServer, cassette: str, dialect: str):
    headers = {"OpenAI-Beta": "realtime=v1"} if dialect == "beta" else {}
    ws = connect(f"{server.ws_url}/c/{cassette}/v1/realtime", additional_headers=headers, max_size=None,
                 open_timeout=TIMEOUT_S, proxy=None)
    connected = _answer(ws, None, -1)  # what the server sends on connect (beta: conversation.created too)
    assert connected[0]["type"] == "session.created"
    return ws


def _answer(ws: Any, frame: str | None, serial: int) -> list[dict[str, Any]]:
    """What the server sent for ``frame``: everything before the sentinel's error."""
    sentinel = f"fuzz_sentinel_{serial}"
    if frame is not None:
        ws.send(frame)
    ws.send(json.dumps({"type": "mockrealtime.fuzz.sentinel", "event_id": sentinel}))
    got = []
    while True:
        event = _strict_json(ws.recv(timeout=TIMEOUT_S))  # a close raises: a close without an error
        if event["type"] == "error" and event["error"]["event_id"] == sentinel:
            return got
        got.append(event)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
@FUZZ
@given(data=st.data())
def test_every_frame_over_a_socket_gets_an_error_or_a_valid_answer(fuzz_server, dialect: str, data: st.DataObject) -> None:
    ws = _open(fuzz_server, data.draw(st.sampled_from(CASSETTES)), dialect)
    try:
        for serial in range(data.draw(st.integers(1, 3))):
            frame = data.draw(frames(dialect))
            answer = _answer(ws, frame, serial)
            for event in answer:
                assert server_event_errors(event, dialect) == [], (frame[:80], event)
            if parse_client_frame(frame)[1] is not None:
                assert [e["type"] for e in answer] == ["error"], frame[:80]
    finally:
        ws.close()


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_neighbour_replays_undisturbed_while_fuzz_runs(fuzz_server, dialect: str) -> None:
    """The function_call round trip on one connection, with fuzzed frames on another in between."""
    neighbour = _open(fuzz_server, "function_call", dialect)
    noisy = _open(fuzz_server, "function_call", dialect)
    hostile = [
        '{"type":"\\ud800"}', "[" * 5000, '{"type":"response.create","response":"x"}',
        '{"type":"input_audio_buffer.append","audio":"%"}', '{"type":"session.update","session":{"x":1e999}}',
    ]
    try:
        cues = [ev.event for ev in BUNDLED.resolve("function_call", dialect).sessions[0].events
                if ev.direction is Direction.CLIENT and ev.type != AUDIO_APPEND]
        book = IdBook()  # each connection has fresh ids: the neighbour answers the call_id it was given
        for serial, cue in enumerate(cues):
            for frame in hostile:
                assert _answer(noisy, frame, serial)[0]["type"] == "error"
            answer = _answer(neighbour, json.dumps(book.send(cue)), serial)
            book.learn(answer)
            assert answer and all(e["type"] != "error" for e in answer), (cue["type"], answer[:2])
    finally:
        neighbour.close()
        noisy.close()
