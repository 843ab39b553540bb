"""The engine's paths through a recording, driven without sockets, each checked on what goes out: the ids
a housekeeping cue lends to the session model's answers, the recorded events that follow a cue (its
tail), recorded answers where the model has none, the API's recorded error for an invalid trigger,
server-VAD turns the client moves past, closes, the frame size limit, and the journal's times."""

from __future__ import annotations

import base64
import json

import pytest

from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session
from mockrealtime.core.engine import CloseFrame, ReplaySession, SessionCursor
from mockrealtime.protocol import ClientEventValidator

from recorded_events import ev, silence, srv


def cassette(*events: RecordedEvent, close: Close | None = None, name: str = "t") -> Cassette:
    return Cassette(name=name, dialect="ga", sessions=[Session(list(events), close)], matching={})


def frames(engine: ReplaySession, now_ms: float = 1e12) -> list:
    return [json.loads(f) if isinstance(f, str) else f for f in engine.pop_due(now_ms)]


def types(got: list) -> list:
    return [f["type"] if isinstance(f, dict) else f for f in got]


USER_TEXT = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
USER_AUDIO = {"type": "message", "role": "user", "status": "completed", "content": [{"type": "input_audio", "transcript": None}]}


def housekeeping_cassette() -> Cassette:
    """An item, then a commit whose transcription followed later, then one response."""
    return cassette(
        srv(0, "session.created", 1, session={"type": "realtime", "id": "sess_1"}),
        ev("client", 5, "conversation.item.create", item=USER_TEXT),
        srv(6, "conversation.item.added", 2, previous_item_id=None, item={"id": "item_rec1", **USER_TEXT}),
        srv(7, "conversation.item.done", 3, previous_item_id=None, item={"id": "item_rec1", **USER_TEXT}),
        ev("client", 10, "input_audio_buffer.append", audio=silence(200)),
        ev("client", 20, "input_audio_buffer.commit"),
        srv(21, "input_audio_buffer.committed", 4, previous_item_id="item_rec1", item_id="item_rec2"),
        srv(30, "conversation.item.input_audio_transcription.completed", 7, item_id="item_rec2", content_index=0,
            transcript="hello"),
        ev("client", 40, "response.create"),
        srv(50, "response.created", 9, response={"id": "resp_1", "status": "in_progress", "output": []}),
        srv(70, "response.done", 10, response={"id": "resp_1", "status": "completed", "output": []}),
    )


def clear_then_response(close: Close | None = None) -> Cassette:
    """A housekeeping event the session model cannot answer (its recorded answer, then an event that followed
    it), then one response, and the server closing."""
    return cassette(
        srv(0, "session.created", 1, session={"type": "realtime", "id": "sess_1"}),
        ev("client", 5, "output_audio_buffer.clear"),
        srv(6, "output_audio_buffer.cleared", 2, response_id="resp_0"),
        srv(7, "rate_limits.updated", 3, rate_limits=[]),
        ev("client", 40, "response.create"),
        srv(50, "response.created", 4, response={"id": "resp_1", "status": "in_progress", "output": []}),
        srv(70, "response.done", 5, response={"id": "resp_1", "status": "completed", "output": []}),
        close=close,
    )


def connected(c: Cassette, **kw) -> ReplaySession:
    engine = ReplaySession(c, **kw)
    engine.start(0)
    frames(engine)
    return engine


def test_an_item_without_an_id_gets_the_recorded_id_and_a_commit_the_recorded_item_with_its_transcription():
    engine = connected(housekeeping_cassette())
    engine.receive({"type": "conversation.item.create", "item": USER_TEXT}, 1)
    first = {"id": "item_MR0xrec1", **USER_TEXT, "status": "completed"}
    assert frames(engine) == [
        {"type": "conversation.item.added", "event_id": "event_MR000000000000000001", "previous_item_id": None, "item": first},
        {"type": "conversation.item.done", "event_id": "event_MR000000000000000002", "previous_item_id": None, "item": first}]
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(200)}, 2)
    engine.receive({"type": "input_audio_buffer.commit"}, 3)
    got = frames(engine)
    assert types(got) == ["input_audio_buffer.committed", "conversation.item.added", "conversation.item.done",
                          "conversation.item.input_audio_transcription.completed"]
    assert got[0]["item_id"] == got[1]["item"]["id"] == got[3]["item_id"] == "item_MR0xrec2"
    assert got[0]["previous_item_id"] == got[1]["previous_item_id"] == "item_MR0xrec1" and got[3]["transcript"] == "hello"
    plan = engine.plan
    indices = [cue.index for cue in plan.turns[0].cues]
    assert [(e.at_ms, e.outcome, e.event_index) for e in engine.journal] == [
        (1, "matched", indices[0]), (2, "audio", None), (3, "matched", indices[1])]


