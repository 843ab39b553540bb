"""The bundled cassettes compiled from cassettes/scenarios/: shapes, timing and the story each one tells.

Every server event must pass the fidelity oracle (the openai package's models, and for GA also
the adapter openai-agents enforces); every client event must be something the openai SDK's
param types allow, except the ones the scenario sends on purpose to provoke a server error.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from mockrealtime.core import audio as _audio
from mockrealtime.core.library import CassetteLibrary

try:
    from oracle import client_event_errors, server_event_errors
except ModuleNotFoundError:  # tests/ imported as a package
    from tests.oracle import client_event_errors, server_event_errors

SEEDS = ("hello", "function_call", "turn_detected", "missing_call_id", "chat_completions_tools",
         "tool_choice_required_loop", "forced_function_as_message")
LIBRARY = CassetteLibrary()
BY_KEY = {(e["name"], d): LIBRARY.resolve(e["name"], d) for e in LIBRARY.available() for d in e["dialects"]}
KEYS = sorted(BY_KEY, key=lambda k: (k[0], k[1] != "ga"))
IDS = [f"{name}-{dialect}" for name, dialect in KEYS]
GA_KEYS = [k for k in KEYS if k[1] == "ga"]


def _output_format(key: tuple[str, str]) -> _audio.AudioFormat:
    sessions = [e.event["session"] for e in BY_KEY[key].sessions[0].events if e.type in ("session.created", "session.updated")]
    return _audio.session_formats(sessions[-1])[1] or _audio.PCM16


PCM_KEYS = [k for k in KEYS if _output_format(k) is _audio.PCM16]

BYTES_PER_MS = 48
AUDIO_DELTA_TYPES = {"response.output_audio.delta", "response.audio.delta"}
ID_PATTERNS = {
    "event_id": re.compile(r"^event_[A-Za-z0-9]{21}$"),
    "response_id": re.compile(r"^resp_[A-Za-z0-9]{21}$"),
    "item_id": re.compile(r"^item_[A-Za-z0-9]{21}$"),
    "call_id": re.compile(r"^call_[A-Za-z0-9]{16}$"),
}


def events(key: tuple[str, str]) -> list[dict[str, Any]]:
    (session,) = BY_KEY[key].sessions
    return [{"dir": e.direction.value, "at_ms": e.offset_ms, "event": e.event} for e in session.events]


def server(key: tuple[str, str]) -> list[dict[str, Any]]:
    return [e["event"] for e in events(key) if e["dir"] == "server"]


def client(key: tuple[str, str]) -> list[dict[str, Any]]:
    return [e["event"] for e in events(key) if e["dir"] == "client"]


def of_type(evs: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [e for e in evs if e["type"] in types]


def name(dialect: str, ga: str, beta: str) -> str:
    return ga if dialect == "ga" else beta


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")


def rejected_event_ids(key: tuple[str, str]) -> set[str]:
    return {e["error"]["event_id"] for e in of_type(server(key), "error") if e["error"].get("event_id")}


# -- the files -----------------------------------------------------------------------------------


def test_every_seed_exists_in_both_dialects_and_as_a_phone_call() -> None:
    for seed in SEEDS:
        assert {(seed, "ga"), (seed, "beta"), (f"twilio_{seed}", "ga"), (f"twilio_{seed}", "beta")} <= set(BY_KEY)


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_handshake_and_close(key: tuple[str, str]) -> None:
    cassette = BY_KEY[key]
    assert cassette.description.count("\n") >= 3
    assert cassette.handshake.path == "/v1/realtime"
    assert cassette.handshake.query == {"model": cassette.model}
    assert cassette.handshake.headers == ({"OpenAI-Beta": "realtime=v1"} if key[1] == "beta" else {})
    (session,) = cassette.sessions
    assert (session.close.by, session.close.code, session.close.reason) == ("client", 1000, "")


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_no_secrets_anywhere(key: tuple[str, str]) -> None:
    text = json.dumps([e["event"] for e in events(key)])
    assert "Authorization" not in text and "api-key" not in text.lower()
    assert not re.search(r"\bsk-[A-Za-z0-9_-]{8,}", text)


# -- fidelity: the oracle ------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_server_events_match_the_openai_models(key: tuple[str, str]) -> None:
    failures = []
    for e in events(key):
        if e["dir"] == "server":
            for message in server_event_errors(e["event"], key[1]):
                failures.append(f"at {e['at_ms']} ms: {message}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("key", GA_KEYS, ids=[f"{n}-ga" for n, _ in GA_KEYS])
def test_ga_client_events_are_what_the_sdk_sends(key: tuple[str, str]) -> None:
    """Valid per the GA *Param types, except the events the server rejects, which must not be."""
    rejected = rejected_event_ids(key)
    failures = []
    for event in client(key):
        errors = client_event_errors(event, "ga")
        if event.get("event_id") in rejected:
            if not errors:
                failures.append(f"{event['type']} {event['event_id']} is rejected by the server but valid")
        else:
            failures += errors
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("key", [k for k in KEYS if k[1] == "beta"], ids=[f"{n}-beta" for n, d in KEYS if d == "beta"])
def test_beta_client_events_are_what_the_sdk_sends(key: tuple[str, str]) -> None:
    """Best effort: the beta SDK types ``tool_choice`` as a plain string, the wire takes objects."""
    rejected = rejected_event_ids(key)
    failures = [
        message
        for event in client(key)
        if event.get("event_id") not in rejected
        for message in client_event_errors(event, "beta")
        if ".tool_choice" not in message
    ]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_ids_look_real(key: tuple[str, str]) -> None:
    bad = []
    for event in server(key):
        for path, value in walk(event):
            field = path.rsplit(".", 1)[-1]
            if path == "error.event_id":  # echoes the client's own event_id
                continue
            if field in ID_PATTERNS and value is not None and not ID_PATTERNS[field].match(value):
                bad.append(f"{event['type']} {path}={value!r}")
        if event["type"] in ("session.created", "session.updated"):
            assert re.match(r"^sess_[A-Za-z0-9]{21}$", event["session"]["id"])
        for item in [event.get("item")] + list((event.get("response") or {}).get("output") or []):
            if item:
                assert ID_PATTERNS["item_id"].match(item["id"]), item
    for event in client(key):
        assert "event_id" not in event or event["event_id"].startswith(("evt_", "agents_py_response_create_"))
    assert not bad, bad


# -- timing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_at_ms_strictly_increasing(key: tuple[str, str]) -> None:
    times = [e["at_ms"] for e in events(key)]
    assert times[0] >= 0
    assert all(a < b for a, b in pairwise(times)), "at_ms must strictly increase in wire order"


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_server_answers_response_create_promptly(key: tuple[str, str]) -> None:
    evs = events(key)
    for i, e in enumerate(evs):
        if e["dir"] == "client" and e["event"]["type"] == "response.create":
            created = next(x for x in evs[i:] if x["event"]["type"] == "response.created")
            assert created["at_ms"] - e["at_ms"] <= 600
            first_output = next(
                x for x in evs[i:] if x["event"]["type"] in ("response.output_item.added", "response.done")
            )
            assert 250 <= first_output["at_ms"] - e["at_ms"] <= 700


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_rate_limits_follow_every_response_done(key: tuple[str, str]) -> None:
    evs = server(key)
    done = [i for i, e in enumerate(evs) if e["type"] == "response.done"]
    assert done
    for i in done:
        assert evs[i + 1]["type"] == "rate_limits.updated"
        limits = evs[i + 1]["rate_limits"]
        assert [x["name"] for x in limits] == (["tokens"] if key[1] == "ga" else ["requests", "tokens"])


# -- audio ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_server_audio_comes_in_short_deltas_of_the_session_format(key: tuple[str, str]) -> None:
    fmt = _output_format(key)
    per_item: dict[str, float] = {}
    for event in of_type(server(key), *AUDIO_DELTA_TYPES):
        audio = base64.b64decode(event["delta"], validate=True)
        assert len(audio) % fmt.bytes_per_sample == 0
        assert 0 < fmt.duration_ms(len(audio)) <= 200
        per_item[event["item_id"]] = per_item.get(event["item_id"], 0) + fmt.duration_ms(len(audio))
    for item_id, ms in per_item.items():
        assert 1000 <= ms <= 6000, (item_id, ms)
    assert not of_type(server(key), "response.output_audio.delta" if key[1] == "beta" else "response.audio.delta")
    for done in of_type(server(key), "response.done"):
        assert all("audio" not in part for item in done["response"]["output"] for part in item.get("content", []))


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_assistant_audio_has_a_transcript(key: tuple[str, str]) -> None:
    evs = server(key)
    delta = name(key[1], "response.output_audio_transcript.delta", "response.audio_transcript.delta")
    done = name(key[1], "response.output_audio_transcript.done", "response.audio_transcript.done")
    for d in of_type(evs, done):
        joined = "".join(e["delta"] for e in of_type(evs, delta) if e["item_id"] == d["item_id"])
        assert joined == d["transcript"] and joined


# -- scenarios -----------------------------------------------------------------------------------


def subsequence(types: list[str], expected: list[str]) -> bool:
    it = iter(types)
    return all(t in it for t in expected)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_hello_tells_the_whole_turn(dialect: str) -> None:
    key = ("hello", dialect)
    types = [e["type"] for e in server(key)]
    ga = dialect == "ga"
    expected = ["session.created"] + ([] if ga else ["conversation.created"]) + ["session.updated"]
    expected += ["conversation.item.added", "conversation.item.done"] if ga else ["conversation.item.created"]
    expected += ["response.created", "response.output_item.added"]
    expected += ["conversation.item.added"] if ga else ["conversation.item.created"]
    expected += [
        "response.content_part.added",
        name(dialect, "response.output_audio_transcript.delta", "response.audio_transcript.delta"),
        name(dialect, "response.output_audio.delta", "response.audio.delta"),
        name(dialect, "response.output_audio.done", "response.audio.done"),
        name(dialect, "response.output_audio_transcript.done", "response.audio_transcript.done"),
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert subsequence(types, expected), types
    assert types[0] == "session.created"
    assert of_type(server(key), "response.content_part.added")[0]["part"]["type"] == "audio"
    # Transcript and audio deltas interleave, as the real server sends them.
    stream = [t for t in types if t.endswith(".delta")]
    assert len({a != b for a, b in pairwise(stream)}) == 2
    updated = of_type(server(key), "session.updated")[0]["session"]
    created = of_type(server(key), "session.created")[0]["session"]
    assert set(updated) == set(created), "session.updated carries the full effective session"
    assert updated["instructions"] == "You are a friendly assistant. Keep answers short."
    (done,) = of_type(server(key), "response.done")
    usage = done["response"]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert [e["type"] for e in client(key)] == ["session.update", "conversation.item.create", "response.create"]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_function_call_round_trip(dialect: str) -> None:
    key = ("function_call", dialect)
    evs = server(key)
    deltas = of_type(evs, "response.function_call_arguments.delta")
    assert len(deltas) > 1
    assert "".join(d["delta"] for d in deltas) == '{"numEmails": 1}'
    (args_done,) = of_type(evs, "response.function_call_arguments.done")
    call_id = args_done["call_id"]
    assert args_done["arguments"] == '{"numEmails": 1}'
    assert args_done["name"] == "list_emails"  # the live beta server sends it too; bridges read it
    assert {d["call_id"] for d in deltas} == {call_id}

    # name and call_id wherever the item appears; the final arguments once it is finished.
    announce = of_type(evs, "conversation.item.added" if dialect == "ga" else "conversation.item.created")
    call_items = [e["item"] for e in announce if e["item"]["type"] == "function_call"]
    call_items += [e["item"] for e in of_type(evs, "response.output_item.added") if e["item"]["type"] == "function_call"]
    finished = [e["item"] for e in of_type(evs, "response.output_item.done", "conversation.item.done") if e["item"]["type"] == "function_call"]
    finished += [i for e in of_type(evs, "response.done") for i in e["response"]["output"] if i["type"] == "function_call"]
    assert len(finished) == (3 if dialect == "ga" else 2)
    for item in call_items + finished:
        assert (item["name"], item["call_id"]) == ("list_emails", call_id)
    for item in finished:
        assert item["arguments"] == '{"numEmails": 1}' and item["status"] == "completed"

    (output,) = [e for e in client(key) if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"]
    assert output["item"]["call_id"] == call_id
    # The tool output goes out after the call's response.done, then response.create.
    types = [(e["dir"], e["event"]["type"]) for e in events(key)]
    first_done = types.index(("server", "response.done"))
    out_at = next(i for i, e in enumerate(events(key)) if e["event"] is output)
    assert out_at > first_done and types[out_at + 1] == ("client", "response.create")
    echoed = [e["item"] for e in announce if e["item"]["type"] == "function_call_output"]
    assert [i["call_id"] for i in echoed] == [call_id]
    final = of_type(evs, "response.done")[-1]["response"]
    assert final["status"] == "completed" and final["output"][0]["type"] == "message"
    assert of_type(evs, name(dialect, "response.output_audio.delta", "response.audio.delta"))


def appended_ms_before(evs: list[dict[str, Any]], index: int) -> float:
    audio = sum(
        len(base64.b64decode(e["event"]["audio"]))
        for e in evs[:index]
        if e["dir"] == "client" and e["event"]["type"] == "input_audio_buffer.append"
    )
    return audio / BYTES_PER_MS


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_turn_detected_barge_in(dialect: str) -> None:
    key = ("turn_detected", dialect)
    evs = events(key)
    types = [e["event"]["type"] for e in evs]
    appends = [e["event"] for e in evs if e["event"]["type"] == "input_audio_buffer.append"]
    assert all(len(base64.b64decode(a["audio"])) == 960 for a in appends)
    assert 8.0 <= len(appends) * 20 / 1000 <= 10.0
    session = of_type(server(key), "session.updated")[0]["session"]
    vad = session["audio"]["input"]["turn_detection"] if dialect == "ga" else session["turn_detection"]
    assert vad["type"] == "server_vad" and vad["interrupt_response"] and vad["create_response"]
    prefix = vad["prefix_padding_ms"]

    started = [i for i, t in enumerate(types) if t == "input_audio_buffer.speech_started"]
    stopped = [i for i, t in enumerate(types) if t == "input_audio_buffer.speech_stopped"]
    assert len(started) == len(stopped) == 2
    for i in started:  # the VAD fires after the speech it reports, padding included
        ms = evs[i]["event"]["audio_start_ms"]
        assert ms + prefix <= appended_ms_before(evs, i) <= ms + prefix + 400
    for i in stopped:
        ms = evs[i]["event"]["audio_end_ms"]
        assert ms <= appended_ms_before(evs, i) <= ms + 100
    first_end = evs[stopped[0]]["event"]["audio_end_ms"]
    assert evs[started[1]]["event"]["audio_start_ms"] > first_end
    assert started[0] < stopped[0] < started[1] < stopped[1]

    # The first response is still streaming when speech starts again, and is cancelled.
    dones = [i for i, t in enumerate(types) if t == "response.done"]
    cancelled = [i for i in dones if evs[i]["event"]["response"]["status"] == "cancelled"]
    assert len(cancelled) == 1 and len(dones) == 2
    (c,) = cancelled
    assert started[1] < c < stopped[1]
    response = evs[c]["event"]["response"]
    assert response["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    (item,) = response["output"]
    assert item["status"] == "incomplete"
    audio_delta = name(dialect, "response.output_audio.delta", "response.audio.delta")
    assert audio_delta in types[: started[1]] and audio_delta not in types[started[1] : c]
    between = types[started[1] + 1 : c]
    assert subsequence(
        between,
        [
            name(dialect, "response.output_audio.done", "response.audio.done"),
            name(dialect, "response.output_audio_transcript.done", "response.audio_transcript.done"),
            "response.content_part.done",
            "response.output_item.done",
        ],
    ), between
    item_done = next(evs[i]["event"] for i in range(started[1], c) if types[i] == "response.output_item.done")
    assert item_done["item"]["status"] == "incomplete"

    # The client truncates the assistant item at what it played; the server confirms.
    (truncate,) = [e["event"] for e in evs if e["event"]["type"] == "conversation.item.truncate"]
    (truncated,) = of_type(server(key), "conversation.item.truncated")
    assert truncate["item_id"] == truncated["item_id"] == item["id"]
    assert truncate["content_index"] == truncated["content_index"] == 0
    sent_ms = sum(
        len(base64.b64decode(e["event"]["delta"])) / BYTES_PER_MS
        for e in evs
        if e["event"]["type"] == audio_delta and e["event"]["item_id"] == item["id"]
    )
    assert 0 < truncate["audio_end_ms"] == truncated["audio_end_ms"] < sent_ms
    assert types.index("conversation.item.truncate") > c

    # Both user turns become input_audio items without transcripts; the second response completes.
    user_items = [
        e["event"]["item"]
        for e in evs
        if e["event"]["type"] in ("conversation.item.added", "conversation.item.created")
        and e["event"]["item"]["role"] == "user"
    ]
    assert [i["content"] for i in user_items] == [[{"type": "input_audio", "transcript": None}]] * 2
    assert [i["id"] for i in user_items] == [evs[i]["event"]["item_id"] for i in started]
    assert evs[dones[-1]]["event"]["response"]["status"] == "completed"
    assert not [e for e in evs if e["dir"] == "client" and e["event"]["type"] in ("response.create", "response.cancel")]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_missing_call_id_falls_silent(dialect: str) -> None:
    key = ("missing_call_id", dialect)
    (bad,) = [e for e in client(key) if e.get("event_id") == "evt_tool_output_1"]
    assert bad["item"]["type"] == "function_call_output" and "call_id" not in bad["item"]
    (error,) = of_type(server(key), "error")
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "missing_required_parameter",
        "message": "Missing required parameter: 'item.call_id'.",
        "param": "item.call_id",
        "event_id": "evt_tool_output_1",
    }
    evs = server(key)
    after = evs[evs.index(error) + 1 :]
    assert [e["type"] for e in after] == ["response.created", "response.done", "rate_limits.updated"]
    done = after[1]["response"]
    assert done["status"] == "completed" and done["output"] == []
    assert done["usage"]["output_token_details"]["audio_tokens"] == 0
    # The rejected output never enters the conversation.
    outputs = [e for e in evs if e.get("item", {}).get("type") == "function_call_output"]
    assert outputs == []


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_chat_completions_tools_are_rejected_and_audio_stays_pcm16(dialect: str) -> None:
    key = ("chat_completions_tools", dialect)
    (update,) = of_type(client(key), "session.update")
    assert update["session"]["tools"][0]["function"]["name"] == "get_weather"
    if dialect == "ga":
        assert update["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    else:
        assert update["session"]["output_audio_format"] == update["session"]["input_audio_format"] == "g711_ulaw"
    (error,) = of_type(server(key), "error")
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "unknown_parameter",
        "message": "Unknown parameter: 'session.tools[0].function'.",
        "param": "session.tools[0].function",
        "event_id": update["event_id"],
    }
    assert not of_type(server(key), "session.updated")
    (created,) = of_type(server(key), "response.created")
    if dialect == "ga":
        assert created["response"]["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    else:
        assert created["response"]["output_audio_format"] == "pcm16"
    audio = b"".join(
        base64.b64decode(e["delta"])
        for e in of_type(server(key), name(dialect, "response.output_audio.delta", "response.audio.delta"))
    )
    assert len(audio) // BYTES_PER_MS >= 1000  # seconds of 24 kHz pcm16, not 8 kHz u-law
    frames = [base64.b64decode(e["audio"]) for e in of_type(client(key), "input_audio_buffer.append")]
    assert frames and {len(f) for f in frames} == {160}  # Twilio: 20 ms of u-law per frame


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_tool_choice_required_loops(dialect: str) -> None:
    key = ("tool_choice_required_loop", dialect)
    updates = of_type(client(key), "session.update")
    assert updates[0]["session"]["tool_choice"] == "required"
    dones = [e["response"] for e in of_type(server(key), "response.done")]
    assert len(dones) == 3
    call_ids = []
    for response in dones:
        (item,) = response["output"]
        assert item["type"] == "function_call" and item["name"] == "get_weather"
        assert json.loads(item["arguments"]) == {"city": "Paris"}
        call_ids.append(item["call_id"])
    assert len(set(call_ids)) == 3
    outputs = [e["item"]["call_id"] for e in of_type(client(key), "conversation.item.create") if e["item"]["type"] == "function_call_output"]
    assert outputs == call_ids[:2]  # the client answers twice, then gives up
    assert len(of_type(client(key), "response.create")) == 3
    assert not of_type(server(key), *AUDIO_DELTA_TYPES)
    assert events(key)[-1]["event"]["type"] == "rate_limits.updated"


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_forced_function_comes_back_as_a_message(dialect: str) -> None:
    key = ("forced_function_as_message", dialect)
    choice = {"type": "function", "name": "get_weather"}
    sent = [e["session"].get("tool_choice") for e in of_type(client(key), "session.update")]
    sent += [e.get("response", {}).get("tool_choice") for e in of_type(client(key), "response.create")]
    assert choice in sent
    evs = server(key)
    (done,) = of_type(evs, "response.done")
    (item,) = done["response"]["output"]
    assert item["type"] == "message" and item["role"] == "assistant"
    (content,) = item["content"]
    assert content["type"] == name(dialect, "output_text", "text")
    assert json.loads(content["text"]) == {"city": "Paris"}
    text_delta = name(dialect, "response.output_text.delta", "response.text.delta")
    assert "".join(e["delta"] for e in of_type(evs, text_delta)) == content["text"]
    assert of_type(evs, "response.content_part.added")[0]["part"]["type"] == "text"
    assert not [e for e in evs if "audio" in e["type"] or "function_call" in e["type"]]
    assert not [e for e in evs if e.get("item", {}).get("type") == "function_call"]


# -- what real captures add (protocol.md §2.4a) --------------------------------------------------


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_items_carry_object_only_in_beta_and_the_default_voice_is_alloy(key: tuple[str, str]) -> None:
    items = [e["item"] for e in server(key) if "item" in e]
    items += [i for e in of_type(server(key), "response.done") for i in e["response"]["output"]]
    assert items
    for item in items:
        assert ("object" in item) == (key[1] == "beta"), item
        if key[1] == "beta":
            assert item["object"] == "realtime.item"
    created = of_type(server(key), "session.created")[0]["session"]
    assert (created["audio"]["output"]["voice"] if key[1] == "ga" else created["voice"]) == "alloy"


# -- the phone calls, and the rest of the bundle ---------------------------------------------------

TWILIO = [k for k in KEYS if k[0].startswith("twilio_") and k[0] != "twilio_chat_completions_tools"] + [("long_call", "ga")]


@pytest.mark.parametrize("key", TWILIO, ids=[f"{n}-{d}" for n, d in TWILIO])
def test_phone_calls_are_ulaw_both_ways_with_server_vad_and_the_caller_speaks(key: tuple[str, str]) -> None:
    session = of_type(server(key), "session.updated")[-1]["session"]
    if key[1] == "ga":
        audio = session["audio"]
        assert audio["input"]["format"] == audio["output"]["format"] == {"type": "audio/pcmu"}
        assert audio["input"]["turn_detection"]["type"] == "server_vad"
    else:
        assert session["input_audio_format"] == session["output_audio_format"] == "g711_ulaw"
        assert session["turn_detection"]["type"] == "server_vad"
    frames = [base64.b64decode(e["audio"]) for e in of_type(client(key), "input_audio_buffer.append")]
    assert frames and {len(f) for f in frames} == {160}  # 20 ms of u-law per frame
    started = of_type(server(key), "input_audio_buffer.speech_started")
    assert started and len(started) == len(of_type(server(key), "input_audio_buffer.speech_stopped"))
    user_items = [e["item"] for e in server(key) if e["type"] in ("conversation.item.added", "conversation.item.created")
                  and e["item"].get("role") == "user"]
    assert [i["id"] for i in user_items] == [e["item_id"] for e in started]
    if key[0] != "long_call":
        assert of_type(client(key), "conversation.item.create") or "hello" in key[0] or "forced" in key[0]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_twilio_tool_round_trip_and_barge_in(dialect: str) -> None:
    key = ("twilio_turn_detected", dialect)
    calls = [i for e in of_type(server(key), "response.done") for i in e["response"]["output"] if i["type"] == "function_call"]
    (output,) = [e["item"] for e in of_type(client(key), "conversation.item.create")]
    assert output["call_id"] == calls[0]["call_id"]
    statuses = [(e["response"]["status"], (e["response"]["status_details"] or {}).get("reason")) for e in of_type(server(key), "response.done")]
    assert statuses == [("completed", None), ("cancelled", "turn_detected"), ("completed", None)]
    (truncate,) = of_type(client(key), "conversation.item.truncate")
    assert 1200 <= truncate["audio_end_ms"] <= 1600  # played until speech_started: 1.2 s + the VAD onset


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_twilio_chat_completions_tools_keeps_pcm16_and_the_caller_is_not_heard(dialect: str) -> None:
    key = ("twilio_chat_completions_tools", dialect)
    (error,) = of_type(server(key), "error")
    assert error["error"]["code"] == "unknown_parameter" and error["error"]["event_id"] == "evt_session_update_1"
    assert not of_type(server(key), "session.updated")
    created = of_type(server(key), "response.created")[0]["response"]
    fmt = created["audio"]["output"]["format"] if dialect == "ga" else created["output_audio_format"]
    assert fmt in ({"type": "audio/pcm", "rate": 24000}, "pcm16")
    frames = [base64.b64decode(e["audio"]) for e in of_type(client(key), "input_audio_buffer.append")]
    assert frames and {len(f) for f in frames} == {160}
    assert not of_type(server(key), "input_audio_buffer.speech_started")


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_one_response_speaks_then_calls_a_tool(dialect: str) -> None:
    key = ("speak_then_call", dialect)
    first = of_type(server(key), "response.done")[0]["response"]
    assert [i["type"] for i in first["output"]] == ["message", "function_call"]
    assert first["output"][1]["name"] == "get_weather"
    added = of_type(server(key), "response.output_item.added")
    assert [(e["response_id"], e["output_index"]) for e in added[:2]] == [(first["id"], 0), (first["id"], 1)]
    (output,) = [e["item"] for e in of_type(client(key), "conversation.item.create") if e["item"]["type"] == "function_call_output"]
    assert output["call_id"] == first["output"][1]["call_id"]


def test_the_long_call_lasts_minutes_with_many_turns() -> None:
    evs = events(("long_call", "ga"))
    assert evs[-1]["at_ms"] >= 150_000
    assert len(of_type(server(("long_call", "ga")), "response.done")) >= 12
