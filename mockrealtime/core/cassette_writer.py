"""Writing cassettes: runs collapsed into entries, audio moved to WAV sidecars, files atomic.

The inverse of :func:`mockrealtime.core.cassette.loads`: ``load(save(c))`` gives back exactly the events of
``c`` (see the theory of operation in :mod:`mockrealtime.core.cassette`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import Any

import yaml

from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import FORMAT_VERSION, forget, Cassette, Close, RecordedEvent
from mockrealtime.core.events import AUDIO_APPEND, AUDIO_DELTA_TYPES, TEXT_DELTA_TYPES, Direction

class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Safe YAML that writes a repeated value out again instead of as an alias: a cassette reads
    the same in a diff wherever a value appears, and loading caps what aliases may expand to."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _ms(us: int) -> int | float:
    return us // 1000 if us % 1000 == 0 else round(us / 1000, 3)


def _strictly_increasing(events: list[RecordedEvent]) -> list[int]:
    out, last = [], -1
    for ev in events:
        t = max(ev.offset_us, last + 1)
        out.append(t)
        last = t
    return out


def _canonical_b64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode("ascii") == value else None


class _Run:
    __slots__ = ("kind", "type", "template", "offsets", "ids", "pieces", "fmt", "direction")

    def __init__(self, kind: str, etype: str, template: dict[str, Any], fmt: _audio.AudioFormat | None, direction: Direction):
        self.kind, self.type, self.template, self.fmt, self.direction = kind, etype, template, fmt, direction
        self.offsets: list[int] = []
        self.ids: list[str | None] = []
        self.pieces: list[Any] = []


Formats = tuple[_audio.AudioFormat, _audio.AudioFormat]


def _collapse(events: list[RecordedEvent], offsets: list[int], formats: Formats = (_audio.PCM16, _audio.PCM16)) -> tuple[list[Any], Formats]:
    """Entries in file order: (offset_us, "client"|"server", event) tuples or _Run objects; and
    the (input, output) audio formats in force after them."""
    items: list[Any] = []
    open_runs: dict[Any, _Run] = {}
    in_fmt, out_fmt = formats

    def close(direction: Direction | None) -> None:
        for key in [k for k, r in open_runs.items() if direction is None or r.direction is direction]:
            del open_runs[key]

    for ev, t in zip(events, offsets, strict=True):
        ref = ev.audio
        data = ev.fields if ref is None else {**ev.fields, ref.field: None}  # sidecar audio: read below
        etype = ev.type
        if ev.direction is Direction.SERVER and etype in ("session.created", "session.updated"):
            i, o = _audio.session_formats(data.get("session") or {})
            in_fmt, out_fmt = i or in_fmt, o or out_fmt
        kind: str | None = None
        payload_field = ""
        fmt: _audio.AudioFormat | None = None
        if etype in TEXT_DELTA_TYPES and ev.direction is Direction.SERVER and isinstance(data.get("delta"), str):
            kind, payload_field = "text", "delta"
        elif etype in AUDIO_DELTA_TYPES and ev.direction is Direction.SERVER:
            kind, payload_field, fmt = "audio", "delta", out_fmt
        elif etype == AUDIO_APPEND and ev.direction is Direction.CLIENT:
            kind, payload_field, fmt = "audio", "audio", in_fmt
        piece: Any = None
        if kind == "text":
            piece = data["delta"]
        elif kind == "audio":
            piece = ref.read() if ref is not None and ref.field == payload_field else _canonical_b64(data.get(payload_field))
            if piece is None:
                kind = None
        if kind is None:
            data = ev.event
            # A plain event ends the runs it could belong between: keeps the file readable.
            close(ev.direction)
            items.append((t, ev.direction.value, data))
            continue
        template = {k: v for k, v in data.items() if k not in ("type", "event_id", payload_field)}
        key = (kind, etype, fmt.name if fmt else None, json.dumps(template, sort_keys=True))
        run = open_runs.get(key)
        if run is None:
            run = open_runs[key] = _Run(kind, etype, template, fmt, ev.direction)
            items.append(run)
        run.offsets.append(t)
        run.ids.append(data.get("event_id"))
        run.pieces.append(piece)
    return items, (in_fmt, out_fmt)


def _packed(values: Iterable[Any]) -> str:
    return " ".join(str(v) for v in values)


def _gaps(offsets: list[int]) -> str:
    return _packed(_ms(b - a) for a, b in pairwise(offsets))


def entries(items: list[Any], place_audio: Callable[[str, _audio.AudioFormat, list[bytes]], tuple[str, int]]) -> list[dict[str, Any]]:
    """The YAML entries of collapsed items; ``place_audio(direction, format, pieces)`` stores a
    run's audio and says where: (sidecar file name, offset of its first byte)."""
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, tuple):
            t, kind, data = item
            out.append({"at": _ms(t), kind: data})
            continue
        run: _Run = item
        if len(run.pieces) == 1:
            # a run of one reads better as the event itself
            ev = {"type": run.type}
            if run.ids[0] is not None:
                ev["event_id"] = run.ids[0]
            ev.update(run.template)
            ev["delta" if run.type != AUDIO_APPEND else "audio"] = (
                run.pieces[0] if run.kind == "text" else base64.b64encode(run.pieces[0]).decode("ascii")
            )
            out.append({"at": _ms(run.offsets[0]), run.direction.value: ev})
            continue
        body: dict[str, Any] = {"type": run.type}
        if run.template:
            body["with"] = run.template
        if run.kind == "text":
            body["delta"] = "".join(run.pieces)
            body["parts"] = _packed(len(p) for p in run.pieces)
        else:
            assert run.fmt is not None
            file, offset = place_audio(run.direction.value, run.fmt, run.pieces)
            body["format"] = run.fmt.name
            body["file"] = file
            body["offset"] = offset
            body["chunk_bytes"] = _packed(len(p) for p in run.pieces)
            total = sum(len(p) for p in run.pieces)
            body["audio_ms"] = round(run.fmt.duration_ms(total), 3)
        body["dt"] = _gaps(run.offsets)
        if any(i is not None for i in run.ids):
            body["event_ids"] = _packed("-" if i is None else i for i in run.ids)
        out.append({"at": _ms(run.offsets[0]), run.kind: body})
    return out


