"""A cassette that grows while it is recorded: sessions appended in parts, audio streamed to sidecars.

Theory of operation
-------------------
The recorder hands over what each session did since the last save (its events and, at the end,
how it closed). Each hand-over becomes one *part*: a YAML document ``{session, events, close}``
appended to the cassette file (see :mod:`mockrealtime.core.cassette` for how loading merges parts),
with its audio appended to the session's WAV sidecars. Nothing saved before is read or written
again, so a save costs what it adds, however many sessions came before, and the recorder keeps
no session in memory once it is saved.

Order and atomicity: a part's audio is written to its sidecars and flushed to disk, and the WAV
headers then say the new length, before the YAML part that refers to that audio is appended; the
file itself is created atomically (header document and first part, renamed into place). A part is
appended in one write ending in a ``...`` line; if that write fails the file is cut back to its
last complete part, and a part cut short by a crash is ignored by :func:`~mockrealtime.core.cassette.load`.
So a reader (a replay server, a crash) sees whole parts only. A sidecar never shrinks, and its
header never claims bytes that are not on disk.

Not thread-safe: one writer per file, as the recorder is.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core import cassette_writer as _writer
from mockrealtime.core.cassette import DOCUMENT_END, Cassette, Close, RecordedEvent, forget

#: ``check(doc)`` sees a document shaped like the whole cassette (earlier entries as None) before
#: anything is written; whatever it raises stops that part (the secret scan uses it).
Check = Callable[[dict[str, Any]], None]


class _StreamedWav:
    """A WAV sidecar written as audio arrives: samples appended, the header's sizes updated after."""

    __slots__ = ("path", "fmt", "fd", "size", "_header_len")

    def __init__(self, path: str, fmt: _audio.AudioFormat) -> None:
        self.path, self.fmt, self.size = path, fmt, 0
        header = _audio.wav_bytes(fmt, b"")
        self._header_len = len(header)
        try:
            os.unlink(path)  # a new file: a reader may still hold the old one open
        except FileNotFoundError:
            pass
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        self.fd = os.open(path, flags, 0o666)
        os.write(self.fd, header)

    def append(self, pieces: list[bytes]) -> None:
        blob = b"".join(pieces)
        view = memoryview(blob)
        at = self._header_len + self.size
        while view:
            n = _audio.pwrite(self.fd, view, at)
            view, at = view[n:], at + n
        self.size += len(blob)

    def commit(self) -> None:
        """Samples to disk first, then the header that counts them."""
        os.fsync(self.fd)
        body = self._header_len - 8 + self.size + (self.size % 2)
        _audio.pwrite(self.fd, struct.pack("<I", body), 4)
        _audio.pwrite(self.fd, struct.pack("<I", self.size), self._header_len - 4)
        os.fsync(self.fd)

    def close(self) -> None:
        if self.size % 2:  # RIFF chunks are word-aligned; the header already counts the pad byte
            _audio.pwrite(self.fd, b"\x00", self._header_len + self.size)
        os.close(self.fd)


class SessionWriter:
    """Where one session stands in its file: its index, its clock and formats, its sidecars."""

    __slots__ = ("index", "last_us", "formats", "entries", "sidecars", "closed")

    def __init__(self, index: int) -> None:
        self.index = index
        self.last_us = -1
        self.formats: _writer.Formats = (_audio.PCM16, _audio.PCM16)
        self.entries = 0
        self.sidecars: dict[str, _StreamedWav] = {}
        self.closed = False


