"""The session model and housekeeping, driven without sockets: what the real server answers from its
state when the recording has no cue, its stateful errors with their exact fields, and cancellation."""

from __future__ import annotations

import base64
import json

import pytest

from mockrealtime.core.library import CassetteLibrary
from mockrealtime.protocol import ClientEventValidator
from mockrealtime.protocol.session import SessionModel, merge_session
from mockrealtime.core.engine import ReplaySession

from oracle import server_event_errors

LIBRARY = CassetteLibrary()


def sent(engine: ReplaySession, now_ms: float = 1e12) -> list[dict]:
    out = [json.loads(f) for f in engine.pop_due(now_ms) if isinstance(f, str)]
    for event in out:
        assert server_event_errors(event, engine.dialect) == [], event
    return out


def connected(name: str = "hello", dialect: str = "ga", **kw) -> ReplaySession:
    engine = ReplaySession(LIBRARY.resolve(name, dialect), **kw)
    engine.start(0)
    sent(engine)
    return engine


def client_events(engine: ReplaySession) -> list[dict]:
    """The recorded client events (but appends), with the ids they name as this connection shows them."""
    out = []
    for ev in engine.cassette.sessions[engine.session_index].core:
        if ev.direction.value == "client":
            event = ev.event
            if isinstance(event.get("item_id"), str):
                event = {**event, "item_id": engine.fresh(event["item_id"])}
            item = event.get("item")
            if isinstance(item, dict) and isinstance(item.get("call_id"), str):
                event = {**event, "item": {**item, "call_id": engine.fresh(item["call_id"])}}
            out.append(event)
    return out


def play_recording_until_done(engine: ReplaySession, cues: int) -> list[dict]:
    """Send the recorded client events one after another; return all that was sent back."""
    out = []
    for event in client_events(engine)[:cues]:
        engine.receive(event, 1)
        out += sent(engine)
    return out


def error_of(events: list[dict]) -> dict:
    (event,) = events
    assert event["type"] == "error"
    return event["error"]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_an_unrecorded_session_update_gets_the_full_effective_session(dialect):
    engine = connected(dialect=dialect)
    engine.receive(client_events(engine)[0], 0)  # the recorded session.update
    sent(engine)
    engine.receive({"type": "session.update", "session": {"instructions": "be brief"} | ({"type": "realtime"} if dialect == "ga" else {})}, 1)
    (updated,) = sent(engine)
    assert updated["type"] == "session.updated"
    assert updated["session"]["instructions"] == "be brief"
    assert updated["session"]["id"].startswith("sess_")  # the rest of the session is still there
    assert engine.divergences == [] and engine.journal[-1].outcome == "answered"
    # and the recording goes on from where it was
    engine.receive(client_events(engine)[1], 2)
    assert [e["type"] for e in sent(engine)][0] in ("conversation.item.added", "conversation.item.created")


