"""Failure reports, sans-IO: divergences and unplayed remainders from the replay engine, as text."""

from __future__ import annotations

import pytest

from mockrealtime.core.cassette import load
from mockrealtime.core.library import bundled_cassette_dir
from mockrealtime.core.matching import Matcher
from mockrealtime.core.engine import ReplaySession
from mockrealtime.testing.report import ConnectionOutcome, Context, divergence_report, unplayed_report

FUNCTION_CALL = f"{bundled_cassette_dir()}/function_call.yaml"
NODEID = "tests/test_agent.py::test_emails[ga]"
QUESTION = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How many emails do I have?"}]}


def replay(events, *, match=None, strict=True):
    cassette = load(FUNCTION_CALL)
    matcher = Matcher.build(cassette.matching, match)
    engine = ReplaySession(cassette, 0, matcher=matcher, strict=strict)
    engine.start(0.0)
    for i, event in enumerate(events):
        engine.receive(event, float(i))
    outcome = ConnectionOutcome(0, 0, "ga", False, 1000, tuple(engine.divergences), tuple(engine.unplayed()))
    return cassette, matcher, outcome


def session_update(tool_name: str) -> dict:
    tool = {"type": "function", "name": tool_name, "parameters": {"type": "object"}}
    return {"type": "session.update", "session": {"type": "realtime", "tools": [tool], "tool_choice": "auto"}}


def test_a_divergence_report_says_where_what_and_what_to_do():
    cassette, matcher, outcome = replay([session_update("list_messages")])
    text = divergence_report([outcome], Context(FUNCTION_CALL, NODEID), cassette, matcher)
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "mockrealtime: the client departed from the cassette (1 divergence)"
    assert lines[1].startswith("cassette: ") and lines[1].endswith("function_call.yaml")
    assert "connection 0 (session 0, ga), recorded event 1:" in lines
    assert "  expected: session.update" in lines and "  received: session.update" in lines
    # the field that made it a mismatch, marked, with both values
    assert '  ! session.tools[*].name: expected ["list_emails"], received ["list_messages"]' in lines
    # the two events as a diff, the differing lines marked - and +
    assert any(line.strip() == '-        "name": "list_emails",' for line in lines)
    assert any(line.strip() == '+        "name": "list_messages",' for line in lines)
    assert "  closest recorded event: event 1 session.update (the expected one), differing in session.tools[*].name" in lines
    # what to do: the exact command and marker argument
    assert f"  * if the client is right and the recording is stale, re-record it: pytest --realtime-record-mode=rewrite '{NODEID}'" in lines
    assert (
        "  * if these fields do not matter to the test, stop comparing them: "
        "@pytest.mark.realtime(match={'rules': {'session.update': ['session.type', 'session.tool_choice']}})"
    ) in lines


def test_the_suggested_marker_argument_does_relax_matching():
    cassette, matcher, outcome = replay([session_update("list_messages")])
    relaxed = {"rules": {"session.update": ["session.type", "session.tool_choice"]}}
    assert str(relaxed) in divergence_report([outcome], Context(FUNCTION_CALL), cassette, matcher)
    _, _, relaxed_outcome = replay([session_update("list_messages")], match=relaxed)
    assert relaxed_outcome.divergences == ()


def test_in_exact_mode_the_suggestion_ignores_the_differing_fields():
    event = session_update("list_emails")
    event["session"]["instructions"] = "Be terse."
    cassette, matcher, outcome = replay([event], match={"mode": "exact"})
    text = divergence_report([outcome], Context(FUNCTION_CALL, match={"mode": "exact"}), cassette, matcher)
    assert "@pytest.mark.realtime(match={'mode': 'exact', 'ignore': [" in text
    assert "'session.instructions'" in text


