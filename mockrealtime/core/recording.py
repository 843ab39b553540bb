"""Record mode's core: frames from both sides in, redacted cassettes out. Sans-IO.

Theory of operation
-------------------
The I/O layer (:mod:`mockrealtime.net.record`) relays a WebSocket connection and tells a
:class:`Recorder` what it saw: :meth:`Recorder.open` when a connection is up (with its handshake),
then :meth:`SessionRecording.client_text` / :meth:`SessionRecording.server_text` for every text
frame, with the caller's clock in milliseconds, and :meth:`SessionRecording.end` once, with who
closed, the code and the reason (and ``error`` when the session ended by a fault). Nothing here
sleeps, reads a clock or touches a socket.

On the relay's hot path a frame is only appended to a list (direction, offset, raw text): parsing,
redaction and building events wait until a cassette is asked for, so recording adds almost nothing
per frame. A recording that has ended is turned into a :class:`~mockrealtime.core.cassette.Session`
once and kept.

Dialect: the handshake gives the first guess (``OpenAI-Beta: realtime=v1`` or the
``openai-beta.realtime-v1`` subprotocol mean beta); the server's ``session.created`` has the last
word (a GA session carries ``session.type``, a beta one does not).

Several connections: one :class:`Recorder` holds them all, as sessions of one cassette in the order
they opened (replay uses a cassette's sessions in order). A cassette has one dialect, so when both
dialects were recorded they go to two files named as the library expects: ``NAME.yaml`` (GA) and
``NAME.beta.yaml``.

Invariants: the handshake is stored redacted (the credentials it carried are kept apart, in memory
only, as :attr:`Recorder.known_secrets`, for the scan before saving); the first :meth:`end` of a
session wins (the relay may see both sides go); frames that are not a JSON object with a ``type``
(binary frames, invalid JSON) cannot be cassette events: they are counted in ``dropped``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence

from mockrealtime.core.cassette import Cassette, Close, Handshake, RecordedEvent, Session, cassette_name
from mockrealtime.core.events import BETA, GA, Direction
from mockrealtime.core.redaction import Redactor, credentials, redact_headers, redact_query, redact_subprotocols, save_checked

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"


def negotiate_dialect(headers: Mapping[str, str] | Iterable[tuple[str, str]], subprotocols: Iterable[str] = ()) -> str:
    """The dialect a handshake asks for, as the real API reads it (header or subprotocol)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if name.lower() == "openai-beta" and "realtime=v1" in value.replace(" ", ""):
            return BETA
    return BETA if BETA_SUBPROTOCOL in subprotocols else GA


class SessionRecording:
    """One relayed connection being recorded."""

    __slots__ = (
        "index", "handshake", "dialect", "model", "frames", "close", "dropped",
        "_t0_ms", "_sniff_left", "_session", "_recorder",
    )

    def __init__(self, recorder: Recorder, index: int, handshake: Handshake, dialect: str, model: str | None, now_ms: float) -> None:
        self._recorder = recorder
        self.index = index
        self.handshake = handshake
        self.dialect = dialect
        self.model = model
        #: (direction, offset in ms since open, raw text): the hot path only appends here.
        self.frames: list[tuple[Direction, float, str]] = []
        self.close: Close | None = None
        #: (direction, offset_ms, why) of frames that cannot be cassette events.
        self.dropped: list[tuple[Direction, float, str]] = []
        self._t0_ms = now_ms
        self._sniff_left = 4  # server frames to look at for session.created
        self._session: Session | None = None

    # -- frames ------------------------------------------------------------------------------

    def client_text(self, text: str, now_ms: float) -> None:
        self.frames.append((Direction.CLIENT, now_ms - self._t0_ms, text))

    def server_text(self, text: str, now_ms: float) -> None:
        self.frames.append((Direction.SERVER, now_ms - self._t0_ms, text))
        if self._sniff_left:
            self._sniff(text)

    def binary(self, direction: Direction | str, n_bytes: int, now_ms: float) -> None:
        """A binary frame: relayed, but the Realtime API speaks JSON text, so not recorded."""
        self.dropped.append((Direction(direction), now_ms - self._t0_ms, f"binary frame of {n_bytes} bytes"))

    def end(self, by: str, code: int | None = None, reason: str | None = None, *, error: str | None = None) -> bool:
        """How the session ended; the first call wins. Returns whether this call was the first."""
        if self.close is not None:
            return False
        if by not in ("client", "server"):
            raise ValueError(f"a session is closed by the client or the server, not {by!r}")
        self.close = Close(by, code, reason, error)
        return True

    @property
    def open(self) -> bool:
        return self.close is None

    def elapsed_ms(self, now_ms: float) -> float:
        return now_ms - self._t0_ms

    def _sniff(self, text: str) -> None:
        self._sniff_left -= 1
        if '"session.created"' not in text:
            return
        self._sniff_left = 0
        try:
            event = json.loads(text)
        except ValueError:
            return
        session = event.get("session") if isinstance(event, dict) else None
        if isinstance(session, dict):
            self.dialect = GA if "type" in session else BETA
            if isinstance(session.get("model"), str):
                self.model = session["model"]

    # -- output ------------------------------------------------------------------------------

    def to_session(self) -> Session:
        """The recording as a cassette session, redacted; built once after the session ended."""
        if self._session is not None:
            return self._session
        scrub = self._recorder.redactor.scrub_event
        events: list[RecordedEvent] = []
        dropped = [d for d in self.dropped]
        for direction, offset_ms, text in self.frames:
            try:
                event = json.loads(text)
            except ValueError:
                dropped.append((direction, offset_ms, "not JSON"))
                continue
            if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not event["type"]:
                dropped.append((direction, offset_ms, "not an event (a JSON object with a type)"))
                continue
            events.append(RecordedEvent.make(direction, max(offset_ms, 0.0), scrub(event)))
        close = self.close
        if close is not None and (close.reason or close.error):
            scrub_text = self._recorder.redactor.scrub_text
            close = Close(close.by, close.code, scrub_text(close.reason) if close.reason else close.reason,
                          scrub_text(close.error) if close.error else close.error)
        session = Session(events, close)
        if self.close is not None:
            self._session = session
            self.dropped = dropped
        return session


