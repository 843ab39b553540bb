"""``mockrealtime validate``'s checks, on the bundled cassettes and on cassettes broken on purpose."""

from __future__ import annotations

import copy
import glob
import json
import os
import shutil
from typing import Any

import pytest
import yaml

from mockrealtime.cli import main
from mockrealtime.core.checks import ERROR, WARNING, cassette_paths, validate_file
from mockrealtime.core.library import CassetteLibrary, bundled_cassette_dir

BUNDLED = cassette_paths([bundled_cassette_dir()])


@pytest.mark.parametrize("path", BUNDLED, ids=[p.rsplit("/", 1)[-1] for p in BUNDLED])
def test_every_bundled_cassette_validates_without_findings(path):
    report = validate_file(path)
    assert report.findings == []
    assert report.ok(strict=True)


def _ga_events() -> list[dict[str, Any]]:
    resp = {"id": "resp_1", "object": "realtime.response", "status": "in_progress", "output": []}
    item = {"id": "item_1", "object": "realtime.item", "type": "message", "role": "assistant", "content": []}
    where = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0}
    done = {**resp, "status": "completed", "output": [{**item, "status": "completed", "content": [{"type": "output_text", "text": "Hi there"}]}]}
    return [
        {"at": 0, "server": {"type": "session.created", "event_id": "event_1",
                             "session": {"type": "realtime", "object": "realtime.session", "id": "sess_1", "model": "gpt-realtime"}}},
        {"at": 1, "client": {"type": "conversation.item.create", "event_id": "evt_user",
                             "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]}}},
        {"at": 2, "client": {"type": "response.create", "event_id": "evt_create"}},
        {"at": 3, "server": {"type": "response.created", "event_id": "event_2", "response": resp}},
        {"at": 4, "server": {"type": "response.output_item.added", "event_id": "event_3", "response_id": "resp_1", "output_index": 0, "item": item}},
        {"at": 5, "server": {"type": "response.output_text.delta", "event_id": "event_4", **where, "delta": "Hi "}},
        {"at": 6, "server": {"type": "response.output_text.delta", "event_id": "event_5", **where, "delta": "there"}},
        {"at": 7, "server": {"type": "response.output_text.done", "event_id": "event_6", **where, "text": "Hi there"}},
        {"at": 8, "server": {"type": "response.done", "event_id": "event_7", "response": done}},
    ]


def write(tmp_path, events, *, dialect="ga", name="case", handshake=None, comment="") -> str:
    doc = {"version": 1, "dialect": dialect, "model": "gpt-realtime", "sessions": [{"events": events}]}
    if handshake is not None:
        doc["handshake"] = handshake
    path = tmp_path / (f"{name}.yaml" if dialect == "ga" else f"{name}.beta.yaml")
    path.write_text(comment + yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def findings(tmp_path, events, **kwargs) -> list[tuple[str, str, str]]:
    report = validate_file(write(tmp_path, events, **kwargs))
    return [(f.severity, f.code, f.message) for f in report.findings]


def test_the_hand_written_baseline_is_clean(tmp_path):
    assert findings(tmp_path, _ga_events()) == []


def test_beta_names_in_a_ga_cassette_are_errors_that_name_the_ga_event(tmp_path):
    events = _ga_events()
    for i in (5, 6):
        events[i]["server"]["type"] = "response.text.delta"
    events[7]["server"]["type"] = "response.text.done"
    report = validate_file(write(tmp_path, events))
    got = [(f.severity, f.code, f.message) for f in report.findings]
    assert got == [
        (ERROR, "wrong_dialect", "'response.text.delta' is a beta event in a ga cassette; the ga name is 'response.output_text.delta' (2 events, the first shown)"),
        (ERROR, "wrong_dialect", "'response.text.done' is a beta event in a ga cassette; the ga name is 'response.output_text.done'"),
    ]
    assert report.findings[0].where == "session 0, event 5 (5 ms, server response.text.delta)"
    assert not report.ok()


def test_ga_names_in_a_beta_cassette_are_errors_too(tmp_path):
    events = [
        {"at": 0, "server": {"type": "session.created", "event_id": "event_1", "session": {"object": "realtime.session", "id": "sess_1"}}},
        {"at": 1, "server": {"type": "conversation.item.added", "event_id": "event_2", "previous_item_id": None,
                             "item": {"id": "item_1", "type": "message", "role": "user", "content": []}}},
    ]
    assert findings(tmp_path, events, dialect="beta") == [
        (ERROR, "wrong_dialect", "'conversation.item.added' is a ga event in a beta cassette; the beta name is 'conversation.item.created'"),
    ]


def test_unknown_types_and_legacy_ga_events(tmp_path):
    events = _ga_events()
    events.insert(1, {"at": 0.5, "server": {"type": "conversation.item.created", "event_id": "event_x", "item": {"id": "item_0", "type": "message"}}})
    events.insert(2, {"at": 0.6, "server": {"type": "response.cancelled", "event_id": "event_y"}})
    got = findings(tmp_path, events)
    assert (WARNING, "wrong_dialect", "'conversation.item.created' is a beta-era event; the GA server answers with conversation.item.added and conversation.item.done") in got
    assert (ERROR, "unknown_event_type", "'response.cancelled' is not a server event of the Realtime API") in got


def test_a_session_of_the_wrong_shape(tmp_path):
    events = _ga_events()
    events[0]["server"]["session"] = {"object": "realtime.session", "id": "sess_1", "modalities": ["text", "audio"], "voice": "alloy"}
    assert findings(tmp_path, events) == [
        (ERROR, "session_shape", "beta session field(s) modalities, voice in a GA cassette (GA: output_modalities, audio.input/output, max_output_tokens)"),
        (ERROR, "session_shape", "a GA session carries type ('realtime' or 'transcription')"),
    ]


def test_references_to_responses_and_items_that_do_not_exist(tmp_path):
    events = _ga_events()
    events[5]["server"]["response_id"] = "resp_other"
    events[6]["server"]["item_id"] = "item_other"
    got = findings(tmp_path, events)
    assert (ERROR, "broken_reference", "response_id 'resp_other' names no response of this session (no response.created or response.done has it)") in got
    assert (ERROR, "broken_reference", "item_id 'item_other' names no item of this session") in got


def test_a_tool_output_for_an_unknown_call_is_an_error_unless_the_recording_shows_the_api_refusing_it(tmp_path):
    events = _ga_events()
    events.append({"at": 9, "client": {"type": "conversation.item.create", "event_id": "evt_out",
                                       "item": {"type": "function_call_output", "call_id": "call_nope", "output": "{}"}}})
    assert findings(tmp_path, events) == [
        (ERROR, "broken_reference", "call_id 'call_nope' names nothing in this session, and the recording shows no error answering it"),
    ]
    events.append({"at": 10, "server": {"type": "error", "event_id": "event_9", "error": {
        "type": "invalid_request_error", "code": None, "message": "no such call", "param": None, "event_id": "evt_out"}}})
    assert findings(tmp_path, events) == []


def test_an_invalid_client_event_is_a_warning_unless_the_recording_shows_the_error(tmp_path):
    with open(next(p for p in BUNDLED if p.endswith("/missing_call_id.yaml"))) as f:
        doc = yaml.safe_load(f)
    events = doc["sessions"][0]["events"]
    errors = [i for i, e in enumerate(events) if (e.get("server") or {}).get("type") == "error"]
    assert findings(tmp_path, copy.deepcopy(events)) == []
    del events[errors[0]]
    assert findings(tmp_path, events) == [
        (WARNING, "invalid_client_event", "the real API answers it with missing_required_parameter: Missing required parameter: 'item.call_id'. (param item.call_id), and the recording shows no error"),
    ]


def test_an_error_naming_no_client_event(tmp_path):
    events = _ga_events()
    events.append({"at": 9, "server": {"type": "error", "event_id": "event_9", "error": {
        "type": "invalid_request_error", "code": "x", "message": "m", "param": None, "event_id": "evt_never_sent"}}})
    assert findings(tmp_path, events) == [(WARNING, "broken_reference", "error.event_id 'evt_never_sent' names no client event of this session")]


def test_deltas_that_do_not_join_to_their_done_event(tmp_path):
    events = _ga_events()
    events[7]["server"]["text"] = "Hi their"
    assert findings(tmp_path, events) == [(ERROR, "stream_mismatch", "the deltas join to 'Hi there' but text is 'Hi their'")]


KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda ev, hs: ev[1]["client"]["item"]["content"][0].update(text=f"my key is {KEY}"), "$.sessions[0].events[1].client.item.content[0].text"),
        (lambda ev, hs: hs["headers"].update(Authorization=f"Bearer {KEY}"), "$.handshake.headers.Authorization"),
        (lambda ev, hs: hs["headers"].update({"api-key": "0123456789abcdef0123456789abcdef"}), "$.handshake.headers.api-key"),
        (lambda ev, hs: hs.update(subprotocols=["realtime", "openai-insecure-api-key.abc123"]), "$.handshake.subprotocols[1]"),
        (lambda ev, hs: ev[0]["server"]["session"].update(client_secret={"value": "ek_" + "68a1b2c3d4e5f6a7b8c9d0e1", "expires_at": 1}),
         "$.sessions[0].events[0].server.session.client_secret.value"),
    ],
    ids=["key-in-text", "authorization", "azure-api-key", "key-subprotocol", "ephemeral-key"],
)
def test_secrets_left_in_are_errors_that_say_where(tmp_path, mutate, where):
    events, handshake = _ga_events(), {"path": "/v1/realtime", "query": {"model": "gpt-realtime"}, "headers": {}}
    mutate(events, handshake)
    report = validate_file(write(tmp_path, events, handshake=handshake))
    assert [f.code for f in report.errors] and {f.code for f in report.errors} == {"secret"}
    assert where in [f.where for f in report.errors]
    assert all(KEY not in str(f) for f in report.findings)  # findings never repeat the secret


