"""The replay engine: live client events in; timed server events, divergences and a journal out.

Theory of operation
-------------------
A recorded session becomes a *plan*: a list of gates, each holding the server events it releases.

* The ``connect`` gate releases what the server sent before the first client event
  (``session.created``) as soon as the connection opens.
* A ``cue`` gate is a recorded client event other than an audio append. A live client event that
  matches the next cue releases the server events that followed that cue in the recording.
* An ``audio`` gate is a server-VAD event (``speech_started``, ``speech_stopped``,
  ``timeout_triggered``). It opens when the live client's appended audio reaches the position the
  recording shows (``audio_start_ms`` / ``audio_end_ms``), and releases the VAD event and what
  followed it (commit, transcription, the response server VAD created).

Appends are never cues: they only move the audio clock, by duration (not count, not bytes).
Gates are consumed in order. A client event that matches a cue lying beyond pending audio gates
opens those gates first: the client has moved on, as the recording shows it did.

Released events are scheduled at ``now + recorded delay * pace`` (pace 0: at once) and never before
an event released earlier, so the wire order is the recorded order. The engine never sleeps: the
I/O layer asks for ``next_deadline()`` and takes ``pop_due(now_ms)``.

Ids the client chose are echoed: a client ``item.id`` replaces the recorded item id everywhere it
appears, ``response.metadata`` from ``response.create`` goes into that response's ``created`` and
``done`` events, and an ``error`` caused by a cue carries the live client's ``event_id``.

A client event that matches no expected cue is a *divergence*: it gets an ``error`` event
(``invalid_request_error``, code ``cassette_mismatch``), the session stays open and waits for the
same cue again, and a near-miss record goes to ``divergences``.
"""

from __future__ import annotations

import collections
import heapq
import dataclasses
import json
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import Cassette, RecordedEvent
from mockrealtime.core.events import AUDIO_APPEND, ID_KEYS, VAD_POSITION_FIELD, Direction
from mockrealtime.core.matching import FieldDiff, Matcher
from mockrealtime.protocol.session import OBSERVERS, SessionModel, merge_session

_COMPACT = (",", ":")
MISMATCH_CODE = "cassette_mismatch"


@dataclasses.dataclass(slots=True)
class Gate:
    kind: str  # "connect" | "cue" | "audio"
    at_us: int  # recorded time the gate opened
    index: int = -1  # event index of the cue or VAD event in the session (-1 for connect)
    cue: RecordedEvent | None = None
    audio_ms: float = 0.0  # audio gates: live audio position that opens it
    sends: list[tuple[int, RecordedEvent]] = dataclasses.field(default_factory=list)  # (event index, event)
    has_error: bool = False  # an error among the sends: its event_id may need the live client's


@dataclasses.dataclass(slots=True)
class Plan:
    gates: list[Gate]
    close: Any  # cassette.Close | None
    ids: dict[int, frozenset[str]]  # event index -> id strings it carries


def build_plan(cassette: Cassette, session_index: int) -> Plan:
    """The gates of one recorded session; cached on the cassette, shared by all connections."""
    cached = cassette.plans.get(session_index)
    if cached is not None:
        return cached
    session = cassette.sessions[session_index]
    gates = [Gate("connect", 0)]
    ids: dict[int, frozenset[str]] = {}
    position_ms = 0.0
    in_fmt = _audio.PCM16
    # Microphone runs are numbers, not events: merge their chunks in by time as the walk goes.
    chunks = heapq.merge(*(zip(r.offsets_us, r.chunk_bytes) for r in session.runs))
    pending = next(chunks, None)
    consumed = 0
    last_used = 0  # the gate that got the latest server event: attribution never goes back past it
    answered: set[tuple[int, str]] = set()
    for core_index, ev in enumerate(session.core):
        while pending is not None and pending[0] < ev.offset_us:
            position_ms += in_fmt.duration_ms(pending[1])
            consumed += 1
            pending = next(chunks, None)
        index = core_index + consumed  # the event's index in Session.events
        if ev.direction is Direction.CLIENT:
            if ev.type == AUDIO_APPEND:
                position_ms += in_fmt.duration_ms(ev.audio_bytes)
            else:
                gates.append(Gate("cue", ev.offset_us, index, cue=ev, audio_ms=position_ms))
            continue
        if ev.type in ("session.created", "session.updated"):
            fmt, _ = _audio.session_formats(ev.event.get("session") or {})
            in_fmt = fmt or in_fmt
        field = VAD_POSITION_FIELD.get(ev.type)
        if field is not None and position_ms > 0:
            stated = ev.get(field)
            threshold = min(stated, position_ms) if isinstance(stated, (int, float)) else position_ms
            gates.append(Gate("audio", ev.offset_us, index, audio_ms=float(threshold)))
        target = _owner(ev, gates, last_used, answered)
        if target is None:
            target = len(gates) - 1
        last_used = target
        gates[target].sends.append((index, ev))
        if ev.type == "error":
            gates[target].has_error = True
        found = _ids_of(ev)
        if found:
            ids[index] = found
    plan = Plan(gates, session.close, ids)
    cassette.plans[session_index] = plan
    return plan


