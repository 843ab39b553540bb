"""``mockrealtime show``: the bundled cassettes as readable conversations, and the CLI around both tools."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mockrealtime.cli import main
from mockrealtime.core.events import Direction
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.core.timeline import render, session_lines

BUNDLED = CassetteLibrary()
CASES = [(entry["name"], dialect) for entry in BUNDLED.available() for dialect in entry["dialects"]]


def lines(name: str, dialect: str = "ga") -> list[tuple[str, str]]:
    return [(line.who, line.text) for line in session_lines(BUNDLED.resolve(name, dialect).sessions[0].events)]


def recorded(name: str, dialect: str, etype: str) -> dict:
    return next(e.event for e in BUNDLED.resolve(name, dialect).sessions[0].events if e.type == etype)


def recorded_all(name: str, etype: str, dialect: str = "ga") -> list[dict]:
    return [e.event for e in BUNDLED.resolve(name, dialect).sessions[0].events if e.type == etype]


@pytest.mark.parametrize(("name", "dialect"), CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_every_bundled_cassette_reads_as_a_conversation_in_time_order(name, dialect):
    cassette = BUNDLED.resolve(name, dialect)
    got = session_lines(cassette.sessions[0].events)
    assert [line.at_ms for line in got] == sorted(line.at_ms for line in got)
    assert {line.who for line in got} <= {"user", "assistant", "tool", "client", "vad", "server"}
    assert "user" in {line.who for line in got}
    text = render(cassette)
    assert text.startswith(f"{name}: {dialect}, model {cassette.model}, 1 session\n")
    assert "session 0 (closed by client, code 1000)" in text


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_tool_round_trip_shows_the_call_its_arguments_the_output_and_the_spoken_answer(dialect):
    call = recorded("function_call", dialect, "response.function_call_arguments.done")
    got = lines("function_call", dialect)
    assert got[2] == ("user", '"How many emails do I have? Read me the latest one"')
    assert ("assistant", f'calls list_emails({{"numEmails": 1}})  [{call["call_id"]}]') in got
    tool = next(text for who, text in got if who == "tool")
    assert tool.startswith('list_emails -> {"total": 3') and tool.endswith(f"[{call['call_id']}]")
    assert got[-1][0] == "assistant" and got[-1][1].startswith('[speech 2.90 s] "You have three emails.')


def test_barge_in_shows_vad_the_cut_short_answer_the_cancellation_and_the_truncation():
    got = lines("turn_detected")
    truncate = recorded("turn_detected", "ga", "conversation.item.truncate")
    started = [e["audio_start_ms"] for e in recorded_all("turn_detected", "input_audio_buffer.speech_started")]
    stopped = [e["audio_end_ms"] for e in recorded_all("turn_detected", "input_audio_buffer.speech_stopped")]
    assert ("vad", f"speech started at {started[0] / 1000:.2f} s of input audio") in got
    assert ("vad", f"speech stopped at {stopped[0] / 1000:.2f} s of input audio") in got
    cut = [text for who, text in got if who == "assistant" and text.endswith("(cut short)")]
    assert len(cut) == 1 and cut[0].startswith('[speech 5.30 s] "Today in Paris it\'s sunny and about twenty-two degrees, with a')
    assert ("assistant", "response cancelled (turn_detected)") in got
    assert ("client", f"truncates {truncate['item_id']} at {truncate['audio_end_ms'] / 1000:.2f} s of its audio (what the user heard)") in got
    mic = [text for who, text in got if who == "user" and text.startswith("microphone")]
    assert mic[0] == "microphone: 0.78 s of audio in 39 chunks (input 0.00 s to 0.78 s)"
    assert mic[-1].endswith("to 8.94 s)")


def test_an_error_names_the_client_event_it_answers_and_a_silent_response_says_so():
    got = lines("missing_call_id")
    assert ("server", "error invalid_request_error/missing_required_parameter: Missing required parameter: "
                      "'item.call_id'. (answering evt_tool_output_1)") in got
    assert got[-1] == ("assistant", "(says nothing: the response completed with no output)")


def test_audio_is_measured_in_the_format_the_session_has_not_the_one_a_rejected_update_asked_for():
    got = lines("chat_completions_tools", "beta")
    (mic,) = [text for who, text in got if text.startswith("microphone")]
    assert "measured as pcm16 24 kHz, the session's format, though the client asked for G.711 u-law" in mic
    assert ("assistant", '[speech 2.60 s] "Hi there, thanks for calling the bakery! How can I help you today?"') in got


def test_a_forced_function_that_came_back_as_text():
    assert lines("forced_function_as_message")[-1] == ("assistant", '"{\\"city\\":\\"Paris\\"}"')


def test_the_tools_are_sans_io():
    code = "import sys, mockrealtime.core.checks, mockrealtime.core.timeline; print(sorted({'aiohttp', 'asyncio'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- the CLI --------------------------------------------------------------------------------------


def test_show_by_path_by_name_and_one_session(capsys):
    path = BUNDLED.resolve("hello", "beta").path
    assert main(["show", path]) == 0
    by_path = capsys.readouterr().out
    assert main(["show", "hello", "--dialect", "beta", "--session", "0"]) == 0
    assert capsys.readouterr().out == by_path
    assert '"Hi there! How can I help you today?"' in by_path
    assert main(["show", path, "--session", "3"]) == 2
    assert "has sessions 0 to 0" in capsys.readouterr().err


def test_show_an_unknown_name_lists_what_there_is(capsys):
    assert main(["show", "no_such_cassette"]) == 1
    assert "available: chat_completions_tools" in capsys.readouterr().err


def test_client_events_are_shown_once_each():
    events = BUNDLED.resolve("function_call", "ga").sessions[0].events
    client = [e for e in events if e.direction is Direction.CLIENT]
    got = lines("function_call")
    assert len([who for who, _ in got if who in ("client", "user", "tool")]) == len(client)