def test_the_clients_own_item_id_replaces_the_recorded_one_wherever_it_appears():
    engine = connected(housekeeping_cassette())
    engine.receive({"type": "conversation.item.create", "item": {"id": "mine", **USER_TEXT}}, 1)
    assert [f["item"]["id"] for f in frames(engine)] == ["mine", "mine"]
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(200)}, 2)
    engine.receive({"type": "input_audio_buffer.commit"}, 3)
    assert frames(engine)[0]["previous_item_id"] == "mine"
    assert engine.untag("mine") == "item_rec1" and engine.fresh("item_rec1") == "mine"


def test_housekeeping_the_model_cannot_answer_gets_the_recorded_answer_then_what_followed_it():
    engine = connected(clear_then_response())
    engine.receive({"type": "output_audio_buffer.clear"}, 4)
    assert frames(engine) == [{"type": "output_audio_buffer.cleared", "event_id": "event_MR0x002", "response_id": "resp_MR0x0"},
                              {"type": "rate_limits.updated", "event_id": "event_MR0x003", "rate_limits": []}]
    assert (engine.journal[-1].at_ms, engine.journal[-1].outcome) == (4, "matched")


def test_a_trigger_releases_what_followed_housekeeping_the_client_never_sent_and_the_close_comes_last():
    engine = connected(clear_then_response(Close(by="server")))
    engine.receive({"type": "response.create"}, 5)
    assert types(frames(engine)) == ["rate_limits.updated", "response.created", "response.done", CloseFrame(1000, "")]
    assert engine.closed


def test_a_cancel_naming_another_response_is_refused_and_the_running_one_plays_on():
    engine = connected(clear_then_response(), pace=1)
    engine.receive({"type": "response.create"}, 100)
    assert types(frames(engine, 111)) == ["rate_limits.updated", "response.created"]
    engine.receive({"type": "response.cancel", "response_id": "resp_other", "event_id": "c1"}, 115)
    rest = frames(engine)
    assert [f["error"]["code"] for f in rest if f["type"] == "error"] == ["response_cancel_not_active"]
    assert [f["response"]["status"] for f in rest if f["type"] == "response.done"] == ["completed"]


def test_a_response_create_while_one_runs_is_answered_and_journaled_at_its_time():
    engine = connected(clear_then_response(), pace=1)
    engine.receive({"type": "response.create"}, 100)
    frames(engine, 111)
    engine.receive({"type": "response.create", "event_id": "again"}, 112)
    assert (engine.journal[-1].at_ms, engine.journal[-1].outcome) == (112, "answered")
    assert [f["error"]["code"] for f in frames(engine, 112) if f["type"] == "error"] == [
        "conversation_already_has_active_response"]


# -- triggers past server-VAD turns, the API's error for a trigger -----------------------------------------

def vad_then_invalid_trigger() -> Cassette:
    bad = {"output_modalities": ["bogus"]}
    return cassette(
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 5, "input_audio_buffer.append", audio=silence(300)),
        srv(100, "input_audio_buffer.speech_started", 2, audio_start_ms=50, item_id="item_u1"),
        ev("client", 200, "response.create", event_id="rec_rc", response=bad),
        srv(201, "error", 3, error={"type": "invalid_request_error", "code": "invalid_value", "message": "recorded",
                                    "param": "response.output_modalities[0]", "event_id": "rec_rc"}),
    )