def test_a_secret_in_a_comment(tmp_path):
    report = validate_file(write(tmp_path, _ga_events(), comment=f"# recorded with {KEY}\n"))
    assert [(f.code, f.where) for f in report.findings] == [("secret", "(comment)")]


def test_redacted_handshake_credentials_are_fine(tmp_path):
    handshake = {"path": "/v1/realtime", "query": {"model": "gpt-realtime"},
                 "headers": {"Authorization": "<redacted>", "OpenAI-Beta": "realtime=v1"},
                 "subprotocols": ["realtime", "openai-insecure-api-key.<redacted>"]}
    assert findings(tmp_path, _ga_events(), handshake=handshake) == []


def test_a_cassette_that_does_not_load_is_one_format_error_with_its_json_path(tmp_path):
    events = _ga_events()
    events[1]["bogus"] = True
    report = validate_file(write(tmp_path, events))
    (finding,) = report.findings
    assert (finding.severity, finding.code, finding.where) == (ERROR, "format", "$.sessions[0].events[1]")
    assert report.cassette is None and "1 error" in report.summary()


def test_directories_expand_to_their_cassettes_in_order(tmp_path):
    write(tmp_path, _ga_events(), name="b")
    write(tmp_path, _ga_events(), name="a")
    (tmp_path / "notes.txt").write_text("x")
    assert cassette_paths([str(tmp_path)]) == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]


