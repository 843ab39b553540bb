"""Redaction and the secret scan (core/redaction.py), rule by rule, with exact results: what is a
credential, where a finding points, what is left alone."""

from __future__ import annotations

import os

import pytest

from mockrealtime.core.cassette import Cassette, RecordedEvent, Session
from mockrealtime.core.redaction import (
    REDACTED,
    Redactor,
    credentials,
    find_secrets,
    parse_rule_path,
    redact_headers,
    redact_query,
    redact_subprotocols,
    save_checked,
)
from mockrealtime.errors import ConfigError, SecretLeftError

KEY = "sk-proj-abcdefghijklmnop0123"
OPENAI_KEY = "an OpenAI API key (sk-...)"
KNOWN = "a credential used in this recording"


def test_credentials_are_the_tokens_a_handshake_carries():
    assert credentials(
        headers=[("Authorization", f"Bearer  {KEY} "), ("api-key", " azure-0123456789 "), ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
                 ("X-Api-Key", "Token abcdefgh12"), ("User-Agent", "python")],
        subprotocols=["realtime", "openai-insecure-api-key.sk-browser-0123", "openai-beta.realtime-v1"],
        query={"model": "gpt-realtime", "api-key": "query-key-0123", "empty": ""},
    ) == {KEY, "azure-0123456789", "dXNlcjpwYXNz", "Token abcdefgh12", "sk-browser-0123", "query-key-0123"}
    assert credentials({"authorization": "Bearer"}) == {"Bearer"}
    assert credentials() == set()


def test_the_handshake_as_a_cassette_keeps_it():
    assert redact_headers({"Authorization": "Bearer x", "OpenAI-Beta": "realtime=v1", "X-Stainless-Lang": "python",
                           "Sec-WebSocket-Key": "k", "Host": "h", "X-Custom": "c"}) == {
        "Authorization": REDACTED, "OpenAI-Beta": "realtime=v1", "X-Stainless-Lang": "python", "X-Custom": REDACTED}
    assert redact_query([("Model", "m"), ("key", "k")]) == {"Model": "m", "key": REDACTED}
    assert redact_subprotocols(["realtime", "openai-insecure-api-key.sk-x.y", "openai-beta.realtime-v1", "other"]) == [
        "realtime", "openai-insecure-api-key." + REDACTED, "openai-beta.realtime-v1", REDACTED]


@pytest.mark.parametrize(
    ("rule", "parsed"),
    [
        ("session.instructions", (None, ("session", "instructions"))),
        ("session.update: session.instructions", ("session.update", ("session", "instructions"))),
        ("$.item.content[*].text", (None, ("item", "content", "*", "text"))),
        ("$item[2]", (None, ("item", 2))),
        ("response.create:response.metadata.*", ("response.create", ("response", "metadata", "*"))),
    ],
)
def test_a_redact_path_names_an_event_type_and_a_json_path(rule, parsed):
    assert parse_rule_path(rule) == parsed


@pytest.mark.parametrize("rule", ["", "a..b", "a[x]", "a.b[", "[0]a", ".a", "a[-1]"])
def test_a_bad_redact_path_is_refused(rule):
    with pytest.raises(ConfigError, match="bad redact path"):
        parse_rule_path(rule)


def test_scrubbing_blanks_credential_keys_paths_and_patterns_and_leaves_the_rest_as_it_was():
    redactor = Redactor(paths=["session.update:session.instructions", "item.content[1].text", "meta.*"], patterns=[r"\d{4}-\d{4}"])
    event = {"type": "session.update", "session": {"instructions": "say 1234-5678", "API-Key": {"v": "x", "n": 3}, "tools": [True, "card 1111-2222"]}}
    assert redactor.scrub_event(event) == {
        "type": "session.update", "session": {"instructions": REDACTED, "API-Key": {"v": REDACTED, "n": 3}, "tools": [True, f"card {REDACTED}"]}}
    other = {"type": "conversation.item.create", "item": {"content": [{"text": "a"}, {"text": "b"}]}, "meta": {"a": "1", "b": ["2"]},
             "session": {"instructions": "kept here"}}
    assert redactor.scrub_event(other) == {
        "type": "conversation.item.create", "item": {"content": [{"text": "a"}, {"text": REDACTED}]}, "meta": {"a": REDACTED, "b": [REDACTED]},
        "session": {"instructions": "kept here"}}
    plain = {"type": "response.create", "response": {"x": [1, "y"]}}
    assert Redactor().scrub_event(plain) is plain  # nothing changed: the same object, never a copy
    untouched = {"type": "x", "item": {"content": [{"text": "a"}]}}
    assert Redactor(paths=["item.content[5].text", "nothing.here", "item.content.x"]).scrub_event(untouched) is untouched
    audio = {"type": "input_audio_buffer.append", "audio": "1234-5678"}
    assert redactor.scrub_event(audio) is audio  # audio bytes are not text


