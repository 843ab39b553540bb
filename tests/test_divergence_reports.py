"""What a replay reports, without sockets: divergence summaries and their bounds, the journal's compact
copy of client events, the bounded divergence store, stalls, what was left unplayed (also after the
connection is released), and the near miss a divergence points to."""

from __future__ import annotations

import base64
import json

from mockrealtime.core.cassette import Cassette, Session
from mockrealtime.core.divergence import Divergence, DivergenceStore, strip_audio
from mockrealtime.core.engine import CloseFrame, ReplaySession
from mockrealtime.core.matching import FieldDiff

from recorded_events import ev, silence, srv


def diverged(expected, received, *diffs: FieldDiff, **kw) -> Divergence:
    return Divergence("c", 0, 3, expected, received, diffs, **kw)


def test_a_summary_shows_each_differing_value_as_json_cut_after_80_characters():
    long = "x" * 100
    d = diverged({"type": "session.update"}, {"type": "session.update"},
                 FieldDiff("session.instructions", long, "café", True), FieldDiff("session.voice", "<absent>", "a" * 78, True),
                 FieldDiff("session.model", "b" * 79, None, True))
    assert d.summary == ("expected 'session.update' (cassette 'c', session 0, event 3), received 'session.update'; differing: "
                         f'session.instructions: expected "{"x" * 76}..., received "café"; '
                         f'session.voice: expected <absent>, received "{"a" * 78}"; '
                         f'session.model: expected "{"b" * 76}..., received null')  # 81 characters quoted: cut
    assert d.to_dict()["differences"] == [
        {"path": "session.instructions", "expected": long, "received": "café", "matched_on": True},
        {"path": "session.voice", "expected": "<absent>", "received": "a" * 78, "matched_on": True},
        {"path": "session.model", "expected": "b" * 79, "received": None, "matched_on": True}]


def test_strings_are_kept_up_to_2048_characters_and_nesting_to_32_levels():
    deep: dict = {"leaf": "x"}
    for _ in range(40):
        deep = {"d": deep}
    nested: list = ["x"]
    for _ in range(40):
        nested = [nested]
    kept = strip_audio({"type": "session.update", "a": "y" * 2048, "b": "z" * 2049, "n": deep, "l": [[["w" * 2049]]],
                        "m": nested})
    assert (kept["a"], kept["b"], kept["l"]) == ("y" * 2048, "<2049 characters>", [[["<2049 characters>"]]])
    level, node = 1, kept["n"]
    while isinstance(node, dict):
        node, level = node["d"], level + 1
    assert (node, level) == ("<nested too deep>", 33)
    level, node = 1, kept["m"]
    while isinstance(node, list):
        node, level = node[0], level + 1
    assert (node, level) == ("<nested too deep>", 33)


def test_only_an_append_s_audio_is_replaced_by_its_length():
    assert strip_audio({"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(30)).decode()}) == {
        "type": "input_audio_buffer.append", "audio_bytes": 30}
    other = {"type": "conversation.item.create", "audio": "QUJD"}
    assert strip_audio(other) == other


def test_the_store_counts_repeats_and_drops_past_its_limit_telling_the_caller_which():
    store = DivergenceStore(limit=2)
    a = diverged(None, {"type": "a"})
    assert [store.add(a), store.add(a), store.add(diverged(None, {"type": "a"}, kind="stall"))] == [True, False, True]
    assert [store.add(diverged(None, {"type": "b"})), store.add(diverged(None, {"type": "c"}))] == [False, False]
    assert (len(store), store.dropped, sum(store.repeats.values())) == (2, 2, 1)
    assert DivergenceStore().dropped == 0


# -- through the engine ------------------------------------------------------------------------------------------

def recording() -> Cassette:
    """A session.update, a response, then a VAD turn at 200 ms of audio, a second response, then a delete."""
    return Cassette(name="rep", dialect="ga", matching={}, sessions=[Session([
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 1, "session.update", session={"type": "realtime", "instructions": "a"}),
        srv(2, "session.updated", 2, session={"type": "realtime", "instructions": "a"}),
        ev("client", 3, "response.create"),
        srv(4, "response.created", 3, response={"id": "resp_1", "status": "in_progress", "output": []}),
        srv(5, "response.done", 4, response={"id": "resp_1", "status": "completed", "output": []}),
        ev("client", 6, "input_audio_buffer.append", audio=silence(300)),
        srv(200, "input_audio_buffer.speech_started", 5, audio_start_ms=200, item_id="item_u"),
        ev("client", 300, "conversation.item.create", item={"type": "message", "role": "user", "content": []}),
        ev("client", 301, "response.create", response={"instructions": "second"}),
        srv(302, "response.created", 6, response={"id": "resp_2", "status": "in_progress", "output": []}),
        ev("client", 400, "conversation.item.delete", item_id="item_x"),
    ])])


