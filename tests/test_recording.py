"""Record mode's core without sockets: redaction, the secret scan, the sans-IO Recorder."""

from __future__ import annotations

import base64
import json
import os

import pytest

from mockrealtime.core import cassette as _cassette
from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session
from mockrealtime.errors import CassetteError, ConfigError, SecretLeftError
from mockrealtime.core.events import Direction
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.core.recording import Recorder, negotiate_dialect
from mockrealtime.core.redaction import (
    REDACTED,
    Redactor,
    credentials,
    find_secrets,
    redact_headers,
    redact_query,
    redact_subprotocols,
    save_checked,
)

KEY = "sk-proj-" + "Q3v9" * 10
EPHEMERAL = "ek_68af296e8e408191a1120ab6383263c2"
CHUNK = base64.b64encode(b"\x01\x02" * 2400).decode()  # 100 ms of pcm16


def frame(**event) -> str:
    return json.dumps(event)


GA_CREATED = frame(type="session.created", event_id="event_1", session={"type": "realtime", "model": "gpt-realtime", "object": "realtime.session"})
BETA_CREATED = frame(type="session.created", event_id="event_1", session={"model": "gpt-4o-realtime-preview", "object": "realtime.session", "modalities": ["text", "audio"]})


# -- handshake redaction ------------------------------------------------------------------------


def test_headers_keep_only_what_is_known_harmless():
    headers = {
        "Host": "api.openai.com", "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": "x",
        "Authorization": f"Bearer {KEY}", "api-key": "azurekey0123456789", "OpenAI-Organization": "org-123",
        "OpenAI-Project": "proj_123", "OpenAI-Beta": "realtime=v1", "User-Agent": "AsyncOpenAI/Python 2.8.0",
        "X-Stainless-Lang": "python", "X-Something-New": "who knows",
    }
    assert redact_headers(headers) == {
        "Authorization": REDACTED, "api-key": REDACTED, "OpenAI-Organization": REDACTED, "OpenAI-Project": REDACTED,
        "OpenAI-Beta": "realtime=v1", "User-Agent": "AsyncOpenAI/Python 2.8.0", "X-Stainless-Lang": "python",
        "X-Something-New": REDACTED,  # fails closed: unknown headers keep their name only
    }


def test_query_and_subprotocols_fail_closed():
    assert redact_query({"model": "gpt-realtime", "api-version": "2025-04-01-preview", "deployment": "d", "api-key": "k" * 20}) == {
        "model": "gpt-realtime", "api-version": "2025-04-01-preview", "deployment": "d", "api-key": REDACTED}
    offered = ["realtime", f"openai-insecure-api-key.{KEY}", "openai-organization.org-1", "openai-project.p", "openai-beta.realtime-v1", "custom"]
    assert redact_subprotocols(offered) == [
        "realtime", "openai-insecure-api-key.<redacted>", "openai-organization.<redacted>", "openai-project.<redacted>",
        "openai-beta.realtime-v1", REDACTED]


def test_credentials_are_collected_from_every_place_a_handshake_carries_them():
    found = credentials(
        [("Authorization", f"Bearer {KEY}"), ("api-key", "azure-key-0123456789"), ("OpenAI-Organization", "org-1")],
        ["realtime", "openai-insecure-api-key.sk-browser-0123456789abcdef"],
        [("model", "gpt-realtime"), ("api-key", "query-key-0123456789")],
    )
    assert found == {KEY, "azure-key-0123456789", "sk-browser-0123456789abcdef", "query-key-0123456789"}


@pytest.mark.parametrize(
    ("headers", "subprotocols", "dialect"),
    [
        ({}, [], "ga"),
        ({"OpenAI-Beta": "realtime=v1"}, [], "beta"),
        ({"openai-beta": "assistants=v2, realtime=v1"}, [], "beta"),
        ({}, ["realtime", "openai-beta.realtime-v1"], "beta"),
        ({}, ["realtime"], "ga"),
    ],
)
def test_the_handshake_dialect_is_read_as_the_api_reads_it(headers, subprotocols, dialect):
    assert negotiate_dialect(headers, subprotocols) == dialect