# -- the CLI --------------------------------------------------------------------------------------


def test_validate_every_bundled_cassette(capsys):
    assert main(["validate", bundled_cassette_dir()]) == 0
    out = capsys.readouterr().out.splitlines()
    n = len(cassette_paths([bundled_cassette_dir()]))
    assert out[-1] == f"{n} cassettes, all ok"
    assert all(line.endswith(")") and ": ok (" in line for line in out[:-1])


def test_validate_fails_with_the_findings_and_can_speak_json(tmp_path, capsys):
    source = CassetteLibrary().resolve("hello", "ga").path
    text = read(source).replace("response.output_audio_transcript.delta", "response.audio_transcript.delta")
    broken = tmp_path / "hello.yaml"
    broken.write_text(text)
    for sidecar in cassette_sidecars(source):  # sidecars sit next to the cassette
        shutil.copy(sidecar, tmp_path)
    assert main(["validate", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "1 error" in out and "wrong_dialect" in out and "'response.output_audio_transcript.delta'" in out
    assert main(["validate", "--json", str(broken)]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["dialect"], report["findings"][0]["code"]) == (False, "ga", "wrong_dialect")


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def cassette_sidecars(path: str) -> list[str]:
    stem = os.path.basename(path)[: -len(".yaml")]
    return glob.glob(os.path.join(os.path.dirname(path), f"{stem}.s*.wav"))


def test_validate_strict_fails_on_warnings(tmp_path, capsys):
    cassette = CassetteLibrary().resolve("missing_call_id", "ga")
    text = read(cassette.path)
    error_at = text.index("    server:\n      type: error")
    entry_start = text.rindex("  - at:", 0, error_at)
    entry_end = text.index("  - at:", error_at)
    (tmp_path / "missing_call_id.yaml").write_text(text[:entry_start] + text[entry_end:])
    assert main(["validate", str(tmp_path)]) == 0
    assert "invalid_client_event" in capsys.readouterr().out
    assert main(["validate", "--strict", str(tmp_path)]) == 1


def test_validate_a_missing_file_is_a_format_error(capsys):
    assert main(["validate", "/no/such/cassette.yaml"]) == 1
    assert "cannot read" in capsys.readouterr().out
