"""Saving a cassette never loses the recording on disk: every new file is written in full beside its
place first, the audio sidecars replace theirs before the YAML that names them, and a failure on the
way puts the old files back and leaves no temporary file behind.

Failures are injected between the files by wrapping ``os.fsync`` (writing a file) and ``os.replace``
(putting it in place) as the writer calls them.
"""

from __future__ import annotations

import base64
import os
import re

import pytest

from mockrealtime.core.cassette import Cassette, RecordedEvent, Session, load
from mockrealtime.core.cassette_writer import save

from test_cassette import duplex_session


class DiskFull(OSError):
    pass


def cassette(sessions: int, text: str = "w") -> Cassette:
    """duplex_session() with its transcript words spelled ``text``; the audio differs with the text."""
    made = []
    for _ in range(sessions):
        events = []
        for ev in duplex_session().events:
            data = dict(ev.event)
            if ev.type == "response.output_audio_transcript.delta":
                data["delta"] = data["delta"].replace("w", text)
            for key in ("audio", "delta"):
                if ev.type in ("input_audio_buffer.append", "response.output_audio.delta") and key in data:
                    pcm = bytearray(base64.b64decode(data[key]))
                    pcm[0] = ord(text[0])  # one sample differs
                    data[key] = base64.b64encode(bytes(pcm)).decode()
            events.append(RecordedEvent.make(ev.direction.value, ev.offset_us // 1000, data))
        made.append(Session(events))
    return Cassette(name="d", dialect="ga", sessions=made)


def snapshot(directory) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def fail_on_call(monkeypatch, name: str, n: int) -> list[str]:
    """Make the n-th call (from 0) of ``os.<name>`` raise; returns the paths it was called with."""
    real = getattr(os, name)
    calls: list[str] = []

    def wrapper(*args):
        calls.append(str(args[-1]))
        if len(calls) - 1 == n:
            raise DiskFull(f"injected: {name} #{n}")
        return real(*args)

    monkeypatch.setattr(os, name, wrapper)
    return calls


def test_sidecars_are_in_place_before_the_yaml_that_names_them(tmp_path, monkeypatch):
    path = tmp_path / "d.yaml"
    placed = fail_on_call(monkeypatch, "replace", -1)
    written = save(cassette(2), str(path))
    finals = [p for p in placed if not os.path.basename(p).startswith(".")]
    assert [os.path.basename(p) for p in finals] == [
        "d.s0.client.pcm16.wav", "d.s0.server.pcm16.wav", "d.s1.client.pcm16.wav", "d.s1.server.pcm16.wav", "d.yaml",
    ]
    assert written == finals


# an old cassette with two sessions is replaced by one with two sessions that differ
FILES_WRITTEN = 5  # four sidecars and the YAML


@pytest.mark.parametrize(
    "step", [("fsync", n) for n in range(FILES_WRITTEN)] + [("replace", n) for n in range(FILES_WRITTEN)], ids=lambda s: f"{s[0]}-{s[1]}"
)
def test_a_failure_between_the_files_leaves_the_old_cassette_intact_and_no_temporary_file(tmp_path, monkeypatch, step):
    path = tmp_path / "d.yaml"
    save(cassette(2, text="old"), str(path))
    before = snapshot(tmp_path)
    old_events = [[e.event for e in s.events] for s in load(str(path)).sessions]
    fail_on_call(monkeypatch, *step)
    with pytest.raises(DiskFull):
        save(cassette(2, text="new"), str(path))
    monkeypatch.undo()
    assert snapshot(tmp_path) == before  # same files, same bytes: nothing half-done, nothing left over
    assert [[e.event for e in s.events] for s in load(str(path)).sessions] == old_events


@pytest.mark.parametrize("step", [("fsync", 0), ("fsync", 2), ("replace", 0), ("replace", 2)], ids=lambda s: f"{s[0]}-{s[1]}")
def test_a_failed_first_save_leaves_nothing_behind(tmp_path, monkeypatch, step):
    fail_on_call(monkeypatch, *step)
    with pytest.raises(DiskFull):
        save(cassette(1), str(tmp_path / "d.yaml"))
    assert os.listdir(tmp_path) == []


def test_a_save_that_succeeds_leaves_only_the_cassette(tmp_path):
    path = tmp_path / "d.yaml"
    save(cassette(2, text="old"), str(path))
    save(cassette(2, text="new"), str(path))
    assert sorted(os.listdir(tmp_path)) == [
        "d.s0.client.pcm16.wav", "d.s0.server.pcm16.wav", "d.s1.client.pcm16.wav", "d.s1.server.pcm16.wav", "d.yaml",
    ]
    assert "new0 " in path.read_text()


def test_without_hard_links_the_old_files_are_kept_aside_as_copies(tmp_path, monkeypatch):
    path = tmp_path / "d.yaml"
    save(cassette(2, text="old"), str(path))
    before = snapshot(tmp_path)

    def no_links(src, dst):
        raise OSError("hard links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    fail_on_call(monkeypatch, "replace", 3)
    with pytest.raises(DiskFull):
        save(cassette(2, text="new"), str(path))
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    monkeypatch.setattr(os, "link", no_links)
    save(cassette(2, text="new"), str(path))
    assert "new0 " in path.read_text() and not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_old_files_are_kept_aside_in_their_own_directory(tmp_path, monkeypatch):
    """Beside the file, so putting it back is a rename on the same file system."""
    path = tmp_path / "d.yaml"
    save(cassette(1, text="old"), str(path))
    real_link = os.link
    pairs: list[tuple[str, str]] = []
    monkeypatch.setattr(os, "link", lambda src, dst: (pairs.append((src, dst)), real_link(src, dst))[1])
    monkeypatch.chdir(tmp_path.parent)
    save(cassette(1, text="new"), str(path))
    assert len(pairs) == 3
    assert all(os.path.dirname(dst) == os.path.dirname(src) == str(tmp_path) for src, dst in pairs)


def test_the_yaml_is_readable_in_a_diff(tmp_path):
    long_text = "é " * 300
    c = cassette(1)
    c.sessions[0].events[0].event["session"]["instructions"] = long_text
    c.description = "First line.\n\n  indented line  \nlast"
    save(c, str(tmp_path / "d.yaml"))
    text = (tmp_path / "d.yaml").read_text(encoding="utf-8")
    assert text.startswith("# First line.\n#\n#   indented line\n# last\nversion: 1\n")
    assert f"instructions: {long_text.rstrip()}" in text or f"instructions: '{long_text}'" in text  # one line, unescaped
    assert not re.search(r"\{[^}]", text)  # block style: no inline mappings but {}


def test_audio_that_is_not_canonical_base64_stays_inline_and_exact(tmp_path):
    c = cassette(1)
    odd = [e for e in c.sessions[0].events if e.type == "response.output_audio.delta"]
    odd[0].event["delta"] = "AB=="  # decodes to one byte, whose canonical spelling is "AA=="
    odd[1].event["delta"] = "AA==\n"
    save(c, str(tmp_path / "d.yaml"))
    loaded = load(str(tmp_path / "d.yaml"))
    deltas = [e.event["delta"] for e in loaded.sessions[0].events if e.type == "response.output_audio.delta"]
    assert deltas[:2] == ["AB==", "AA==\n"]


def test_offsets_are_kept_to_the_microsecond_and_made_strictly_increasing(tmp_path):
    events = [
        RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}),
        RecordedEvent.make("server", 0, {"type": "rate_limits.updated", "event_id": "e1"}),
        RecordedEvent.make("server", 0, {"type": "rate_limits.updated", "event_id": "e2"}),
        RecordedEvent.make("client", 12.3456, {"type": "response.create"}),
    ]
    save(Cassette(name="t", dialect="ga", sessions=[Session(events)]), str(tmp_path / "t.yaml"))
    assert [e.offset_us for e in load(str(tmp_path / "t.yaml")).sessions[0].events] == [0, 1, 2, 12346]


def test_a_yml_cassette_names_its_sidecars_after_its_stem(tmp_path):
    written = save(cassette(1), str(tmp_path / "d.yml"))
    assert sorted(os.path.basename(p) for p in written) == ["d.s0.client.pcm16.wav", "d.s0.server.pcm16.wav", "d.yml"]


def test_deltas_that_differ_only_in_key_order_share_one_run(tmp_path):
    delta = {"type": "response.output_text.delta", "response_id": "r", "item_id": "i", "output_index": 0, "content_index": 0}
    swapped = {"type": "response.output_text.delta", "item_id": "i", "response_id": "r", "content_index": 0, "output_index": 0}
    events = [RecordedEvent.make("server", 1, {**delta, "delta": "a"}), RecordedEvent.make("server", 2, {**swapped, "delta": "b"})]
    save(Cassette(name="t", dialect="ga", sessions=[Session(events)]), str(tmp_path / "t.yaml"))
    assert (tmp_path / "t.yaml").read_text().count("response.output_text.delta") == 1


def test_everything_a_cassette_holds_comes_back_from_its_file(tmp_path):
    from mockrealtime.core.cassette import Close, Handshake

    pcm = bytes(range(96))
    audio = base64.b64encode(pcm).decode()
    events = [
        RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}),
        RecordedEvent.make("client", 5, {"type": "input_audio_buffer.append", "audio": audio}),  # a run of one, no event_id
        RecordedEvent.make("server", 7, {"type": "response.output_audio.delta", "event_id": "a1", "response_id": "r", "item_id": "i",
                                         "output_index": 0, "content_index": 0, "delta": audio}),
        RecordedEvent.make("server", 8, {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i",
                                         "output_index": 0, "content_index": 0, "delta": audio}),  # no event_id in a run
    ]
    original = Cassette(
        name="t", dialect="ga", sessions=[Session(events, Close("server", 1011, "upstream lost", error="boom"))],
        handshake=Handshake(query={"model": "m"}, headers={"OpenAI-Beta": "x"}, subprotocols=["realtime"]),
        matching={"mode": "type"},
    )
    save(original, str(tmp_path / "t.yaml"))
    loaded = load(str(tmp_path / "t.yaml"))
    back = [dict(e.event) for e in loaded.sessions[0].events]
    assert back[3].pop("event_id").startswith("event_")  # a server event without one gets one on load
    assert back == [e.event for e in events]
    assert loaded.sessions[0].close == Close("server", 1011, "upstream lost", error="boom")
    assert (loaded.handshake.subprotocols, loaded.matching) == (["realtime"], {"mode": "type"})


def test_a_cassette_loaded_with_sidecar_audio_saves_it_to_sidecars_again_unchanged(tmp_path):
    first, second = tmp_path / "a" / "c.yaml", tmp_path / "b" / "c.yaml"
    first.parent.mkdir()
    second.parent.mkdir()
    save(cassette(1), str(first))
    save(load(str(first)), str(second))
    assert snapshot(first.parent) == snapshot(second.parent)