# -- event redaction ----------------------------------------------------------------------------


def test_client_secrets_and_credential_keys_are_blanked_at_any_depth_keeping_the_shape():
    event = {
        "type": "session.created",
        "session": {
            "client_secret": {"value": EPHEMERAL, "expires_at": 1756888000},
            "tools": [{"type": "mcp", "server_url": "https://mcp.example", "authorization": "oauth-token",
                       "headers": {"X-API-Key": "abc", "Accept": "json"}}],
        },
    }
    before = json.dumps(event)
    out = Redactor().scrub_event(event)
    assert out["session"]["client_secret"] == {"value": REDACTED, "expires_at": 1756888000}
    assert out["session"]["tools"][0]["authorization"] == REDACTED
    assert out["session"]["tools"][0]["headers"] == {"X-API-Key": REDACTED, "Accept": "json"}
    assert json.dumps(event) == before  # never mutated: the relay forwards the original


def test_an_event_without_secrets_is_returned_as_is():
    event = {"type": "response.create", "response": {"instructions": "be brief"}}
    assert Redactor().scrub_event(event) is event


@pytest.mark.parametrize(
    ("rule", "event", "expected"),
    [
        ("session.instructions", {"type": "session.update", "session": {"instructions": "secret plan", "voice": "alloy"}},
         {"type": "session.update", "session": {"instructions": REDACTED, "voice": "alloy"}}),
        ("$.session.instructions", {"type": "session.updated", "session": {"instructions": "x"}},
         {"type": "session.updated", "session": {"instructions": REDACTED}}),
        ("conversation.item.create:item.content[*].text",
         {"type": "conversation.item.create", "item": {"content": [{"type": "input_text", "text": "my address"}, {"type": "input_text", "text": "b"}]}},
         {"type": "conversation.item.create", "item": {"content": [{"type": "input_text", "text": REDACTED}, {"type": "input_text", "text": REDACTED}]}}),
        ("conversation.item.create:item.content[*].text",  # another event type: untouched
         {"type": "conversation.item.added", "item": {"content": [{"type": "input_text", "text": "my address"}]}},
         {"type": "conversation.item.added", "item": {"content": [{"type": "input_text", "text": "my address"}]}}),
        ("item.content[1].text", {"type": "x", "item": {"content": [{"text": "a"}, {"text": "b"}]}},
         {"type": "x", "item": {"content": [{"text": "a"}, {"text": REDACTED}]}}),
        ("response.output[*].*", {"type": "response.done", "response": {"output": [{"id": "item_1", "n": 3}]}},
         {"type": "response.done", "response": {"output": [{"id": REDACTED, "n": 3}]}}),
        ("no.such.field", {"type": "x", "a": 1}, {"type": "x", "a": 1}),
    ],
)
def test_configured_json_paths(rule, event, expected):
    assert Redactor(paths=[rule]).scrub_event(event) == expected


def test_configured_patterns_apply_to_every_string_but_audio():
    redactor = Redactor(patterns=[r"\b\d{3}-\d{4}\b", r"A{8}"])
    text = {"type": "response.output_audio_transcript.delta", "delta": "call 555-1234 now"}
    assert redactor.scrub_event(text)["delta"] == f"call {REDACTED} now"
    audio = {"type": "input_audio_buffer.append", "audio": "AAAAAAAAAAAA"}
    assert redactor.scrub_event(audio) is audio


@pytest.mark.parametrize(("paths", "patterns"), [(["a..b"], []), (["a[x]"], []), ([""], []), ([], ["(unclosed"])])
def test_bad_rules_fail_at_configuration(paths, patterns):
    with pytest.raises(ConfigError, match="bad redact"):
        Redactor(paths, patterns)