def started(**kw) -> ReplaySession:
    engine = ReplaySession(recording(), **kw)
    engine.start(0)
    engine.pop_due(1e12)
    return engine


def test_what_is_left_unplayed_lists_triggers_audio_and_server_events_and_survives_release():
    engine = started(strict=True)
    turns = engine.plan.turns
    response, audio, second, end = turns
    expected = [
        {"event_index": response.cues[0].index, "direction": "client", "type": "session.update"},
        {"event_index": response.index, "direction": "client", "type": "response.create"},
        *({"event_index": i, "direction": "server", "type": e.type} for i, e in response.sends),
        {"event_index": audio.index, "direction": "client", "type": "input_audio_buffer.append", "until_audio_ms": 200.0},
        *({"event_index": i, "direction": "server", "type": e.type} for i, e in audio.sends),
        {"event_index": second.cues[0].index, "direction": "client", "type": "conversation.item.create"},
        {"event_index": second.index, "direction": "client", "type": "response.create"},
        *({"event_index": i, "direction": "server", "type": e.type} for i, e in second.sends),
        {"event_index": end.cues[0].index, "direction": "client", "type": "conversation.item.delete"},
    ]
    assert engine.unplayed() == expected
    paced = ReplaySession(recording(), pace=1)
    paced.start(0)
    paced.pop_due(1e12)
    paced.receive({"type": "session.update", "session": {"type": "realtime", "instructions": "a"}}, 1)
    paced.receive({"type": "response.create"}, 2)
    paced.pop_due(3)  # response.created is out (1 ms after the trigger), response.done is still queued
    left = paced.unplayed()
    cues = {c.index for t in turns for c in t.cues}  # not listed outside strict mode
    assert left == [*(e for e in expected[4:] if e["event_index"] not in cues), {"event_index": response.sends[1][0], "direction": "server", "type": "response.done"}]
    paced.release()
    assert paced.unplayed() == left and paced.next_deadline() is None
    assert paced.model.session == {} and paced.model.dialect == "ga"


def test_waiting_for_names_the_next_trigger_skipping_the_end_and_only_when_nothing_is_due():
    engine = started()
    assert engine.waiting_for() == f"response.create (recorded event {engine.plan.turns[0].index})"
    engine.receive({"type": "response.create"}, 1)
    assert engine.waiting_for() is None  # the answer is due
    engine.pop_due(1e12)
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(50)}, 2)
    assert engine.waiting_for() == (f"input audio up to 200 ms (server VAD, recorded event {engine.plan.turns[1].index}); "
                                    "the client has appended 50 ms")
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(150)}, 3)
    engine.pop_due(1e12)
    engine.receive({"type": "response.create", "response": {"instructions": "second"}}, 4)
    engine.pop_due(1e12)
    assert engine.waiting_for() is None  # only the end's housekeeping is left: nothing the server waits for
    assert engine.finished


def test_a_stall_is_reported_once_with_what_the_server_waits_for():
    engine = started()
    engine.stall(5, 5000)
    error = json.loads(engine.pop_due(5000)[0])
    label = f"response.create (recorded event {engine.plan.turns[0].index})"
    note = f"stalled: the server waited 5 s for {label} (cassette 'rep', session 0)"
    assert error["error"] == {"type": "invalid_request_error", "code": "cassette_stalled", "message": "mockrealtime: " + note,
                              "param": None, "event_id": None}
    assert error["event_id"].startswith("event_MR") and set(error) == {"type", "event_id", "error"}
    (entry,) = engine.journal
    assert (entry.at_ms, entry.event, entry.outcome) == (5000, {"type": "mockrealtime.stall", "waiting_for": label}, "stalled")
    (d,) = engine.divergences
    assert d.to_dict() == {"cassette": "rep", "session": 0, "event_index": None, "expected": None, "received": {},
                           "differences": [], "closest_index": None, "kind": "stall", "summary": note}
    engine.stall(10, 10000)
    assert len(engine.journal) == 1 and engine.pop_due(1e12) == []


def test_no_stall_while_something_is_due_or_after_the_recording_closed():
    engine = started()
    engine.receive({"type": "response.create"}, 1)
    engine.stall(5, 2)
    assert engine.divergences == [] and engine.stalled is False


def test_a_stall_under_the_close_policy_closes():
    engine = started(on_divergence="close")
    engine.stall(5, 5000)
    got = engine.pop_due(5000)
    assert got[-1] == CloseFrame(4000, "invalid_request_error.cassette_stalled")


