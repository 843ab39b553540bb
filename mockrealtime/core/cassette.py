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

A cassette may continue in further YAML documents, each a *part* of one session (``session``: its
index, ``events``, and ``close`` on its last part): the recorder appends them as sessions go on, so
saving never rewrites what is already saved. Loading merges the parts into their sessions, in file
order; a part cut short by a crash (after the last ``...`` line) is left out.

Invariants: a loaded cassette is immutable and shared by every connection that replays it; loading
reads only the WAV headers of the sidecars, and audio is read from them when an event is sent (its
wire text kept up to a process-wide budget; client audio is never read: only its length matters);
every server event has an ``event_id`` (hand-written cassettes get deterministic ones); YAML is
loaded as plain data, with alias expansion capped.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import itertools
import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.errors import CassetteFormatError
from mockrealtime.core.events import AUDIO_APPEND, AUDIO_DELTA_TYPES, DIALECTS, TEXT_DELTA_TYPES, Direction
from mockrealtime.core.cassette_model import Cassette, ClientAudioRun, Close, Handshake, RecordedEvent, Session, _fields
from mockrealtime.core.cassette_yaml import DOCUMENT_END, MAX_ALIAS_NODES, CassetteLoader, complete_documents, parse_documents
from mockrealtime.protocol.fastcheck import compile_schema

__all__ = [
    "DOCUMENT_END", "FORMAT_VERSION", "MAX_ALIAS_NODES", "Cassette", "CassetteLoader", "ClientAudioRun", "Close",
    "Handshake", "RecordedEvent", "Session", "cassette_name", "complete_documents", "forget", "load", "loads",
    "parse_documents",
]

FORMAT_VERSION = 1

# --------------------------------------------------------------------------------------------
# loading


def _schema() -> dict[str, Any]:
    text = resources.files("mockrealtime").joinpath("schemas/cassette.schema.json").read_text()
    schema = json.loads(text)
    # Local $refs inlined: resolving them per entry was a third of the load time.
    return _inline_refs(schema, schema.get("$defs", {}))


def _schema_check(doc: Any, path: str) -> None:
    """Raise CassetteFormatError at the deepest violation of the cassette schema.

    A compiled predicate says whether the document is valid (almost always); jsonschema, slow to
    import and to run, is used only to say where a broken one is wrong.
    """
    global _FAST_CHECK
    if _FAST_CHECK is None:
        _FAST_CHECK = compile_schema(_schema())
    if _FAST_CHECK(doc):
        return
    global _VALIDATOR
    if _VALIDATOR is None:
        import jsonschema

        schema = _schema()
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        _VALIDATOR = cls(schema)
    errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = errors[-1]  # deepest: the most specific place
        raise CassetteFormatError(path, json_path(err.absolute_path), err.message)


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref[len("#/$defs/") :]], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


_FAST_CHECK: Callable[[Any], bool] | None = None
_VALIDATOR: Any = None
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


def _packed(text: str | None, convert: Callable[[str], int], path: str, where: tuple[str | int, ...], what: str) -> list[int]:
    """Numbers packed in a string, each distinct word converted once (runs repeat a few values)."""
    if not text:
        return []
    first, sep, _ = text.partition(" ")
    if sep:  # a steady stream (20 ms chunks, 20 ms apart) is one word repeated: no split, no per-word work
        n = text.count(" ") + 1
        if len(text) == n * (len(first) + 1) - 1 and text == " ".join(itertools.repeat(first, n)):
            try:
                return [convert(first)] * n
            except ValueError:
                raise CassetteFormatError(path, json_path(where), f"{what} separated by spaces expected") from None
    words = text.split()
    try:
        table = {w: convert(w) for w in set(words)}
    except ValueError:
        raise CassetteFormatError(path, json_path(where), f"{what} separated by spaces expected") from None
    return list(map(table.__getitem__, words))


def _ints(text: str | None, path: str, where: tuple[str | int, ...]) -> list[int]:
    return _packed(text, int, path, where, "whole numbers")


