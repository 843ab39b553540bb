"""The plan compiler on its own, without an engine or sockets: which turn or cue each recorded server
event is attributed to (errors naming a trigger or nothing, pipelined item echoes), the state a trigger
is matched on, and the frames it serialises once for every replay."""

from __future__ import annotations

import json

from mockrealtime.core.cassette import Cassette, RecordedEvent, Session
from mockrealtime.core.plan import Plan, compile_plan, plan_for

from recorded_events import ev, srv


def plan(*events: RecordedEvent, dialect: str = "ga") -> Plan:
    return compile_plan(Cassette(name="p", dialect=dialect, sessions=[Session(list(events))], matching={}), 0)


def error(n: int, at_ms: float, event_id=None) -> RecordedEvent:
    return srv(at_ms, "error", n, error={"type": "invalid_request_error", "code": "c", "message": "m", "param": None,
                                         "event_id": event_id})


CREATED = {"id": "resp_1", "status": "in_progress", "output": []}


def test_an_error_naming_an_earlier_trigger_is_that_turns_answer():
    p = plan(srv(0, "session.created", 1, session={"type": "realtime"}),
             ev("client", 1, "response.create", event_id="rc_1"),
             ev("client", 2, "response.create", event_id="rc_2"),
             srv(3, "response.created", 2, response=CREATED),
             error(3, 4, "rc_1"))
    first, second = p.turns
    assert (first.error, [e.type for _, e in first.sends]) == (True, ["response.created", "error"])
    assert (second.error, second.sends) == (False, [])


def test_an_error_naming_nothing_answers_the_trigger_just_sent_but_not_one_already_answered():
    p = plan(srv(0, "session.created", 1, session={"type": "realtime"}),
             ev("client", 1, "response.create"),
             error(2, 2))
    (turn,) = p.turns
    assert turn.error and [e.type for _, e in turn.sends] == ["error"]
    p = plan(srv(0, "session.created", 1, session={"type": "realtime"}),
             ev("client", 1, "response.create"),
             srv(2, "response.created", 2, response=CREATED),
             error(3, 3))
    (turn,) = p.turns
    assert not turn.error and [e.type for _, e in turn.sends] == ["response.created", "error"]


def test_an_error_naming_an_unknown_event_is_no_triggers_answer():
    p = plan(srv(0, "session.created", 1, session={"type": "realtime"}),
             ev("client", 1, "response.create", event_id="rc_1"),
             srv(2, "response.created", 2, response=CREATED),
             error(3, 3, "someone_else"))
    (turn,) = p.turns
    assert not turn.error


def test_pipelined_item_creates_get_their_own_echoes_matched_by_id_then_by_type_and_role():
    user = {"type": "message", "role": "user", "content": []}
    p = plan(srv(0, "session.created", 1, session={"type": "realtime"}),
             ev("client", 1, "conversation.item.create", item={"id": "mine", **user}),
             ev("client", 2, "conversation.item.create", item={"type": "message", "role": "system", "content": []}),
             ev("client", 3, "conversation.item.create", item=user),
             srv(4, "conversation.item.added", 2, item={"id": "item_u", **user}),
             srv(5, "conversation.item.added", 3, item={"id": "item_s", "type": "message", "role": "system", "content": []}),
             srv(6, "conversation.item.added", 4, item={"id": "mine", **user}),
             srv(3.5, "conversation.item.added", 5, item="not an item"))
    (end,) = p.turns
    assert [[(a.event.get("item") or {}).get("id") if isinstance(a.event.get("item"), dict) else None
             for _, a in cue.answers] for cue in end.cues] == [["mine"], ["item_s"], ["item_u"]]


def test_the_recorded_state_at_a_trigger_is_what_the_model_saw():
    session = {"type": "realtime", "tools": [{"type": "function", "name": "b"}, {"type": "function", "name": "a"}, "x"],
               "tool_choice": "required", "output_modalities": ["text"],
               "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcm", "rate": 24000}}}}
    p = plan(srv(0, "session.created", 1, session=session),
             ev("client", 1, "conversation.item.create", item={"type": "function_call_output", "call_id": "call_1", "output": ""}),
             srv(2, "conversation.item.added", 2, item={"id": "o", "type": "function_call_output", "call_id": "call_1"}),
             srv(3, "conversation.item.added", 3, item={"id": "u", "type": "message", "role": "user"}),
             ev("client", 4, "response.create"))
    (turn,) = p.turns
    state = turn.state
    assert (state.tools, state.tool_choice, state.modalities, state.formats, state.items, state.outputs) == (
        ["a", "b"], "required", ["text"], ("g711_ulaw", "pcm16"), ["function_call_output", "message:user"], ["call_1"])


