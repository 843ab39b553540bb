"""Cassettes: recorded Realtime sessions, their YAML format (version 1), and safe load/save.

Theory of operation
-------------------
A cassette holds one or more *sessions*, one per WebSocket connection. A session is the list of
events both sides sent, each with its direction and its time offset from connect.

On disk the bulk of a recording is runs of deltas and audio chunks, and YAML load time follows the
node count, not the bytes. So a run collapses into one *entry*:

* a ``text`` entry holds a run of text deltas (transcript, text, function arguments) as the joined
  text plus the split points, the time gaps and the event ids, each packed in a single string;
* an ``audio`` entry holds a run of audio chunks (server audio deltas or client appends) as a range
  of a WAV sidecar file next to the cassette, with the chunk sizes packed the same way.

Entries carry absolute offsets (``at``), so a run may span events of other entries (a client keeps
streaming microphone audio while the server speaks). Loading merges all entries by offset, ties
keeping file order; saving first makes offsets strictly increasing (by a microsecond where two
collide), so ``load(save(c))`` gives back exactly the events of ``c``.

Invariants: a loaded cassette is immutable and shared by every connection that replays it; audio is
read from the sidecars only when an event is first sent (client audio is never needed, only its
length); every server event has an ``event_id`` (hand-written cassettes get deterministic ones).
"""

from __future__ import annotations

import base64
import dataclasses
import gc
import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any

import jsonschema
import yaml

from mockrealtime.core import audio as _audio
from mockrealtime.errors import CassetteFormatError
from mockrealtime.core.events import AUDIO_APPEND, AUDIO_DELTA_TYPES, DIALECTS, TEXT_DELTA_TYPES, Direction

FORMAT_VERSION = 1

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_COMPACT = (",", ":")


class Sidecar:
    """A WAV file next to a cassette, read on first use and then kept."""

    __slots__ = ("path", "_format", "_data")

    def __init__(self, path: str) -> None:
        self.path = path
        self._format: _audio.AudioFormat | None = None
        self._data: bytes | None = None

    def _read(self) -> None:
        with open(self.path, "rb") as f:
            self._format, self._data = _audio.parse_wav(f.read())

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._read()
        return self._data  # type: ignore[return-value]

    @property
    def format(self) -> _audio.AudioFormat:
        if self._format is None:
            self._read()
        return self._format  # type: ignore[return-value]


class RecordedEvent:
    """One event of a recording. The JSON is built on first use for events stored in a sidecar."""

    __slots__ = ("direction", "offset_us", "type", "audio_bytes", "_event", "_lazy", "_text")

    def __init__(
        self,
        direction: Direction,
        offset_us: int,
        event: dict[str, Any] | None,
        *,
        type: str | None = None,
        audio_bytes: int = 0,
        lazy: tuple[Any, ...] | None = None,
    ) -> None:
        self.direction = direction
        self.offset_us = offset_us
        self._event = event
        self._lazy = lazy
        self._text: str | None = None
        self.type: str = type if type is not None else event["type"]  # type: ignore[index]
        self.audio_bytes = audio_bytes

    @classmethod
    def make(cls, direction: Direction | str, offset_ms: float, event: dict[str, Any]) -> RecordedEvent:
        """An event as seen on the wire (audio inline), e.g. from a recorder or a test."""
        direction = Direction(direction)
        n = 0
        if event.get("type") == AUDIO_APPEND and isinstance(event.get("audio"), str):
            n = _audio.b64_decoded_len(event["audio"])
        elif event.get("type") in AUDIO_DELTA_TYPES and isinstance(event.get("delta"), str):
            n = _audio.b64_decoded_len(event["delta"])
        return cls(direction, round(offset_ms * 1000), event, audio_bytes=n)

    @property
    def offset_ms(self) -> float:
        return self.offset_us / 1000.0

    @property
    def event(self) -> dict[str, Any]:
        if self._event is None:
            sidecar, start, end, field, template, event_id = self._lazy  # type: ignore[misc]
            chunk = base64.b64encode(sidecar.data[start:end]).decode("ascii")
            ev: dict[str, Any] = {"type": self.type}
            if event_id is not None:
                ev["event_id"] = event_id
            ev.update(template)
            ev[field] = chunk
            self._event = ev
        return self._event

    @property
    def text(self) -> str:
        """The event serialised as it goes on the wire; computed once, shared by all replays."""
        if self._text is None:
            self._text = json.dumps(self.event, separators=_COMPACT, ensure_ascii=False)
        return self._text

    def get(self, key: str, default: Any = None) -> Any:
        """A top-level field, without building a lazy audio event when the field is not the audio."""
        if self._event is None and key not in ("delta", "audio"):
            if key == "event_id":
                return self._lazy[5]  # type: ignore[index]
            return self._lazy[4].get(key, default)  # type: ignore[index]
        return self.event.get(key, default)

    def __repr__(self) -> str:
        return f"<RecordedEvent {self.direction.value} {self.offset_ms:.3f}ms {self.type}>"


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    """How a session ended: who closed, with which code and reason (``error`` for a fault)."""

    by: str
    code: int | None = None
    reason: str | None = None
    error: str | None = None


