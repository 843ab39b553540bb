"""The state-first engine, driven without sockets: turns, housekeeping from state, validation first,
state-made echoes, fresh ids, divergence policy, bounded stores, stalls and the engine's own barge-in."""

from __future__ import annotations

import base64
import json

import pytest

from mockrealtime.core.cassette import Cassette, RecordedEvent, Session
from mockrealtime.core.engine import CloseFrame, ReplaySession
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.protocol import ClientEventValidator

from oracle import server_event_errors

LIBRARY = CassetteLibrary()
TOOL = {"type": "function", "name": "list_emails", "description": "List the user's most recent emails, newest first.",
        "parameters": {"type": "object", "properties": {"numEmails": {"type": "integer"}}, "required": ["numEmails"]}}
USER = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How many emails do I have?"}]}


def engine_for(name: str, dialect: str = "ga", **kw) -> ReplaySession:
    kw.setdefault("validator", ClientEventValidator(dialect))
    engine = ReplaySession(LIBRARY.resolve(name, dialect), **kw)
    engine.start(0)
    return engine


def out(engine: ReplaySession, now_ms: float = 1e12) -> list[dict]:
    events = [json.loads(f) for f in engine.pop_due(now_ms) if isinstance(f, str)]
    for event in events:
        assert server_event_errors(event, engine.dialect) == [], event
    return events


def send(engine: ReplaySession, event: dict, now_ms: float = 1) -> list[dict]:
    engine.feed(json.dumps(event), now_ms)
    return out(engine)


def ga_update(**session) -> dict:
    return {"type": "session.update", "session": {"type": "realtime", **session}}


def errors(events: list[dict]) -> list[dict]:
    return [e["error"] for e in events if e["type"] == "error"]


# -- turns: housekeeping in any order, skipped housekeeping ---------------------------------------


def test_setup_in_another_order_still_gets_the_tool_call():
    """session.update without tools, the user's item, then the tools, then response.create."""
    engine = engine_for("function_call")
    out(engine)
    send(engine, ga_update(instructions="You are an email assistant."))
    send(engine, {"type": "conversation.item.create", "item": USER})
    send(engine, ga_update(tools=[TOOL]))
    got = send(engine, {"type": "response.create"})
    assert errors(got) == [] and engine.divergences == []
    call = next(e for e in got if e["type"] == "response.function_call_arguments.done")
    assert call["name"] == "list_emails"


def settings_cassette() -> Cassette:
    """The client sent a settings-only session.update (as openai-agents' tracing update) before its turn."""
    def srv(at, n, type, **f):
        return RecordedEvent.make("server", at, {"type": type, "event_id": f"event_{n:021d}", **f})

    events = [
        srv(0, 1, "session.created", session={"type": "realtime", "id": "sess_1", "tracing": None}),
        RecordedEvent.make("client", 5, {"type": "session.update", "session": {"type": "realtime", "tracing": "auto"}}),
        srv(6, 2, "session.updated", session={"type": "realtime", "id": "sess_1", "tracing": "auto"}),
        RecordedEvent.make("client", 10, {"type": "response.create"}),
        srv(20, 3, "response.created", response={"id": "resp_1", "object": "realtime.response", "status": "in_progress", "output": []}),
        srv(30, 4, "response.done", response={"id": "resp_1", "object": "realtime.response", "status": "completed", "output": []}),
    ]
    return Cassette(name="settings", dialect="ga", sessions=[Session(events)])


def test_housekeeping_the_client_never_sends_does_not_block_the_next_trigger():
    engine = ReplaySession(settings_cassette())
    engine.start(0)
    out(engine)
    engine.receive({"type": "response.create"}, 1)
    got = out(engine)
    assert [e["type"] for e in got] == ["response.created", "response.done"]
    assert errors(got) == [] and list(engine.divergences) == [] and engine.unplayed() == []


def test_strict_mode_reports_recorded_housekeeping_the_client_skipped():
    engine = ReplaySession(settings_cassette(), strict=True)
    engine.start(0)
    out(engine)
    engine.receive({"type": "response.create"}, 1)
    assert [e["type"] for e in out(engine)] == ["response.created", "response.done"]  # reported, not blocked
    (skipped,) = engine.divergences
    assert skipped.kind == "skipped" and "'session.update'" in skipped.summary


# -- matching on state ------------------------------------------------------------------------------


