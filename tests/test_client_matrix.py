"""Every bundled cassette x the ways real clients drive a session, over real sockets with the openai SDK.

Each cell plays the recording's client events the way one client style would (another order, tools
registered late, client item ids, skipped housekeeping, a bad event first...) and must get the
recorded model output with zero ``error`` events but the recording's own, zero divergences and zero
stalls; every server event validates against the openai package's models for the dialect.
The openai-agents column is tests/test_client_matrix_agents.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from openai import AsyncOpenAI

from mockrealtime.core.events import AUDIO_APPEND, Direction
from mockrealtime.core.library import CassetteLibrary

from oracle import server_event_errors
from replay_compare import IdBook, is_state_made, needs, recorded_ids, split, untag

TIMEOUT_S = 15
BUNDLED = CassetteLibrary()
CASES = [(entry["name"], dialect) for entry in BUNDLED.available() for dialect in entry["dialects"]]
IDS = [f"{n}-{d}" for n, d in CASES]
INSTRUCTIONS = "Matrix client: instructions of its own."
TEXT = "Matrix client: words of its own."

Events = list[dict[str, Any]]


def client_events(name: str, dialect: str) -> Events:
    session = BUNDLED.resolve(name, dialect).sessions[0]
    return [copy.deepcopy(e.event) for e in session.events if e.direction is Direction.CLIENT]


def first_turn(events: Events) -> int:
    return next((i for i, e in enumerate(events) if e["type"] == "response.create"), len(events))


# -- styles: each rewrites the recorded client events the way one kind of client sends them ----------


def recorded(events: Events) -> Events:
    return events


def reordered(events: Events) -> Events:
    """session.update without tools -> the user's item -> session.update with the tools -> response.create."""
    end = first_turn(events)
    head, tail = events[:end], events[end:]
    updates = [e for e in head if e["type"] == "session.update"]
    others = [e for e in head if e["type"] != "session.update"]
    if not updates:
        return events
    first = copy.deepcopy(updates[0])
    session = first["session"]
    tools = {k: session.pop(k) for k in ("tools", "tool_choice") if k in session}
    late = {"type": "session.update", "session": {**({"type": session["type"]} if "type" in session else {}), **tools}}
    return [first, *others, *([late] if tools else []), *updates[1:], *tail]


def late_tools(events: Events) -> Events:
    """Everything else first; the tools arrive in their own session.update right before response.create."""
    end = first_turn(events)
    out = []
    tools: dict[str, Any] = {}
    for e in events[:end]:
        if e["type"] == "session.update" and "tools" in e["session"]:
            e = copy.deepcopy(e)
            tools = {k: e["session"].pop(k) for k in ("tools", "tool_choice") if k in e["session"]}
            if "type" in e["session"]:
                tools["type"] = e["session"]["type"]
        out.append(e)
    if tools:
        out.append({"type": "session.update", "session": tools})
    return out + events[end:]


def two_updates(events: Events) -> Events:
    """The first session.update sent twice (frameworks re-send their settings)."""
    i = next((i for i, e in enumerate(events) if e["type"] == "session.update"), None)
    return events if i is None else events[: i + 1] + [copy.deepcopy(events[i])] + events[i + 1 :]


def own_words(events: Events) -> Events:
    """This client's own instructions and text: the echoes must carry them, not the recording's."""
    out = copy.deepcopy(events)
    for e in out:
        if e["type"] == "session.update" and "instructions" in e["session"]:
            e["session"]["instructions"] = INSTRUCTIONS
        if e["type"] == "conversation.item.create" and e["item"].get("role") == "user":
            for part in e["item"].get("content", []):
                if part.get("type") == "input_text":
                    part["text"] = TEXT
    return out


def skip_housekeeping(events: Events) -> Events:
    """A client that never sends the recording's settings-only session.update (openai-agents' tracing)."""
    return [e for e in events if not (e["type"] == "session.update" and set(e["session"]) <= {"type", "model", "tracing"})]


def has_skippable(events: Events) -> bool:
    return len(skip_housekeeping(events)) < len(events)


STYLES: dict[str, Callable[[Events], Events]] = {
    "recorded": recorded, "reordered": reordered, "late_tools": late_tools, "two_updates": two_updates,
    "own_words": own_words,
}


# -- the driver ----------------------------------------------------------------------------------


