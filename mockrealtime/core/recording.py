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
redaction and building events wait for a save, so recording adds almost nothing per frame.
:meth:`Recorder.save` appends what each session did since the last save to its cassette file (see
:mod:`mockrealtime.core.cassette_appender`) and forgets it: the I/O layer calls it when a session
ends and every few seconds while sessions are open (a checkpoint), so memory stays bounded during
a long call, a save costs what it adds, and a crash loses at most what came since the last save.
A session's part is written only once its dialect is settled (see below) or it has ended.

Dialect: the handshake gives the first guess (``OpenAI-Beta: realtime=v1`` or the
``openai-beta.realtime-v1`` subprotocol mean beta); the server's ``session.created`` has the last
word (a GA session carries ``session.type``, a beta one does not).

Several connections: one :class:`Recorder` holds them all, as sessions of one cassette in the order
they were first saved, which is the order they opened unless a later one settled its dialect first
(replay uses a cassette's sessions in order). A cassette has one dialect, so when both dialects were
recorded they go to two files named as the library expects: ``NAME.yaml`` (GA) and
``NAME.beta.yaml`` (a file keeps the dialect it was started with: when the first session was beta,
the second dialect's file is ``NAME.ga.yaml``).

Invariants: the handshake is stored redacted (the credentials it carried are kept apart, in memory
only, as :attr:`Recorder.known_secrets`, for the scan before saving); the first :meth:`end` of a
session wins (the relay may see both sides go); frames that are not a JSON object with a ``type``
(binary frames, invalid JSON) cannot be cassette events: they are counted in ``dropped``; a session
whose part held a secret is refused from then on (what was saved before stays; nothing after).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mockrealtime.core.cassette import Cassette, Close, Handshake, RecordedEvent, Session, cassette_name
from mockrealtime.core.cassette_appender import AppendingCassette, SessionWriter
from mockrealtime.core.ephemeral import ENDPOINTS
from mockrealtime.core.events import BETA, GA, Direction
from mockrealtime.errors import SecretLeftError
from mockrealtime.core.redaction import REDACTED, Redactor, credentials, redact_headers, redact_query, redact_subprotocols, secret_check

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"

#: What :meth:`Recorder.take` took from one session: its frames since, and its close if it ended.
Taken = tuple["SessionRecording", list[tuple[Direction, float, str]], Close | None]


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
        "index", "handshake", "dialect", "model", "frames", "close", "dropped", "client_frames",
        "refused", "_t0_ms", "_sniff_left", "_session", "_recorder", "_writer", "_unsaved", "_close_saved",
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
        #: Client frames already saved, kept only when the recorder keeps them (a test's journal).
        self.client_frames: list[tuple[Direction, float, str]] = []
        #: Set when a part of this session held a secret: nothing more of it is saved.
        self.refused = False
        self._writer: SessionWriter | None = None
        self._unsaved: list[RecordedEvent] = []  # taken but not written (a failed write)
        self._close_saved = False

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
        """The frames not yet saved as a cassette session, redacted (all of them for a recording
        never saved, as ``new_episodes`` uses it); built once after the session ended."""
        if self._session is not None:
            return self._session
        dropped = list(self.dropped)
        session = Session(self._events(self.frames, dropped), self._scrubbed_close())
        if self.close is not None:
            self._session = session
            self.dropped = dropped
        return session

    def _events(self, frames: list[tuple[Direction, float, str]], dropped: list[tuple[Direction, float, str]]) -> list[RecordedEvent]:
        scrub = self._recorder.redactor.scrub_event
        events: list[RecordedEvent] = []
        for direction, offset_ms, text in frames:
            try:
                event = json.loads(text)
            except ValueError:
                dropped.append((direction, offset_ms, "not JSON"))
                continue
            if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not event["type"]:
                dropped.append((direction, offset_ms, "not an event (a JSON object with a type)"))
                continue
            events.append(RecordedEvent.make(direction, max(offset_ms, 0.0), scrub(event)))
        return events

    def _scrubbed_close(self) -> Close | None:
        close = self.close
        if close is not None and (close.reason or close.error):
            scrub_text = self._recorder.redactor.scrub_text
            close = Close(close.by, close.code, scrub_text(close.reason) if close.reason else close.reason,
                          scrub_text(close.error) if close.error else close.error)
        return close

    @property
    def settled(self) -> bool:
        """Whether its dialect is known for good (the server's first frames were seen, or it ended)."""
        return self._sniff_left == 0 or self.close is not None

    @property
    def saved(self) -> bool:
        """Whether everything of it is on disk, its close included (or it was refused)."""
        return self.refused or self._close_saved


class Recorder:
    """Recorded connections, saved as they go to cassettes (one per dialect seen), checked for secrets.

    ``keep_client_frames`` keeps the client frames of saved parts in memory (``client_frames``),
    for a test's journal; a long-running recorder leaves it off.
    """

    def __init__(self, name: str = "recording", *, redactor: Redactor | None = None, description: str = "",
                 keep_client_frames: bool = False) -> None:
        self.name = name
        self.redactor = redactor or Redactor()
        self.description = description
        self.keep_client_frames = keep_client_frames
        self.recordings: list[SessionRecording] = []
        #: (dialect, entry) of the REST calls that minted ephemeral keys, redacted, in order.
        self.rest: list[tuple[str, dict[str, Any]]] = []
        #: Those not saved yet: each goes with the next part written in its dialect.
        self._rest_pending: dict[str, list[dict[str, Any]]] = {}
        #: Credentials seen in handshakes or given by the caller: scanned for, never saved or logged.
        self.known_secrets: set[str] = set()
        self._files: dict[str, AppendingCassette] = {}  # dialect -> the file its sessions go to
        self._output: str | None = None

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

    def rest_exchange(self, endpoint: str, path: str, headers: Mapping[str, str] | Sequence[tuple[str, str]],
                      request_body: bytes, status: int, response_body: bytes) -> None:
        """A REST call to a key-minting endpoint (a key of ``ephemeral.ENDPOINTS``) and its answer.

        Kept redacted: the minted key (GA ``value``, beta ``client_secret``) becomes ``<redacted>``
        and is remembered as a known secret, so the scan before saving stops any copy of it.
        """
        h_items = [(str(k), str(v)) for k, v in (headers.items() if isinstance(headers, Mapping) else headers)]
        self.known_secrets |= credentials(h_items)
        dialect = ENDPOINTS[endpoint][0]
        request, response = _json_object(request_body), _json_object(response_body)
        if response is None:
            response = {"error": {"message": "mockrealtime: the upstream's answer was not a JSON object", "type": "server_error",
                                  "param": None, "code": None}}
        minted = response.get("value") if dialect == GA else (response.get("client_secret") or {}).get("value")
        if isinstance(minted, str):
            self.add_secret(minted)
        if dialect == GA and "value" in response:
            response = {**response, "value": REDACTED}
        scrub = self.redactor.scrub_event
        entry: dict[str, Any] = {"method": "POST", "path": path, "request": scrub(request) if request is not None else None,
                                 "status": status, "response": scrub(response)}
        self.rest.append((dialect, entry))
        self._rest_pending.setdefault(dialect, []).append(entry)

    @property
    def dialects(self) -> list[str]:
        """Dialects recorded so far, in order of appearance."""
        seen: list[str] = []
        for rec in self.recordings:
            if rec.dialect not in seen:
                seen.append(rec.dialect)
        return seen

    def cassettes(self) -> dict[str, Cassette]:
        """dialect -> cassette of what is recorded and not yet saved (sessions still open end
        without a close)."""
        out: dict[str, Cassette] = {}
        for dialect in self.dialects:
            recs = [r for r in self.recordings if r.dialect == dialect]
            out[dialect] = self._header(dialect, recs[0], [r.to_session() for r in recs])
        return out

    def _header(self, dialect: str, first: SessionRecording, sessions: list[Session]) -> Cassette:
        recs = [r for r in self.recordings if r.dialect == dialect]
        return Cassette(name=self.name, dialect=dialect, sessions=sessions,
                        model=next((r.model for r in recs if r.model), None), handshake=first.handshake,
                        description=self.description, rest=[e for d, e in self.rest if d == dialect] if sessions else [])

    def output_paths(self, output: str) -> dict[str, str]:
        """Where each dialect's cassette goes: ``output`` for the first dialect saved, and
        ``NAME.beta.yaml`` (or ``NAME.ga.yaml`` when ``output`` holds beta) next to it."""
        taken = {d: f.path for d, f in self._files.items()} if self._output == output else {}
        first = next(iter(taken), None) or (self.dialects[0] if self.dialects else None)
        directory, name = os.path.dirname(output), cassette_name(output)
        out = {}
        for dialect in self.dialects:
            if dialect in taken:
                out[dialect] = taken[dialect]
            elif dialect == first:
                out[dialect] = output
            elif dialect == BETA:
                out[dialect] = os.path.join(directory, name + ".beta.yaml")
            else:
                out[dialect] = os.path.join(directory, name + f".{GA}.yaml" if first == BETA else name + ".yaml")
        return out

    def take(self) -> list[Taken]:
        """What every session did since the last save, taken from it: call this where frames
        arrive (the event loop), then :meth:`write` it, there or in a worker thread."""
        taken = []
        for rec in self.recordings:
            if rec.saved or not rec.settled:
                continue
            frames, rec.frames = rec.frames, []
            if self.keep_client_frames:
                rec.client_frames += [f for f in frames if f[0] is Direction.CLIENT]
            close = rec._scrubbed_close()
            if frames or rec._unsaved or close is not None:
                taken.append((rec, frames, close))
        return taken

    def write(self, taken: list[Taken], output: str) -> list[str]:
        """Append what :meth:`take` took to the cassettes; returns the files written. One write at
        a time, in the order taken.

        Each cassette part is checked for secrets first: a session with one raises
        :class:`~mockrealtime.errors.SecretLeftError` (after the other sessions are saved) and is
        refused from then on. A part that fails to write (disk full) is kept for the next write.
        """
        if self._output != output:
            for f in self._files.values():
                f.close()
            self._files, self._output = {}, output
        written: list[str] = []
        failure: Exception | None = None
        paths = self.output_paths(output)
        for rec, frames, close in taken:
            if rec.saved:  # refused, or its close saved by a write taken earlier
                continue
            events, rec._unsaved = rec._unsaved + rec._events(frames, rec.dropped), []
            if not events and close is None:
                continue
            file = self._files.get(rec.dialect)
            if file is None:
                header = self._header(rec.dialect, rec, [])
                check = secret_check(paths[rec.dialect], self.known_secrets, header.description)
                file = self._files[rec.dialect] = AppendingCassette(paths[rec.dialect], header, check=check)
            if rec._writer is None:
                rec._writer = file.new_session()
            rest = self._rest_pending.pop(rec.dialect, [])
            try:
                for path in file.append(rec._writer, events, close, rest=rest):
                    if path not in written:
                        written.append(path)
            except SecretLeftError as exc:
                rec.refused = True
                failure = failure or exc
                continue
            except Exception as exc:  # disk full, a bug: keep the events for the next write
                rec._unsaved = events
                if rest:
                    self._rest_pending[rec.dialect] = rest + self._rest_pending.get(rec.dialect, [])
                failure = failure or exc
                continue
            rec._close_saved = close is not None
        if failure is not None:
            raise failure
        return written

    def save(self, output: str) -> list[str]:
        """Append what every session did since the last save (:meth:`take`, then :meth:`write`)."""
        return self.write(self.take(), output)

    def close(self) -> None:
        """Close the files being written (what is saved stays)."""
        for f in self._files.values():
            f.close()


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