def test_the_recorded_error_for_an_invalid_trigger_is_replayed_with_the_live_event_id_after_the_vad_turn_it_skips():
    engine = connected(vad_then_invalid_trigger(), validator=ClientEventValidator("ga"))
    engine.feed(json.dumps({"type": "response.create", "event_id": "live_rc", "response": {"output_modalities": ["bogus"]}}), 7)
    got = frames(engine)
    assert types(got) == ["input_audio_buffer.speech_started", "error"]
    assert got[1]["error"] == {"type": "invalid_request_error", "code": "invalid_value", "message": "recorded",
                               "param": "response.output_modalities[0]", "event_id": "live_rc"}
    assert (engine.journal[-1].at_ms, engine.journal[-1].outcome, engine.journal[-1].event_index) == (
        7, "matched", engine.plan.turns[1].index)
    assert engine.finished


def test_an_invalid_trigger_the_recording_does_not_show_rejected_gets_the_validators_error():
    engine = connected(vad_then_invalid_trigger(), validator=ClientEventValidator("ga"))
    engine.feed(json.dumps({"type": "response.create", "event_id": "live_rc",
                            "response": {"output_modalities": ["nope"], "tool_choice": "required"}}), 7)
    got = frames(engine)
    assert types(got) == ["error"] and "'nope'" in got[0]["error"]["message"]
    assert engine.journal[-1].outcome == "rejected" and engine.journal[-1].at_ms == 7


def test_a_valid_trigger_moves_past_a_vad_turn_the_audio_never_reached_and_releases_it_first():
    c = cassette(
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 5, "input_audio_buffer.append", audio=silence(300)),
        srv(100, "input_audio_buffer.speech_started", 2, audio_start_ms=50, item_id="item_u1"),
        ev("client", 300, "response.create"),
        srv(301, "response.created", 4, response={"id": "resp_1", "status": "in_progress", "output": []}),
        srv(302, "response.done", 5, response={"id": "resp_1", "status": "completed", "output": []}),
        ev("client", 305, "input_audio_buffer.append", audio=silence(100)),
        srv(400, "input_audio_buffer.speech_started", 6, audio_start_ms=320, item_id="item_u2"),
    )
    engine = connected(c)
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(40)}, 1)
    assert frames(engine) == []
    engine.receive({"type": "response.create"}, 2)
    assert types(frames(engine)) == ["input_audio_buffer.speech_started", "response.created", "response.done"]
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(400)}, 3)
    assert types(frames(engine)) == ["input_audio_buffer.speech_started"]
    assert engine.finished


def test_audio_sent_before_a_trigger_opens_the_vad_turn_after_it_at_once():
    c = cassette(
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 1, "response.create"),
        srv(2, "response.created", 2, response={"id": "resp_1", "status": "in_progress", "output": []}),
        srv(3, "response.done", 3, response={"id": "resp_1", "status": "completed", "output": []}),
        ev("client", 5, "input_audio_buffer.append", audio=silence(300)),
        srv(100, "input_audio_buffer.speech_started", 4, audio_start_ms=50, item_id="item_u1"),
    )
    engine = connected(c)
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(300)}, 1)
    engine.receive({"type": "response.create"}, 2)
    assert types(frames(engine)) == ["response.created", "response.done", "input_audio_buffer.speech_started"]


# -- closes, frame limits, strict reports, ids ------------------------------------------------------------

def test_a_recorded_close_after_an_unanswered_trigger_goes_out_with_its_code_and_reason():
    c = cassette(srv(0, "session.created", 1, session={"type": "realtime"}), ev("client", 1, "response.create"),
                 close=Close(by="server", code=4000, reason="bye"))
    engine = connected(c)
    engine.receive({"type": "response.create"}, 1)
    assert frames(engine) == [CloseFrame(4000, "bye")]


def test_a_frame_over_the_size_limit_gets_one_error_naming_both_sizes():
    engine = connected(housekeeping_cassette(), max_frame_bytes=10)
    engine.feed('{"type":"response.create"}', 1)
    (error,) = frames(engine)
    assert error["error"]["code"] == "message_too_large" and error["error"]["event_id"] is None
    assert error["error"]["message"] == "mockrealtime: message of 26 bytes exceeds the 10-byte limit"
    assert list(engine.journal) == []


def test_a_rejected_frame_is_journaled_at_its_time_with_what_it_held():
    engine = connected(housekeeping_cassette(), validator=ClientEventValidator("ga"))
    engine.feed(json.dumps({"type": "session.update", "event_id": 5, "session": {"type": "nope"}}), 9)
    (error,) = frames(engine)
    assert error["error"]["event_id"] is None
    (entry,) = engine.journal
    assert (entry.at_ms, entry.outcome, entry.event) == (9, "rejected", {"type": "session.update", "event_id": 5,
                                                                          "session": {"type": "nope"}})