def test_a_plan_serialises_each_frame_once_with_slots_where_ids_go():
    c = Cassette(name="w", dialect="ga", matching={}, sessions=[Session([
        srv(0, "session.created", 1, session={"type": "realtime", "id": "sess_1"}),
        ev("client", 1, "session.update", session={"type": "realtime"}),
        srv(2, "session.updated", 2, session={"type": "realtime", "id": "sess_1"}),
        ev("client", 3, "response.create"),
        srv(4, "response.created", 3, response={"id": "resp_1", "status": "in_progress", "error": {"id": "x_1"},
                                                "metadata": {"event_id": "m_1", "note": "café"}}),
    ])])
    p = plan_for(c, 0, warm=True)
    assert sorted(p.frames) == [0, 2, 4]
    # compact, UTF-8 as is; a slot after the prefix of every id and of the event's own event_id, none in an
    # error object (it quotes the client) nor for an event_id deeper down
    assert p.frames[4].pieces == ['{"type":"response.created","event_id":"event_', '003","response":{"id":"resp_',
                                  '1","status":"in_progress","error":{"id":"x_1"},'
                                  '"metadata":{"event_id":"m_1","note":"café"}}}']
    assert b"".join(p.frames[4].bpieces) == "".join(p.frames[4].pieces).encode()
    assert plan_for(c, 0) is p
    json.loads("MR1x".join(p.frames[0].pieces))


def test_vad_turns_open_at_the_audio_position_counted_from_interleaved_runs_of_appends():
    from mockrealtime.core.cassette_model import ClientAudioRun
    chunk = 4800  # 100 ms of pcm16 at 24 kHz
    runs = (ClientAudioRun([100_000, 300_000, 500_000], [chunk] * 3, None, 0, {}, [None] * 3),
            ClientAudioRun([200_000, 400_000], [chunk] * 2, None, 0, {}, [None] * 2))
    core = [srv(0, "session.created", 1, session={"type": "realtime"}),
            ev("client", 210, "session.update", session={"type": "realtime"}),
            srv(250, "input_audio_buffer.speech_started", 2, audio_start_ms=500, item_id="item_u"),
            srv(600, "input_audio_buffer.speech_stopped", 3, audio_end_ms=450, item_id="item_u"),
            srv(700, "input_audio_buffer.timeout_triggered", 4, item_id="item_u")]
    p = compile_plan(Cassette(name="r", dialect="ga", matching={}, sessions=[Session(core, runs=runs)]), 0)
    # the recorded position caps the stated one; an event stating none opens at the position
    assert [(t.kind, t.index, t.audio_ms, t.at_us) for t in p.turns] == [
        ("audio", 4, 200.0, 250_000), ("audio", 8, 450.0, 600_000), ("audio", 9, 500.0, 700_000)]
    assert [c.type for c in p.turns[0].cues] == ["session.update"]


def test_what_the_server_sent_after_housekeeping_before_any_trigger_follows_that_housekeeping():
    p = plan(srv(0, "session.created", 1, session={"type": "realtime"}),
             srv(1, "rate_limits.updated", 2, rate_limits=[]),
             ev("client", 2, "session.update", session={"type": "realtime"}),
             srv(3, "session.updated", 3, session={"type": "realtime"}),
             srv(4, "rate_limits.updated", 4, rate_limits=[]))
    assert [e.type for _, e in p.connect] == ["session.created", "rate_limits.updated"]
    (end,) = p.turns
    (cue,) = end.cues
    assert ([e.type for _, e in cue.answers], [e.type for _, e in cue.tail]) == (["session.updated"], ["rate_limits.updated"])


def test_a_housekeeping_error_naming_nothing_answers_the_first_unanswered_event_of_a_pipelined_batch():
    p = plan(srv(0, "session.created", 1, session={"type": "realtime"}),
             ev("client", 1, "session.update", session={"type": "realtime"}),
             srv(2, "session.updated", 2, session={"type": "realtime"}),
             ev("client", 3, "conversation.item.delete", item_id="a"),
             ev("client", 3, "conversation.item.delete", item_id="b"),
             error(3, 4),
             srv(5, "conversation.item.deleted", 4, item_id="b"))
    (end,) = p.turns
    update, first, second = end.cues
    assert (update.error, first.error, second.error) == (False, True, False)
    assert [e.type for _, e in first.answers] == ["error"] and [e.type for _, e in second.answers] == ["conversation.item.deleted"]


