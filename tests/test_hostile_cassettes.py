"""Hostile and broken cassettes: each fails at load with a CassetteFormatError naming the file,
never with a traceback from deep inside, a hang, or memory blown up (issue #13, item 3)."""

from __future__ import annotations

import gc
import json
import os
import struct
import threading

import aiohttp
import pytest

from mockrealtime.config import ServerConfig
from mockrealtime.core import audio
from mockrealtime.core import cassette as _cassette
from mockrealtime.core.cassette import MAX_ALIAS_NODES, load, loads
from mockrealtime.errors import CassetteFormatError
from mockrealtime.net.server import make_app

HEADER = "version: 1\ndialect: ga\n"


def one_server_event(body: str) -> str:
    return HEADER + "sessions:\n- events:\n  - at: 0\n    server: {type: session.created, event_id: e1, session: " + body + "}\n"


def alias_bomb(levels: int, width: int = 9) -> str:
    """A "billion laughs": each level an array of ``width`` aliases to the level below."""
    lines = ["x0: &x0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * width) + "]")
    return "{" + ", ".join(lines) + "}"


def test_an_alias_bomb_is_refused_while_parsing(tmp_path):
    # 9^6 = 531,441 strings once expanded: the old loader built and walked them all and accepted it
    path = tmp_path / "bomb.yaml"
    path.write_text(one_server_event(alias_bomb(6)))
    assert path.stat().st_size < 700
    with pytest.raises(CassetteFormatError, match="aliases expand to more than") as info:
        load(str(path))
    assert info.value.file == str(path)


def test_a_few_aliases_as_older_writers_made_them_still_load():
    text = HEADER + (
        "sessions:\n- events:\n"
        "  - at: 0\n    server: {type: session.created, event_id: e1, session: {tools: &t [{type: function, name: f}]}}\n"
        "  - at: 1\n    server: {type: session.updated, event_id: e2, session: {tools: *t}}\n"
    )
    events = loads(text).sessions[0].events
    assert events[1].event["session"]["tools"] == [{"type": "function", "name": "f"}]
    assert MAX_ALIAS_NODES >= 10_000


def test_nesting_too_deep_for_the_parser_is_a_format_error():
    with pytest.raises(CassetteFormatError, match="nested too deeply|not valid YAML"):
        loads(one_server_event("[" * 100_000 + "]" * 100_000))


def wav_with_fmt_body(body: bytes) -> bytes:
    chunk = b"fmt " + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WAVE" + chunk


def audio_cassette(file: str, chunk_bytes: str = "4 4") -> str:
    return HEADER + (
        "sessions:\n- events:\n"
        "  - at: 0\n    server: {type: session.created, event_id: e1, session: {type: realtime}}\n"
        "  - at: 1\n    audio: {type: response.output_audio.delta, format: pcm16, file: " + file
        + ", offset: 0, chunk_bytes: '" + chunk_bytes + "', dt: '1'}\n"
    )


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (wav_with_fmt_body(b"\x01\x00"), "truncated fmt chunk"),  # a struct.error before
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "no data chunk"),
        (b"RIFF\x00\x00", "not a RIFF/WAVE file"),
        (audio.wav_bytes(audio.PCM16, b"\x00" * 8)[:-4], "truncated data chunk"),
    ],
    ids=["short-fmt", "chunk-header-cut", "short-riff", "short-data"],
)
def test_a_malformed_wav_is_a_format_error_naming_the_sidecar(tmp_path, blob, message):
    (tmp_path / "a.wav").write_bytes(blob)
    (tmp_path / "c.yaml").write_text(audio_cassette("a.wav"))
    with pytest.raises(CassetteFormatError, match=message) as info:
        load(str(tmp_path / "c.yaml"))
    assert info.value.file == str(tmp_path / "c.yaml")
    assert "a.wav" in str(info.value)
    assert info.value.json_path == "$.sessions[0].events[1].audio.file"


