"""The scenario language and its compiler, without sockets: what each step puts on the wire."""

from __future__ import annotations

import base64
import os

import pytest
import yaml

from mockrealtime.cli import main
from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import load
from mockrealtime.core.checks import validate_cassette
from mockrealtime.core.events import Direction
from mockrealtime.errors import ScenarioError
from mockrealtime.scenario import (
    Assistant, Scenario, Setup, ToolOutput, User, compile_scenario, from_document, is_scenario_file,
    load_scenario, write_cassettes,
)
from mockrealtime.scenario import synth

from oracle import client_event_errors, server_event_errors

WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def wire(cassette, direction=None):
    return [e.event for e in cassette.sessions[0].events if direction is None or e.direction.value == direction]


def of(events, *types):
    return [e for e in events if e["type"] in types]


def oracle_clean(cassette):
    bad = [m for e in wire(cassette, "server") for m in server_event_errors(e, cassette.dialect)]
    assert bad == []
    assert [str(f) for f in validate_cassette(cassette)] == []


def scenario(text: str, name: str = "s", base_dir: str = ".") -> Scenario:
    return from_document(yaml.safe_load(text), name=name, base_dir=base_dir)


def test_python_api_and_yaml_say_the_same_thing():
    from_python = Scenario("hello", setup=Setup(instructions="Be brief."),
                           steps=[User("Hello!"), Assistant("Hi there!", audio_ms=1200)])
    from_yaml = scenario("scenario: 1\nsession: {instructions: Be brief.}\nsteps:\n"
                         "  - user: Hello!\n  - assistant: Hi there!\n    audio_ms: 1200\n", name="hello")
    a, b = compile_scenario(from_python), compile_scenario(from_yaml)
    assert set(a) == {"ga", "beta"}
    for dialect in a:
        assert wire(a[dialect]) == wire(b[dialect])
        oracle_clean(a[dialect])


def test_compiled_files_are_byte_stable(tmp_path):
    s = scenario("scenario: 1\nsteps:\n  - user: Hi\n  - assistant: Hello there, friend.\n")
    first = write_cassettes(s, str(tmp_path / "a"))
    second = write_cassettes(s, str(tmp_path / "b"))
    assert [os.path.basename(p) for p in first] == [os.path.basename(p) for p in second]
    for p, q in zip(first, second, strict=True):
        with open(p, "rb") as a, open(q, "rb") as b:
            assert a.read() == b.read()


def test_the_assistant_calls_a_tool_and_waits_for_that_call_ids_output():
    s = Scenario("t", setup=Setup(tools=[WEATHER]), dialects=("beta",), steps=[
        User("Weather?"), Assistant(call="get_weather", arguments={"city": "Paris"}),
        ToolOutput({"temperature_c": 18}), Assistant("Eighteen degrees.")])
    c = compile_scenario(s)["beta"]
    oracle_clean(c)
    server = wire(c, "server")
    deltas = of(server, "response.function_call_arguments.delta")
    (done,) = of(server, "response.function_call_arguments.done")
    assert len(deltas) > 1 and "".join(d["delta"] for d in deltas) == done["arguments"] == '{"city": "Paris"}'
    assert done["name"] == "get_weather"  # the beta server sends it too
    (output,) = [e["item"] for e in of(wire(c, "client"), "conversation.item.create") if e["item"]["type"] == "function_call_output"]
    assert output == {"type": "function_call_output", "call_id": done["call_id"], "output": '{"temperature_c": 18}'}
    client_types = [e["type"] for e in wire(c, "client")]
    assert client_types == ["session.update", "conversation.item.create", "response.create", "conversation.item.create", "response.create"]
    # the tool output goes out only after the call's response.done
    events = c.sessions[0].events
    first_done = next(i for i, e in enumerate(events) if e.type == "response.done")
    assert next(i for i, e in enumerate(events) if e.direction is Direction.CLIENT and e.type == "conversation.item.create"
                and e.event["item"]["type"] == "function_call_output") > first_done