class Recorder:
    """Recorded connections, turned into cassettes (one per dialect seen) and saved checked.

    ``Recorder.from_cassette(c)`` starts from an existing cassette: its sessions stay first and
    unchanged, live connections in its dialect become further sessions (the ``new_episodes`` way);
    saving writes the old sessions and the new ones.
    """

    def __init__(self, name: str = "recording", *, redactor: Redactor | None = None, description: str = "") -> None:
        self.name = name
        self.redactor = redactor or Redactor()
        self.description = description
        self.recordings: list[SessionRecording] = []
        #: Credentials seen in handshakes or given by the caller: scanned for, never saved or logged.
        self.known_secrets: set[str] = set()
        self._base: Cassette | None = None

    @classmethod
    def from_cassette(cls, cassette: Cassette, *, redactor: Redactor | None = None, description: str | None = None) -> Recorder:
        rec = cls(cassette.name, redactor=redactor, description=cassette.description if description is None else description)
        rec._base = cassette
        return rec

    def add_secret(self, value: str | None) -> None:
        if value:
            self.known_secrets.add(value)

    def open(
        self,
        now_ms: float,
        *,
        path: str = "/v1/realtime",
        query: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        subprotocols: Sequence[str] = (),
    ) -> SessionRecording:
        """A connection is up: start recording it. ``now_ms`` is the caller's clock (any origin)."""
        # plain str: header names may come as multidict istr, which YAML cannot write
        q_items = [(str(k), str(v)) for k, v in (query.items() if isinstance(query, Mapping) else query)]
        h_items = [(str(k), str(v)) for k, v in (headers.items() if isinstance(headers, Mapping) else headers)]
        subprotocols = [str(p) for p in subprotocols]
        self.known_secrets |= credentials(h_items, subprotocols, q_items)
        handshake = Handshake(
            path=path,
            query=redact_query(q_items),
            headers=redact_headers(h_items),
            subprotocols=redact_subprotocols(subprotocols),
        )
        qd = dict(q_items)
        model = qd.get("model") or qd.get("deployment")
        rec = SessionRecording(self, len(self.recordings), handshake, negotiate_dialect(h_items, subprotocols), model, now_ms)
        self.recordings.append(rec)
        return rec

    @property
    def dialects(self) -> list[str]:
        """Dialects recorded so far, in order of appearance (the base cassette's first)."""
        seen = [self._base.dialect] if self._base is not None else []
        for rec in self.recordings:
            if rec.dialect not in seen:
                seen.append(rec.dialect)
        return seen

    def cassettes(self) -> dict[str, Cassette]:
        """dialect -> cassette of everything recorded so far (sessions still open end without a close)."""
        out: dict[str, Cassette] = {}
        for dialect in self.dialects:
            recs = [r for r in self.recordings if r.dialect == dialect]
            base = self._base if self._base is not None and self._base.dialect == dialect else None
            sessions = (list(base.sessions) if base else []) + [r.to_session() for r in recs]
            first = recs[0] if recs else None
            out[dialect] = Cassette(
                name=self.name,
                dialect=dialect,
                sessions=sessions,
                model=(base.model if base else None) or next((r.model for r in recs if r.model), None),
                handshake=base.handshake if base else first.handshake if first else Handshake(),
                description=(base.description if base else "") or self.description,
                matching=dict(base.matching) if base else {},
            )
        return out

    def output_paths(self, output: str) -> dict[str, str]:
        """Where each dialect's cassette goes: ``output`` when there is one dialect, else
        ``NAME.yaml`` (GA) and ``NAME.beta.yaml`` next to it."""
        dialects = self.dialects
        if len(dialects) <= 1:
            return {d: output for d in dialects}
        directory, name = os.path.dirname(output), cassette_name(output)
        return {GA: os.path.join(directory, name + ".yaml"), BETA: os.path.join(directory, name + ".beta.yaml")}

    def save(self, output: str) -> list[str]:
        """Write every cassette, each checked for secrets first; returns the files written.

        Raises :class:`~mockrealtime.errors.SecretLeftError` for a cassette that still holds
        something that looks like a key (that file is not written; another dialect's may be).
        Writes nothing when no connection was recorded.
        """
        written: list[str] = []
        failure: Exception | None = None
        paths = self.output_paths(output)
        for dialect, cassette in self.cassettes().items():
            try:
                written += save_checked(cassette, paths[dialect], self.known_secrets)
            except Exception as exc:  # try the other dialect's file, then raise
                failure = failure or exc
        if failure is not None:
            raise failure
        return written