async def drive(server, name: str, dialect: str, events: Events, *, client_ids: bool = False,
                bad_first: dict[str, Any] | None = None) -> tuple[Events, Events]:
    """Play ``events``; return (what was received, the recorded server events)."""
    cassette = BUNDLED.resolve(name, dialect)
    expected = [e.event for e in cassette.sessions[0].events if e.direction is Direction.SERVER]
    want_model = len(split(expected, errors_apart=True)[0])
    ids, book = recorded_ids(expected), IdBook()
    received: Events = []
    client = AsyncOpenAI(api_key="sk-test-not-a-key", websocket_base_url=server.base_url(name))
    connect = client.beta.realtime.connect if dialect == "beta" else client.realtime.connect
    last_item: list[str | None] = [None]
    n = 0
    async with connect(model=cassette.model or "gpt-realtime") as conn:
        arrived = asyncio.Condition()

        async def read() -> None:  # reads all along: a long answer must never back up into the sender
            model_events = 0  # counted as they arrive (re-splitting what came so far is quadratic)
            while model_events < want_model:
                event = json.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S))
                model_events += not (is_state_made(event) or event.get("type") == "error")
                assert server_event_errors(event, dialect) == [], event
                book.learn(event)
                if event["type"] in ("conversation.item.added", "conversation.item.created"):
                    last_item[0] = event["item"]["id"]
                received.append(event)
                async with arrived:
                    arrived.notify_all()

        reader = asyncio.create_task(read())
        try:
            if bad_first is not None:
                await conn.send(bad_first)
            for event in events:
                async with arrived:
                    await asyncio.wait_for(arrived.wait_for(lambda ev=event: not needs(ev, ids, book) or reader.done()), TIMEOUT_S)
                event = book.send(event)
                if client_ids and event["type"] == "conversation.item.create" and event["item"].get("type") == "message":
                    n += 1
                    event = {**event, "item": {**event["item"], "id": f"client_item_{n}"}}
                    if last_item[0] is not None:
                        event["previous_item_id"] = last_item[0]
                await conn.send(event)
            await reader
        finally:
            reader.cancel()
    return received, expected


def errors(events: Events) -> list[dict]:
    return [e["error"] for e in events if e["type"] == "error"]


def assert_completed(server, received: Events, expected: Events, client_ids: bool = False) -> None:
    if client_ids:  # the client's own item ids stand where the recording's item ids stood
        received = [{**e, "previous_item_id": None} if str(e.get("previous_item_id")).startswith("client_item_") else e
                    for e in received]
        expected = [{**e, "previous_item_id": None} if "previous_item_id" in e else e for e in expected]
        received = [{**e, "previous_item_id": None} if "previous_item_id" in e and e["type"] in (
            "conversation.item.added", "conversation.item.done", "conversation.item.created") else e for e in received]
    got_model, want_model = split(received, errors_apart=True)[0], split(expected, errors_apart=True)[0]
    assert [e["type"] for e in got_model] == [e["type"] for e in want_model]
    for got, want in zip(got_model, want_model, strict=False):
        assert got == want, got["type"]
    # only the recording's own errors (a client that sends the rejected event twice gets it twice)
    assert {(e["code"], e["param"]) for e in errors(received)} == {(e["code"], e["param"]) for e in errors(expected)}
    report = server.state.connections[-1]
    assert list(report.engine.divergences) == []  # no divergence, no stall


def rejects_its_session_update(name: str, dialect: str) -> bool:
    """The recording's point is the API rejecting the session.update (chat_completions_tools): a
    client that splits that update applies part of it, so the model would see another session."""
    session = BUNDLED.resolve(name, dialect).sessions[0]
    return any(e.type == "error" and "session" in str((e.event.get("error") or {}).get("param")) for e in session.core)


def long(name: str, dialect: str) -> bool:
    """A call of minutes (thousands of microphone frames): one cell, as recorded, is enough."""
    return len(client_events(name, dialect)) > 1000


CELLS = [(n, d, style) for n, d in CASES for style in STYLES
         if not (style in ("reordered", "late_tools") and rejects_its_session_update(n, d))
         and not (style != "recorded" and long(n, d))]


@pytest.mark.parametrize(("name", "dialect", "style"), CELLS, ids=[f"{n}-{d}-{s}" for n, d, s in CELLS])
async def test_every_client_style_gets_the_recorded_answers(server, name, dialect, style):
    received, expected = await drive(server, name, dialect, STYLES[style](client_events(name, dialect)))
    assert_completed(server, received, expected)
    if style == "own_words":
        for e in received:
            if e["type"] == "session.updated" and "instructions" in e["session"]:
                assert e["session"]["instructions"] == INSTRUCTIONS
            if e["type"] in ("conversation.item.added", "conversation.item.created") and e["item"].get("role") == "user":
                texts = [p.get("text") for p in e["item"].get("content", []) if p.get("type") == "input_text"]
                assert texts in ([], [TEXT])