def test_vad_positions_are_computed_from_a_wav_file(tmp_path):
    fmt = _audio.PCM16
    speech = synth.quiet(fmt, 1000, 0) + synth.utterance(fmt, 1500, "w", f0=125.0) + synth.quiet(fmt, 700, 0)
    (tmp_path / "caller.wav").write_bytes(_audio.wav_bytes(fmt, speech))
    s = scenario("scenario: 1\ndialects: ga\nsession: {turn_detection: {type: server_vad, prefix_padding_ms: 300, "
                 "silence_duration_ms: 500}}\nsteps:\n  - speak: caller.wav\n    lead_ms: 0\n  - assistant: Okay.\n",
                 base_dir=str(tmp_path))
    c = compile_scenario(s)["ga"]
    oracle_clean(c)
    span = synth.voiced_span(speech, fmt)
    assert span is not None and 1000 <= span[0] <= 1100
    (started,) = of(wire(c, "server"), "input_audio_buffer.speech_started")
    (stopped,) = of(wire(c, "server"), "input_audio_buffer.speech_stopped")
    assert started["audio_start_ms"] == span[0] - 300
    assert stopped["audio_end_ms"] == span[1] + 500
    # each VAD event is sent once the audio it reports has been appended
    appended = 0.0
    for e in c.sessions[0].events:
        if e.type == "input_audio_buffer.append":
            appended += fmt.duration_ms(e.audio_bytes)
        elif e.type == "input_audio_buffer.speech_started":
            assert span[0] + 180 <= appended <= span[0] + 400
        elif e.type == "input_audio_buffer.speech_stopped":
            assert stopped["audio_end_ms"] <= appended <= stopped["audio_end_ms"] + 100
    assert of(wire(c, "server"), "response.created")  # server VAD created the response
    assert not of(wire(c, "client"), "response.create")


def test_barge_in_cancels_with_turn_detected_and_the_client_truncates():
    s = scenario("scenario: 1\nsession: {format: g711_ulaw, turn_detection: server_vad}\nsteps:\n"
                 "  - speak: 1000\n  - assistant: A long answer that goes on and on for a while.\n    audio_ms: 5000\n"
                 "    barge_in_ms: 800\n  - speak: 900\n  - assistant: Sure.\n")
    for c in compile_scenario(s).values():
        oracle_clean(c)
        done = [e["response"] for e in of(wire(c, "server"), "response.done")]
        assert [(r["status"], (r["status_details"] or {}).get("reason")) for r in done] == [("cancelled", "turn_detected"), ("completed", None)]
        assert done[0]["output"][0]["status"] == "incomplete"
        (truncate,) = of(wire(c, "client"), "conversation.item.truncate")
        assert truncate["item_id"] == done[0]["output"][0]["id"] and 800 <= truncate["audio_end_ms"] <= 1100
        assert of(wire(c, "server"), "conversation.item.truncated")[0]["audio_end_ms"] == truncate["audio_end_ms"]
        assert {len(base64.b64decode(e["audio"])) for e in of(wire(c, "client"), "input_audio_buffer.append")} == {160}