def test_strict_mode_records_each_skipped_cue_with_where_it_was_and_what_it_was():
    engine = connected(clear_then_response(), strict=True)
    engine.receive({"type": "response.create"}, 5)
    skipped = [d.to_dict() for d in engine.divergences]
    first = engine.plan.turns[0].cues[0]
    assert skipped[0] == {
        "cassette": "t", "session": 0, "event_index": first.index, "expected": first.event.event, "received": {"type": None},
        "differences": [], "closest_index": None, "kind": "skipped",
        "summary": f"the client never sent the recorded 'output_audio_buffer.clear' (event {first.index}) before "
                   f"response.create (recorded event {engine.plan.turns[0].index})"}
    assert len(skipped) == 1


def test_strict_mode_shows_unrecorded_housekeeping_against_the_turn_it_waits_in():
    engine = connected(housekeeping_cassette(), strict=True)
    engine.receive({"type": "conversation.item.retrieve", "item_id": "x", "event_id": "r1"}, 3)
    (d,) = engine.divergences
    assert d.event_index == engine.plan.turns[0].index and d.expected == {"type": "response.create"}


def test_event_ids_the_engine_makes_are_numbered_per_connection():
    engine = ReplaySession(housekeeping_cassette(), connection=12)
    assert [engine.new_event_id(), engine.new_event_id()] == ["event_MR012000000000000001", "event_MR012000000000000002"]


@pytest.mark.parametrize(("live", "recorded"), [
    ("item_MR3xabc", "item_abc"), ("MR3xabc", "abc"), ("item_abc", "item_abc"), ("abc", "abc"),
    ("item_x_MR3xabc", "item_x_MR3xabc"), ("resp_MR3x", "resp_")])
def test_untag_removes_this_connections_tag_after_the_prefix_only(live, recorded):
    engine = ReplaySession(housekeeping_cassette(), connection=3)
    assert engine.untag(live) == recorded
    assert engine.fresh(recorded) == live or live == recorded


def test_untag_gives_back_the_recorded_id_a_client_chose_to_replace():
    engine = ReplaySession(housekeeping_cassette(), connection=3)
    engine.choose("item_a", "mine_a")
    engine.choose("item_b", "mine_b")
    assert [engine.untag("mine_b"), engine.untag("mine_a"), engine.untag("item_MR3xc")] == ["item_b", "item_a", "item_c"]


def test_each_cassette_has_its_own_session_order():
    two = Cassette(name="a", dialect="ga", sessions=[Session([]), Session([])], matching={})
    other = Cassette(name="b", dialect="ga", sessions=[Session([]), Session([])], matching={})
    cursor = SessionCursor()
    assert [cursor.take(two), cursor.take(other), cursor.take(two), cursor.take(two), cursor.take(other)] == [0, 0, 1, 0, 1]


# -- found while measuring (fixed in plan.py since): a commit's item echo and a refused trigger's successor --

COMMITTED_ITEM = {"id": "item_rec2", **USER_AUDIO}


def test_a_commit_s_recorded_item_echo_is_its_answer_not_sent_twice():
    c = cassette(
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 10, "input_audio_buffer.append", audio=silence(200)),
        ev("client", 20, "input_audio_buffer.commit"),
        srv(21, "input_audio_buffer.committed", 2, previous_item_id=None, item_id="item_rec2"),
        srv(22, "conversation.item.added", 3, previous_item_id=None, item=COMMITTED_ITEM),
        srv(23, "conversation.item.done", 4, previous_item_id=None, item=COMMITTED_ITEM),
    )
    engine = connected(c)
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(200)}, 1)
    engine.receive({"type": "input_audio_buffer.commit"}, 2)
    assert types(frames(engine)) == ["input_audio_buffer.committed", "conversation.item.added", "conversation.item.done"]