# -- the scan -----------------------------------------------------------------------------------


def one_session(*events: RecordedEvent, description: str = "") -> Cassette:
    return Cassette(name="c", dialect="ga", sessions=[Session(list(events), Close("client", 1000, ""))], description=description)


def test_find_secrets_sees_a_key_split_over_deltas_as_the_file_holds_it():
    halves = (KEY[:10], KEY[10:])
    cassette = one_session(
        RecordedEvent.make("server", 0, json.loads(GA_CREATED)),
        *(RecordedEvent.make("server", 10 + i, {"type": "response.output_text.delta", "event_id": f"e{i}", "delta": h}) for i, h in enumerate(halves)),
    )
    assert find_secrets(cassette) == [("$.sessions[0].events[1].text.delta", "an OpenAI API key (sk-...)")]


def test_find_secrets_names_paths_and_kinds_never_values():
    event = {"type": "conversation.item.create", "item": {"content": [
        {"type": "input_text", "text": f"key {EPHEMERAL}"},
        {"type": "input_text", "text": "Authorization: Bearer abcdefghijklmnopqrstuvwxyz"},
        {"type": "input_text", "text": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig"},
        {"type": "input_text", "text": "the azure key is 0123456789abcdef"},
    ]}}
    found = find_secrets(event, known=["0123456789abcdef"])
    assert found == [
        ("$.item.content[0].text", "an ephemeral client secret (ek_...)"),
        ("$.item.content[1].text", "a bearer token"),
        ("$.item.content[2].text", "a JSON Web Token"),
        ("$.item.content[3].text", "a credential used in this recording"),
    ]
    assert EPHEMERAL not in repr(found)


def test_short_known_values_and_ordinary_text_are_not_secrets():
    event = {"type": "x", "text": "ask-me anything; sk-short; the week_123 of test", "id": "item_CUap4sGzyeiQjhyNpjsv2"}
    assert find_secrets(event, known=["test", ""]) == []


def test_find_secrets_reads_cassette_text_and_raw_text():
    text = f"# recorded with {KEY}\nversion: 1\nsessions:\n- events:\n  - at: 0\n    client: {{type: x, note: '{EPHEMERAL}'}}\n"
    assert find_secrets(text) == [("(comment)", "an OpenAI API key (sk-...)"),
                                  ("$.sessions[0].events[0].client.note", "an ephemeral client secret (ek_...)")]
    assert find_secrets(f"{{not yaml: [{KEY}") == [("$", "an OpenAI API key (sk-...)")]


def test_audio_payloads_are_not_scanned():
    audio = base64.b64encode(b"sk-" + os.urandom(64)).decode()
    assert find_secrets({"type": "input_audio_buffer.append", "audio": audio}) == []


def test_a_checked_save_refuses_and_writes_nothing(tmp_path):
    cassette = one_session(RecordedEvent.make("client", 5, {"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": f"my key is {KEY}"}]}}))
    target = tmp_path / "new" / "leak.yaml"
    with pytest.raises(SecretLeftError) as info:
        save_checked(cassette, str(target), known=[KEY])
    assert isinstance(info.value, CassetteError)
    assert info.value.findings == [("$.sessions[0].events[0].client.item.content[0].text", "an OpenAI API key (sk-...)"),
                                   ("$.sessions[0].events[0].client.item.content[0].text", "a credential used in this recording")]
    message = str(info.value)
    assert KEY not in message and "refusing to save" in message and "--redact-pattern" in message
    assert not (tmp_path / "new").exists()


def test_a_known_key_in_the_description_is_refused(tmp_path):
    cassette = one_session(RecordedEvent.make("server", 0, json.loads(GA_CREATED)), description=f"made with {KEY}")
    with pytest.raises(SecretLeftError, match=r"\(description\)"):
        save_checked(cassette, str(tmp_path / "d.yaml"), known=[KEY])