def test_a_divergence_points_to_the_later_recorded_trigger_it_would_match():
    c = Cassette(name="two", dialect="ga", matching={}, sessions=[Session([
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 1, "response.create", response={"tool_choice": "none"}),
        srv(2, "response.created", 2, response={"id": "resp_1", "status": "in_progress", "output": []}),
        ev("client", 3, "response.create", response={"tool_choice": "required"}),
        srv(4, "response.created", 3, response={"id": "resp_2", "status": "in_progress", "output": []}),
    ])])
    engine = ReplaySession(c)
    engine.start(0)
    engine.pop_due(1e12)
    engine.receive({"type": "response.create", "response": {"tool_choice": "required"}, "event_id": 7}, 2)
    (d,) = engine.divergences
    assert d.cassette == "two"
    first, second = engine.plan.turns
    assert (d.event_index, d.expected, d.closest_index) == (first.index, c.sessions[0].core[1].event, second.index)
    assert d.summary.endswith(f"; it would match the recorded event {second.index} further on")
    (entry,) = engine.journal
    assert (entry.at_ms, entry.outcome) == (2, "diverged")
    error = json.loads(engine.pop_due(1e12)[0])["error"]
    assert error["event_id"] is None and error["message"].startswith("mockrealtime: client event does not match the cassette: ")


def test_housekeeping_that_matches_a_later_cue_is_reported_against_it_in_strict_mode():
    engine = started(strict=True)
    engine.receive({"type": "conversation.item.delete", "item_id": "item_x"}, 1)
    (d,) = engine.divergences
    end = engine.plan.turns[-1]
    assert (d.event_index, d.expected, d.differences, d.closest_index) == (
        end.cues[0].index, {"type": "conversation.item.delete", "item_id": "item_x"}, (), None)
    engine.receive({"type": "input_audio_buffer.clear"}, 3)  # recorded nowhere: against the turn it waits in
    assert (engine.divergences[-1].event_index, engine.divergences[-1].expected) == (
        engine.plan.turns[0].index, {"type": "response.create"})


def test_waiting_in_a_vad_turn_a_strict_divergence_expects_its_first_cue_or_audio():
    with_cue = Cassette(name="v", dialect="ga", matching={}, sessions=[Session([
        srv(0, "session.created", 1, session={"type": "realtime"}),
        ev("client", 1, "session.update", session={"type": "realtime"}),
        ev("client", 2, "input_audio_buffer.append", audio=silence(300)),
        srv(200, "input_audio_buffer.speech_started", 2, audio_start_ms=200, item_id="item_u"),
    ])])
    for c, expected in ((with_cue, {"type": "session.update", "session": {"type": "realtime"}}),
                        (Cassette(name="v", dialect="ga", matching={}, sessions=[Session([
                            e for e in with_cue.sessions[0].core if e.type != "session.update"])]),
                         {"type": "input_audio_buffer.append"})):
        engine = ReplaySession(c, strict=True)
        engine.start(0)
        engine.receive({"type": "input_audio_buffer.clear"}, 1)
        (d,) = engine.divergences
        assert (d.event_index, d.expected) == (engine.plan.turns[0].index, expected)


def test_a_trigger_no_later_turn_matches_points_nowhere_and_a_closed_replay_waits_for_nothing():
    engine = started(on_divergence="close")
    for event in ({"type": "session.update", "session": {"type": "realtime", "instructions": "a"}},
                  {"type": "response.create"}):
        engine.receive(event, 1)
    engine.receive({"type": "response.create", "response": {"tool_choice": "required"}}, 2)
    (d,) = engine.divergences
    assert d.closest_index is None and "further on" not in d.summary
    engine.pop_due(1e12)
    assert engine.closed and engine.waiting_for() is None


def test_a_trigger_past_the_last_turn_points_nowhere():
    c = Cassette(name="one", dialect="ga", matching={}, sessions=[Session([
        srv(0, "session.created", 1, session={"type": "realtime"}), ev("client", 1, "response.create"),
        srv(2, "response.done", 2, response={"id": "resp_1", "status": "completed", "output": []})])])
    engine = ReplaySession(c)
    engine.start(0)
    engine.receive({"type": "response.create"}, 1)
    engine.pop_due(1e12)
    engine.receive({"type": "response.create"}, 2)
    (d,) = engine.divergences
    assert (d.event_index, d.expected, d.closest_index) == (None, None, None)
    assert d.summary == "received 'response.create' but the recording has no more client events (cassette 'one', session 0)"