#: Server events that answer one kind of client event, which a pipelining client may have sent
#: before a later one (an ``error`` answers the event whose ``event_id`` it names).
_ANSWERS = {
    "session.updated": "session.update",
    "transcription_session.updated": "transcription_session.update",
    "conversation.item.created": "conversation.item.create",
    "conversation.item.added": "conversation.item.create",
    "conversation.item.done": "conversation.item.create",
    "conversation.item.truncated": "conversation.item.truncate",
    "conversation.item.deleted": "conversation.item.delete",
    "conversation.item.retrieved": "conversation.item.retrieve",
    "input_audio_buffer.committed": "input_audio_buffer.commit",
    "input_audio_buffer.cleared": "input_audio_buffer.clear",
    "response.created": "response.create",
}


def _owner(ev: RecordedEvent, gates: list[Gate], start: int, answered: set[tuple[int, str]]) -> int | None:
    """The gate of the client event a server event answers, when that is not the latest one.

    A client that pipelines (item.create, then response.create at once) was answered in the
    recording after its second event; a live client that waits for the first answer must still
    get it. Only gates from ``start`` on are candidates, so recorded order is kept.
    """
    if ev.type == "error":
        wanted = (ev.event.get("error") or {}).get("event_id")
        if wanted is None:
            return None
        for i in range(start, len(gates)):
            cue = gates[i].cue
            if cue is not None and cue.get("event_id") == wanted:
                return i
        return None
    kind = _ANSWERS.get(ev.type)
    if kind is None:
        return None
    for i in range(start, len(gates)):
        cue = gates[i].cue
        if cue is None or cue.type != kind or (i, ev.type) in answered:
            continue
        if kind == "conversation.item.create" and not _same_item(cue.event.get("item"), ev.event.get("item")):
            continue
        answered.add((i, ev.type))
        return i
    return None


def _same_item(sent: Any, echoed: Any) -> bool:
    if not isinstance(sent, dict) or not isinstance(echoed, dict):
        return False
    if sent.get("id") is not None:
        return sent.get("id") == echoed.get("id")
    return sent.get("type") == echoed.get("type") and sent.get("role") == echoed.get("role")


def _ids_of(ev: RecordedEvent) -> frozenset[str]:
    found: set[str] = set()
    _collect_ids(ev.fields, found)  # fields: sidecar audio is not read (it holds no ids)
    return frozenset(found)


def _collect_ids(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ID_KEYS and isinstance(v, str):
                found.add(v)
            elif isinstance(v, (dict, list)):
                _collect_ids(v, found)
    elif isinstance(value, list):
        for v in value:
            _collect_ids(v, found)


def _replace_ids(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (mapping.get(v, v) if k in ID_KEYS and isinstance(v, str) else _replace_ids(v, mapping))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace_ids(v, mapping) for v in value]
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class CloseFrame:
    """The recording shows the server closing here."""

    code: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Divergence:
    """A near-miss: what the recording expected next and what the live client sent instead."""

    cassette: str
    session: int
    event_index: int | None  # index of the expected client event in the session, None past the end
    expected: dict[str, Any] | None
    received: dict[str, Any]
    differences: tuple[FieldDiff, ...]
    closest_index: int | None = None  # a later recorded client event that would have matched

    @property
    def summary(self) -> str:
        got = self.received.get("type")
        where = f"cassette {self.cassette!r}, session {self.session}"
        if self.expected is None:
            return f"received {got!r} but the recording has no more client events ({where})"
        text = f"expected {self.expected.get('type')!r} ({where}, event {self.event_index}), received {got!r}"
        shown = [d for d in self.differences if d.matched_on] or list(self.differences)
        if shown and self.expected.get("type") == got:
            text += "; differing: " + "; ".join(
                f"{d.path}: expected {_brief(d.expected)}, received {_brief(d.received)}" for d in shown[:4]
            )
        if self.closest_index is not None:
            text += f"; it would match the recorded event {self.closest_index} further on"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "cassette": self.cassette,
            "session": self.session,
            "event_index": self.event_index,
            "expected": self.expected,
            "received": self.received,
            "differences": [dataclasses.asdict(d) for d in self.differences],
            "closest_index": self.closest_index,
            "summary": self.summary,
        }