def test_a_tag_goes_after_the_first_underscore_or_in_front():
    from mockrealtime.core.plan import tag_slot
    assert [tag_slot("item_a_b", "T"), tag_slot("abc", "T")] == ["item_Ta_b", "Tabc"]


def test_plans_are_cached_per_cassette_object_and_session_and_the_oldest_cassette_ages_out(monkeypatch):
    import collections

    from mockrealtime.core import plan as plan_module
    monkeypatch.setattr(plan_module, "_CACHE", collections.OrderedDict())  # a cache of its own: the process's stays as it was

    def make() -> Cassette:
        return Cassette(name="c", dialect="ga", matching={}, sessions=[
            Session([srv(0, "session.created", 1, session={"type": "realtime"})]),
            Session([srv(0, "session.created", 2, session={"type": "realtime"})])])

    first = make()
    p0, p1 = plan_for(first, 0), plan_for(first, 1)
    assert p0 is not p1 and plan_for(first, 0) is p0 and p0.frames == {}  # not warmed unless asked
    same_name = make()
    assert plan_for(same_name, 0) is not p0
    others = [make() for _ in range(plan_module.CACHE_SIZE - 2)]
    for other in others:
        plan_for(other, 0)
    assert plan_for(first, 0) is p0  # used again: now the newest
    plan_for(make(), 0)  # one over: the least recently used (same_name) goes
    assert id(same_name) not in plan_module._CACHE and plan_for(first, 0) is p0
    assert len(plan_module._CACHE) == plan_module.CACHE_SIZE


def test_the_audio_position_follows_the_recorded_input_format_and_vad_before_any_audio_opens_no_turn():
    from mockrealtime.core.cassette_model import ClientAudioRun
    pcmu = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}}
    core = [srv(0, "session.created", 1, session={"type": "realtime"}),
            srv(1, "input_audio_buffer.speech_started", 2, audio_start_ms=0, item_id="item_0"),
            ev("client", 2, "session.update", session=pcmu),
            srv(3, "session.updated", 3, session=pcmu),
            srv(500, "input_audio_buffer.speech_started", 4, audio_start_ms=900, item_id="item_u")]
    runs = (ClientAudioRun([100_000, 200_000], [800, 800], None, 0, {}, [None, None]),)  # 100 ms each at 8 kHz
    p = compile_plan(Cassette(name="u", dialect="ga", matching={}, sessions=[Session(core, runs=runs)]), 0)
    assert [(t.kind, t.audio_ms) for t in p.turns] == [("audio", 200.0)]
    assert [e.type for _, e in p.connect] == ["session.created", "input_audio_buffer.speech_started"]


def test_an_error_naming_a_pipelined_trigger_is_its_answer_not_the_batch_s_first_event():
    p = plan(srv(0, "session.created", 1, session={"type": "realtime"}),
             ev("client", 1, "conversation.item.create", item={"type": "message", "role": "user", "content": []}),
             ev("client", 1, "response.create", event_id="rc_1"),
             error(2, 2, "rc_1"))
    (turn,) = p.turns
    assert turn.error and [e.type for _, e in turn.sends] == ["error"]
    assert not turn.cues[0].error and turn.cues[0].answers == []


def test_session_created_is_sent_on_connect_even_when_the_client_spoke_first():
    p = plan(ev("client", 0, "session.update", session={"type": "realtime"}),
             srv(1, "session.created", 1, session={"type": "realtime"}),
             srv(2, "session.updated", 2, session={"type": "realtime"}))
    assert [e.type for _, e in p.connect] == ["session.created"]
    (end,) = p.turns
    assert [e.type for _, e in end.cues[0].answers] == ["session.updated"]


def test_cues_are_numbered_densely_across_turns_for_the_replays_consumed_marks():
    p = plan(srv(0, "session.created", 1, session={"type": "realtime"}),
             ev("client", 1, "session.update", session={"type": "realtime"}),
             ev("client", 2, "input_audio_buffer.clear"),
             ev("client", 3, "response.create"),
             srv(4, "response.created", 2, response=CREATED),
             ev("client", 5, "conversation.item.create", item={"type": "message", "role": "user", "content": []}))
    slots = [(c.index, c.slot) for t in p.turns for c in t.cues]
    assert slots == [(1, 0), (2, 1), (5, 2)] and p.cue_count == 3
    assert plan(srv(0, "session.created", 1, session={"type": "realtime"})).cue_count == 0