def test_the_client_cancels():
    s = scenario("scenario: 1\nsteps:\n  - user: Tell me a story.\n  - assistant: Once upon a time there was a mock.\n"
                 "    audio_ms: 4000\n    cancel_ms: 500\n")
    for c in compile_scenario(s).values():
        oracle_clean(c)
        assert of(wire(c, "client"), "response.cancel")
        (done,) = of(wire(c, "server"), "response.done")
        assert done["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}


def test_push_to_talk_appends_commits_and_asks():
    s = scenario("scenario: 1\nsession: {turn_detection: none}\nsteps:\n  - speak: 600\n  - assistant: Heard you.\n")
    c = compile_scenario(s)["ga"]
    oracle_clean(c)
    types = [e["type"] for e in wire(c, "client")]
    assert types[-2:] == ["input_audio_buffer.commit", "response.create"] and "input_audio_buffer.append" in types
    assert not of(wire(c, "server"), "input_audio_buffer.speech_started")
    assert of(wire(c, "server"), "input_audio_buffer.committed")


@pytest.mark.parametrize(("step", "error"), [
    ("  - tool_output: done\n    call_id: call_nope\n    error: tool_call_not_found\n",
     {"code": "invalid_value", "message": "Tool call ID 'call_nope' not found in conversation.", "param": "item.call_id"}),
    ("  - user: hi\n    respond: false\n    event_id: evt_1\n    error: unknown_parameter\n    param: item.foo\n",
     {"code": "unknown_parameter", "message": "Unknown parameter: 'item.foo'.", "param": "item.foo"}),
    ("  - error: session_expired\n",
     {"code": "session_expired", "message": "Your session hit the maximum duration of 60 minutes.", "param": None}),
])
def test_errors_come_from_the_catalogue_with_exact_strings(step, error):
    s = scenario("scenario: 1\ndialects: ga\nsteps:\n  - user: Weather?\n  - assistant: Let me see.\n" + step)
    c = compile_scenario(s)["ga"]
    oracle_clean(c)
    (sent,) = of(wire(c, "server"), "error")
    assert {k: sent["error"][k] for k in error} == error
    assert sent["error"]["type"] == "invalid_request_error"


def test_several_sessions_each_their_own_connection():
    s = scenario("scenario: 1\nsessions:\n  - steps: [{user: One}, {assistant: First.}]\n"
                 "  - steps: [{user: Two}, {assistant: Second.}]\n")
    c = compile_scenario(s)["ga"]
    assert len(c.sessions) == 2
    ids = [s_.events[0].event["session"]["id"] for s_ in c.sessions]
    assert len(set(ids)) == 2  # the real server mints fresh ids on every connection
    for session in c.sessions:
        assert [e.type for e in session.events if e.direction is Direction.CLIENT] == ["conversation.item.create", "response.create"]


def test_client_events_are_what_the_sdk_sends():
    s = scenario("scenario: 1\nsession: {instructions: x, voice: alloy, format: g711_alaw, turn_detection: semantic_vad, "
                 "tools: [{name: f, parameters: {type: object}}], tool_choice: required, output: audio}\n"
                 "steps:\n  - user: hi\n  - call: f\n  - tool_output: ok\n  - assistant: Done.\n")
    for dialect, c in compile_scenario(s).items():
        oracle_clean(c)
        for event in wire(c, "client"):
            assert client_event_errors(event, dialect) == []


@pytest.mark.parametrize(("text", "where", "message"), [
    ("version: 1\nsteps: []\n", "$", "unknown key"),
    ("scenario: 1\nsteps:\n  - shout: hi\n", "$.steps[0]", "unknown step"),
    ("scenario: 1\nsession: {format: mp3}\nsteps: []\n", "$.session.input_format", "not an audio format"),
    ("scenario: 1\nsteps:\n  - user: x\n    error: no_such_error\n", "$.steps[0].error", "not in the error catalogue"),
    ("scenario: 1\nsteps:\n  - assistant: Hi\n", "step 1 (assistant)", "nothing asks for this response"),
    ("scenario: 1\nsteps:\n  - tool_output: x\n", "step 1 (tooloutput)", "no response has called a tool"),
    ("scenario: 1\nsteps:\n  - user: x\n    error: unknown_parameter\n", "step 1 (user)", "needs 'param'"),
])
def test_a_broken_scenario_names_the_place(tmp_path, text, where, message):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        compile_scenario(load_scenario(str(path)), str(path))
    assert info.value.json_path == where and message in info.value.message
    assert info.value.file == str(path)


def test_scenario_files_are_told_apart_from_cassettes(tmp_path):
    (tmp_path / "s.yaml").write_text("# a comment\nscenario: 1\nsteps: []\n")
    (tmp_path / "t.yaml").write_text("---\nscenario: 1\nsteps: []\n")
    (tmp_path / "c.yaml").write_text("version: 1\ndialect: ga\nsessions: []\n")
    assert is_scenario_file(str(tmp_path / "s.yaml")) and is_scenario_file(str(tmp_path / "t.yaml"))
    assert not is_scenario_file(str(tmp_path / "c.yaml"))


def test_compile_writes_loadable_cassettes_and_never_over_a_scenario(tmp_path, capsys):
    src = tmp_path / "hi.yaml"
    src.write_text("# Says hi.\nscenario: 1\nsteps:\n  - user: Hi\n  - assistant: Hello!\n")
    assert main(["compile", str(src), "-o", str(tmp_path / "out")]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["hi.beta.s0.server.pcm16.wav", "hi.beta.yaml", "hi.s0.server.pcm16.wav", "hi.yaml"]
    cassette = load(str(tmp_path / "out" / "hi.yaml"))
    assert cassette.description.startswith("Says hi.")
    assert main(["compile", "--check", str(src), "-o", str(tmp_path / "out")]) == 0
    assert main(["compile", str(src), "-o", str(tmp_path)]) == 1
    assert "would overwrite the scenario" in capsys.readouterr().err


def test_compile_help_is_compiles_own(capsys):
    with pytest.raises(SystemExit) as info:
        main(["compile", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mockrealtime compile") and "--check" in out


def test_an_update_step_sends_the_model_it_names():
    """openai-agents' settings-only update ({type, model}) survives compilation: the model is sent and confirmed."""
    s = scenario("scenario: 1\nsession: {instructions: x}\n"
                 "steps:\n  - update: {model: {ga: gpt-realtime, beta: gpt-4o-realtime-preview-2024-12-17}}\n  - user: hi\n")
    for dialect, c in compile_scenario(s).items():
        oracle_clean(c)
        first, second = [e["session"] for e in of(wire(c, "client"), "session.update")]
        want = "gpt-realtime" if dialect == "ga" else "gpt-4o-realtime-preview-2024-12-17"
        assert "model" not in first
        assert second == ({"type": "realtime", "model": want} if dialect == "ga" else {"model": want})
        assert [e["session"]["model"] for e in of(wire(c, "server"), "session.updated")] == [want, want]
        for event in wire(c, "client"):
            assert client_event_errors(event, dialect) == []


def test_the_compile_cache_drops_what_was_not_used_for_a_week_beyond_the_most_recent(tmp_path, monkeypatch):
    from mockrealtime.scenario import files

    cache = tmp_path / "cache"
    monkeypatch.setattr(files, "cache_dir", lambda: str(cache))
    monkeypatch.setattr(files, "CACHE_KEEP", 2)
    monkeypatch.setattr(files, "_memo", {})
    week = files.CACHE_MAX_AGE_S
    for i, age in enumerate([10, 20, 30, week + 10, week + 20]):  # entries, by when last used
        entry = cache / f"entry{i}"
        entry.mkdir(parents=True)
        os.utime(entry, (os.path.getmtime(entry) - age,) * 2)
    crashed = cache / ".compiling-x"
    crashed.mkdir()
    os.utime(crashed, (os.path.getmtime(crashed) - 7200,) * 2)
    source = tmp_path / "s.yaml"
    source.write_text("scenario: 1\nsteps:\n  - user: Hi\n  - assistant: Hello there.\n")
    compiled = files.compiled_files(str(source))  # compiling prunes
    kept = sorted(p.name for p in cache.iterdir())
    # the two most recent stay whatever their age (here: used within the week anyway), the rest
    # of the week's too; older ones and the killed compile's folder go
    assert kept == sorted(["entry0", "entry1", "entry2", os.path.basename(os.path.dirname(compiled[0]))])
