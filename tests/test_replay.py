"""The sans-IO replay engine, driven without sockets: matching, audio clock, id echo, divergence, pacing."""

from __future__ import annotations

import base64
import json

import pytest

from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session
from mockrealtime.core.matching import Matcher
from mockrealtime.core.engine import CloseFrame, ReplaySession, SessionCursor

from recorded_events import ev, silence as silence_ms


def srv(at_ms: float, type: str, n: int, **fields) -> RecordedEvent:
    return ev("server", at_ms, type, event_id=f"event_{n:021d}", **fields)


def cassette(*events: RecordedEvent, close: Close | None = None, matching=None) -> Cassette:
    return Cassette(name="t", dialect="ga", sessions=[Session(list(events), close)], matching=matching or {})


def frames(engine: ReplaySession, now_ms: float = 1e12) -> list[dict]:
    return [json.loads(f) for f in engine.pop_due(now_ms) if isinstance(f, str)]


def types(engine: ReplaySession, now_ms: float = 1e12) -> list[str]:
    return [f["type"] for f in frames(engine, now_ms)]


TEXT_TURN = cassette(
    srv(0, "session.created", 1, session={"type": "realtime", "id": "sess_1"}),
    ev("client", 10, "conversation.item.create", item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}),
    srv(12, "conversation.item.added", 2, previous_item_id=None, item={"id": "item_srv1", "type": "message", "role": "user", "content": []}),
    srv(13, "conversation.item.done", 3, previous_item_id=None, item={"id": "item_srv1", "type": "message", "role": "user", "content": []}),
    ev("client", 20, "response.create"),
    srv(300, "response.created", 4, response={"id": "resp_1", "object": "realtime.response", "status": "in_progress", "metadata": None}),
    srv(320, "response.output_text.delta", 5, response_id="resp_1", item_id="item_2", output_index=0, content_index=0, delta="Hel"),
    srv(340, "response.output_text.delta", 6, response_id="resp_1", item_id="item_2", output_index=0, content_index=0, delta="lo"),
    srv(400, "response.done", 7, response={"id": "resp_1", "object": "realtime.response", "status": "completed", "metadata": None}),
)


def test_connect_gate_sends_what_preceded_the_first_client_event():
    engine = ReplaySession(TEXT_TURN)
    engine.start(0)
    assert types(engine) == ["session.created"]
    assert engine.next_deadline() is None


def test_a_matching_client_event_releases_what_followed_it_in_the_recording():
    engine = ReplaySession(TEXT_TURN)
    engine.start(0)
    frames(engine)
    engine.receive({"type": "conversation.item.create", "event_id": "mine", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "other words"}]}}, 5)
    assert types(engine) == ["conversation.item.added", "conversation.item.done"]
    engine.receive({"type": "response.create"}, 6)
    assert types(engine) == ["response.created", "response.output_text.delta", "response.output_text.delta", "response.done"]
    assert engine.finished and engine.unplayed() == [] and engine.divergences == []
    assert [j.outcome for j in engine.journal] == ["matched", "matched"]
    assert [j.event_index for j in engine.journal] == [1, 4]


def test_pace_zero_releases_everything_at_once_and_pace_scales_recorded_delays():
    fast = ReplaySession(TEXT_TURN, pace=0)
    fast.start(0)
    fast.pop_due(0)
    fast.receive(TEXT_TURN.sessions[0].events[1].event, 100)
    fast.receive({"type": "response.create"}, 100)
    assert fast.next_deadline() == 100
    assert len(fast.pop_due(100)) == 6  # the item's echo (added, done) and the whole response, at once
    half = ReplaySession(TEXT_TURN, pace=0.5)
    half.start(0)
    half.pop_due(1e9)
    half.receive(TEXT_TURN.sessions[0].events[1].event, 1000)
    half.pop_due(1e9)
    half.receive({"type": "response.create"}, 1000)
    # recorded: cue at 20 ms, created at 300, deltas at 320/340, done at 400 -> delays 280/300/320/380 * 0.5
    assert half.next_deadline() == 1140.0
    assert types(half, 1139) == []
    assert types(half, 1155) == ["response.created", "response.output_text.delta"]
    assert half.next_deadline() == 1160.0
    assert types(half, 1190) == ["response.output_text.delta", "response.done"]


