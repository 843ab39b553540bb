"""The sans-IO recorder's handling of one connection, without sockets: the handshake and what it
holds, how a session ends, which frames become events (and what is dropped, when), and what the
cassette's header says."""

from __future__ import annotations

import json

import pytest

from mockrealtime.core.cassette import Close
from mockrealtime.core.events import Direction
from mockrealtime.core.recording import Recorder, negotiate_dialect
from mockrealtime.core.redaction import Redactor

CREATED = json.dumps({"type": "session.created", "event_id": "event_1", "session": {"type": "realtime", "object": "realtime.session"}})


@pytest.mark.parametrize(("headers", "dialect"), [
    ({"OpenAI-Beta": "realtime = v1"}, "beta"),
    ({"openai-beta": "assistants=v2, realtime=v1"}, "beta"),
    ({"X-Note": "realtime=v1"}, "ga"),
    ({"OpenAI-Beta": "realtime=v2"}, "ga"),
])
def test_the_dialect_is_read_from_the_openai_beta_header_only(headers, dialect):
    assert negotiate_dialect(headers) == dialect


def test_a_connection_s_handshake_path_query_and_model_are_kept_and_its_credentials_remembered():
    recorder = Recorder()
    first = recorder.open(0, query={"model": "gpt-realtime", "n": 5}, headers={"Authorization": "Bearer sk-one"})
    second = recorder.open(0, path="/v1/realtime/other", query=[("deployment", "dep")],
                           headers=[("Authorization", "Bearer sk-two")], subprotocols=["realtime", "openai-insecure-api-key.sk-three"])
    assert (first.index, first.model, first.handshake.path) == (0, "gpt-realtime", "/v1/realtime")
    assert dict(first.handshake.query) == {"model": "gpt-realtime", "n": "<redacted>"}  # unknown keys fail closed
    assert (second.index, second.model, second.handshake.path) == (1, "dep", "/v1/realtime/other")
    assert "realtime" in second.handshake.subprotocols and "sk-three" not in str(second.handshake.subprotocols)
    assert {"sk-one", "sk-two"} <= recorder.known_secrets and any("sk-three" in s for s in recorder.known_secrets)


def test_a_session_ends_once_by_one_side_with_its_error_kept():
    rec = Recorder().open(0)
    with pytest.raises(ValueError, match="^a session is closed by the client or the server, not 'proxy'$"):
        rec.end("proxy")
    assert rec.end("server", 1011, "upstream failed", error="boom") is True
    assert rec.end("client", 1000) is False
    assert rec.close == Close("server", 1011, "upstream failed", "boom")


def test_secrets_in_a_close_reason_or_error_are_scrubbed_and_a_plain_close_kept_as_is():
    recorder = Recorder(redactor=Redactor(patterns=[r"sk-[a-z]+"]))
    rec = recorder.open(0)
    rec.server_text(CREATED, 1)
    rec.end("server", 4000, "bad key sk-abc", error="upstream said sk-def")
    assert rec._scrubbed_close() == Close("server", 4000, "bad key <redacted>", "upstream said <redacted>")
    plain = recorder.open(0)
    plain.end("client", 1000)
    assert plain._scrubbed_close() == Close("client", 1000, None, None)
    only_error = recorder.open(0)
    only_error.end("server", 1011, None, error="sk-ghi")
    assert only_error._scrubbed_close() == Close("server", 1011, None, "<redacted>")


def test_frames_that_are_not_events_are_dropped_with_their_time_and_the_rest_kept():
    rec = Recorder().open(100)
    rec.server_text(CREATED, 100)
    rec.client_text("[1]", 110)
    rec.client_text('{"type": ""}', 111)
    rec.client_text('{"type": 5}', 112)
    rec.client_text('{"type": "response.create"}', 120)
    rec.client_text("{", 121)
    rec.binary("client", 7, 130)
    rec.end("client", 1000)
    session = rec.to_session()
    assert [(e.type, e.offset_ms) for e in session.events] == [("session.created", 0.0), ("response.create", 20.0)]
    invalid = "not an event (a JSON object with a type)"
    assert rec.dropped == [(Direction.CLIENT, 30.0, "binary frame of 7 bytes"), (Direction.CLIENT, 10.0, invalid),
                           (Direction.CLIENT, 11.0, invalid), (Direction.CLIENT, 12.0, invalid),
                           (Direction.CLIENT, 21.0, "not JSON")]
    assert rec.to_session() is session  # built once


def test_a_frame_from_before_the_connection_s_clock_started_is_at_zero():
    rec = Recorder().open(100)
    rec.server_text(CREATED, 90)
    assert rec.to_session().events[0].offset_ms == 0.0


def test_the_dialect_is_settled_by_the_first_server_frames_only():
    rec = Recorder().open(0, headers={"OpenAI-Beta": "realtime=v1"})
    for n in range(4):
        rec.server_text(json.dumps({"type": "rate_limits.updated", "event_id": f"e{n}", "rate_limits": []}), n)
    rec.server_text(CREATED, 5)  # too late to change the handshake's guess
    assert rec.dialect == "beta"
    rec = Recorder().open(0, headers={"OpenAI-Beta": "realtime=v1"})
    for n in range(3):
        rec.server_text(json.dumps({"type": "rate_limits.updated", "event_id": f"e{n}", "rate_limits": []}), n)
    rec.server_text(CREATED, 4)
    assert rec.dialect == "ga"