def _brief(value: Any) -> str:
    text = value if isinstance(value, str) and value == "<absent>" else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def strip_audio(event: dict[str, Any]) -> dict[str, Any]:
    """A client event as the journal keeps it: audio payloads replaced by their decoded length."""
    if event.get("type") == AUDIO_APPEND and isinstance(event.get("audio"), str):
        out = {k: v for k, v in event.items() if k != "audio"}
        out["audio_bytes"] = _audio.b64_decoded_len(event["audio"])
        return out
    return event


@dataclasses.dataclass(slots=True)
class JournalEntry:
    at_ms: float  # time since connect
    event: dict[str, Any]  # audio replaced by "audio_bytes"
    outcome: str  # "matched" | "audio" | "diverged" | "answered" | "rejected"
    event_index: int | None = None  # the recorded event it matched


class ReplaySession:
    """One live connection replaying one recorded session. Sans-IO: the caller supplies time."""

    def __init__(
        self,
        cassette: Cassette,
        session_index: int = 0,
        *,
        pace: float = 0.0,
        matcher: Matcher | None = None,
        strict: bool = False,
        session_overrides: dict[str, Any] | None = None,
    ) -> None:
        if pace < 0:
            raise ValueError("pace must be 0 (as fast as possible) or more")
        self.cassette = cassette
        self.session_index = session_index
        self.dialect = cassette.dialect
        self.pace = pace
        self.matcher = matcher or Matcher.build(cassette.matching)
        self.plan = build_plan(cassette, session_index)
        #: strict: every client event must be in the recording. Lenient (the default): events the
        #: real server answers from its state alone are answered from the session model.
        self.strict = strict
        #: Merged over the recorded ``session.created`` session (the configuration an ephemeral
        #: key was minted with).
        self.session_overrides = session_overrides or None
        self.model = SessionModel(cassette.dialect)
        self.journal: list[JournalEntry] = []
        self.divergences: list[Divergence] = []
        self.audio_ms = 0.0  # live audio appended this session
        self._next_gate = 0
        # (due ms, frame, recorded event or None, the event as sent when synthesized or rewritten)
        self._queue: collections.deque[tuple[float, Any, RecordedEvent | None, dict[str, Any] | None]] = collections.deque()
        self._cancelled: set[str] = set()  # responses cut short live: their recorded rest is never sent
        self._last_at = 0.0
        self._id_map: dict[str, str] = {}
        self._metadata: dict[str, Any] = {}  # recorded response id -> live metadata
        self._serial = 0
        self.closed = False

    # -- input -------------------------------------------------------------------------------

    def start(self, now_ms: float) -> None:
        """The connection is open: release what the server sent before any client event."""
        self._release(self.plan.gates[0], now_ms, None)
        self._next_gate = 1
        self._open_audio_gates(now_ms)

    def expects(self, event: dict[str, Any]) -> bool:
        """Whether ``event`` matches the next recorded client event.

        The I/O layer asks before answering an invalid event with a validation error: when the
        recording holds that very event (it captured the real API rejecting it), the recording's
        own answer is replayed instead.
        """
        cue = self._next_cue()
        return cue is not None and cue.cue is not None and not self.matcher.differences(cue.cue.event, event)

    def _next_cue(self) -> Gate | None:
        gates = self.plan.gates
        i = self._next_gate
        while i < len(gates) and gates[i].kind == "audio":
            i += 1
        return gates[i] if i < len(gates) else None

    def receive(self, event: dict[str, Any], now_ms: float) -> None:
        """A parsed client event arrived (valid, or invalid in the way the recording shows)."""
        etype = event.get("type")
        if etype == AUDIO_APPEND:
            audio = event.get("audio")
            if isinstance(audio, str):
                self.audio_ms += self.model.observe_client_audio(_audio.b64_decoded_len(audio))
            self.journal.append(JournalEntry(now_ms, strip_audio(event), "audio"))
            self._open_audio_gates(now_ms)
            return
        gates = self.plan.gates
        i = self._next_gate
        # pending audio gates do not block a client event the recording shows after them
        while i < len(gates) and gates[i].kind == "audio":
            i += 1
        if i < len(gates):
            gate = gates[i]
            assert gate.cue is not None
            diffs = self.matcher.differences(gate.cue.event, event)
            if not diffs:
                for skipped in gates[self._next_gate : i]:
                    self._release(skipped, now_ms, None)
                self._release(gate, now_ms, event)
                self._next_gate = i + 1
                self.journal.append(JournalEntry(now_ms, strip_audio(event), "matched", gate.index))
                self._open_audio_gates(now_ms)
                return
        if not self.strict:
            answers = self.model.answer(event)
            if answers is not None:
                if etype == "response.cancel" and answers and answers[-1]["type"] == "response.done":
                    self._drop_response(self.model.active_response_id)
                for answer in answers:
                    self.send_synthesized(answer, now_ms)
                self.journal.append(JournalEntry(now_ms, strip_audio(event), "answered"))
                return
        self._diverge(event, i, now_ms)

    def reject(self, error: dict[str, Any], client_event: dict[str, Any] | None, now_ms: float) -> None:
        """Queue an ``error`` event for a client frame that failed validation."""
        self.send_synthesized(error, now_ms)
        if client_event is not None:
            self.journal.append(JournalEntry(now_ms, strip_audio(client_event), "rejected"))

    def send_synthesized(self, event: dict[str, Any], now_ms: float) -> None:
        """Queue an event the mock made up (not from the recording), after anything already queued."""
        if "event_id" not in event:
            event = {"type": event["type"], "event_id": self.new_event_id(), **event}
        frame = json.dumps(event, separators=_COMPACT, ensure_ascii=False)
        queue = self._queue
        if not queue or queue[-1][0] <= now_ms:
            self._schedule(now_ms, frame, None, event)
            return
        # The server answers at once, even while a paced response is still streaming out.
        position = next(i for i, q in enumerate(queue) if q[0] > now_ms)
        queue.insert(position, (now_ms, frame, None, event))

    def end(self, error: dict[str, Any], code: int, reason: str, now_ms: float) -> None:
        """End the session now: what is still queued is dropped, then one error and a close."""
        self._queue.clear()
        self._last_at = now_ms
        self.send_synthesized(error, now_ms)
        self._schedule(now_ms, CloseFrame(code, reason), None)

    def new_event_id(self) -> str:
        self._serial += 1
        return f"event_MR{self._serial:019d}"

    # -- output ------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the next queued frame is due (ms since connect), or None if nothing is queued."""
        return self._queue[0][0] if self._queue else None

    def pop_due(self, now_ms: float) -> list[str | CloseFrame]:
        """Frames due by ``now_ms``, in order: JSON text, or a CloseFrame."""
        queue = self._queue
        if queue and queue[-1][0] <= now_ms:
            due = list(queue)  # all of it (the usual case at pace 0)
            queue.clear()
        else:
            due = []
            while queue and queue[0][0] <= now_ms:
                due.append(queue.popleft())
        out: list[str | CloseFrame] = []
        model = self.model
        observers = OBSERVERS
        for _, frame, source, data in due:
            if source is None:
                if data is None:  # a CloseFrame
                    out.append(frame)
                    self.closed = True
                    queue.clear()
                    break
                handler = observers.get(data["type"])
                if handler is not None:
                    handler(model, data)
            else:
                handler = observers.get(source.type)
                if handler is not None:
                    handler(model, source if data is None else data)
            out.append(frame)
        return out

    @property
    def finished(self) -> bool:
        """Every gate released and every frame sent."""
        return self._next_gate >= len(self.plan.gates) and not self._queue

    def unplayed(self) -> list[dict[str, Any]]:
        """What the recording still held: client events never received, server events never sent."""
        out = []
        for gate in self.plan.gates[self._next_gate :]:
            if gate.cue is not None:
                out.append({"event_index": gate.index, "direction": "client", "type": gate.cue.type})
            elif gate.kind == "audio":
                out.append(
                    {"event_index": gate.index, "direction": "client", "type": AUDIO_APPEND, "until_audio_ms": gate.audio_ms}
                )
            for index, ev in gate.sends:
                out.append({"event_index": index, "direction": "server", "type": ev.type})
        for _, frame, source, _data in self._queue:
            if source is not None:
                out.append({"event_index": None, "direction": "server", "type": source.type})
        return out

    # -- internals ---------------------------------------------------------------------------

    def _open_audio_gates(self, now_ms: float) -> None:
        gates = self.plan.gates
        while self._next_gate < len(gates):
            gate = gates[self._next_gate]
            if gate.kind != "audio" or self.audio_ms + 1e-6 < gate.audio_ms:
                return
            self._release(gate, now_ms, None)
            self._next_gate += 1

    def _schedule(self, at_ms: float, frame: Any, source: RecordedEvent | None, data: dict[str, Any] | None = None) -> None:
        at_ms = max(at_ms, self._last_at)
        self._last_at = at_ms
        self._queue.append((at_ms, frame, source, data))

    def _drop_response(self, response_id: str | None) -> None:
        """Forget what is still queued of a response cut short, and never send its recorded rest."""
        if response_id is None:
            return
        self._cancelled.add(response_id)
        self._queue = collections.deque(q for q in self._queue if q[2] is None or _response_of(q[2]) != response_id)

    def _release(self, gate: Gate, now_ms: float, live: dict[str, Any] | None) -> None:
        cue = gate.cue
        owner_id: Any = _NO_OWNER
        if cue is not None and live is not None:
            self._learn_ids(gate, cue, live)
            owner_id = live.get("event_id")
        base_us = gate.at_us if gate.kind != "audio" or not gate.sends else gate.sends[0][1].offset_us
        pace = self.pace
        recorded_cue_id = cue.get("event_id") if cue is not None else None
        interrupted = self._interrupts(gate)
        if (not pace and not self._id_map and not self._metadata and not self._cancelled and not interrupted
                and (owner_id is _NO_OWNER or not gate.has_error) and (self.session_overrides is None or cue is not None)):
            # the common case: nothing to rewrite, everything due now; stored text goes out as is
            at = max(now_ms, self._last_at)
            self._last_at = at
            self._queue.extend([(at, ev.text, ev, None) for _, ev in gate.sends])
        else:
            for n, (index, ev) in enumerate(gate.sends):
                if self._cancelled and _response_of(ev) in self._cancelled:
                    continue
                at = now_ms + (ev.offset_us - base_us) / 1000.0 * pace if pace else now_ms
                text, data = self._render(index, ev, owner_id, recorded_cue_id)
                self._schedule(at, text, ev, data)
                if n == 0 and interrupted:
                    # server VAD heard the user while a response was still going out: cut it short
                    response_id = self.model.active_response_id
                    cancel = self.model.cancel("turn_detected")
                    self._drop_response(response_id)
                    for event in cancel:
                        self.send_synthesized(event, at)
        if gate is self.plan.gates[-1] and self.plan.close is not None and self.plan.close.by == "server":
            close = self.plan.close
            last_us = gate.sends[-1][1].offset_us if gate.sends else base_us
            at = now_ms + (last_us - base_us) / 1000.0 * pace
            self._schedule(at, CloseFrame(close.code or 1000, close.reason or ""), None)

    def _learn_ids(self, gate: Gate, cue: RecordedEvent, live: dict[str, Any]) -> None:
        if cue.type == "conversation.item.create":
            live_id = (live.get("item") or {}).get("id")
            if isinstance(live_id, str):
                recorded_id = (cue.event.get("item") or {}).get("id")
                if recorded_id is None:
                    for _, ev in gate.sends:
                        if ev.type in ("conversation.item.created", "conversation.item.added"):
                            recorded_id = (ev.event.get("item") or {}).get("id")
                            break
                if isinstance(recorded_id, str) and recorded_id != live_id:
                    self._id_map[recorded_id] = live_id
        elif cue.type == "response.create":
            live_meta = (live.get("response") or {}).get("metadata")
            recorded_meta = (cue.event.get("response") or {}).get("metadata")
            if live_meta != recorded_meta:
                for _, ev in gate.sends:
                    if ev.type == "response.created":
                        rid = (ev.event.get("response") or {}).get("id")
                        if isinstance(rid, str):
                            self._metadata[rid] = live_meta
                        break

    def _interrupts(self, gate: Gate) -> bool:
        """A speech_started gate opening while a response is still going out, not recorded as cut."""
        if gate.kind != "audio" or not gate.sends or gate.sends[0][1].type != "input_audio_buffer.speech_started":
            return False
        response_id = self.model.active_response_id
        if response_id is None or not self.model.interrupt_response:
            return False
        pending = any(q[2] is not None and _response_of(q[2]) == response_id for q in self._queue)
        recorded_end = any(ev.type == "response.done" and _response_of(ev) == response_id for _, ev in gate.sends)
        return pending and not recorded_end

    def _render(self, index: int, ev: RecordedEvent, owner_id: Any, recorded_cue_id: Any) -> tuple[str, dict[str, Any] | None]:
        data: dict[str, Any] | None = None
        etype = ev.type
        if etype == "error" and owner_id is not _NO_OWNER:
            err = ev.event.get("error") or {}
            if err.get("event_id") in (recorded_cue_id, None) and err.get("event_id") != owner_id:
                data = {**ev.event, "error": {**err, "event_id": owner_id}}
        elif etype == "session.created" and self.session_overrides is not None:
            data = {**ev.event, "session": merge_session(ev.event.get("session") or {}, self.session_overrides)}
        elif self._metadata and etype in ("response.created", "response.done"):
            response = ev.event.get("response") or {}
            rid = response.get("id")
            if rid in self._metadata:
                data = {**ev.event, "response": {**response, "metadata": self._metadata[rid]}}
        if self._id_map:
            found = self.plan.ids.get(index)
            if found and not found.isdisjoint(self._id_map):
                data = _replace_ids(data if data is not None else ev.event, self._id_map)
        if data is None:
            return ev.text, None
        return json.dumps(data, separators=_COMPACT, ensure_ascii=False), data

    def _diverge(self, event: dict[str, Any], gate_index: int, now_ms: float) -> None:
        gates = self.plan.gates
        expected_gate = gates[gate_index] if gate_index < len(gates) else None
        expected = expected_gate.cue.event if expected_gate is not None and expected_gate.cue else None
        if expected is not None:
            diffs = tuple(self.matcher.all_differences(expected, event)) if expected.get("type") == event.get(
                "type"
            ) else tuple(self.matcher.differences(expected, event))
        else:
            diffs = ()
        closest = None
        for later in gates[gate_index + 1 :]:
            if later.cue is not None and not self.matcher.differences(later.cue.event, event):
                closest = later.index
                break
        record = Divergence(
            cassette=self.cassette.label,
            session=self.session_index,
            event_index=expected_gate.index if expected_gate is not None else None,
            expected=expected,
            received=strip_audio(event),
            differences=diffs,
            closest_index=closest,
        )
        self.divergences.append(record)
        self.journal.append(JournalEntry(now_ms, strip_audio(event), "diverged"))
        self.send_synthesized(
            {
                "type": "error",
                "event_id": self.new_event_id(),
                "error": {
                    "type": "invalid_request_error",
                    "code": MISMATCH_CODE,
                    "message": "mockrealtime: client event does not match the cassette: " + record.summary,
                    "param": None,
                    "event_id": event.get("event_id"),
                },
            },
            now_ms,
        )


def _response_of(ev: RecordedEvent) -> str | None:
    """The response a recorded server event belongs to."""
    rid = ev.get("response_id")
    if rid is None and ev.type in ("response.created", "response.done"):
        rid = (ev.event.get("response") or {}).get("id")
    return rid if isinstance(rid, str) else None


_NO_OWNER = object()


class SessionCursor:
    """Which recorded session the next connection to a cassette replays: in order, then again."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, cassette: Cassette) -> int:
        key = cassette.label
        index = self._next.get(key, 0) % len(cassette.sessions)
        self._next[key] = index + 1
        return index

    def reset(self) -> None:
        self._next.clear()