class AppendingCassette:
    """One cassette file being recorded. ``header`` gives the dialect, model, handshake and
    description, written with the first part."""

    def __init__(self, path: str, header: Cassette, *, check: Check | None = None) -> None:
        self.path = os.path.abspath(path)
        self.directory = os.path.dirname(self.path)
        stem = os.path.basename(self.path)
        for ext in (".yaml", ".yml"):
            if stem.endswith(ext):
                stem = stem[: -len(ext)]
        self.stem = stem
        self.header = header
        self.check = check
        self.sessions: list[SessionWriter] = []
        self.size = -1  # bytes of complete parts on disk; -1: not created yet

    def new_session(self) -> SessionWriter:
        """A session to append to; it takes the next index when its first part is written."""
        return SessionWriter(-1)

    def append(self, writer: SessionWriter, events: list[RecordedEvent], close: Close | None = None,
               *, rest: list[dict[str, Any]] | None = None) -> list[str]:
        """Append ``events`` (and, when given, how the session ended) as a part of ``writer``'s
        session; ``rest``: REST calls recorded meanwhile, kept with the part. Returns the files
        written. Raises what ``check`` raises, with nothing written."""
        if writer.closed:
            raise ValueError(f"session {writer.index} of {self.path} has ended")
        first_part = writer.index < 0
        if first_part:
            writer.index = len(self.sessions)
        try:
            return self._append(writer, events, close, rest or [])
        except BaseException:
            if first_part:
                writer.index = -1
            raise
        finally:
            if first_part and writer.index >= 0:
                self.sessions.append(writer)

    def _append(self, writer: SessionWriter, events: list[RecordedEvent], close: Close | None,
                rest: list[dict[str, Any]]) -> list[str]:
        offsets, last = [], writer.last_us
        for ev in events:
            last = max(ev.offset_us, last + 1)
            offsets.append(last)
        items, formats = _writer._collapse(events, offsets, writer.formats)
        planned: dict[str, tuple[_audio.AudioFormat, list[bytes]]] = {}

        def place(direction: str, fmt: _audio.AudioFormat, pieces: list[bytes]) -> tuple[str, int]:
            name = _writer.sidecar_name(self.stem, writer.index, direction, fmt)
            existing = writer.sidecars.get(name)
            _, queued = planned.setdefault(name, (fmt, []))
            offset = (existing.size if existing is not None else 0) + sum(len(p) for p in queued)
            queued.extend(pieces)
            return name, offset

        part: dict[str, Any] = {"session": writer.index, "events": _writer.entries(items, place)}
        if close is not None:
            part["close"] = _writer.close_entry(close)
        if rest:
            part["rest"] = [dict(entry) for entry in rest]
        if self.check is not None:
            shaped = _writer.header(self.header) if self.size < 0 else {}
            if rest:
                shaped["rest"] = part["rest"]
            session = {"events": [None] * writer.entries + part["events"], **({"close": part["close"]} if close else {})}
            shaped["sessions"] = [None] * writer.index + [session]
            self.check(shaped)
        created = self.size < 0
        written = self._write_audio(writer, planned)
        written.append(self._write_part(part))
        if created:
            self._remove_stale_sidecars(keep=set(planned))
        writer.last_us, writer.formats = last, formats
        writer.entries += len(part["events"])
        if close is not None:
            writer.closed = True
            for wav in writer.sidecars.values():
                wav.close()
            writer.sidecars.clear()
        forget(self.path)
        return written

    def close(self) -> None:
        """Close the open sidecars (what is saved stays as it is)."""
        for writer in self.sessions:
            for wav in writer.sidecars.values():
                wav.close()
            writer.sidecars.clear()

    def _write_audio(self, writer: SessionWriter, planned: dict[str, tuple[_audio.AudioFormat, list[bytes]]]) -> list[str]:
        for name, (fmt, pieces) in planned.items():
            wav = writer.sidecars.get(name)
            if wav is None:
                wav = writer.sidecars[name] = _StreamedWav(os.path.join(self.directory, name), fmt)
            wav.append(pieces)
        for name in planned:
            writer.sidecars[name].commit()
        return [os.path.join(self.directory, name) for name in planned]

    def _write_part(self, part: dict[str, Any]) -> str:
        text = "---\n" + _writer.dumps_document(part) + DOCUMENT_END
        if self.size < 0:
            head = _writer.dumps_document({**_writer.header(self.header), "sessions": []}, self.header.description)
            blob = (head + DOCUMENT_END + text).encode("utf-8")
            _audio.write_atomic(self.path, blob)
            self.size = len(blob)
            return self.path
        blob = text.encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, self.size)  # back to the last complete part
            raise
        finally:
            os.close(fd)
        self.size += len(blob)
        return self.path

    def _remove_stale_sidecars(self, keep: set[str]) -> None:
        """Sidecars an earlier recording to this path left (the file has just been replaced)."""
        pattern = re.compile(re.escape(self.stem) + _writer._SIDECAR_RE)
        for entry in os.listdir(self.directory):
            if pattern.match(entry) and entry not in keep:
                os.unlink(os.path.join(self.directory, entry))