TWO_RESPONSES = cassette(
    srv(0, "session.created", 1, session={"type": "realtime", "id": "sess_1"}),
    ev("client", 20, "response.create"),
    srv(30, "response.created", 2, response={"id": "resp_1", "object": "realtime.response", "status": "in_progress", "metadata": None}),
    srv(620, "response.done", 3, response={"id": "resp_1", "object": "realtime.response", "status": "completed", "metadata": None}),
    ev("client", 700, "response.create", response={"conversation": "none"}),
    srv(710, "response.created", 4, response={"id": "resp_2", "object": "realtime.response", "status": "in_progress", "metadata": None}),
)


def test_a_later_release_is_never_scheduled_before_an_earlier_one():
    """A second response released while a paced first one still streams goes out after it, at its own delay."""
    engine = ReplaySession(TWO_RESPONSES, pace=1)
    engine.start(0)
    frames(engine, 0)
    engine.receive({"type": "response.create"}, 0)
    assert types(engine, 10) == ["response.created"]  # recorded 10 ms after its trigger; done at 600 ms
    engine.receive({"type": "response.create", "response": {"conversation": "none"}}, 20)
    assert types(engine, 599) == []
    assert types(engine, 600) == ["response.done"]
    # the second response starts when the first has ended, 10 ms later as recorded (not at 20 + 10)
    assert engine.next_deadline() == 610
    assert types(engine, 609) == []
    assert types(engine, 610) == ["response.created"]