def test_a_cassette_header_names_the_recording_its_description_and_model():
    recorder = Recorder()
    rec = recorder.open(0, query={"model": "gpt-realtime"})
    rec.server_text(CREATED, 1)
    (cassette,) = recorder.cassettes().values()
    assert (cassette.name, cassette.description, cassette.model, cassette.dialect) == ("recording", "", "gpt-realtime", "ga")
    described = Recorder("calls", description="two calls")
    described.open(0).server_text(CREATED, 1)
    assert (described.cassettes()["ga"].name, described.cassettes()["ga"].description) == ("calls", "two calls")


# -- REST exchanges and saving ------------------------------------------------------------------------------------

def test_a_rest_exchange_is_kept_whole_and_an_answer_that_is_not_json_is_recorded_as_the_server_s_error():
    recorder = Recorder()
    recorder.rest_exchange("client_secrets", "/v1/realtime/client_secrets", [("Authorization", "Bearer sk-abc")],
                           b'{"session": {"type": "realtime"}}', 502, b"<html>bad gateway</html>")
    recorder.rest_exchange("client_secrets", "/v1/realtime/client_secrets", {}, b"not json", 400,
                           b'{"error": {"message": "no"}}')
    (d1, first), (d2, second) = recorder.rest
    assert (d1, d2) == ("ga", "ga") and "sk-abc" in recorder.known_secrets
    assert first == {"method": "POST", "path": "/v1/realtime/client_secrets", "request": {"session": {"type": "realtime"}},
                     "status": 502, "response": {"error": {
                         "message": "mockrealtime: the upstream's answer was not a JSON object", "type": "server_error",
                         "param": None, "code": None}}}
    assert second["request"] is None and second["response"] == {"error": {"message": "no"}}  # no "value" added


def test_rest_exchanges_are_saved_with_the_next_part_of_their_dialect_only(tmp_path):
    from mockrealtime.core.cassette import load
    recorder = Recorder("r")
    recorder.rest_exchange("sessions", "/v1/realtime/sessions", {}, b"{}", 200, b'{"id": "sess_b"}')
    recorder.rest_exchange("client_secrets", "/v1/realtime/client_secrets", {}, b"{}", 200, b'{"expires_at": 1}')
    rec = recorder.open(0)
    rec.server_text(CREATED, 1)
    rec.end("client", 1000)
    out = tmp_path / "r.yaml"
    assert recorder.save(str(out)) == [str(out)]
    assert [e["response"] for e in load(str(out)).rest] == [{"expires_at": 1}]
    assert [d for d, _ in recorder.rest] == ["beta", "ga"] and recorder.save(str(out)) == []  # beta's still waits


def test_a_secret_in_a_session_or_the_description_stops_only_that_save(tmp_path):
    from mockrealtime.errors import SecretLeftError
    recorder = Recorder("s", description="made with key sk-desc-0123456789abcdef")
    recorder.add_secret("sk-desc-0123456789abcdef")
    rec = recorder.open(0)
    rec.server_text(CREATED, 1)
    rec.end("client", 1000)
    with pytest.raises(SecretLeftError):
        recorder.save(str(tmp_path / "s.yaml"))
    clean = Recorder("c")
    leaky, fine = clean.open(0, headers={"Authorization": "Bearer sk-live-0123456789abcdef"}), clean.open(0)
    leaky.server_text(json.dumps({"type": "session.created", "event_id": "e", "session": {
        "type": "realtime", "instructions": "sk-live-0123456789abcdef"}}), 1)
    fine.server_text(CREATED, 1)
    for r in (leaky, fine):
        r.end("client", 1000)
    with pytest.raises(SecretLeftError):
        clean.save(str(tmp_path / "c.yaml"))
    assert leaky.refused and fine.saved  # the other session is saved all the same


def test_client_frames_are_kept_for_a_journal_only_when_asked_and_only_the_client_s():
    recorder = Recorder(keep_client_frames=True)
    rec = recorder.open(0)
    rec.server_text(CREATED, 1)
    rec.client_text('{"type": "response.create"}', 2)
    recorder.take()
    rec.client_text('{"type": "session.update", "session": {}}', 3)
    recorder.take()
    assert [(d, t) for d, t, _ in rec.client_frames] == [(Direction.CLIENT, 2), (Direction.CLIENT, 3)]
    plain = Recorder()
    other = plain.open(0)
    other.server_text(CREATED, 1)
    other.client_text('{"type": "response.create"}', 2)
    plain.take()
    assert other.client_frames == []


def test_a_session_with_nothing_new_is_not_taken_but_its_close_is():
    recorder = Recorder()
    rec = recorder.open(0)
    rec.server_text(CREATED, 1)
    assert len(recorder.take()) == 1 and recorder.take() == []
    rec.end("server", 1000)
    ((taken, frames, close),) = recorder.take()
    assert taken is rec and frames == [] and close == Close("server", 1000, None, None)


def test_a_second_dialect_goes_next_to_the_first_named_for_the_library():
    recorder = Recorder()
    for headers in ({}, {"OpenAI-Beta": "realtime=v1"}):
        rec = recorder.open(0, headers=headers)
        rec.server_text(CREATED if not headers else json.dumps(
            {"type": "session.created", "event_id": "e", "session": {"object": "realtime.session"}}), 1)
    assert recorder.output_paths("/x/calls.yaml") == {"ga": "/x/calls.yaml", "beta": "/x/calls.beta.yaml"}
    beta_first = Recorder()
    rec = beta_first.open(0, headers={"OpenAI-Beta": "realtime=v1"})
    rec.server_text(json.dumps({"type": "session.created", "event_id": "e", "session": {"object": "realtime.session"}}), 1)
    beta_first.open(0).server_text(CREATED, 1)
    assert beta_first.output_paths("/x/calls.yaml") == {"beta": "/x/calls.yaml", "ga": "/x/calls.ga.yaml"}