def test_push_to_talk_recorded_with_commit_and_response_create_back_to_back_replays():
    c = cassette(
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 10, "input_audio_buffer.append", audio=silence(200)),
        ev("client", 20, "input_audio_buffer.commit"),
        ev("client", 20, "response.create"),
        srv(21, "input_audio_buffer.committed", 2, previous_item_id=None, item_id="item_rec2"),
        srv(22, "conversation.item.added", 3, previous_item_id=None, item=COMMITTED_ITEM),
        srv(23, "conversation.item.done", 4, previous_item_id=None, item=COMMITTED_ITEM),
        srv(50, "response.created", 5, response={"id": "resp_1", "status": "in_progress", "output": []}),
        srv(70, "response.done", 6, response={"id": "resp_1", "status": "completed", "output": []}),
    )
    engine = connected(c)
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(200)}, 1)
    engine.receive({"type": "input_audio_buffer.commit"}, 2)
    engine.receive({"type": "response.create"}, 3)
    assert "error" not in types(frames(engine)) and engine.divergences == []


# -- validation first, metadata, the journal's copy ----------------------------------------------------------

def test_a_wrong_json_type_gets_the_api_type_error_even_where_the_recording_shows_that_event_rejected():
    from mockrealtime.core.library import CassetteLibrary
    engine = ReplaySession(CassetteLibrary().resolve("missing_call_id", "ga"), validator=ClientEventValidator("ga"))
    engine.start(0)
    recorded = [e.event for e in engine.cassette.sessions[0].core if e.direction.value == "client"]
    bad = next(e for e in recorded if (e.get("item") or {}).get("type") == "function_call_output")
    for event in recorded[:3]:
        engine.receive(event, 1)
    frames(engine)
    engine.feed(json.dumps({**bad, "event_id": "live_1", "previous_item_id": 5}), 2)
    (error,) = frames(engine)
    assert (error["error"]["code"], error["error"]["param"]) == ("invalid_type", "previous_item_id")


def test_a_frame_of_exactly_the_size_limit_is_accepted():
    engine = connected(clear_then_response(), max_frame_bytes=len('{"type":"response.create"}'))
    engine.feed('{"type":"response.create"}', 1)
    assert types(frames(engine)) == ["rate_limits.updated", "response.created", "response.done"]


def test_a_response_create_without_the_recorded_metadata_gets_none_back():
    c = cassette(
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 1, "response.create", response={"metadata": {"topic": "recorded"}}),
        srv(2, "response.created", 2, response={"id": "resp_1", "status": "in_progress", "metadata": {"topic": "recorded"}}),
        srv(3, "response.done", 3, response={"id": "resp_1", "status": "completed", "metadata": {"topic": "recorded"}}),
    )
    engine = connected(c)
    engine.receive({"type": "response.create"}, 1)
    assert [f["response"]["metadata"] for f in frames(engine)] == [None, None]


def test_an_event_received_after_a_short_frame_is_still_kept_compact_in_the_journal():
    engine = connected(clear_then_response())
    engine.feed('{"type":"output_audio_buffer.clear"}', 1)
    engine.receive({"type": "session.update", "session": {"instructions": "x" * 5000}}, 2)
    assert engine.journal[-1].event == {"type": "session.update", "session": {"instructions": "<5000 characters>"}}


# -- barge-in: the engine's own cancel only where the recording has none --------------------------------------

def play_barge_in(engine: ReplaySession) -> list[dict]:
    """The flow of test_engine_turns' barge-in: the user speaks again at 2400 ms while the answer plays."""
    engine.start(0)
    frames(engine, 0)
    chunk = base64.b64encode(b"\x00" * 4800).decode()
    for _ in range(8):
        engine.receive({"type": "input_audio_buffer.append", "audio": chunk}, 100)
    frames(engine, 300)
    for _ in range(17):
        engine.receive({"type": "input_audio_buffer.append", "audio": chunk}, 300)
    return frames(engine)


def test_a_barge_in_with_interrupt_response_off_lets_the_answer_finish():
    from test_engine_turns import barge_in_cassette
    c = barge_in_cassette()
    created = c.sessions[0].core[0].event
    created["session"]["audio"]["input"]["turn_detection"]["interrupt_response"] = False
    rest = play_barge_in(ReplaySession(c, pace=1))
    assert [e["response"]["status"] for e in rest if e["type"] == "response.done"] == ["completed"]