def test_a_divergence_names_the_field_with_live_and_recorded_values_in_the_default_mode():
    engine = engine_for("function_call")
    out(engine)
    other = {**TOOL, "name": "get_weather"}
    send(engine, ga_update(tools=[other]))
    send(engine, {"type": "conversation.item.create", "item": USER})
    (error,) = errors(send(engine, {"type": "response.create", "event_id": "rc1"}))
    assert error["code"] == "cassette_mismatch" and error["event_id"] == "rc1"
    assert 'session.tools[*].name: expected ["list_emails"], received ["get_weather"]' in error["message"]
    (d,) = engine.divergences
    assert [(x.path, x.expected, x.received) for x in d.differences] == [("session.tools[*].name", ["list_emails"], ["get_weather"])]


def two_calls_cassette() -> Cassette:
    def srv(at, n, type, **f):
        return RecordedEvent.make("server", at, {"type": type, "event_id": f"event_{n:021d}", **f})

    def cli(at, type, **f):
        return RecordedEvent.make("client", at, {"type": type, **f})

    call = lambda cid, iid: {"id": iid, "type": "function_call", "status": "completed", "name": "f", "call_id": cid, "arguments": "{}"}  # noqa: E731
    events = [
        srv(0, 1, "session.created", session={"type": "realtime", "id": "sess_1", "tools": [{"type": "function", "name": "f"}]}),
        cli(10, "response.create"),
        srv(20, 2, "response.created", response={"id": "resp_1", "object": "realtime.response", "status": "in_progress", "output": []}),
        srv(21, 3, "conversation.item.added", previous_item_id=None, item=call("call_A", "item_A")),
        srv(22, 4, "conversation.item.added", previous_item_id="item_A", item=call("call_B", "item_B")),
        srv(30, 5, "response.done", response={"id": "resp_1", "object": "realtime.response", "status": "completed",
                                                "output": [call("call_A", "item_A"), call("call_B", "item_B")]}),
        cli(40, "conversation.item.create", item={"type": "function_call_output", "call_id": "call_A", "output": "1"}),
        srv(41, 6, "conversation.item.added", previous_item_id="item_B", item={"id": "item_C", "type": "function_call_output", "call_id": "call_A", "output": "1"}),
        cli(50, "response.create"),
        srv(60, 7, "response.created", response={"id": "resp_2", "object": "realtime.response", "status": "in_progress", "output": []}),
    ]
    return Cassette(name="two_calls", dialect="ga", sessions=[Session(events)])


