"""``mockrealtime validate`` catches what would hang a client, on cassettes broken on purpose."""

from __future__ import annotations

import os
import shutil

from mockrealtime.cli import main
from mockrealtime.core.audio import G711_ULAW, wav_bytes
from mockrealtime.core.checks import ERROR, validate_file
from mockrealtime.core.library import bundled_cassette_dir

from test_inspect import _ga_events, findings, write

CALL = {"id": "item_c", "type": "function_call", "name": "f", "call_id": "call_1", "arguments": ""}


def codes(tmp_path, events, **kwargs):
    return [(severity, code) for severity, code, _ in findings(tmp_path, events, **kwargs)]


def test_a_response_never_done_is_an_error(tmp_path):
    events = _ga_events()[:-1]  # no response.done
    got = findings(tmp_path, events)
    assert (ERROR, "unfinished_response", "response 'resp_1' is created but never done: a client waiting for response.done hangs") in got


def test_a_function_call_never_finished_is_an_error(tmp_path):
    events = _ga_events()[:4] + [
        {"at": 4, "server": {"type": "response.output_item.added", "event_id": "event_3", "response_id": "resp_1", "output_index": 0, "item": CALL}},
        {"at": 5, "server": {"type": "response.function_call_arguments.delta", "event_id": "event_4", "response_id": "resp_1",
                             "item_id": "item_c", "output_index": 0, "call_id": "call_1", "delta": "{}"}},
        {"at": 8, "server": {"type": "response.done", "event_id": "event_7", "response": {"id": "resp_1", "object": "realtime.response", "status": "completed", "output": []}}},
    ]
    assert (ERROR, "unfinished_call") in codes(tmp_path, events)
    events.insert(2, {"at": 6, "server": {"type": "response.function_call_arguments.done", "event_id": "event_5", "response_id": "resp_1",
                                          "item_id": "item_c", "output_index": 0, "call_id": "call_1", "name": "f", "arguments": "{}"}})
    events.sort(key=lambda e: e["at"])
    assert (ERROR, "unfinished_call") not in codes(tmp_path, events)


def test_a_cue_naming_an_id_the_server_shows_later_is_an_error(tmp_path):
    events = _ga_events()
    truncate = {"at": 3.5, "client": {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 0}}
    events.insert(4, truncate)  # item_1 is announced by output_item.added at 4 ms, after the truncate
    got = findings(tmp_path, events)
    assert [f for f in got if f[1] == "impossible_cue"] == [
        (ERROR, "impossible_cue", "item_id 'item_1' is first shown to the client at event 5, after this event: no live client "
                                  "can send it here, so a replay would wait for it forever")]


def test_an_error_without_event_id_answers_a_pipelined_event_without_a_false_warning(tmp_path):
    events = _ga_events()[:1] + [
        {"at": 1, "client": {"type": "conversation.item.create", "item": {"type": "function_call_output", "output": "x"}}},
        {"at": 2, "client": {"type": "response.create"}},  # pipelined before the error comes back
        {"at": 3, "server": {"type": "error", "event_id": "event_9", "error": {
            "type": "invalid_request_error", "code": "missing_required_parameter",
            "message": "Missing required parameter: 'item.call_id'.", "param": "item.call_id", "event_id": None}}},
    ]
    assert [c for c in codes(tmp_path, events) if c[1] == "invalid_client_event"] == []


def test_sidecar_audio_in_another_format_than_the_sessions_is_an_error(tmp_path):
    (tmp_path / "case.s0.server.g711_ulaw.wav").write_bytes(wav_bytes(G711_ULAW, b"\xff" * 1600))
    events = _ga_events()
    where = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0}
    events.insert(5, {"at": 4.5, "audio": {"type": "response.output_audio.delta", "with": where, "format": "g711_ulaw",
                                          "file": "case.s0.server.g711_ulaw.wav", "offset": 0, "chunk_bytes": "800 800", "dt": "0.1"}})
    got = findings(tmp_path, events)
    assert [f[1] for f in got if f[0] == ERROR] == ["audio_format"]
    assert "holds g711_ulaw but the session's output format here is pcm16" in [f for f in got if f[1] == "audio_format"][0][2]


def test_validate_takes_a_bundled_name_as_show_does(capsys):
    assert main(["validate", "twilio_hello"]) == 0
    out = capsys.readouterr().out
    assert "twilio_hello.yaml: ok" in out and "twilio_hello.beta.yaml: ok" in out


def test_validate_takes_a_scenario_file(tmp_path, capsys):
    src = os.path.join(bundled_cassette_dir(), "scenarios", "hello.yaml")
    shutil.copy(src, tmp_path / "hello.yaml")
    assert main(["validate", str(tmp_path / "hello.yaml")]) == 0
    assert "2 cassettes, all ok" in capsys.readouterr().out


def test_a_broken_hand_written_cassette_fails_validate(tmp_path):
    path = write(tmp_path, _ga_events()[:-1])
    assert not validate_file(path).ok()