@dataclasses.dataclass(slots=True)
class Handshake:
    path: str = "/v1/realtime"
    query: dict[str, str] = dataclasses.field(default_factory=dict)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    subprotocols: list[str] = dataclasses.field(default_factory=list)


class ClientAudioRun:
    """A run of client appends kept as numbers: the engine needs their times and lengths only.

    A 10-minute call streams 30,000 microphone chunks; building an object for each would be most
    of the load time, so they are built only if someone asks for ``Session.events``.
    """

    __slots__ = ("offsets_us", "chunk_bytes", "sidecar", "start", "template", "event_ids")

    def __init__(self, offsets_us: list[int], chunk_bytes: list[int], sidecar: Sidecar, start: int,
                 template: dict[str, Any], event_ids: list[str | None]) -> None:
        self.offsets_us = offsets_us
        self.chunk_bytes = chunk_bytes
        self.sidecar = sidecar
        self.start = start
        self.template = template
        self.event_ids = event_ids

    def events(self) -> list[RecordedEvent]:
        out, pos = [], self.start
        for t, n, event_id in zip(self.offsets_us, self.chunk_bytes, self.event_ids):
            lazy = (self.sidecar, pos, pos + n, "audio", self.template, event_id)
            out.append(RecordedEvent(Direction.CLIENT, t, None, type=AUDIO_APPEND, audio_bytes=n, lazy=lazy))
            pos += n
        return out


class Session:
    """One recorded connection: its events in wire order, and how it closed.

    ``core`` holds every event but the client appends kept in ``runs``; ``events`` is the whole,
    merged by time (built on first use when there are runs).
    """

    __slots__ = ("core", "runs", "close", "_events")

    def __init__(self, events: list[RecordedEvent] | None = None, close: Close | None = None, *,
                 runs: tuple[ClientAudioRun, ...] = ()) -> None:
        self.core: list[RecordedEvent] = events if events is not None else []
        self.runs = runs
        self.close = close
        self._events: list[RecordedEvent] | None = None if runs else self.core

    @property
    def events(self) -> list[RecordedEvent]:
        if self._events is None:
            keyed = [(ev.offset_us, 0, i, ev) for i, ev in enumerate(self.core)]
            for r, run in enumerate(self.runs, 1):
                keyed.extend((ev.offset_us, r, i, ev) for i, ev in enumerate(run.events()))
            keyed.sort(key=lambda k: k[:3])
            self._events = [k[3] for k in keyed]
        return self._events


@dataclasses.dataclass(eq=False, slots=True)
class Cassette:
    name: str
    dialect: str
    sessions: list[Session]
    model: str | None = None
    handshake: Handshake = dataclasses.field(default_factory=Handshake)
    description: str = ""
    matching: dict[str, Any] = dataclasses.field(default_factory=dict)
    path: str | None = None
    #: Replay plans built from the sessions, cached here so all connections share them.
    plans: dict[int, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return self.path or self.name


# --------------------------------------------------------------------------------------------
# loading


def _schema_validator() -> jsonschema.protocols.Validator:
    global _VALIDATOR
    if _VALIDATOR is None:
        text = resources.files("mockrealtime").joinpath("schemas/cassette.schema.json").read_text()
        schema = json.loads(text)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        # Local $refs inlined: resolving them per entry was a third of the load time.
        _VALIDATOR = cls(_inline_refs(schema, schema.get("$defs", {})))
    return _VALIDATOR


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref[len("#/$defs/") :]], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


_VALIDATOR: jsonschema.protocols.Validator | None = None
_CACHE: dict[str, tuple[tuple[int, int], Cassette]] = {}


def forget(path: str) -> None:
    """Drop ``path`` from the load cache (the writer calls this after replacing the file)."""
    _CACHE.pop(os.path.abspath(path), None)
    _CACHE.pop(path, None)