def _us(ms: str) -> int:
    return round(float(ms) * 1000)


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
    if not stat.S_ISREG(st.st_mode):
        raise CassetteFormatError(path, "$", "not a regular file")
    key = (st.st_mtime_ns, st.st_size)
    hit = _CACHE.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CassetteFormatError(path, "$", f"cannot read: {exc}") from None
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


def _merge_parts(docs: list[Any], path: str) -> Any:
    """One document: the first (the cassette), with the session parts after it merged in."""
    if not docs:
        raise CassetteFormatError(path, "$", "empty file: a cassette is a mapping with version, dialect and sessions")
    doc = docs[0]
    if len(docs) == 1 or not isinstance(doc, dict):
        return doc
    sessions = doc.get("sessions")
    sessions = [] if sessions is None else sessions
    if not isinstance(sessions, list):
        return doc  # the schema check says what is wrong
    sessions = [dict(s) if isinstance(s, dict) else s for s in sessions]
    rest = doc.get("rest")
    rest = list(rest) if isinstance(rest, list) else rest
    for number, part in enumerate(docs[1:], 2):
        where = f"$[document {number}]"
        if (not isinstance(part, dict) or set(part) - {"session", "events", "close", "rest"}
                or not isinstance(part.get("session"), int) or isinstance(part.get("session"), bool)
                or not isinstance(part.get("events"), list) or not isinstance(part.get("rest", []), list)):
            raise CassetteFormatError(path, where, "a session part is a mapping with session (its index), events and "
                                      "optionally close and rest (REST calls recorded meanwhile)")
        if part.get("rest"):
            rest = (rest if isinstance(rest, list) else []) + part["rest"]
        index = part["session"]
        if index == len(sessions):
            sessions.append({"events": []})
        elif not 0 <= index < len(sessions) or not isinstance(sessions[index], dict):
            raise CassetteFormatError(path, f"{where}.session", f"session {index} does not follow the {len(sessions)} before it")
        session = sessions[index]
        events = session.get("events")
        session["events"] = (events if isinstance(events, list) else []) + part["events"]
        if part.get("close") is not None:
            session["close"] = part["close"]
    return {**doc, "sessions": sessions, **({"rest": rest} if rest is not None else {})}


def _loads(text: str, path: str) -> Cassette:
    doc = _merge_parts(parse_documents(text, path), path)
    if not isinstance(doc, dict):
        raise CassetteFormatError(path, "$", "a cassette is a mapping with version, dialect and sessions")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise CassetteFormatError(
            path,
            "$.version",
            f"unsupported cassette version {version!r}; this mockrealtime reads version {FORMAT_VERSION}",
        )
    _schema_check(doc, path)
    name = cassette_name(path)
    handshake = Handshake(**doc.get("handshake") or {})
    base = os.path.dirname(os.path.abspath(path)) if path != "<string>" else os.getcwd()
    sidecars: dict[str, _audio.Sidecar] = {}
    sessions = []
    for s_index, raw in enumerate(doc["sessions"]):
        producers, runs = _prepare(raw["events"], path, base, sidecars, ("sessions", s_index, "events"))
        close = raw.get("close")
        ended = Close(close["by"], close.get("code"), close.get("reason"), close.get("error")) if close else None
        # everything is checked now; the events are built when the session is first used
        sessions.append(Session(close=ended, runs=runs, build=functools.partial(_build, producers, name, s_index)))
    return Cassette(
        name=name,
        dialect=doc["dialect"],
        sessions=sessions,
        model=doc.get("model"),
        handshake=handshake,
        description=_leading_comment(text),
        matching=doc.get("matching") or {},
        path=path,
        rest=list(doc.get("rest") or []),
    )


def _leading_comment(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip() if not line.startswith("# ") else line[2:])
    return "\n".join(lines).strip()


Producer = Callable[[], Iterable[RecordedEvent]]