@pytest.mark.parametrize(
    ("chunk_bytes", "where", "message"),
    [("4 4.5", "chunk_bytes", "whole numbers separated by spaces"), ("4.5 4.5", "chunk_bytes", "whole numbers separated by spaces"),
     ("4 x", "chunk_bytes", "does not match")],
)
def test_packed_numbers_that_are_not_numbers_are_a_format_error(tmp_path, chunk_bytes, where, message):
    # "4 4.5" passed the schema and raised ValueError from int() before
    (tmp_path / "a.wav").write_bytes(audio.wav_bytes(audio.PCM16, b"\x00" * 8))
    (tmp_path / "c.yaml").write_text(audio_cassette("a.wav", chunk_bytes))
    with pytest.raises(CassetteFormatError, match=message) as info:
        load(str(tmp_path / "c.yaml"))
    assert info.value.json_path == f"$.sessions[0].events[1].audio.{where}"


def test_gaps_that_are_not_numbers_are_a_format_error():
    text = one_server_event("{type: realtime}") + (
        "  - at: 1\n    text: {type: response.output_text.delta, delta: ab, parts: '1 1', dt: '1..2'}\n"
    )
    with pytest.raises(CassetteFormatError, match="numbers of milliseconds separated by spaces") as info:
        loads(text)
    assert info.value.json_path == "$.sessions[0].events[1].text.dt"


def test_chunks_past_the_end_of_the_audio_are_refused(tmp_path):
    (tmp_path / "a.wav").write_bytes(audio.wav_bytes(audio.PCM16, b"\x00" * 6))
    (tmp_path / "c.yaml").write_text(audio_cassette("a.wav"))
    with pytest.raises(CassetteFormatError, match="chunks end at byte 8 but a.wav holds 6 bytes"):
        load(str(tmp_path / "c.yaml"))


def test_a_sidecar_linked_from_outside_the_cassette_folder_is_refused(tmp_path):
    outside = tmp_path / "secret.wav"
    outside.write_bytes(audio.wav_bytes(audio.PCM16, b"\x00" * 8))
    folder = tmp_path / "cassettes"
    folder.mkdir()
    os.symlink(outside, folder / "a.wav")
    (folder / "c.yaml").write_text(audio_cassette("a.wav"))
    with pytest.raises(CassetteFormatError, match="links outside the cassette's folder"):
        load(str(folder / "c.yaml"))


def test_a_link_to_a_sidecar_in_the_same_folder_is_fine(tmp_path):
    (tmp_path / "real.wav").write_bytes(audio.wav_bytes(audio.PCM16, b"\x01" * 8))
    os.symlink("real.wav", tmp_path / "a.wav")
    (tmp_path / "c.yaml").write_text(audio_cassette("a.wav"))
    events = load(str(tmp_path / "c.yaml")).sessions[0].events
    assert [e.audio_bytes for e in events[1:]] == [4, 4]


def test_a_sidecar_path_that_climbs_out_is_refused(tmp_path):
    (tmp_path / "a.wav").write_bytes(audio.wav_bytes(audio.PCM16, b"\x00" * 8))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text(audio_cassette("../a.wav"))
    with pytest.raises(CassetteFormatError, match="must sit next to its cassette"):
        load(str(tmp_path / "sub" / "c.yaml"))


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "a.wav")
    (tmp_path / "c.yaml").write_text(audio_cassette("a.wav"))
    with pytest.raises(CassetteFormatError, match="not a regular file"):
        load(str(tmp_path / "c.yaml"))
    os.mkfifo(tmp_path / "pipe.yaml")
    with pytest.raises(CassetteFormatError, match="not a regular file"):
        load(str(tmp_path / "pipe.yaml"))