# -- the Recorder -------------------------------------------------------------------------------


def record_hello(recorder: Recorder, t0: float = 1000.0, headers=None, created: str = GA_CREATED):
    rec = recorder.open(t0, path="/v1/realtime", query={"model": "gpt-realtime"},
                        headers=headers if headers is not None else {"Authorization": f"Bearer {KEY}"})
    rec.server_text(created, t0 + 120.5)
    rec.client_text(frame(type="conversation.item.create", item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}), t0 + 130)
    rec.client_text(frame(type="response.create"), t0 + 131)
    for i in range(3):
        rec.server_text(frame(type="response.output_audio.delta", event_id=f"event_a{i}", response_id="resp_1", item_id="item_1", output_index=0, content_index=0, delta=CHUNK), t0 + 400 + i * 20)
        rec.server_text(frame(type="response.output_audio_transcript.delta", event_id=f"event_t{i}", response_id="resp_1", item_id="item_1", output_index=0, content_index=0, delta=f"w{i} "), t0 + 401 + i * 20)
    rec.server_text(frame(type="response.done", event_id="event_done", response={"id": "resp_1", "status": "completed"}), t0 + 500)
    return rec


def test_frames_become_a_redacted_cassette_that_loads_back_exactly(tmp_path):
    recorder = Recorder("hello")
    rec = record_hello(recorder)
    rec.client_text("{not json", 1600)
    rec.binary(Direction.CLIENT, 12, 1601)
    assert rec.end("client", 1000, "")
    assert not rec.end("server", 1006, None, error="late")  # the first end wins
    (cassette,) = recorder.cassettes().values()
    assert (cassette.dialect, cassette.model, cassette.handshake.headers) == ("ga", "gpt-realtime", {"Authorization": REDACTED})
    session = cassette.sessions[0]
    assert [e.offset_ms for e in session.events][:3] == [120.5, 130, 131]
    assert session.close == Close("client", 1000, "")
    assert [d[2] for d in rec.dropped] == ["binary frame of 12 bytes", "not JSON"]

    written = recorder.save(str(tmp_path / "hello.yaml"))
    assert [os.path.basename(p) for p in written] == ["hello.s0.server.pcm16.wav", "hello.yaml"]
    loaded = _cassette.load(str(tmp_path / "hello.yaml"))
    assert [(e.direction, e.offset_us, e.event) for e in loaded.sessions[0].events] == [
        (e.direction, e.offset_us, e.event) for e in session.events]
    assert loaded.sessions[0].close == Close("client", 1000, "")
    assert "audio:" in (tmp_path / "hello.yaml").read_text()  # the deltas went to the sidecar


def test_the_server_has_the_last_word_on_the_dialect():
    recorder = Recorder()
    beta_by_header = recorder.open(0, headers={"OpenAI-Beta": "realtime=v1"})
    assert beta_by_header.dialect == "beta"
    ga_answer = recorder.open(0, headers={"OpenAI-Beta": "realtime=v1"})
    ga_answer.server_text(GA_CREATED, 1)
    assert ga_answer.dialect == "ga"
    beta_answer = recorder.open(0)
    beta_answer.server_text(BETA_CREATED, 1)
    assert (beta_answer.dialect, beta_answer.model) == ("beta", "gpt-4o-realtime-preview")


def test_several_connections_are_sessions_in_the_order_they_opened(tmp_path):
    recorder = Recorder("multi")
    first = record_hello(recorder, t0=0)
    second = record_hello(recorder, t0=5000)
    second.end("server", 4000, "invalid_request_error.beta_api_shape_disabled")
    first.end("client", 1000, "")
    recorder.save(str(tmp_path / "multi.yaml"))
    loaded = _cassette.load(str(tmp_path / "multi.yaml"))
    assert [s.close for s in loaded.sessions] == [Close("client", 1000, ""), Close("server", 4000, "invalid_request_error.beta_api_shape_disabled")]
    assert loaded.sessions[1].events[0].offset_ms == 120.5  # each session's clock starts at its connect