def _prepare(
    entries: list[dict[str, Any]],
    path: str,
    base: str,
    sidecars: dict[str, _audio.Sidecar],
    where: tuple[str | int, ...],
) -> tuple[list[Producer], tuple[ClientAudioRun, ...]]:
    """A session's entries checked, as producers of their events (in file order) and the
    microphone runs (kept as numbers)."""
    producers: list[Producer] = []
    runs: list[ClientAudioRun] = []
    for e_index, entry in enumerate(entries):
        at_us = round(entry["at"] * 1000)
        for kind in ("server", "client"):
            event = entry.get(kind)
            if event is not None:
                producers.append(functools.partial(_plain, Direction(kind), at_us, event))
        run = entry.get("text")
        if run is not None:
            producers.append(_text_run(run, at_us, path, (*where, e_index, "text")))
        run = entry.get("audio")
        if run is not None:
            prepared = _audio_run(run, at_us, path, base, sidecars, (*where, e_index, "audio"))
            if isinstance(prepared, ClientAudioRun):
                runs.append(prepared)
            else:
                producers.append(prepared)
    return producers, tuple(runs)


def _plain(direction: Direction, at_us: int, event: dict[str, Any]) -> list[RecordedEvent]:
    return [RecordedEvent.make(direction, at_us / 1000, event)]


def _build(producers: list[Producer], name: str, s_index: int) -> list[RecordedEvent]:
    """A session's events (but the microphone runs) in wire order: by offset, ties in file order."""
    was_enabled = gc.isenabled()
    gc.disable()  # as for loads: tens of thousands of objects, no cycles
    try:
        return _build_events(producers, name, s_index)
    finally:
        if was_enabled:
            gc.enable()


def _build_events(producers: list[Producer], name: str, s_index: int) -> list[RecordedEvent]:
    keyed: list[tuple[int, int, RecordedEvent]] = []
    seq = 0
    for produce in producers:
        for ev in produce():
            keyed.append((ev.offset_us, seq, ev))
            seq += 1
    keyed.sort()  # seq is unique, so events are never compared
    core = [k[2] for k in keyed]
    for i, ev in enumerate(core):
        if ev.direction is Direction.SERVER and ev.get("event_id") is None:
            # Hand-written cassettes may leave out server event ids; every client expects one.
            core[i] = ev.with_event_id(_synthetic_event_id(name, s_index, i))
    return core


def _offsets(run: dict[str, Any], at_us: int, n: int, path: str, where: tuple[str | int, ...]) -> list[int]:
    text = run.get("dt")
    gaps = _packed(text, _us, path, (*where, "dt"), "numbers of milliseconds") if text else [0] * (n - 1)
    if len(gaps) != n - 1:
        raise CassetteFormatError(path, json_path((*where, "dt")), f"{len(gaps)} gaps for {n} events (need {n - 1})")
    return list(itertools.accumulate(gaps, initial=at_us))


def _check_ids(ids: list[str | None], n: int, path: str, where: tuple[str | int, ...]) -> None:
    if len(ids) != n:
        raise CassetteFormatError(path, json_path((*where, "event_ids")), f"{len(ids)} event ids for {n} events")


def _text_run(run: dict[str, Any], at_us: int, path: str, where: tuple[str | int, ...]) -> Producer:
    etype = run["type"]
    if etype not in TEXT_DELTA_TYPES:
        raise CassetteFormatError(path, json_path((*where, "type")), f"{etype!r} is not a text delta event type")
    delta: str = run["delta"]
    parts = _ints(run["parts"], path, (*where, "parts"))
    if sum(parts) != len(delta):
        raise CassetteFormatError(
            path, json_path((*where, "parts")), f"parts add up to {sum(parts)} characters but delta has {len(delta)}"
        )
    n = len(parts)
    ids = _event_ids(run.get("event_ids"), n)
    _check_ids(ids, n, path, where)
    offsets = _offsets(run, at_us, n, path, where)
    return functools.partial(_text_events, etype, delta, parts, ids, offsets, run.get("with") or {})