def test_loading_reads_only_the_header_of_a_sidecar(tmp_path, monkeypatch):
    (tmp_path / "a.wav").write_bytes(audio.wav_bytes(audio.PCM16, bytes(range(8))))
    (tmp_path / "c.yaml").write_text(audio_cassette("a.wav"))
    reads: list[int] = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: reads.append(n) or real_pread(fd, n, at))
    events = load(str(tmp_path / "c.yaml")).sessions[0].events
    assert reads == []  # samples are read when sent, not on load
    assert json.loads(events[2].text)["delta"] == "BAUGBw=="
    assert reads == [4]


async def test_a_cassette_is_loaded_off_the_event_loop(tmp_path, monkeypatch):
    (tmp_path / "hello.yaml").write_text(one_server_event("{type: realtime}"))
    app = make_app(ServerConfig(cassettes=str(tmp_path), port=0))
    from aiohttp.test_utils import TestServer

    loaded_in: list[int] = []
    real_loads = _cassette.loads
    monkeypatch.setattr(_cassette, "loads", lambda *a: loaded_in.append(threading.get_ident()) or real_loads(*a))
    (tmp_path / "other.yaml").write_text(one_server_event("{type: realtime}"))
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        async with http.ws_connect(server.make_url("/c/other/v1/realtime")) as ws:
            assert json.loads((await ws.receive()).data)["type"] == "session.created"
        async with http.get(server.make_url("/__admin/cassettes")) as response:
            assert response.status == 200
    assert loaded_in and threading.get_ident() not in loaded_in


def test_encoded_audio_is_kept_only_up_to_a_budget(tmp_path, monkeypatch):
    (tmp_path / "a.wav").write_bytes(audio.wav_bytes(audio.PCM16, bytes(range(8))))
    (tmp_path / "c.yaml").write_text(audio_cassette("a.wav"))
    first, second = load(str(tmp_path / "c.yaml")).sessions[0].events[1:]
    reads: list[int] = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: reads.append(at) or real_pread(fd, n, at))
    monkeypatch.setattr(audio, "TEXT_CACHE_BYTES", audio._text_cached + 10)  # no room: built each time it is sent
    assert first.text == first.text and len(reads) == 2
    monkeypatch.setattr(audio, "TEXT_CACHE_BYTES", audio._text_cached + 10_000)  # room: read and encoded once, then kept
    assert second.text == second.text and len(reads) == 3
    assert first.text and len(reads) == 4 and first.audio.sidecar.cached_bytes == 2 * len(second.text)
    kept, held = 2 * len(second.text), audio._text_cached
    _cassette.forget(str(tmp_path / "c.yaml"))
    del first, second
    gc.collect()  # the cassette is gone, and what its frames held is given back
    assert audio._text_cached == held - kept


def test_a_scenario_file_with_an_alias_bomb_is_refused_too(tmp_path):
    # a scenario stands wherever a cassette does (the library compiles it on load)
    from mockrealtime.errors import ScenarioError
    from mockrealtime.scenario.files import load_scenario

    path = tmp_path / "bomb.yaml"
    path.write_text("scenario: 1\ndialects: [ga]\nsteps:\n- say: " + alias_bomb(6) + "\n")
    with pytest.raises(ScenarioError, match="aliases expand to more than"):
        load_scenario(str(path))


def test_a_recorded_event_is_frozen_and_names_its_audio(tmp_path):
    import dataclasses

    (tmp_path / "a.wav").write_bytes(audio.wav_bytes(audio.PCM16, bytes(range(8))))
    (tmp_path / "c.yaml").write_text(audio_cassette("a.wav"))
    ev = load(str(tmp_path / "c.yaml")).sessions[0].events[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.offset_us = 0  # type: ignore[misc]
    ref = ev.audio
    assert (os.path.basename(ref.path), ref.format, ref.offset, ref.length, ref.field) == ("a.wav", audio.PCM16, 0, 4, "delta")
    assert "delta" not in ev.fields and ev.get("type") == "response.output_audio.delta"