def test_an_event_the_recording_holds_further_on_names_that_recorded_event():
    """Strict mode: the tool's output before the tool call; the recording has it in the next turn."""
    recorded = next(e.event for e in load(FUNCTION_CALL).sessions[0].events if (e.get("item") or {}).get("type") == "function_call_output")
    early = {"type": "function_call_output", "call_id": recorded["item"]["call_id"], "output": "{}"}
    cassette, matcher, outcome = replay([{"type": "conversation.item.create", "item": early}])
    text = divergence_report([outcome], Context(FUNCTION_CALL, NODEID), cassette, matcher)
    assert "  expected: conversation.item.create" in text and "  received: conversation.item.create" in text
    assert '  ! item.type: expected "message", received "function_call_output"' in text
    at = next(i for i, e in enumerate(cassette.sessions[0].events) if (e.get("item") or {}).get("type") == "function_call_output")
    assert f"closest recorded event: event {at} matches it exactly, further on in session 0" in text


def test_later_divergences_are_listed_as_consequences_of_the_first():
    events = [session_update("x"), {"type": "conversation.item.create", "item": QUESTION}, {"type": "response.create"}]
    cassette, matcher, outcome = replay(events)
    text = divergence_report([outcome], Context(FUNCTION_CALL), cassette, matcher)
    # the item is housekeeping (answered whatever its order); the trigger then sees other tools
    assert "(2 divergences)" in text
    assert "    received response.create: still expecting response.create (event 3)" in text.splitlines()


def test_no_divergence_no_report():
    cassette, matcher, outcome = replay([session_update("list_emails")])
    assert divergence_report([outcome], Context(FUNCTION_CALL), cassette, matcher) is None


def test_an_unplayed_report_lists_the_remainder_and_how_to_allow_it():
    _, _, outcome = replay([session_update("list_emails")])
    text = unplayed_report([outcome], Context(FUNCTION_CALL, NODEID))
    lines = text.splitlines()
    assert lines[0] == "mockrealtime: the client left part of the cassette unplayed"
    assert "connection 0 (session 0, ga) closed with code 1000 with" in lines[3]
    assert "recorded event(s) unplayed, from recorded event 2:" in lines[3]
    assert lines[4].split() == ["client", "conversation.item.create", "event", "2"]
    assert "  the recording's client sent conversation.item.create next; this client did not" in lines
    assert "  * if the client is meant to stop early, allow it: @pytest.mark.realtime(allow_unplayed=True)" in lines
    assert f"  * if the recording holds more than the client now does, re-record it: pytest --realtime-record-mode=rewrite '{NODEID}'" in lines


def test_a_lenient_near_miss_is_shown_against_the_recorded_event():
    cassette, matcher, outcome = replay([session_update("x")], strict=False)
    near = ((1, cassette.sessions[0].events[1].event, session_update("x"), tuple(matcher.differences(cassette.sessions[0].events[1].event, session_update("x")))),)
    outcome = ConnectionOutcome(0, 0, "ga", False, 1000, (), outcome.unplayed, None, near)
    text = unplayed_report([outcome], Context(FUNCTION_CALL), matcher)
    assert "the client sent a session.update that differs from the recorded event 1" in text
    assert '! session.tools[*].name: expected ["list_emails"], received ["x"]' in text
    assert "@pytest.mark.realtime(strict=True)" in text
    assert "@pytest.mark.realtime(match={'rules': {'session.update': ['session.type', 'session.tool_choice']}})" in text


@pytest.mark.parametrize(("connected", "sessions", "expected"), [
    (False, (0,), "no client connected to this test's endpoint"),
    (True, (1,), "session(s) 1 of the cassette were never played"),
])
def test_sessions_never_played(connected, sessions, expected):
    text = unplayed_report([], Context(FUNCTION_CALL, connected=connected, unplayed_sessions=sessions))
    assert expected in text


def test_everything_played_no_report():
    assert unplayed_report([ConnectionOutcome(0, 0, "ga", False, 1000, (), ())], Context(FUNCTION_CALL)) is None
