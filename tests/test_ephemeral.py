"""Ephemeral keys without sockets: minting, the engine starting from a key's configuration, and
the recorder keeping minted keys out of the cassette."""

from __future__ import annotations

import json

import pytest

from mockrealtime.core.cassette import Cassette, RecordedEvent, Session
from mockrealtime.core.engine import ReplaySession
from mockrealtime.core.ephemeral import KeyStore, answer, auth_error, recorded_for
from mockrealtime.core.recording import Recorder
from mockrealtime.core.redaction import find_secrets
from mockrealtime.errors import SecretLeftError

CREATED = {"type": "session.created", "event_id": "event_1",
           "session": {"type": "realtime", "instructions": "recorded", "audio": {"output": {"voice": "marin", "speed": 1.0}}}}


def test_the_engine_merges_the_minted_configuration_over_the_recorded_session_created():
    cassette = Cassette("c", "ga", [Session([RecordedEvent.make("server", 0, CREATED)])])
    engine = ReplaySession(cassette, session_overrides={"instructions": "minted", "audio": {"output": {"voice": "verse"}}})
    engine.start(0)
    (frame,) = engine.pop_due(0)
    session = json.loads(frame)["session"]  # type: ignore[arg-type]
    assert session == {"type": "realtime", "instructions": "minted", "audio": {"output": {"voice": "verse", "speed": 1.0}}}
    assert engine.model.session["instructions"] == "minted"  # later session.update answers start from it too
    plain = ReplaySession(cassette)
    plain.start(0)
    assert json.loads(plain.pop_due(0)[0])["session"] == CREATED["session"]  # type: ignore[arg-type]


def test_minted_keys_are_fresh_and_remembered_with_their_configuration():
    store = KeyStore()
    first = answer("client_secrets", b'{"session": {"type": "realtime"}}', now_s=1000, api_key="sk-a")
    second = answer("client_secrets", b"", now_s=1000)
    assert first.minted and second.minted and first.minted.value != second.minted.value
    assert (first.minted.expires_at, first.minted.minted_under, second.minted.session) == (1600, "sk-a", {"type": "realtime"})
    store.add(first.minted)
    assert store.find(first.minted.value) is first.minted and store.find("ek_other") is None and store.find(None) is None


@pytest.mark.parametrize(("required", "presented", "status", "code"), [
    (None, None, None, None), ("sk-right", "sk-right", None, None),
    ("sk-right", None, 401, None), ("sk-right", "sk-wrong-key-123", 401, "invalid_api_key"),
])
def test_rest_authentication(required, presented, status, code):
    refused = auth_error(required, presented)
    assert (refused.status if refused else None) == status
    if refused is not None:
        assert refused.body["error"]["code"] == code
        assert presented is None or presented not in refused.body["error"]["message"]


def test_recorded_answers_cycle_per_endpoint():
    entries = [{"path": "/v1/realtime/sessions", "n": 0}, {"path": "/c/x/v1/realtime/client_secrets", "n": 1},
               {"path": "/v1/realtime/sessions", "n": 2}]
    assert [recorded_for(entries, "sessions", i)["n"] for i in range(3)] == [0, 2, 0]  # type: ignore[index]
    assert recorded_for(entries, "client_secrets", 5)["n"] == 1  # type: ignore[index]
    assert recorded_for(entries, "transcription_sessions", 0) is None


def test_the_recorder_redacts_the_minted_key_and_scans_for_it(tmp_path):
    key = "ek_" + "ab12" * 8
    recorder = Recorder("minted")
    recorder.rest_exchange("client_secrets", "/v1/realtime/client_secrets", {"Authorization": "Bearer sk-proj-" + "x" * 24},
                           b'{"session": {"type": "realtime"}}', 200,
                           json.dumps({"value": key, "expires_at": 1, "session": {"type": "realtime", "id": "sess_1"}}).encode())
    recorder.rest_exchange("sessions", "/v1/realtime/sessions", {}, b"{}", 200,
                           json.dumps({"id": "sess_2", "client_secret": {"value": key + "2", "expires_at": 1}}).encode())
    assert {key, key + "2", "sk-proj-" + "x" * 24} <= recorder.known_secrets
    (ga, ga_entry), (beta, beta_entry) = recorder.rest
    assert (ga, beta) == ("ga", "beta")
    assert ga_entry["response"]["value"] == "<redacted>" and beta_entry["response"]["client_secret"]["value"] == "<redacted>"
    assert not find_secrets(ga_entry) and not find_secrets(beta_entry)
    assert recorder.save(str(tmp_path / "minted.yaml")) == []  # REST calls alone are no cassette
    # a copy of the key anywhere else in the recording stops the save
    session = recorder.open(0.0)
    session.server_text(json.dumps({"type": "session.created", "event_id": "e", "session": {"type": "realtime", "instructions": key}}), 1.0)
    session.end("client", 1000, "")
    with pytest.raises(SecretLeftError):
        recorder.save(str(tmp_path / "minted.yaml"))
    assert not (tmp_path / "minted.yaml").exists()


def test_rest_calls_in_the_header_and_in_appended_parts_load_in_file_order():
    from mockrealtime.core.cassette import loads

    entry = '{method: POST, path: /v1/realtime/client_secrets, status: 200, response: {n: %d}}'
    text = (
        "version: 1\ndialect: ga\nrest:\n- " + entry % 0 + "\nsessions: []\n...\n"
        "---\nsession: 0\nevents:\n- {at: 0, server: {type: session.created, session: {type: realtime}}}\nrest:\n- " + entry % 1 + "\n...\n"
        "---\nsession: 1\nevents:\n- {at: 0, server: {type: session.created, session: {type: realtime}}}\nrest:\n- " + entry % 2 + "\n...\n"
    )
    cassette = loads(text)
    assert [e["response"]["n"] for e in cassette.rest] == [0, 1, 2] and len(cassette.sessions) == 2