def _text_events(etype: str, delta: str, parts: list[int], ids: list[str | None], offsets: list[int],
                 template: dict[str, Any]) -> Iterator[RecordedEvent]:
    pos = 0
    for size, event_id, t in zip(parts, ids, offsets):
        ev = _fields(etype, event_id, template)
        ev["delta"] = delta[pos : pos + size]
        pos += size
        yield RecordedEvent(Direction.SERVER, t, ev, type=etype)


def _sidecar(file: str, path: str, base: str, sidecars: dict[str, _audio.Sidecar], where: tuple[str | int, ...]) -> _audio.Sidecar:
    """The sidecar ``file`` names: a regular file in the cassette's own folder, even through links."""
    full = os.path.normpath(os.path.join(base, file))
    sidecar = sidecars.get(full)
    if sidecar is not None:
        return sidecar
    at = json_path((*where, "file"))
    if os.path.dirname(full) != os.path.normpath(base):
        raise CassetteFormatError(path, at, "an audio sidecar must sit next to its cassette")
    if not os.path.lexists(full):
        raise CassetteFormatError(path, at, f"audio sidecar {file!r} is missing")
    real = os.path.realpath(full)
    if os.path.dirname(real) != os.path.realpath(base):
        raise CassetteFormatError(path, at, f"audio sidecar {file!r} links outside the cassette's folder")
    try:
        if not stat.S_ISREG(os.stat(real).st_mode):
            raise CassetteFormatError(path, at, f"audio sidecar {file!r} is not a regular file")
        sidecar = sidecars[full] = _audio.Sidecar(real)
    except (OSError, ValueError) as exc:
        raise CassetteFormatError(path, at, f"{file}: {exc}") from None
    return sidecar


def _audio_run(
    run: dict[str, Any],
    at_us: int,
    path: str,
    base: str,
    sidecars: dict[str, _audio.Sidecar],
    where: tuple[str | int, ...],
) -> Producer | ClientAudioRun:
    etype = run["type"]
    if etype not in AUDIO_DELTA_TYPES and etype != AUDIO_APPEND:
        raise CassetteFormatError(path, json_path((*where, "type")), f"{etype!r} is not an audio event type")
    file = run["file"]
    sidecar = _sidecar(file, path, base, sidecars, where)
    fmt = _audio.FORMATS[run["format"]]
    if sidecar.format is not fmt:
        raise CassetteFormatError(path, json_path((*where, "format")), f"{file} holds {sidecar.format.name}, not {fmt.name}")
    chunks = _ints(run["chunk_bytes"], path, (*where, "chunk_bytes"))
    n = len(chunks)
    ids = _event_ids(run.get("event_ids"), n)
    _check_ids(ids, n, path, where)
    offsets = _offsets(run, at_us, n, path, where)
    start = run["offset"]
    end = start + sum(chunks)
    if end > sidecar.size:
        raise CassetteFormatError(path, json_path((*where, "chunk_bytes")), f"chunks end at byte {end} but {file} holds {sidecar.size} bytes")
    template = run.get("with") or {}
    if etype == AUDIO_APPEND:
        return ClientAudioRun(offsets, chunks, sidecar, start, template, ids)
    return functools.partial(_audio_events, etype, sidecar, start, chunks, ids, offsets, template)


def _audio_events(etype: str, sidecar: _audio.Sidecar, start: int, chunks: list[int], ids: list[str | None],
                  offsets: list[int], template: dict[str, Any]) -> Iterator[RecordedEvent]:
    pos = start
    for t, n_bytes, event_id in zip(offsets, chunks, ids):
        ref = _audio.AudioRef(sidecar, pos, n_bytes, "delta")
        yield RecordedEvent(Direction.SERVER, t, _fields(etype, event_id, template), type=etype, audio_bytes=n_bytes, audio=ref)
        pos += n_bytes