@pytest.mark.parametrize("strict", [True, False])
def test_matching_by_item_call_id(strict):
    """The output for the other call of the response is not the recorded one (README matching table)."""
    engine = ReplaySession(two_calls_cassette(), strict=strict)
    engine.start(0)
    out(engine)
    engine.receive({"type": "response.create"}, 1)
    out(engine)
    engine.receive({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": engine.fresh("call_B"), "output": "1"}}, 2)
    out(engine)
    engine.receive({"type": "response.create"}, 3)
    out(engine)
    d = engine.divergences[0]
    paths = [x.path for x in d.differences if x.matched_on]
    if strict:
        assert paths == ["item.call_id"] and d.received["type"] == "conversation.item.create"
        (state,) = engine.divergences[1:]  # so the conversation lacks call_A's output at the trigger
        assert [x.path for x in state.differences][-1] == "conversation function_call_output call_ids"
    else:
        assert len(engine.divergences) == 1 and paths == ["conversation function_call_output call_ids"]
        assert (d.differences[0].expected, d.differences[0].received) == (["call_A"], ["call_B"])


def test_the_right_call_id_matches_and_is_echoed_as_the_client_sent_it():
    engine = ReplaySession(two_calls_cassette(), strict=True)
    engine.start(0)
    out(engine)
    engine.receive({"type": "response.create"}, 1)
    out(engine)
    engine.receive({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": engine.fresh("call_A"), "output": "mine"}}, 2)
    (echo, _) = out(engine)
    assert echo["item"]["call_id"] == engine.fresh("call_A") and echo["item"]["output"] == "mine"
    engine.receive({"type": "response.create"}, 3)
    assert out(engine)[0]["type"] == "response.created" and engine.divergences == []


# -- validation first ------------------------------------------------------------------------------


@pytest.mark.parametrize(("dialect", "session", "param"), [
    ("ga", {"type": "realtime", "tools": [{**TOOL, "meta": 1}]}, "session.tools[0].meta"),
    ("ga", {"type": "realtime", "input_audio_format": "pcm16"}, "session.input_audio_format"),
    ("beta", {"output_modalities": ["audio"]}, "session.output_modalities"),
])
def test_an_invalid_event_that_would_match_the_next_cue_gets_the_api_error(dialect, session, param):
    engine = engine_for("function_call", dialect)
    out(engine)
    got = send(engine, {"type": "session.update", "session": session, "event_id": "bad"})
    (error,) = errors(got)
    assert (error["param"], error["event_id"]) == (param, "bad")
    assert [e["type"] for e in got] == ["error"]
    assert engine.journal[-1].outcome == "rejected"


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_the_recorded_error_wins_where_the_recording_shows_the_api_rejecting_that_event(dialect):
    engine = engine_for("missing_call_id", dialect)
    recorded = [ev for ev in engine.cassette.sessions[0].core if ev.direction.value == "client"]
    bad = next(ev.event for ev in recorded if (ev.event.get("item") or {}).get("type") == "function_call_output")
    (rec_error,) = [ev.event["error"] for ev in engine.cassette.sessions[0].core if ev.type == "error"]
    for ev in recorded[:3]:
        send(engine, ev.event)
    (error,) = errors(send(engine, {**bad, "event_id": "live_1"}))
    assert {**error, "event_id": None} == {**rec_error, "event_id": None} and error["event_id"] == "live_1"


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_valid_update_never_gets_the_error_the_recording_shows_for_an_invalid_one(dialect):
    """chat_completions_tools: the recorded update was refused for its nested tools. A client whose own
    update is valid (openai-agents: flat tools, here none) and matches that cue by the rules (no tool
    names on either side) gets session.updated, as the real API would answer it, not the recorded error."""
    engine = engine_for("chat_completions_tools", dialect)
    out(engine)
    session = {"type": "realtime", "instructions": "x", "tools": []} if dialect == "ga" else {"instructions": "x", "tools": []}
    got = send(engine, {"type": "session.update", "session": session, "event_id": "valid_1"})
    assert errors(got) == []
    assert [e["type"] for e in got] == ["session.updated"] and got[0]["session"]["instructions"] == "x"
    # the client that sends the refused update itself still gets the recorded error
    recorded = next(ev.event for ev in engine.cassette.sessions[0].core if ev.type == "session.update")
    (error,) = errors(send(engine, recorded))
    assert error["param"] == "session.tools[0].function"


@pytest.mark.parametrize("validate", [True, False])
def test_wrong_json_types_never_raise(validate):
    engine = engine_for("hello", validator=ClientEventValidator("ga") if validate else None)
    frames = ('{"type":"response.create","response":[1]}', '{"type":"session.update","session":"x"}',
              '{"type":"conversation.item.create","item":7}', '[1]', '"x"', '{"type":5}', b"\x00",
              '{"type":"conversation.item.truncate","item_id":[]}', '{"type":"conversation.item.delete","item_id":{}}')
    for frame in frames:
        engine.feed(frame, 1)
    sent = [json.loads(f) for f in engine.pop_due(1e12) if isinstance(f, str)]
    if validate:  # every one of them is the API's error
        assert [e["type"] for e in sent[1:]] == ["error"] * len(frames)


# -- state-made answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_session_updated_is_the_live_effective_session(dialect):
    engine = engine_for("function_call", dialect)
    created = out(engine)[0]
    update = ({"type": "realtime", "instructions": "Mine.", "audio": {"output": {"voice": "cedar"}}, "tools": [TOOL]}
              if dialect == "ga" else {"instructions": "Mine.", "voice": "cedar", "tools": [TOOL]})
    (updated,) = send(engine, {"type": "session.update", "session": update})
    session = updated["session"]
    assert session["instructions"] == "Mine." and session["tools"] == [TOOL]
    voice = session["audio"]["output"]["voice"] if dialect == "ga" else session["voice"]
    assert voice == "cedar"
    assert session["id"] == created["session"]["id"]  # the rest is the recorded server's defaults


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_item_echoes_carry_what_this_client_sent_with_its_id(dialect):
    engine = engine_for("function_call", dialect)
    out(engine)
    item = {"id": "my_item_1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "My own words"}]}
    echoes = send(engine, {"type": "conversation.item.create", "item": item})
    assert [e["type"] for e in echoes] == (["conversation.item.added", "conversation.item.done"] if dialect == "ga"
                                           else ["conversation.item.created"])
    for echo in echoes:
        assert echo["item"]["id"] == "my_item_1" and echo["item"]["content"] == item["content"]
        assert echo["item"].get("object") == (None if dialect == "ga" else "realtime.item")
    second = {"id": "my_item_2", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}
    (echo, *_) = send(engine, {"type": "conversation.item.create", "previous_item_id": "my_item_1", "item": second})
    assert echo["previous_item_id"] == "my_item_1"


def test_session_overrides_are_merged_over_the_recorded_session():
    engine = engine_for("hello", session_overrides={"instructions": "Ephemeral.", "audio": {"output": {"voice": "cedar"}}})
    (created,) = out(engine)
    assert created["session"]["instructions"] == "Ephemeral."
    assert created["session"]["audio"]["output"]["voice"] == "cedar"
    assert created["session"]["audio"]["output"]["format"]  # merged, not replaced
    (updated,) = send(engine, ga_update(tools=[TOOL]))
    assert updated["session"]["instructions"] == "Ephemeral."


# -- fresh ids -------------------------------------------------------------------------------------


def play_function_call(connection: int) -> tuple[ReplaySession, list[dict]]:
    engine = engine_for("function_call", connection=connection)
    got = out(engine)
    recorded = [ev.event for ev in engine.cassette.sessions[0].core if ev.direction.value == "client"]
    for event in recorded[:3]:
        got += send(engine, event)
    call_id = next(e for e in got if e["type"] == "response.function_call_arguments.done")["call_id"]
    got += send(engine, {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": "{}"}})
    got += send(engine, {"type": "response.create"})
    return engine, got


def ids_in(events: list[dict]) -> set[str]:
    found: set[str] = set()

    def walk(v, key=None):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, k)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and key in ("id", "item_id", "call_id", "response_id", "event_id"):
            found.add(v)

    walk(events)
    return found


def test_ids_are_fresh_per_connection_deterministic_and_consistent_everywhere():
    first, a = play_function_call(0)
    second, b = play_function_call(1)
    again, c = play_function_call(0)
    assert ids_in(a) == ids_in(c)  # the same connection number: the same ids, every run
    assert ids_in(a).isdisjoint(ids_in(b))  # two connections: no id in common
    assert errors(a) == [] and first.divergences == [] and second.divergences == []
    calls = {e["call_id"] for e in b if e["type"] == "response.function_call_arguments.done"}
    calls |= {e["item"]["call_id"] for e in b if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call"}
    done_calls = {o["call_id"] for e in b if e["type"] == "response.done" for o in e["response"]["output"] if o["type"] == "function_call"}
    assert len(calls) == 1 and calls == done_calls
    recorded = {ev.event["call_id"] for ev in second.cassette.sessions[0].core if ev.type == "response.function_call_arguments.done"}
    assert calls.isdisjoint(recorded)
    assert second.untag(calls.pop()) in recorded


# -- policy, bounds, stalls ------------------------------------------------------------------------


def test_the_close_policy_sends_the_error_then_closes():
    engine = engine_for("hello", on_divergence="close")
    out(engine)
    engine.feed(json.dumps({"type": "response.create"}), 1)
    frames = engine.pop_due(1e12)
    assert json.loads(frames[0])["error"]["code"] == "cassette_mismatch"
    assert frames[-1] == CloseFrame(4000, "invalid_request_error.cassette_mismatch") and engine.closed


def test_identical_divergences_are_counted_not_stored_again():
    engine = engine_for("hello")
    out(engine)
    for _ in range(50):
        engine.feed(json.dumps({"type": "response.create"}), 1)
    assert len(errors(out(engine))) == 50  # each still gets the API-shaped error
    assert len(engine.divergences) == 1 and list(engine.divergences.repeats.values()) == [49]


def test_the_journal_is_bounded_and_counts_what_it_dropped():
    engine = engine_for("hello", journal_limit=10)
    out(engine)
    for i in range(25):
        engine.feed(json.dumps({"type": "input_audio_buffer.clear", "event_id": f"c{i}"}), i)
    assert len(engine.journal) == 10 and engine.journal.dropped == 15
    assert engine.journal[-1].event["event_id"] == "c24"
    engine.feed(json.dumps({"type": "conversation.item.create", "item": {**USER, "content": [{"type": "input_text", "text": "x" * 100_000}]}}), 30)
    assert engine.journal[-1].event["item"]["content"][0]["text"] == "<100000 characters>"


def test_a_stall_names_what_the_server_waits_for_and_errors():
    engine = engine_for("hello")
    out(engine)
    send(engine, ga_update())
    assert engine.waiting_for() is not None and "response.create" in engine.waiting_for()
    engine.stall(10, 10_000)
    (error,) = errors(out(engine))
    assert error["code"] == "cassette_stalled" and "response.create" in error["message"]
    assert engine.journal[-1].outcome == "stalled"
    assert engine.divergences[-1].kind == "stall"


# -- the engine's own barge-in ---------------------------------------------------------------------


def barge_in_cassette() -> Cassette:
    """Server VAD: the user speaks, the model answers with audio for 1 s, and only after it ends does
    the user speak again. A live user who speaks again sooner interrupts it: the recording has no
    cancellation there, the engine must make one."""
    def srv(at, n, type, **f):
        return RecordedEvent.make("server", at, {"type": type, "event_id": f"event_{n:021d}", **f})

    chunk = base64.b64encode(b"\x00" * 4800).decode()  # 100 ms of pcm16 at 24 kHz
    audio_item = {"id": "item_a", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    events = [srv(0, 1, "session.created", session={"type": "realtime", "id": "sess_1", "audio": {
        "input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": {"type": "server_vad", "interrupt_response": True}},
        "output": {"format": {"type": "audio/pcm", "rate": 24000}}}})]
    events += [RecordedEvent.make("client", 10 + 100 * i, {"type": "input_audio_buffer.append", "audio": chunk}) for i in range(30)]
    events += [
        srv(300, 2, "input_audio_buffer.speech_started", audio_start_ms=200, item_id="item_u"),
        srv(800, 3, "input_audio_buffer.speech_stopped", audio_end_ms=700, item_id="item_u"),
        srv(810, 4, "response.created", response={"id": "resp_1", "object": "realtime.response", "status": "in_progress", "output": []}),
        srv(820, 5, "response.output_item.added", response_id="resp_1", output_index=0, item=audio_item),
        srv(830, 6, "response.content_part.added", response_id="resp_1", item_id="item_a", output_index=0, content_index=0, part={"type": "audio", "transcript": ""}),
    ]
    events += [srv(840 + 100 * i, 7 + i, "response.output_audio.delta", response_id="resp_1", item_id="item_a", output_index=0,
                   content_index=0, delta=chunk) for i in range(10)]
    events += [
        srv(1900, 20, "response.done", response={"id": "resp_1", "object": "realtime.response", "status": "completed", "output": [audio_item]}),
        srv(2500, 21, "input_audio_buffer.speech_started", audio_start_ms=2400, item_id="item_u2"),
    ]
    return Cassette(name="barge", dialect="ga", sessions=[Session(sorted(events, key=lambda e: e.offset_us))])


def test_a_barge_in_the_recording_does_not_hold_is_cancelled_by_the_engine_with_turn_detected():
    engine = ReplaySession(barge_in_cassette(), pace=1)
    engine.start(0)
    out(engine, 0)
    chunk = base64.b64encode(b"\x00" * 4800).decode()
    for _ in range(8):  # 800 ms: speech_started and speech_stopped; the response starts
        engine.receive({"type": "input_audio_buffer.append", "audio": chunk}, 100)
    early = out(engine, 300)
    assert "response.created" in [e["type"] for e in early]
    for _ in range(17):  # the user speaks again at 2400 ms of audio, while the answer still plays
        engine.receive({"type": "input_audio_buffer.append", "audio": chunk}, 300)
    rest = out(engine)
    types = [e["type"] for e in rest]
    assert types[0] == "input_audio_buffer.speech_started"
    done = [e for e in rest if e["type"] == "response.done"]
    assert len(done) == 1, "the recorded (completed) response.done is never sent"
    assert done[0]["response"]["status"] == "cancelled"
    assert done[0]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert types.count("response.output_audio.delta") < 10  # the recorded rest of the audio is dropped
    assert engine.model.active_response_id is None


# -- streaming -------------------------------------------------------------------------------------


def test_a_long_answer_streams_from_a_position_into_the_shared_plan():
    def srv(at, n, type, **f):
        return RecordedEvent.make("server", at, {"type": type, "event_id": f"event_{n:021d}", **f})

    events = [srv(0, 0, "session.created", session={"type": "realtime", "id": "sess_1"}),
              RecordedEvent.make("client", 1, {"type": "response.create"}),
              srv(2, 1, "response.created", response={"id": "resp_1", "object": "realtime.response", "status": "in_progress", "output": []})]
    events += [srv(3 + i / 1000, 2 + i, "response.output_text.delta", response_id="resp_1", item_id="item_1", output_index=0,
                   content_index=0, delta="x") for i in range(6000)]
    cassette = Cassette(name="long", dialect="ga", sessions=[Session(events)])
    engine = ReplaySession(cassette)
    engine.start(0)
    engine.pop_due(0)
    engine.receive({"type": "response.create"}, 1)
    (run,) = engine._runs
    assert run.sends is engine.plan.turns[0].sends  # shared, not copied
    first = engine.pop_due(1, 256)
    assert len(first) == 256 and json.loads(first[0])["type"] == "response.created"
    total = len(first)
    while engine.next_deadline() is not None:
        total += len(engine.pop_due(1, 256))
    assert total == 6001