def test_a_barge_in_the_recording_holds_is_replayed_as_recorded_not_cancelled_again():
    from mockrealtime.core.library import CassetteLibrary
    engine = ReplaySession(CassetteLibrary().resolve("turn_detected", "ga"), pace=1)
    engine.start(0)
    frames(engine)
    first = next(e.event for e in engine.cassette.sessions[0].core if e.direction.value == "client")
    engine.receive(first, 0)
    chunk = base64.b64encode(b"\x00" * 960).decode()
    now = 10.0
    while engine.audio_ms < 2400:
        engine.receive({"type": "input_audio_buffer.append", "audio": chunk}, now)
        now += 1
    frames(engine, now + 500)
    assert engine.model.active_response_id is not None
    while engine.audio_ms < 4100:
        engine.receive({"type": "input_audio_buffer.append", "audio": chunk}, now)
    (done,) = [e for e in frames(engine) if e["type"] == "response.done"]
    recorded = next(e.event for e in engine.cassette.sessions[0].core if e.type == "response.done")
    assert done["event_id"] == engine.fresh(recorded["event_id"])  # the recorded one, not one the engine made
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}


# -- matching a trigger on state, finding cues --------------------------------------------------------------

def tools_cassette(mode: str | None = None) -> Cassette:
    session = {"type": "realtime", "tools": [{"type": "function", "name": "f"}], "tool_choice": "auto",
               "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}},
                         "output": {"format": {"type": "audio/pcm", "rate": 24000}}}}
    return Cassette(name="tools", dialect="ga", matching={"mode": mode} if mode else {}, sessions=[Session([
        srv(0, "session.created", 1, session=session),
        ev("client", 1, "response.create"),
        srv(2, "response.created", 2, response={"id": "resp_1", "status": "in_progress", "output": []}),
        srv(3, "response.done", 3, response={"id": "resp_1", "status": "completed", "output": []}),
    ])])


@pytest.mark.parametrize(("update", "named"), [
    ({"tool_choice": "required"}, 'session.tool_choice: expected "auto", received "required"'),
    ({"audio": {"output": {"format": {"type": "audio/pcmu"}}}},
     'session.audio formats (input, output): expected ["pcm16", "pcm16"], received ["pcm16", "g711_ulaw"]'),
])
def test_a_trigger_is_matched_on_the_state_the_model_would_see_and_the_difference_is_named(update, named):
    engine = connected(tools_cassette())
    engine.receive({"type": "session.update", "session": {"type": "realtime", **update}}, 1)
    frames(engine)
    engine.receive({"type": "response.create"}, 2)
    (error,) = frames(engine)
    assert named in error["error"]["message"]


def test_type_mode_matches_a_trigger_on_its_type_alone_whatever_the_state():
    engine = connected(tools_cassette("type"))
    engine.receive({"type": "session.update", "session": {"type": "realtime", "tool_choice": "required"}}, 1)
    frames(engine)
    engine.receive({"type": "response.create"}, 2)
    assert types(frames(engine)) == ["response.created", "response.done"]


def three_updates_cassette() -> Cassette:
    return cassette(
        srv(0, "session.created", 1, session={"type": "realtime"}),
        *[e for n in range(3) for e in (ev("client", 1 + n, "session.update", session={"type": "realtime"}),
                                          srv(1.5 + n, "session.updated", 2 + n, session={"type": "realtime"}))],
        ev("client", 10, "response.create"),
        srv(11, "response.created", 9, response={"id": "resp_1", "status": "in_progress", "output": []}),
        srv(12, "response.done", 10, response={"id": "resp_1", "status": "completed", "output": []}),
        ev("client", 20, "conversation.item.delete", item_id="item_x"),
    )


def test_repeated_housekeeping_consumes_its_cues_in_recorded_order():
    engine = connected(three_updates_cassette())
    for n in range(4):
        engine.receive({"type": "session.update", "session": {"type": "realtime"}}, 1 + n)
    cues = [cue.index for cue in engine.plan.turns[0].cues]
    assert [e.event_index for e in engine.journal] == [*cues, None]
    assert [e.outcome for e in engine.journal] == ["matched"] * 3 + ["answered"]