def test_a_bad_pattern_is_refused():
    with pytest.raises(ConfigError, match=r"^bad redact pattern '\(': "):
        Redactor(patterns=["("])


def cassette(*events: dict, description: str = "") -> Cassette:
    return Cassette(name="c", dialect="ga", sessions=[Session([RecordedEvent.make("server", i, e) for i, e in enumerate(events)])],
                    description=description)


def test_findings_say_where_and_what():
    found = find_secrets(cassette(
        {"type": "session.created", "session": {"note": f"use {KEY}", KEY: 1, "jwt": "eyJhbGciOiJI.eyJzdWIiOiIx.sig", "t": "Bearer abcdefghijklmnopq"}},
        {"type": "response.output_audio.delta", "delta": KEY},
        description=f"made with {KEY}"))
    assert found == [
        ("(description)", OPENAI_KEY),
        ("$.sessions[0].events[0].server.session.note", OPENAI_KEY),
        (f"$.sessions[0].events[0].server.session.{KEY} (the key)", OPENAI_KEY),
        ("$.sessions[0].events[0].server.session.jwt", "a JSON Web Token"),
        ("$.sessions[0].events[0].server.session.t", "a bearer token"),
    ]


def test_known_values_are_found_when_long_enough():
    doc = {"a": ["x 12345678 y", "1234567"], "ek": "ek_abcdefghijklmnopqrs"}
    assert find_secrets(doc, known=["12345678", "1234567", 12345678]) == [("$.a[0]", KNOWN), ("$.ek", "an ephemeral client secret (ek_...)")]


def test_text_is_scanned_as_yaml_with_its_comments_or_whole():
    assert find_secrets(f"# recorded with {KEY}\nversion: 1\nsessions: []\n") == [("(comment)", OPENAI_KEY)]
    assert find_secrets(f"key: [unclosed {KEY}") == [("$", OPENAI_KEY)]
    assert find_secrets(f"just {KEY}") == [("$", OPENAI_KEY)]
    assert find_secrets("a: b") == []


def test_save_checked_writes_nothing_when_a_secret_is_left(tmp_path):
    path = str(tmp_path / "c.yaml")
    with pytest.raises(SecretLeftError) as caught:
        save_checked(cassette({"type": "session.created", "note": "abcdefgh-known"}, description="known abcdefgh-known"), path,
                     known=["abcdefgh-known"])
    assert caught.value.findings == [("(description)", KNOWN), ("$.sessions[0].events[0].server.note", KNOWN)]
    assert os.listdir(tmp_path) == []
    assert save_checked(cassette({"type": "session.created"}, description="clean"), path, known=["abcdefgh-known"]) == [path]


def test_path_rules_reach_exactly_their_element_and_copy_nothing_they_do_not_change():
    redactor = Redactor(paths=["item.content[0].text", "a.b"])
    event = {"type": "x", "item": {"content": [{"text": "a", "type": "input_text"}, {"text": "b"}, {"text": "c"}]}}
    assert redactor.scrub_event(event) == {
        "type": "x", "item": {"content": [{"text": REDACTED, "type": "input_text"}, {"text": "b"}, {"text": "c"}]}}
    for rule in ["item.content[1]", "item.content[*].nothing", "item.content[0].nothing"]:
        one = {"type": "x", "item": {"content": [{"text": "a"}]}}
        assert Redactor(paths=[rule]).scrub_event(one) is one, rule
    assert parse_rule_path("a.b") == (None, ("a", "b"))
    assert parse_rule_path("$.Xray") == (None, ("Xray",))


def test_audio_is_skipped_and_what_follows_it_is_still_scrubbed_and_scanned():
    event = {"type": "input_audio_buffer.append", "audio": KEY, "client_secret": "x", "note": KEY}
    assert Redactor().scrub_event(event) == {"type": "input_audio_buffer.append", "audio": KEY, "client_secret": REDACTED, "note": KEY}
    assert find_secrets(event) == [("$.note", OPENAI_KEY)]


def test_an_indented_comment_is_scanned_too():
    assert find_secrets(f"version: 1\nsessions:\n  # recorded with {KEY}\n  - events: []\n") == [("(comment)", OPENAI_KEY)]


def test_the_refusal_names_the_file(tmp_path):
    path = str(tmp_path / "c.yaml")
    with pytest.raises(SecretLeftError) as caught:
        save_checked(cassette({"type": "session.created", "note": KEY}), path)
    assert caught.value.file == path and str(caught.value).startswith(f"{path}: refusing to save, 1 value(s)")