def test_client_item_id_is_echoed_wherever_the_recorded_item_id_appears():
    engine = ReplaySession(TEXT_TURN)
    engine.start(0)
    frames(engine)
    engine.receive({"type": "conversation.item.create", "item": {"id": "my_item_42", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}, 1)
    added, done = frames(engine)
    assert added["item"]["id"] == "my_item_42" and done["item"]["id"] == "my_item_42"


def test_response_metadata_is_copied_into_created_and_done():
    engine = ReplaySession(TEXT_TURN)
    engine.start(0)
    engine.receive(TEXT_TURN.sessions[0].events[1].event, 1)
    frames(engine)
    engine.receive({"type": "response.create", "response": {"metadata": {"client_event_id": "abc"}}}, 2)
    out = {f["type"]: f for f in frames(engine)}
    assert out["response.created"]["response"]["metadata"] == {"client_event_id": "abc"}
    assert out["response.done"]["response"]["metadata"] == {"client_event_id": "abc"}


def test_recorded_error_carries_the_live_clients_event_id():
    c = cassette(
        srv(0, "session.created", 1, session={}),
        ev("client", 5, "conversation.item.create", event_id="rec_1", item={"type": "function_call_output", "output": "x"}),
        srv(6, "error", 2, error={"type": "invalid_request_error", "code": "missing_required_parameter", "message": "Missing required parameter: 'item.call_id'.", "param": "item.call_id", "event_id": "rec_1"}),
    )
    engine = ReplaySession(c)
    engine.start(0)
    frames(engine)
    engine.receive({"type": "conversation.item.create", "event_id": "live_7", "item": {"type": "function_call_output", "output": "x"}}, 1)
    (error,) = frames(engine)
    assert error["error"]["event_id"] == "live_7"
    assert error["error"]["param"] == "item.call_id"


def test_divergence_answers_an_error_keeps_waiting_and_records_a_near_miss():
    engine = ReplaySession(TEXT_TURN)
    engine.start(0)
    frames(engine)
    engine.receive({"type": "response.create", "event_id": "evt_x"}, 1)
    (error,) = frames(engine)
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["code"] == "cassette_mismatch"
    assert error["error"]["event_id"] == "evt_x"
    # the model would see an empty conversation; the recording's model saw the user's message
    assert 'conversation.items[*] (type:role): expected ["message:user"], received []' in error["error"]["message"]
    (d,) = engine.divergences
    assert (d.session, d.event_index) == (0, 4)
    # the session goes on: once the state agrees, the trigger releases the model's output
    engine.receive(TEXT_TURN.sessions[0].events[1].event, 2)
    assert types(engine) == ["conversation.item.added", "conversation.item.done"]
    engine.receive({"type": "response.create"}, 3)
    assert types(engine)[0] == "response.created"


def test_near_miss_names_the_differing_fields_that_matter():
    c = cassette(
        srv(0, "session.created", 1, session={}),
        ev("client", 5, "session.update", session={"type": "realtime", "tools": [{"type": "function", "name": "list_emails"}]}),
        srv(6, "session.updated", 2, session={}),
    )
    engine = ReplaySession(c, strict=True)
    engine.start(0)
    frames(engine)
    engine.receive({"type": "session.update", "session": {"type": "realtime", "tools": [{"type": "function", "name": "get_weather"}]}}, 1)
    (d,) = engine.divergences
    assert [x.path for x in d.differences if x.matched_on] == ["session.tools[0].name"]
    assert "list_emails" in d.summary and "get_weather" in d.summary


def test_event_ids_key_order_and_ignored_fields_do_not_matter():
    engine = ReplaySession(TEXT_TURN)
    engine.start(0)
    engine.receive({"item": {"content": [{"text": "hi", "type": "input_text"}], "role": "user", "type": "message", "id": "x"}, "event_id": "e1", "type": "conversation.item.create"}, 1)
    assert engine.divergences == []


def test_divergence_past_the_end_of_the_recording():
    engine = ReplaySession(TEXT_TURN)
    engine.start(0)
    engine.receive(TEXT_TURN.sessions[0].events[1].event, 1)
    engine.receive({"type": "response.create"}, 2)
    engine.receive({"type": "response.create"}, 3)
    (d,) = engine.divergences
    assert d.expected is None and "no more client events" in d.summary


VAD = cassette(
    srv(0, "session.created", 1, session={"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}}}),
    *[ev("client", 10 + 20 * i, "input_audio_buffer.append", audio=silence_ms(20)) for i in range(50)],  # 1000 ms
    srv(500, "input_audio_buffer.speech_started", 2, audio_start_ms=200, item_id="item_u1"),
    srv(900, "input_audio_buffer.speech_stopped", 3, audio_end_ms=700, item_id="item_u1"),
    srv(901, "input_audio_buffer.committed", 4, previous_item_id=None, item_id="item_u1"),
    srv(950, "response.created", 5, response={"id": "resp_v", "status": "in_progress"}),
)


def test_vad_events_are_released_by_the_live_audio_position_not_by_count():
    engine = ReplaySession(VAD)
    engine.start(0)
    assert types(engine) == ["session.created"]
    # 100 ms chunks this time: the clock counts duration
    engine.receive({"type": "input_audio_buffer.append", "audio": silence_ms(100)}, 1)
    assert types(engine) == []
    engine.receive({"type": "input_audio_buffer.append", "audio": silence_ms(100)}, 2)
    assert types(engine) == ["input_audio_buffer.speech_started"]
    for _ in range(4):
        engine.receive({"type": "input_audio_buffer.append", "audio": silence_ms(100)}, 3)
    assert types(engine) == []
    engine.receive({"type": "input_audio_buffer.append", "audio": silence_ms(100)}, 4)
    assert types(engine) == ["input_audio_buffer.speech_stopped", "input_audio_buffer.committed", "response.created"]
    assert engine.audio_ms == pytest.approx(700)
    assert engine.journal[0].event == {"type": "input_audio_buffer.append", "audio_bytes": 4800}


def test_audio_clock_follows_the_negotiated_input_format():
    ulaw = cassette(
        srv(0, "session.created", 1, session={"input_audio_format": "g711_ulaw"}),
        *[ev("client", 10 + i, "input_audio_buffer.append", audio=base64.b64encode(b"\xff" * 160).decode()) for i in range(10)],
        srv(30, "input_audio_buffer.speech_started", 2, audio_start_ms=100, item_id="i"),
    )
    engine = ReplaySession(ulaw)
    engine.start(0)
    frames(engine)
    engine.receive({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\xff" * 800).decode()}, 1)
    assert types(engine) == ["input_audio_buffer.speech_started"]  # 800 bytes of 8 kHz mu-law = 100 ms


def test_pending_audio_gates_do_not_block_a_later_client_event():
    c = cassette(
        srv(0, "session.created", 1, session={}),
        ev("client", 10, "input_audio_buffer.append", audio=silence_ms(500)),
        srv(20, "input_audio_buffer.speech_started", 2, audio_start_ms=100, item_id="i"),
        ev("client", 30, "response.cancel"),
        srv(31, "error", 3, error={"type": "invalid_request_error", "code": "response_cancel_not_active", "message": "Cancellation failed: no active response found", "param": None, "event_id": None}),
    )
    engine = ReplaySession(c)
    engine.start(0)
    frames(engine)
    engine.receive({"type": "response.cancel"}, 1)
    assert types(engine) == ["input_audio_buffer.speech_started", "error"]
    assert engine.divergences == []


def test_server_close_in_the_recording_closes_the_connection():
    c = cassette(
        srv(0, "session.created", 1, session={}),
        ev("client", 5, "response.create"),
        srv(6, "error", 2, error={"type": "invalid_request_error", "code": "session_expired", "message": "Your session hit the maximum duration of 60 minutes.", "param": None, "event_id": None}),
        close=Close("server", 4000, "invalid_request_error.session_expired"),
    )
    engine = ReplaySession(c)
    engine.start(0)
    engine.receive({"type": "response.create"}, 1)
    out = engine.pop_due(1e9)
    assert out[-1] == CloseFrame(4000, "invalid_request_error.session_expired")
    assert engine.closed


def test_unplayed_lists_what_the_client_never_reached():
    engine = ReplaySession(TEXT_TURN)
    engine.start(0)
    frames(engine)
    left = engine.unplayed()
    assert left[0] == {"event_index": 4, "direction": "client", "type": "response.create"}
    assert [x["type"] for x in left if x["direction"] == "server"] == [
        "response.created", "response.output_text.delta", "response.output_text.delta", "response.done",
    ]
    strict = ReplaySession(TEXT_TURN, strict=True)  # strict mode also lists the housekeeping never sent
    strict.start(0)
    assert strict.unplayed()[0] == {"event_index": 1, "direction": "client", "type": "conversation.item.create"}


@pytest.mark.parametrize(
    ("layer", "received", "diverges"),
    [
        (None, {"type": "response.create", "response": {"tool_choice": "required"}}, True),
        ({"mode": "type"}, {"type": "response.create", "response": {"tool_choice": "required"}}, False),
        ({"rules": {"response.create": []}}, {"type": "response.create", "response": {"tool_choice": "required"}}, False),
        ({"mode": "exact"}, {"type": "response.create", "response": {"instructions": "x"}}, True),
    ],
)
def test_matching_rules_are_configurable_per_cassette_and_per_call(layer, received, diverges):
    c = cassette(srv(0, "session.created", 1, session={}), ev("client", 1, "response.create"))
    per_cassette = ReplaySession(cassette(*c.sessions[0].events, matching=layer))
    per_call = ReplaySession(c, matcher=Matcher.build(c.matching, layer))
    for engine in (per_cassette, per_call):
        engine.start(0)
        engine.receive(received, 1)
        assert bool(engine.divergences) is diverges


def test_sessions_are_consumed_in_order_then_again():
    c = Cassette(name="two", dialect="ga", sessions=[Session([]), Session([])])
    cursor = SessionCursor()
    assert [cursor.take(c) for _ in range(3)] == [0, 1, 0]


def test_an_absent_tool_choice_matches_a_recorded_auto():
    c = cassette(srv(0, "session.created", 1, session={}), ev("client", 1, "session.update", session={"type": "realtime", "tool_choice": "auto"}))
    engine = ReplaySession(c)
    engine.start(0)
    engine.receive({"type": "session.update", "session": {"type": "realtime"}}, 1)
    assert engine.divergences == []
    engine = ReplaySession(c, strict=True)
    engine.start(0)
    engine.receive({"type": "session.update", "session": {"type": "realtime", "tool_choice": "required"}}, 1)
    assert [d.path for d in engine.divergences[0].differences if d.matched_on] == ["session.tool_choice"]


def test_answers_to_a_pipelined_event_are_released_by_that_event():
    """The recording pipelined item.create + response.create; a live client may wait in between."""
    c = cassette(
        srv(0, "session.created", 1, session={}),
        ev("client", 5, "conversation.item.create", event_id="out_1", item={"type": "function_call_output", "output": "{}"}),
        ev("client", 6, "response.create"),
        srv(7, "error", 2, error={"type": "invalid_request_error", "code": "missing_required_parameter", "message": "m", "param": "item.call_id", "event_id": "out_1"}),
        srv(8, "response.created", 3, response={"id": "resp_1"}),
    )
    engine = ReplaySession(c)
    engine.start(0)
    frames(engine)
    engine.receive(c.sessions[0].events[1].event, 1)
    assert types(engine) == ["error"]
    engine.receive({"type": "response.create"}, 2)
    assert types(engine) == ["response.created"]


def test_recorded_answers_to_housekeeping_are_attributed_to_the_event_they_answer():
    c = cassette(
        srv(0, "session.created", 1, session={}),
        ev("client", 5, "conversation.item.create", item={"type": "message", "role": "user", "content": []}),
        ev("client", 6, "session.update", session={}),
        srv(7, "session.updated", 2, session={}),
        srv(8, "conversation.item.added", 3, item={"id": "i", "type": "message", "role": "user"}),
    )
    plan = ReplaySession(c).plan
    assert [ev.type for _, ev in plan.connect] == ["session.created"]
    (end,) = plan.turns
    assert [(cue.type, [a.type for _, a in cue.answers]) for cue in end.cues] == [
        ("conversation.item.create", ["conversation.item.added"]), ("session.update", ["session.updated"])]