def test_both_dialects_go_to_the_files_the_library_expects(tmp_path):
    recorder = Recorder("mixed")
    record_hello(recorder).end("client", 1000, "")
    record_hello(recorder, headers={"OpenAI-Beta": "realtime=v1"}, created=BETA_CREATED).end("client", 1000, "")
    assert recorder.output_paths(str(tmp_path / "mixed.yaml")) == {"ga": str(tmp_path / "mixed.yaml"), "beta": str(tmp_path / "mixed.beta.yaml")}
    recorder.save(str(tmp_path / "mixed.yaml"))
    assert _cassette.load(str(tmp_path / "mixed.yaml")).dialect == "ga"
    assert _cassette.load(str(tmp_path / "mixed.beta.yaml")).dialect == "beta"


def test_an_open_session_is_saved_as_it_stands_without_a_close(tmp_path):
    recorder = Recorder("open")
    record_hello(recorder)
    recorder.save(str(tmp_path / "open.yaml"))
    session = _cassette.load(str(tmp_path / "open.yaml")).sessions[0]
    assert session.close is None and session.events[-1].type == "response.done"


def test_client_secrets_from_the_server_never_reach_the_file(tmp_path):
    recorder = Recorder("eph")
    rec = recorder.open(0, headers={"Authorization": f"Bearer {EPHEMERAL}"})
    rec.server_text(frame(type="session.created", event_id="e", session={"type": "realtime", "client_secret": {"value": EPHEMERAL, "expires_at": 1}}), 1)
    rec.end("client", 1000, "")
    recorder.save(str(tmp_path / "eph.yaml"))
    text = (tmp_path / "eph.yaml").read_text()
    assert EPHEMERAL not in text and "client_secret:\n        value: <redacted>\n        expires_at: 1" in text


def test_a_secret_in_a_payload_stops_the_save(tmp_path):
    recorder = Recorder("leak")
    rec = recorder.open(0, headers={"Authorization": f"Bearer {KEY}"})
    rec.client_text(frame(type="conversation.item.create", item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"it is {KEY}"}]}), 5)
    rec.end("client", 1000, "")
    with pytest.raises(SecretLeftError):
        recorder.save(str(tmp_path / "leak.yaml"))
    assert os.listdir(tmp_path) == []
    assert rec.refused and recorder.save(str(tmp_path / "leak.yaml")) == []  # refused for good
    recorder.redactor = Redactor(patterns=[r"sk-[A-Za-z0-9_-]+"])
    again = recorder.open(0, headers={"Authorization": f"Bearer {KEY}"})
    again.client_text(frame(type="conversation.item.create", item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"it is {KEY}"}]}), 5)
    again.end("client", 1000, "")
    recorder.save(str(tmp_path / "leak.yaml"))
    assert KEY not in (tmp_path / "leak.yaml").read_text()
    assert len(_cassette.load(str(tmp_path / "leak.yaml")).sessions) == 1