def json_path(parts: Iterable[str | int]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _ints(text: str | None) -> list[int]:
    return [int(x) for x in text.split()] if text else []


def _event_ids(text: str | None, n: int) -> list[str | None]:
    if text is None:
        return [None] * n
    return [None if x == "-" else x for x in text.split()]


def _synthetic_event_id(name: str, session: int, index: int) -> str:
    digest = hashlib.blake2b(f"{name}/{session}/{index}".encode(), digest_size=16).hexdigest()
    return "event_" + digest[:21]


def cassette_name(path: str) -> str:
    """The name a cassette answers to: its file stem without a ``.ga``/``.beta`` dialect suffix."""
    stem = os.path.basename(path)
    for ext in (".yaml", ".yml"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    for dialect in DIALECTS:
        if stem.endswith("." + dialect):
            stem = stem[: -len(dialect) - 1]
    return stem


def load(path: str) -> Cassette:
    """Load a cassette file, cached until the file changes; CassetteFormatError names the problem."""
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CassetteFormatError(path, "$", f"cannot read: {exc.strerror}") from None
    key = (st.st_mtime_ns, st.st_size)
    hit = _CACHE.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    cassette = loads(text, path)
    _CACHE[path] = (key, cassette)
    return cassette


def loads(text: str, path: str = "<string>") -> Cassette:
    """Parse cassette text; ``path`` names the file in errors and locates audio sidecars."""
    # A load allocates tens of thousands of objects and frees none of them in cycles; collections
    # triggered on the way only walk everything alive and doubled load times (86 to 178 ms for a
    # 10-minute call). The collector's state is put back as it was.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _loads(text, path)
    finally:
        if was_enabled:
            gc.enable()


def _loads(text: str, path: str) -> Cassette:
    try:
        doc = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CassetteFormatError(path, "$", f"not valid YAML{where}: {exc}") from None
    if not isinstance(doc, dict):
        raise CassetteFormatError(path, "$", "a cassette is a mapping with version, dialect and sessions")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise CassetteFormatError(
            path,
            "$.version",
            f"unsupported cassette version {version!r}; this mockrealtime reads version {FORMAT_VERSION}",
        )
    errors = sorted(_schema_validator().iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = errors[-1]  # deepest: the most specific place
        raise CassetteFormatError(path, json_path(err.absolute_path), err.message)
    name = cassette_name(path)
    handshake = Handshake(**doc.get("handshake") or {})
    base = os.path.dirname(os.path.abspath(path)) if path != "<string>" else os.getcwd()
    sidecars: dict[str, Sidecar] = {}
    sessions = []
    for s_index, raw in enumerate(doc["sessions"]):
        core, runs = _expand(raw["events"], path, base, sidecars, ("sessions", s_index, "events"))
        for i, ev in enumerate(core):
            if ev.direction is Direction.SERVER:
                _ensure_event_id(ev, name, s_index, i)
        close = raw.get("close")
        ended = Close(close["by"], close.get("code"), close.get("reason"), close.get("error")) if close else None
        sessions.append(Session(core, ended, runs=runs))
    return Cassette(
        name=name,
        dialect=doc["dialect"],
        sessions=sessions,
        model=doc.get("model"),
        handshake=handshake,
        description=_leading_comment(text),
        matching=doc.get("matching") or {},
        path=path,
    )


def _ensure_event_id(ev: RecordedEvent, name: str, s_index: int, index: int) -> None:
    """Hand-written cassettes may leave out server event ids; every client expects one."""
    if ev._event is not None:
        if "event_id" not in ev._event:
            ev._event = {"type": ev.type, "event_id": _synthetic_event_id(name, s_index, index), **ev._event}
    elif ev._lazy[5] is None:  # type: ignore[index]
        ev._lazy = (*ev._lazy[:5], _synthetic_event_id(name, s_index, index))  # type: ignore[index]


def _leading_comment(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip() if not line.startswith("# ") else line[2:])
    return "\n".join(lines).strip()


def _expand(
    entries: list[dict[str, Any]],
    path: str,
    base: str,
    sidecars: dict[str, Sidecar],
    where: tuple[str | int, ...],
) -> tuple[list[RecordedEvent], tuple[ClientAudioRun, ...]]:
    keyed: list[tuple[int, int, RecordedEvent]] = []
    runs: list[ClientAudioRun] = []
    seq = 0
    for e_index, entry in enumerate(entries):
        at_us = round(entry["at"] * 1000)
        for kind in ("server", "client"):
            event = entry.get(kind)
            if event is not None:
                keyed.append((at_us, seq, RecordedEvent.make(Direction(kind), at_us / 1000, event)))
                seq += 1
        run = entry.get("text")
        if run is not None:
            for ev in _expand_text(run, at_us, path, (*where, e_index, "text")):
                keyed.append((ev.offset_us, seq, ev))
                seq += 1
        run = entry.get("audio")
        if run is not None:
            expanded = _expand_audio(run, at_us, path, base, sidecars, (*where, e_index, "audio"))
            if isinstance(expanded, ClientAudioRun):
                runs.append(expanded)
                continue
            for ev in expanded:
                keyed.append((ev.offset_us, seq, ev))
                seq += 1
    keyed.sort()  # ties keep file order: seq is unique, so events are never compared
    return [k[2] for k in keyed], tuple(runs)


def _offsets(run: dict[str, Any], at_us: int, n: int, path: str, where: tuple[str | int, ...]) -> list[int]:
    text = run.get("dt")
    gaps = [round(float(g) * 1000) for g in text.split()] if text else [0] * (n - 1)
    if len(gaps) != n - 1:
        raise CassetteFormatError(path, json_path((*where, "dt")), f"{len(gaps)} gaps for {n} events (need {n - 1})")
    return list(itertools.accumulate(gaps, initial=at_us))


def _check_ids(ids: list[str | None], n: int, path: str, where: tuple[str | int, ...]) -> None:
    if len(ids) != n:
        raise CassetteFormatError(path, json_path((*where, "event_ids")), f"{len(ids)} event ids for {n} events")


def _expand_text(run: dict[str, Any], at_us: int, path: str, where: tuple[str | int, ...]) -> Iterator[RecordedEvent]:
    etype = run["type"]
    if etype not in TEXT_DELTA_TYPES:
        raise CassetteFormatError(path, json_path((*where, "type")), f"{etype!r} is not a text delta event type")
    delta: str = run["delta"]
    parts = _ints(run["parts"])
    if sum(parts) != len(delta):
        raise CassetteFormatError(
            path, json_path((*where, "parts")), f"parts add up to {sum(parts)} characters but delta has {len(delta)}"
        )
    n = len(parts)
    ids = _event_ids(run.get("event_ids"), n)
    _check_ids(ids, n, path, where)
    offsets = _offsets(run, at_us, n, path, where)
    template = run.get("with") or {}
    pos = 0
    for i, size in enumerate(parts):
        ev: dict[str, Any] = {"type": etype}
        if ids[i] is not None:
            ev["event_id"] = ids[i]
        ev.update(template)
        ev["delta"] = delta[pos : pos + size]
        pos += size
        yield RecordedEvent(Direction.SERVER, offsets[i], ev)


def _expand_audio(
    run: dict[str, Any],
    at_us: int,
    path: str,
    base: str,
    sidecars: dict[str, Sidecar],
    where: tuple[str | int, ...],
) -> list[RecordedEvent] | ClientAudioRun:
    etype = run["type"]
    if etype not in AUDIO_DELTA_TYPES and etype != AUDIO_APPEND:
        raise CassetteFormatError(path, json_path((*where, "type")), f"{etype!r} is not an audio event type")
    file = run["file"]
    full = os.path.normpath(os.path.join(base, file))
    if os.path.dirname(full) != os.path.normpath(base):
        raise CassetteFormatError(path, json_path((*where, "file")), "an audio sidecar must sit next to its cassette")
    if not os.path.isfile(full):
        raise CassetteFormatError(path, json_path((*where, "file")), f"audio sidecar {file!r} is missing")
    sidecar = sidecars.get(full)
    if sidecar is None:
        sidecar = sidecars[full] = Sidecar(full)
    fmt = _audio.FORMATS[run["format"]]
    chunks = _ints(run["chunk_bytes"])
    n = len(chunks)
    ids = _event_ids(run.get("event_ids"), n)
    _check_ids(ids, n, path, where)
    offsets = _offsets(run, at_us, n, path, where)
    start = run["offset"]
    end = start + sum(chunks)
    try:
        if sidecar.format is not fmt:
            raise CassetteFormatError(path, json_path((*where, "format")), f"{file} holds {sidecar.format.name}, not {fmt.name}")
        size = len(sidecar.data)
    except ValueError as exc:
        raise CassetteFormatError(path, json_path((*where, "file")), f"{file}: {exc}") from None
    if end > size:
        raise CassetteFormatError(path, json_path((*where, "chunk_bytes")), f"chunks end at byte {end} but {file} holds {size} bytes")
    template = run.get("with") or {}
    if etype == AUDIO_APPEND:
        return ClientAudioRun(offsets, chunks, sidecar, start, template, ids)
    out, pos = [], start
    for t, n_bytes, event_id in zip(offsets, chunks, ids):
        lazy = (sidecar, pos, pos + n_bytes, "delta", template, event_id)
        out.append(RecordedEvent(Direction.SERVER, t, None, type=etype, audio_bytes=n_bytes, lazy=lazy))
        pos += n_bytes
    return out