def test_housekeeping_recorded_after_a_response_does_not_release_that_response_early():
    engine = connected(three_updates_cassette())
    engine.receive({"type": "conversation.item.delete", "item_id": "item_x"}, 1)
    got = frames(engine)
    assert types(got) == ["error"] and got[0]["error"]["code"] == "item_delete_invalid_item_id"
    engine.receive({"type": "response.create"}, 2)
    assert types(frames(engine)) == ["response.created", "response.done"]


def test_strict_mode_past_the_last_turn_expects_nothing():
    engine = connected(clear_then_response(), strict=True)
    engine.receive({"type": "output_audio_buffer.clear"}, 1)
    engine.receive({"type": "response.create"}, 2)
    frames(engine)
    engine.receive({"type": "conversation.item.retrieve", "item_id": "x"}, 3)
    (d,) = engine.divergences
    assert (d.event_index, d.expected) == (None, None)


# -- what the first re-run left alive ---------------------------------------------------------------------------

def test_bad_settings_are_refused_with_what_is_allowed():
    with pytest.raises(ValueError, match=r"^pace must be 0 \(as fast as possible\) or more$"):
        ReplaySession(clear_then_response(), pace=-1)
    with pytest.raises(ValueError, match="^on_divergence must be one of error, close$"):
        ReplaySession(clear_then_response(), on_divergence="ignore")


def test_the_client_acting_is_noted_for_stall_detection():
    engine = connected(housekeeping_cassette())
    assert engine.acted is False
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(10)}, 1)
    assert engine.acted is True
    engine.acted = False
    engine.receive({"type": "conversation.item.retrieve", "item_id": "x"}, 2)
    assert engine.acted is True


def test_a_fed_append_is_journaled_with_its_audio_length_and_a_long_event_compact_even_before_any_frame():
    engine = connected(housekeeping_cassette())
    engine.receive({"type": "session.update", "session": {"instructions": "x" * 3000}}, 1)
    assert engine.journal[-1].event == {"type": "session.update", "session": {"instructions": "<3000 characters>"}}
    engine.feed(json.dumps({"type": "input_audio_buffer.append", "audio": silence(10)}), 2)
    assert engine.journal[-1].event == {"type": "input_audio_buffer.append", "audio_bytes": 480}


def test_items_the_model_invents_carry_the_connection_number_and_a_create_without_a_recorded_echo_gets_one():
    c = cassette(srv(0, "session.created", 1, session={"type": "realtime"}),
                 ev("client", 1, "conversation.item.create", item=USER_TEXT))
    engine = connected(c, connection=7)
    engine.receive({"type": "conversation.item.create", "item": USER_TEXT}, 1)
    assert [f["item"]["id"] for f in frames(engine)] == ["item_MR007000000000000001"] * 2
    engine.receive({"type": "conversation.item.create", "item": USER_TEXT}, 2)
    assert [f["item"]["id"] for f in frames(engine)] == ["item_MR007000000000000002"] * 2


def test_a_beta_item_without_an_id_gets_the_recorded_id_from_conversation_item_created():
    c = Cassette(name="b", dialect="beta", matching={}, sessions=[Session([
        srv(0, "session.created", 1, session={"id": "sess_1"}),
        ev("client", 5, "conversation.item.create", item=USER_TEXT),
        srv(6, "conversation.item.created", 2, previous_item_id=None, item={"id": "item_rec1", "object": "realtime.item", **USER_TEXT}),
    ])])
    engine = connected(c)
    engine.receive({"type": "conversation.item.create", "item": USER_TEXT}, 1)
    (echo,) = frames(engine)
    assert echo["item"]["id"] == "item_MR0xrec1"


def test_session_overrides_make_session_created_with_this_connections_ids_and_keep_what_followed_it():
    c = cassette(srv(0, "session.created", 1, session={"type": "realtime", "id": "sess_1", "instructions": "a"}),
                 srv(1, "rate_limits.updated", 2, rate_limits=[]),
                 srv(2, "conversation.created", 3, conversation={"id": "conv_1"}))
    engine = ReplaySession(c, session_overrides={"instructions": "b"})
    engine.start(0)
    got = frames(engine)
    assert got[0] == {"type": "session.created", "event_id": "event_MR0x001",
                      "session": {"type": "realtime", "id": "sess_MR0x1", "instructions": "b"}}
    assert [(f["type"], f["event_id"]) for f in got[1:]] == [("rate_limits.updated", "event_MR0x002"),
                                                            ("conversation.created", "event_MR0x003")]


