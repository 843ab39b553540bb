"""The recorded data model: events, sessions, cassettes. Loading and saving live in
:mod:`mockrealtime.core.cassette` and :mod:`mockrealtime.core.cassette_writer`.

Invariants: a loaded cassette is immutable and shared by every connection that replays it (events
are frozen; what they compute is cached on them); audio kept in a sidecar is read from it when
sent, never on load (client audio is never read at all: only its length matters), and its wire text
is kept up to a process-wide budget (:data:`~mockrealtime.core.audio.TEXT_CACHE_BYTES`).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.events import AUDIO_APPEND, AUDIO_DELTA_TYPES, Direction
from mockrealtime.protocol.jsontext import compact



@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class RecordedEvent:
    """One event of a recording: who sent it, when, and what.

    ``fields`` is the event as sent, except for audio kept in a sidecar (``audio`` is then its
    :class:`~mockrealtime.core.audio.AudioRef`, and ``fields`` holds everything but the payload).
    Such an event's audio is read from the sidecar when it is asked for; its wire text is kept
    only up to a process-wide budget, so replaying a long call does not keep all its audio in memory.
    """

    direction: Direction
    offset_us: int
    fields: dict[str, Any]
    type: str = ""
    audio_bytes: int = 0
    audio: _audio.AudioRef | None = None
    #: the wire text (inline events), or for sidecar audio the text with an empty payload
    _text: str | None = dataclasses.field(default=None, init=False, repr=False)
    #: for sidecar audio: the whole wire text, once built, if the budget allowed it
    _full: str | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.type:
            object.__setattr__(self, "type", self.fields["type"])

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
        """The event as it goes on the wire (sidecar audio read and base64-encoded now)."""
        ref = self.audio
        if ref is None:
            return self.fields
        ev = dict(self.fields)
        ev[ref.field] = base64.b64encode(ref.read()).decode("ascii")
        return ev

    @property
    def text(self) -> str:
        """The event serialised as it goes on the wire; computed once, shared by all replays.

        Sidecar audio is read and encoded when first sent and kept while the budget
        lasts (:meth:`~mockrealtime.core.audio.Sidecar.reserve`); past it, each time it is sent.
        """
        full = self._full
        if full is not None:
            return full
        text = self._text
        ref = self.audio
        if text is None:
            fields = self.fields if ref is None else {**self.fields, ref.field: ""}
            text = compact(fields)
            object.__setattr__(self, "_text", text)
        if ref is None:
            return text
        # the payload is the last field, so the text ends with its empty string: ..."delta":""}
        full = text[:-2] + base64.b64encode(ref.read()).decode("ascii") + text[-2:]
        if ref.sidecar.reserve(len(full)):
            object.__setattr__(self, "_full", full)
        return full

    def get(self, key: str, default: Any = None) -> Any:
        """A top-level field, without reading sidecar audio unless the field is the audio."""
        if self.audio is not None and key == self.audio.field:
            return self.event.get(key, default)
        return self.fields.get(key, default)

    def with_event_id(self, event_id: str) -> RecordedEvent:
        """The same event with ``event_id`` set (placed after ``type``, as the API sends it)."""
        fields = {"type": self.fields.get("type", self.type), "event_id": event_id}
        fields.update((k, v) for k, v in self.fields.items() if k not in fields)
        return dataclasses.replace(self, fields=fields)

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

    def __init__(self, offsets_us: list[int], chunk_bytes: list[int], sidecar: _audio.Sidecar, start: int,
                 template: dict[str, Any], event_ids: list[str | None]) -> None:
        self.offsets_us = offsets_us
        self.chunk_bytes = chunk_bytes
        self.sidecar = sidecar
        self.start = start
        self.template = template
        self.event_ids = event_ids

    def events(self) -> list[RecordedEvent]:
        out, pos = [], self.start
        for t, n, event_id in zip(self.offsets_us, self.chunk_bytes, self.event_ids, strict=False):
            ref = _audio.AudioRef(self.sidecar, pos, n, "audio")
            out.append(RecordedEvent(Direction.CLIENT, t, _fields(AUDIO_APPEND, event_id, self.template),
                                     type=AUDIO_APPEND, audio_bytes=n, audio=ref))
            pos += n
        return out


def _fields(etype: str, event_id: str | None, template: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"type": etype}
    if event_id is not None:
        fields["event_id"] = event_id
    fields.update(template)
    return fields


class Session:
    """One recorded connection: its events in wire order, and how it closed.

    ``core`` holds every event but the client appends kept in ``runs``; ``events`` is the whole,
    merged by time (built on first use when there are runs). A loaded session is checked on load
    and its events built by ``build`` the first time they are asked for, so a cassette costs the
    building of only the sessions that are replayed.
    """

    __slots__ = ("_core", "runs", "close", "_events", "_build")

    def __init__(self, events: list[RecordedEvent] | None = None, close: Close | None = None, *,
                 runs: tuple[ClientAudioRun, ...] = (), build: Callable[[], list[RecordedEvent]] | None = None) -> None:
        self._core: list[RecordedEvent] | None = events if events is not None else None if build else []
        self._build = build
        self.runs = runs
        self.close = close
        self._events: list[RecordedEvent] | None = None if runs else self._core

    @property
    def core(self) -> list[RecordedEvent]:
        core = self._core
        if core is None:
            build = self._build
            # two threads may both build: the same events, the last kept
            core = build() if build is not None else self._core
            self._core, self._build = core, None
            if not self.runs:
                self._events = core
        return core  # type: ignore[return-value]

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
    #: REST calls recorded with the sessions (ephemeral keys minted before connecting), in order:
    #: ``{method, path, request, status, response}``, the key values redacted.
    rest: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: Replay plans built from the sessions, cached here so all connections share them.
    plans: dict[int, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return self.path or self.name