def test_session_update_merges_nested_settings_and_replaces_leaf_objects():
    current = {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": {"type": "server_vad", "threshold": 0.5}}}}
    merged = merge_session(current, {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}})
    assert merged["audio"]["input"] == {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": {"type": "semantic_vad"}}


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_an_unrecorded_item_create_is_echoed_with_the_clients_id(dialect):
    engine = connected(dialect=dialect)
    engine.receive({"type": "conversation.item.create", "item": {"id": "my_item", "type": "message", "role": "system", "content": [{"type": "input_text", "text": "x"}]}}, 1)
    echoes = sent(engine)
    expected = ["conversation.item.added", "conversation.item.done"] if dialect == "ga" else ["conversation.item.created"]
    assert [e["type"] for e in echoes] == expected
    assert all(e["item"]["id"] == "my_item" for e in echoes)
    engine.receive({"type": "conversation.item.retrieve", "item_id": "my_item"}, 2)
    (retrieved,) = sent(engine)
    assert retrieved["item"]["id"] == "my_item"
    engine.receive({"type": "conversation.item.delete", "item_id": "my_item", "event_id": "del_1"}, 3)
    (deleted,) = sent(engine)
    assert (deleted["type"], deleted["item_id"]) == ("conversation.item.deleted", "my_item")
    engine.receive({"type": "conversation.item.retrieve", "item_id": "my_item"}, 4)
    assert error_of(sent(engine))["code"] == "item_retrieve_invalid_item_id"


def test_retrieve_delete_and_previous_item_of_unknown_items_are_errors():
    engine = connected()
    engine.receive({"type": "conversation.item.retrieve", "item_id": "nope", "event_id": "r1"}, 1)
    assert error_of(sent(engine))["event_id"] == "r1"
    engine.receive({"type": "conversation.item.delete", "item_id": "nope"}, 1)
    assert error_of(sent(engine))["param"] == "item_id"
    engine.receive({"type": "conversation.item.create", "previous_item_id": "nope", "item": {"type": "message", "role": "system", "content": []}}, 1)
    assert error_of(sent(engine))["param"] == "previous_item_id"


def test_a_function_call_output_for_an_unknown_call_is_an_error():
    engine = connected()
    engine.receive({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_nope", "output": "{}"}}, 1)
    err = error_of(sent(engine))
    assert err["param"] == "item.call_id" and "call_nope" in err["message"]


def test_commit_needs_100_ms_and_names_what_was_buffered():
    engine = connected()
    engine.receive({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00" * 48 * 50).decode()}, 1)
    engine.receive({"type": "input_audio_buffer.commit", "event_id": "c1"}, 2)
    assert error_of(sent(engine)) == {
        "type": "invalid_request_error",
        "code": "input_audio_buffer_commit_empty",
        "message": "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has 50.00ms of audio.",
        "param": None,
        "event_id": "c1",
    }
    engine.receive({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00" * 48 * 60).decode()}, 3)
    engine.receive({"type": "input_audio_buffer.commit"}, 4)
    committed, added, done = sent(engine)
    assert committed["type"] == "input_audio_buffer.committed" and added["item"]["id"] == committed["item_id"]
    engine.receive({"type": "input_audio_buffer.commit"}, 5)
    assert "only has 0.00ms" in error_of(sent(engine))["message"]
    engine.receive({"type": "input_audio_buffer.clear"}, 6)
    assert sent(engine)[0]["type"] == "input_audio_buffer.cleared"


def test_cancel_with_nothing_running_is_an_error():
    engine = connected()
    engine.receive({"type": "response.cancel", "event_id": "x"}, 1)
    assert error_of(sent(engine)) == {"type": "invalid_request_error", "code": "response_cancel_not_active",
                                      "message": "Cancellation failed: no active response found", "param": None, "event_id": "x"}


def paced_until_response_started(name: str = "hello", dialect: str = "ga") -> tuple[ReplaySession, str]:
    """Recorded timing: the response.create is matched, but only the first frames have gone out."""
    engine = ReplaySession(LIBRARY.resolve(name, dialect), pace=1)
    engine.start(0)
    sent(engine)
    for event in client_events(engine)[:2]:
        engine.receive(event, 0)
        sent(engine)
    engine.receive(client_events(engine)[2], 1000)  # response.create
    early = sent(engine, engine.next_deadline() + 800)
    created = next(e for e in early if e["type"] == "response.created")
    assert any(e["type"].endswith("delta") for e in early)
    assert engine.next_deadline() is not None  # more of it still queued
    return engine, created["response"]["id"]


def test_a_second_response_create_while_one_runs_is_refused():
    engine, rid = paced_until_response_started()
    engine.receive({"type": "response.create", "event_id": "again"}, 1500)
    out = sent(engine, 1500)
    err = error_of(out)
    assert err["code"] == "conversation_already_has_active_response"
    assert err["message"] == f"Conversation already has an active response in progress: {rid}. Wait until the response is finished before creating a new one."
    assert err["event_id"] == "again"


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_client_cancel_mid_response_stops_the_deltas_and_ends_it_cancelled(dialect):
    engine, rid = paced_until_response_started(dialect=dialect)
    engine.receive({"type": "response.cancel"}, 1500)
    out = sent(engine)
    types = [e["type"] for e in out]
    assert not any(t.endswith(".delta") for t in types), "nothing of the response after the cancel"
    assert [t for t in types if t.startswith("response.done")] == ["response.done"]
    done = next(e for e in out if e["type"] == "response.done")["response"]
    assert (done["id"], done["status"], done["status_details"]) == (rid, "cancelled", {"type": "cancelled", "reason": "client_cancelled"})
    assert "response.output_item.done" in types and "response.content_part.done" in types
    item = next(e for e in out if e["type"] == "response.output_item.done")["item"]
    assert item["status"] == "incomplete"
    assert engine.next_deadline() is None


def test_cancel_then_the_recording_goes_on():
    engine, rid = paced_until_response_started()
    engine.receive({"type": "response.cancel"}, 1500)
    sent(engine)
    engine.receive({"type": "response.cancel"}, 1600)
    assert error_of(sent(engine))["code"] == "response_cancel_not_active"


def test_barge_in_during_a_paced_response_cancels_it_with_turn_detected():
    engine = ReplaySession(LIBRARY.resolve("turn_detected", "ga"), pace=1)
    engine.start(0)
    sent(engine)
    engine.receive(client_events(engine)[0], 0)
    chunk = base64.b64encode(b"\x00" * 960).decode()
    now = 10.0
    # the first user turn: up to speech_stopped at 2320 ms, which releases the VAD response
    while engine.audio_ms < 2400:
        engine.receive({"type": "input_audio_buffer.append", "audio": chunk}, now)
        now += 1
    sent(engine, now + 500)  # only part of the response has gone out
    assert engine.model.active_response_id is not None
    while engine.audio_ms < 4100:  # the user speaks again: recorded speech_started at 4000 ms
        engine.receive({"type": "input_audio_buffer.append", "audio": chunk}, now)
    out = sent(engine)
    dones = [e for e in out if e["type"] == "response.done"]
    assert dones and dones[0]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}


def test_voice_cannot_change_once_the_assistant_has_spoken():
    engine = connected()
    play_recording_until_done(engine, 3)
    engine.receive({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "cedar"}}}}, 5)
    assert error_of(sent(engine)) == {"type": "invalid_request_error", "code": "cannot_update_voice",
                                      "message": "Cannot update a conversation's voice if assistant audio is present.",
                                      "param": None, "event_id": None}


def test_truncation_rules():
    engine = connected("turn_detected")
    chunk = base64.b64encode(b"\x00" * 960).decode()
    engine.receive(client_events(engine)[0], 0)
    while engine.audio_ms < 4100:  # past the barge-in's speech_started (4000 ms)
        engine.receive({"type": "input_audio_buffer.append", "audio": chunk}, 1)
    out = sent(engine)
    assistant = next(e for e in out if e["type"] == "response.output_item.added")["item"]["id"]
    user = next(e for e in out if e["type"] == "input_audio_buffer.committed")["item_id"]
    engine.receive(client_events(engine)[1], 2)  # the recorded truncate
    assert [e["type"] for e in sent(engine)] == ["conversation.item.truncated"]
    played = engine.model.audio_ms[assistant]
    cases = [
        ({"item_id": "nope", "content_index": 0, "audio_end_ms": 10}, "item_truncate_invalid_item_id", "item_id"),
        ({"item_id": user, "content_index": 0, "audio_end_ms": 10}, "unsupported_content_type", None),
        ({"item_id": assistant, "content_index": 0, "audio_end_ms": 99999}, "invalid_value", "audio_end_ms"),
    ]
    for fields, code, param in cases:
        engine.receive({"type": "conversation.item.truncate", **fields}, 2)
        err = error_of(sent(engine))
        assert (err["code"], err["param"]) == (code, param)
    assert err["message"] == f"Audio content of {played:.0f}ms is already shorter than 99999ms"  # whole ms, as the API


def test_strict_mode_makes_unrecorded_housekeeping_a_divergence():
    engine = connected(strict=True)
    engine.receive({"type": "input_audio_buffer.clear"}, 1)
    assert error_of(sent(engine))["code"] == "cassette_mismatch"
    assert len(engine.divergences) == 1


# -- rebuilding a session elsewhere (new_episodes going live mid-session) ---------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_rebuild_gives_the_effective_session_then_every_item_with_its_id(dialect):

    engine = connected("function_call", dialect)
    for event in client_events(engine):
        engine.receive(event, 0)
        sent(engine)
    rebuilt = engine.model.rebuild()
    validator = ClientEventValidator(dialect)
    assert [validator.validate(e) for e in rebuilt] == [None] * len(rebuilt)  # the live API takes each
    update, *creates = rebuilt
    assert update["type"] == "session.update"
    assert update["session"]["tools"][0]["name"] == "list_emails" and "id" not in update["session"]
    items = [c["item"] for c in creates]
    assert [(i["type"], i.get("role")) for i in items] == [
        ("message", "user"), ("function_call", None), ("function_call_output", None), ("message", "assistant"),
    ]
    assert [i["id"] for i in items] == engine.model.item_order()  # the ids the client knows
    assert items[1]["call_id"] == items[2]["call_id"] == engine.model.item_data[items[1]["id"]]["call_id"]
    assert items[1]["arguments"] == '{"numEmails": 1}'  # as completed, not as first created (beta)
    spoken = items[3]["content"][0]
    assert spoken["type"] == ("output_text" if dialect == "ga" else "text") and spoken["text"].startswith("You have three emails")


def test_rebuild_turns_user_audio_into_its_transcript():
    engine = connected()
    for ev in ({"type": "conversation.item.added", "item": {"id": "item_a", "type": "message", "role": "user",
                                                             "content": [{"type": "input_audio", "transcript": None}]}},
               {"type": "conversation.item.input_audio_transcription.completed", "item_id": "item_a", "transcript": "hi"}):
        engine.send_synthesized(ev, 0)
        engine.pop_due(1e12)
    assert engine.model.rebuild()[-1]["item"] == {"id": "item_a", "type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "hi"}]}


def test_the_item_kinds_a_trigger_is_matched_on_are_kept_as_the_conversation_changes():
    """state_of reads kinds kept as items come (no walk of a long conversation per trigger); whatever
    the client does to the conversation, they are what a walk of it gives."""
    import random

    from mockrealtime.core.plan import state_of
    from mockrealtime.protocol.conversation import rebuilt

    def walk(model: SessionModel) -> tuple[list[str], list]:
        fresh = rebuilt(model.item_order(), model.item_data)
        return fresh.kinds, fresh.outputs

    rng = random.Random(7)
    model = SessionModel("ga")
    kinds = [("message", "user"), ("message", "assistant"), ("function_call_output", None), ("function_call", None)]
    for n in range(400):
        ids = model.item_order()
        roll = rng.random()
        if roll < 0.1 and ids:
            model._on_deleted({"item_id": rng.choice(ids)})
        elif roll < 0.2 and ids:  # the same item again, maybe of another kind (an update in place)
            kind, role = rng.choice(kinds)
            model._on_item({"item": {"id": rng.choice(ids), "type": kind, "role": role, "call_id": f"call_{n}"}})
        elif roll < 0.3 and ids:  # inserted after an item in the middle, or at the root
            kind, role = rng.choice(kinds)
            previous = rng.choice([*ids, "root"])
            model._on_item({"previous_item_id": previous, "item": {"id": f"item_{n}", "type": kind, "role": role, "call_id": f"call_{n}"}})
        else:
            kind, role = rng.choice(kinds)
            model._on_item({"item": {"id": f"item_{n}", "type": kind, "role": role, "call_id": f"call_{n}"}})
        if n % 7 == 0:
            state = state_of(model, None)
            assert (state.items, state.outputs) == walk(model)
    state = state_of(model, None)
    assert (state.items, state.outputs) == walk(model) and len(state.items) > 100
    # once kept, a trigger after appended items reads them without walking the conversation
    model._on_item({"item": {"id": "item_last", "type": "message", "role": "user"}})
    model.item_order = None  # type: ignore[assignment]
    assert state_of(model, None).items == [*state.items, "message:user"]