def test_a_vad_turn_at_position_zero_opens_on_connect():
    c = cassette(srv(0, "session.created", 1, session={"type": "realtime"}),
                 ev("client", 1, "input_audio_buffer.append", audio=silence(100)),
                 srv(50, "input_audio_buffer.speech_started", 2, audio_start_ms=0, item_id="item_u"))
    engine = ReplaySession(c)
    engine.start(0)
    assert types(frames(engine)) == ["session.created", "input_audio_buffer.speech_started"]


def test_the_engine_s_own_barge_in_cancel_goes_between_the_vad_event_and_the_rest_of_its_turn():
    from test_engine_turns import barge_in_cassette
    c = barge_in_cassette()
    events = list(c.sessions[0].core) + [srv(2510, "rate_limits.updated", 99, rate_limits=[])]
    rest = play_barge_in(ReplaySession(Cassette(name="b2", dialect="ga", matching={}, sessions=[Session(events)]), pace=1))
    kinds = [e["type"] for e in rest]
    start = kinds.index("input_audio_buffer.speech_started")
    done = kinds.index("response.done")
    assert kinds[start + 1:done] == ["response.output_audio.done", "response.output_audio_transcript.done",
                                     "response.content_part.done", "response.output_item.done", "conversation.item.done"]
    assert kinds[done + 1:] == ["rate_limits.updated"]


def test_a_trigger_sent_while_a_vad_turn_is_pending_after_a_response_moves_past_it():
    from test_divergence_reports import recording
    engine = connected(recording())
    engine.receive({"type": "session.update", "session": {"type": "realtime", "instructions": "a"}}, 1)
    engine.receive({"type": "response.create"}, 2)
    frames(engine)
    engine.receive({"type": "response.create", "response": {"instructions": "second"}}, 3)
    assert types(frames(engine)) == ["input_audio_buffer.speech_started", "response.created"]
    assert (engine.journal[-1].at_ms, engine.journal[-1].outcome) == (3, "matched")


def test_a_recorded_housekeeping_error_wins_over_the_validators_and_an_invalid_trigger_past_the_end_gets_the_api_error():
    c = cassette(srv(0, "session.created", 1, session={"type": "realtime"}),
                 ev("client", 1, "session.update", event_id="rec_su", session={"type": "nope"}),
                 srv(2, "error", 2, error={"type": "invalid_request_error", "code": "invalid_value", "message": "recorded",
                                           "param": "session.type", "event_id": "rec_su"}))
    engine = connected(c, validator=ClientEventValidator("ga"))
    engine.feed(json.dumps({"type": "session.update", "event_id": "live_su", "session": {"type": "nope"}}), 1)
    (error,) = frames(engine)
    assert (error["error"]["message"], error["error"]["event_id"]) == ("recorded", "live_su")
    engine.feed(json.dumps({"type": "response.create", "response": {"output_modalities": ["bogus"]}}), 2)
    (error,) = frames(engine)
    assert error["error"]["param"] == "response.output_modalities[0]" and error["error"]["message"] != "recorded"


def test_after_the_recorded_error_for_a_trigger_the_next_vad_turn_is_what_the_server_waits_for():
    c = cassette(*vad_then_invalid_trigger().sessions[0].core,
                 ev("client", 250, "input_audio_buffer.append", audio=silence(400)),
                 srv(300, "input_audio_buffer.speech_started", 9, audio_start_ms=600, item_id="item_u2"))
    engine = connected(c, validator=ClientEventValidator("ga"))
    engine.feed(json.dumps({"type": "response.create", "response": {"output_modalities": ["bogus"]}}), 7)
    frames(engine)
    assert engine.waiting_for().startswith(f"input audio up to 600 ms (server VAD, recorded event {engine.plan.turns[2].index})")


def test_sessions_of_a_cassette_are_taken_in_order_then_from_the_first_again():
    three = Cassette(name="three", dialect="ga", sessions=[Session([]), Session([]), Session([])], matching={})
    cursor = SessionCursor()
    assert [cursor.take(three) for _ in range(5)] == [0, 1, 2, 0, 1]