def sidecar_name(stem: str, session: int, direction: str, fmt: _audio.AudioFormat) -> str:
    return f"{stem}.s{session}.{direction}.{fmt.name}.wav"


def close_entry(close: Close) -> dict[str, Any]:
    out: dict[str, Any] = {"by": close.by, "code": close.code, "reason": close.reason}
    if close.error:
        out["error"] = close.error
    return out


def header(cassette: Cassette) -> dict[str, Any]:
    """The cassette's document without its sessions."""
    doc: dict[str, Any] = {"version": FORMAT_VERSION, "dialect": cassette.dialect, "model": cassette.model}
    hs = cassette.handshake
    doc["handshake"] = {"path": hs.path, "query": dict(hs.query), "headers": dict(hs.headers)}
    if hs.subprotocols:
        doc["handshake"]["subprotocols"] = list(hs.subprotocols)
    if cassette.matching:
        doc["matching"] = cassette.matching
    if cassette.rest:
        doc["rest"] = [dict(entry) for entry in cassette.rest]
    return doc


def to_document(cassette: Cassette, stem: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The YAML document of a cassette and the sidecar files it refers to (name -> WAV bytes)."""
    sidecar_data: dict[str, tuple[_audio.AudioFormat, bytearray]] = {}
    sessions_out = []
    for s_index, session in enumerate(cassette.sessions):

        def place(direction: str, fmt: _audio.AudioFormat, pieces: list[bytes], s_index: int = s_index) -> tuple[str, int]:
            file = sidecar_name(stem, s_index, direction, fmt)
            _, buf = sidecar_data.setdefault(file, (fmt, bytearray()))
            offset = len(buf)
            for p in pieces:
                buf += p
            return file, offset

        items, _ = _collapse(session.events, _strictly_increasing(session.events))
        out: dict[str, Any] = {"events": entries(items, place)}
        if session.close is not None:
            out["close"] = close_entry(session.close)
        sessions_out.append(out)
    doc = header(cassette)
    doc["sessions"] = sessions_out
    files = {name: _audio.wav_bytes(fmt, bytes(buf)) for name, (fmt, buf) in sidecar_data.items()}
    return doc, files


def dumps_document(doc: dict[str, Any], description: str = "") -> str:
    header = "".join(f"# {line}".rstrip() + "\n" for line in description.strip().splitlines()) if description else ""
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000, default_flow_style=False)
    return header + body


_SIDECAR_RE = r"\.s\d+\.(client|server)\.(pcm16|g711_ulaw|g711_alaw)\.wav$"


def _keep_aside(file: str) -> str | None:
    """A second name for the file now at ``file`` (None if there is none), which stays in place."""
    if not os.path.exists(file):
        return None
    kept = os.path.join(os.path.dirname(file), f".{os.path.basename(file)}.{uuid.uuid4().hex[:12]}.old")
    try:
        os.link(file, kept)
    except OSError:  # a file system without hard links: a copy
        with open(file, "rb") as f:
            return _audio.write_beside(file, f.read())
    return kept


def _install(blobs: list[tuple[str, bytes]]) -> None:
    """Put files in place in order, all or none: each is written in full beside its place first; then
    they replace the old files one by one, and a failure on the way puts every old file back."""
    staged: list[tuple[str, str]] = []  # (temporary file, its place)
    replaced: list[tuple[str, str | None]] = []  # (place, the old file kept aside, or None: there was none)
    try:
        for file, blob in blobs:
            staged.append((_audio.write_beside(file, blob), file))
        for tmp, file in staged:
            replaced.append((file, _keep_aside(file)))
            os.replace(tmp, file)
    except BaseException:
        for file, kept in reversed(replaced):
            if kept is None:
                _audio.unlink_quietly(file)
            else:
                os.replace(kept, file)
                _audio.unlink_quietly(kept)  # still there if it was the same file (rename does nothing then)
        for tmp, _ in staged:
            _audio.unlink_quietly(tmp)
        raise
    for _, kept in replaced:
        if kept is not None:
            _audio.unlink_quietly(kept)


def save(cassette: Cassette, path: str, *, check: Callable[[dict[str, Any]], None] | None = None) -> list[str]:
    """Write a cassette and its sidecars atomically; returns the files written.

    Every file is written in full before any replaces its old version; then sidecars go first and the
    YAML last, so the YAML on disk never names audio that is not there, and a failure on the way puts
    the earlier version back whole (no file of it lost, no temporary file left). Sidecars of an earlier version of the same cassette that are no longer named are removed.
    ``check`` sees the document (as it will be written, runs collapsed) before anything touches
    the disk; whatever it raises stops the save (the redaction scan uses it).
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    stem = os.path.basename(path)
    for ext in (".yaml", ".yml"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    doc, files = to_document(cassette, stem)
    if check is not None:
        check(doc)
    os.makedirs(directory, exist_ok=True)
    blobs = [(os.path.join(directory, name), blob) for name, blob in files.items()]
    blobs.append((path, dumps_document(doc, cassette.description).encode("utf-8")))
    _install(blobs)
    written = [file for file, _ in blobs]
    pattern = re.compile(re.escape(stem) + _SIDECAR_RE)
    for entry in os.listdir(directory):
        if pattern.match(entry) and entry not in files:
            os.unlink(os.path.join(directory, entry))
    forget(path)
    return written