def test_each_save_appends_what_is_new_without_rewriting_what_is_saved(tmp_path):
    out = str(tmp_path / "grow.yaml")
    recorder = Recorder("grow")
    first = record_hello(recorder)
    assert [os.path.basename(p) for p in recorder.save(out)] == ["grow.s0.server.pcm16.wav", "grow.yaml"]
    assert first.frames == []  # saved, and forgotten
    saved = (tmp_path / "grow.yaml").read_bytes()
    wav = (tmp_path / "grow.s0.server.pcm16.wav").read_bytes()
    for i in (8, 9):
        first.server_text(frame(type="response.output_audio.delta", event_id=f"event_a{i}", response_id="resp_2", item_id="item_2",
                                output_index=0, content_index=0, delta=CHUNK), 1700 + i)
    first.end("client", 1000, "")
    second = record_hello(recorder, t0=2000)
    second.end("server", 1001, "bye")
    assert recorder.save(out) == [str(tmp_path / "grow.s0.server.pcm16.wav"), out, str(tmp_path / "grow.s1.server.pcm16.wav")]
    assert recorder.save(out) == []  # nothing new
    grown = (tmp_path / "grow.yaml").read_bytes()
    assert grown.startswith(saved) and grown.count(b"\n...\n") == 4  # header, 3 parts
    grown_wav = (tmp_path / "grow.s0.server.pcm16.wav").read_bytes()
    assert grown_wav[44:len(wav)] == wav[44:]  # samples appended; only the header's sizes changed
    loaded = _cassette.load(out)
    assert [s.close for s in loaded.sessions] == [Close("client", 1000, ""), Close("server", 1001, "bye")]
    audio_events = [e for e in loaded.sessions[0].events if e.type == "response.output_audio.delta"]
    assert [e.event["delta"] for e in audio_events] == [CHUNK] * 5
    assert [(e.offset_ms, e.type) for e in loaded.sessions[1].events] == [(e.offset_ms, e.type) for e in loaded.sessions[0].events][:-2]


def test_a_part_cut_short_by_a_crash_is_left_out_at_load(tmp_path):
    out = tmp_path / "torn.yaml"
    recorder = Recorder("torn")
    record_hello(recorder)
    recorder.save(str(out))
    complete = _cassette.load(str(out)).sessions[0].events
    with open(out, "a") as f:
        f.write("---\nsession: 0\nevents:\n- at: 900\n  server:\n    type: respo")
    events = _cassette.load(str(out)).sessions[0].events
    assert [e.event for e in events] == [e.event for e in complete]


def test_a_session_still_deciding_its_dialect_waits_for_the_server(tmp_path):
    recorder = Recorder("wait")
    rec = recorder.open(0, headers={"OpenAI-Beta": "realtime=v1"})  # beta by header, for now
    rec.client_text(frame(type="session.update", session={}), 1)
    assert recorder.save(str(tmp_path / "wait.yaml")) == []
    rec.server_text(GA_CREATED, 2)  # the server says GA
    recorder.save(str(tmp_path / "wait.yaml"))
    assert _cassette.load(str(tmp_path / "wait.yaml")).dialect == "ga"


def test_a_file_keeps_the_dialect_it_was_started_with(tmp_path):
    recorder = Recorder("flip")
    record_hello(recorder, headers={"OpenAI-Beta": "realtime=v1"}, created=BETA_CREATED).end("client", 1000, "")
    recorder.save(str(tmp_path / "flip.yaml"))  # beta first: it takes the output
    record_hello(recorder).end("client", 1000, "")
    recorder.save(str(tmp_path / "flip.yaml"))
    assert _cassette.load(str(tmp_path / "flip.yaml")).dialect == "beta"
    ga = _cassette.load(str(tmp_path / "flip.ga.yaml"))
    assert (ga.name, ga.dialect, len(ga.sessions)) == ("flip", "ga", 1)
    assert CassetteLibrary(str(tmp_path)).available() == [{"name": "flip", "dialects": ["beta", "ga"]}]
@pytest.mark.parametrize("path", ["a..b", "a.", "a]", "a[x]", "session.tools[*]name"])
def test_matching_journal_queries_and_redaction_share_one_json_path_grammar(path):
    from mockrealtime.core.journal import Journal
    from mockrealtime.core.matching import Matcher, parse_path

    with pytest.raises(ConfigError):
        Matcher.build({"rules": {"session.update": [path]}})
    with pytest.raises(ConfigError):
        Journal([]).where(None, {path: 1})
    with pytest.raises(ConfigError, match="bad redact path"):
        Redactor([path])
    assert parse_path("$.session.tools[*].name") == parse_path("session.tools[*].name") == ("session", "tools", "*", "name")
