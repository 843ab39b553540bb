"""Cassette format: exact round trips, compact runs, audio sidecars, and load errors that say where."""

from __future__ import annotations

import base64
import math
import os
import struct

import pytest

from mockrealtime.core import audio
from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session, load, loads
from mockrealtime.core.cassette_writer import save
from mockrealtime.errors import CassetteFormatError


def tone(ms: int, rate: int = 24000) -> bytes:
    return b"".join(struct.pack("<h", int(4000 * math.sin(i / 7))) for i in range(rate * ms // 1000))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def duplex_session() -> Session:
    """A client streaming 20 ms microphone chunks while the server streams audio and transcript."""
    pcm = tone(400)
    events = [RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "event_0", "session": {"type": "realtime"}})]
    for i in range(20):
        events.append(RecordedEvent.make("client", 5 + 20 * i, {"type": "input_audio_buffer.append", "audio": b64(pcm[i * 960 : (i + 1) * 960])}))
        events.append(RecordedEvent.make("server", 7 + 20 * i, {"type": "response.output_audio.delta", "event_id": f"event_a{i}", "response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": b64(pcm[i * 480 : (i + 1) * 480])}))
        events.append(RecordedEvent.make("server", 7 + 20 * i, {"type": "response.output_audio_transcript.delta", "event_id": f"event_t{i}", "response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": f"w{i} "}))
    events.append(RecordedEvent.make("server", 500, {"type": "response.output_audio.done", "event_id": "event_d", "response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0}))
    return Session(events, Close("client", 1000, ""))


def test_save_then_load_gives_back_exactly_the_recorded_events(tmp_path):
    original = Cassette(name="duplex", dialect="ga", sessions=[duplex_session()], model="gpt-realtime", description="what it shows")
    save(original, str(tmp_path / "duplex.yaml"))
    loaded = load(str(tmp_path / "duplex.yaml"))
    assert [e.event for e in loaded.sessions[0].events] == [e.event for e in original.sessions[0].events]
    assert [e.direction for e in loaded.sessions[0].events] == [e.direction for e in original.sessions[0].events]
    assert loaded.sessions[0].close == Close("client", 1000, "")
    assert loaded.description == "what it shows"
    assert (loaded.dialect, loaded.model, loaded.name) == ("ga", "gpt-realtime", "duplex")


def test_runs_collapse_to_one_entry_each_and_audio_goes_to_wav_sidecars(tmp_path):
    save(Cassette(name="duplex", dialect="ga", sessions=[duplex_session()]), str(tmp_path / "duplex.yaml"))
    text = (tmp_path / "duplex.yaml").read_text()
    import yaml

    entries = yaml.safe_load(text)["sessions"][0]["events"]
    kinds = [next(k for k in e if k != "at") for e in entries]
    assert kinds == ["server", "audio", "audio", "text", "server"]
    transcript = entries[3]["text"]
    assert transcript["delta"] == "".join(f"w{i} " for i in range(20))
    assert sorted(os.listdir(tmp_path)) == ["duplex.s0.client.pcm16.wav", "duplex.s0.server.pcm16.wav", "duplex.yaml"]
    fmt, data = audio.parse_wav((tmp_path / "duplex.s0.client.pcm16.wav").read_bytes())
    assert fmt is audio.PCM16 and data == tone(400)
    assert "base64" not in text and len(text) < 3000


def test_g711_audio_is_stored_as_g711_wav(tmp_path):
    ulaw = bytes(range(256)) * 2
    events = [
        RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "e0", "session": {"input_audio_format": "g711_ulaw"}}),
        RecordedEvent.make("client", 1, {"type": "input_audio_buffer.append", "audio": b64(ulaw[:160])}),
        RecordedEvent.make("client", 21, {"type": "input_audio_buffer.append", "audio": b64(ulaw[160:320])}),
    ]
    save(Cassette(name="u", dialect="beta", sessions=[Session(events)]), str(tmp_path / "u.yaml"))
    fmt, data = audio.parse_wav((tmp_path / "u.s0.client.g711_ulaw.wav").read_bytes())
    assert fmt is audio.G711_ULAW and data == ulaw[:320]
    loaded = load(str(tmp_path / "u.yaml"))
    assert [e.event for e in loaded.sessions[0].events] == [e.event for e in events]


def test_hand_written_cassettes_may_inline_audio_and_leave_out_server_event_ids():
    c = loads(
        """
version: 1
dialect: ga
sessions:
- events:
  - at: 0
    server: {type: session.created, session: {type: realtime}}
  - at: 10
    client: {type: input_audio_buffer.append, audio: AAAAAA==}
"""
    )
    created, append = c.sessions[0].events
    assert created.event["event_id"].startswith("event_") and len(created.event["event_id"]) == 27
    assert append.audio_bytes == 4 and "event_id" not in append.event


def test_resaving_drops_sidecars_the_new_version_no_longer_names(tmp_path):
    path = str(tmp_path / "d.yaml")
    save(Cassette(name="d", dialect="ga", sessions=[duplex_session(), duplex_session()]), path)
    assert os.path.exists(tmp_path / "d.s1.server.pcm16.wav")
    save(Cassette(name="d", dialect="ga", sessions=[duplex_session()]), path)
    assert not os.path.exists(tmp_path / "d.s1.server.pcm16.wav")
    assert len(load(path).sessions) == 1


BAD = [
    ("version: 2\ndialect: ga\nsessions: []\n", "$.version", "unsupported cassette version 2"),
    ("version: 1\ndialect: gb\nsessions: [{events: []}]\n", "$.dialect", "is not one of"),
    ("version: 1\ndialect: ga\nsessions:\n- events:\n  - {at: 0, server: {no_type: 1}}\n", "$.sessions[0].events[0].server", "'type' is a required property"),
    ("version: 1\ndialect: ga\nsessions:\n- events:\n  - {at: 0, server: {type: a}, client: {type: b}}\n", "$.sessions[0].events[0]", "has too many properties"),
    ("version: 1\ndialect: ga\nsessions:\n- events:\n  - {at: 0, text: {type: response.output_text.delta, delta: abc, parts: '1 1'}}\n", "$.sessions[0].events[0].text.parts", "parts add up to 2 characters but delta has 3"),
    ("version: 1\ndialect: ga\nsessions:\n- events:\n  - {at: 0, audio: {type: response.output_audio.delta, format: pcm16, file: nope.wav, offset: 0, chunk_bytes: '2'}}\n", "$.sessions[0].events[0].audio.file", "audio sidecar 'nope.wav' is missing"),
    ("version: 1\ndialect: ga\nsessions:\n- events:\n  - {at: 0, audio: {type: response.output_audio.delta, format: pcm16, file: ../x.wav, offset: 0, chunk_bytes: '2'}}\n", "$.sessions[0].events[0].audio.file", "must sit next to its cassette"),
    ("version: 1\ndialect: ga\nsessions: [ {events: [}\n", "$", "not valid YAML (line 3"),
    ("version: 1\ndialect: ga\nsessions:\n- events: []\n  surprise: 1\n", "$.sessions[0]", "Additional properties are not allowed ('surprise'"),
]


@pytest.mark.parametrize(("text", "where", "message"), BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_a_broken_cassette_fails_at_load_naming_the_file_and_json_path(tmp_path, text, where, message):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(CassetteFormatError) as info:
        load(str(path))
    assert info.value.file == str(path)
    assert info.value.json_path == where
    assert message in info.value.message
    assert str(info.value).startswith(f"{path}: {where}: ")


def test_unsafe_yaml_tags_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("version: !!python/object/apply:os.system ['true']\ndialect: ga\nsessions: []\n")
    with pytest.raises(CassetteFormatError, match="not valid YAML"):
        load(str(path))


def test_a_sidecar_in_the_wrong_format_is_reported(tmp_path):
    (tmp_path / "a.wav").write_bytes(audio.wav_bytes(audio.G711_ALAW, b"\x00" * 8))
    (tmp_path / "c.yaml").write_text(
        "version: 1\ndialect: ga\nsessions:\n- events:\n  - {at: 0, audio: {type: response.output_audio.delta, format: pcm16, file: a.wav, offset: 0, chunk_bytes: '4 4'}}\n"
    )
    with pytest.raises(CassetteFormatError, match=r"\$\.sessions\[0\]\.events\[0\]\.audio\.format: a.wav holds g711_alaw, not pcm16"):
        load(str(tmp_path / "c.yaml"))


def test_loads_are_cached_until_the_file_changes(tmp_path):
    path = str(tmp_path / "d.yaml")
    save(Cassette(name="d", dialect="ga", sessions=[duplex_session()]), path)
    first = load(path)
    assert load(path) is first
    save(Cassette(name="d", dialect="ga", sessions=[duplex_session(), duplex_session()]), path)
    assert load(path) is not first