SKIPPABLE = [c for c in CASES if has_skippable(client_events(*c))]


def test_a_bundled_recording_holds_housekeeping_a_client_may_skip():
    """The skip cell below needs one (tool_choice_required_loop holds openai-agents' model-only update)."""
    assert ("tool_choice_required_loop", "ga") in SKIPPABLE


@pytest.mark.parametrize(("name", "dialect"), SKIPPABLE)
async def test_a_client_that_skips_settings_only_housekeeping_still_completes(server, name, dialect):
    sent = skip_housekeeping(client_events(name, dialect))
    received, expected = await drive(server, name, dialect, sent)
    assert_completed(server, received, expected)
    # one confirmation per update this client sent: none made up for the recorded one it skipped
    assert len([e for e in received if e["type"] == "session.updated"]) == len([e for e in sent if e["type"] == "session.update"])


@pytest.mark.parametrize(("name", "dialect"), [c for c in CASES if any(
    e["type"] == "conversation.item.create" and e["item"].get("type") == "message" for e in client_events(*c))])
async def test_items_with_client_ids_and_previous_item_id(server, name, dialect):
    received, expected = await drive(server, name, dialect, client_events(name, dialect), client_ids=True)
    assert_completed(server, received, expected, client_ids=True)
    echoed = [e for e in received if e["type"] in ("conversation.item.added", "conversation.item.created")
              and e["item"]["id"].startswith("client_item_")]
    assert echoed and all(e["item"]["id"] == "client_item_1" for e in echoed[:1])


@pytest.mark.parametrize(("name", "dialect"), [c for c in CASES if any(e["type"] == "session.update" for e in client_events(*c))], ids=lambda v: str(v))
async def test_a_bad_event_that_would_match_the_next_cue_gets_the_api_error(server, name, dialect):
    events = client_events(name, dialect)
    update = next(e for e in events if e["type"] == "session.update")
    bad = {**update, "event_id": "evt_bad", "session": {**update["session"], "bogus_field": 1}}
    received, expected = await drive(server, name, dialect, events, bad_first=bad)
    first_error = errors(received)[0]
    assert (first_error["code"], first_error["event_id"]) == ("unknown_parameter", "evt_bad")
    # the bogus field, or (where the recorded update is itself rejected) the field the API names first
    assert first_error["param"] in ["session.bogus_field"] + [e["param"] for e in errors(expected)]
    assert_completed(server, [e for e in received if e.get("type") != "error" or e["error"] is not first_error], expected)
    # rejected, never applied; "matched" only where the recording shows the API rejecting that update
    outcome = server.state.connections[-1].engine.journal[0].outcome
    assert outcome == ("matched" if rejects_its_session_update(name, dialect) else "rejected")


@pytest.mark.parametrize(("name", "dialect"), [c for c in CASES if not long(*c)])
async def test_two_connections_in_one_test_get_distinct_ids(server, name, dialect):
    (a, expected), (b, _) = await asyncio.gather(*(drive(server, name, dialect, client_events(name, dialect)) for _ in range(2)))
    for received in (a, b):
        got, want = split(received)[0], split(expected)[0]
        assert [e["type"] for e in got] == [e["type"] for e in want]
    ids_a = {e["event_id"] for e in a} | {e["response"]["id"] for e in a if e["type"] == "response.created"}
    ids_b = {e["event_id"] for e in b} | {e["response"]["id"] for e in b if e["type"] == "response.created"}
    assert ids_a.isdisjoint(ids_b)
    assert {untag(e["response"]["id"]) for e in a if e["type"] == "response.created"} == \
        {untag(e["response"]["id"]) for e in b if e["type"] == "response.created"}
    assert all(not r.engine.divergences for r in server.state.connections)


async def test_audio_appends_are_sent_by_the_styles_unchanged():
    """The styles rewrite housekeeping only; the microphone stream stays as recorded."""
    events = client_events("turn_detected", "ga")
    for style in STYLES.values():
        assert [e for e in style(events) if e["type"] == AUDIO_APPEND] == [e for e in events if e["type"] == AUDIO_APPEND]
