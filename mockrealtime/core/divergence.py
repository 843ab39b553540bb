"""What a replay keeps about a connection: divergences and a journal, both bounded.

A connection can send anything, for as long as it likes; what the server keeps about it must not
grow with that. The journal keeps compact entries (type, outcome, the fields matchers use; long
strings replaced by their length) in a ring of fixed size with a count of what fell out. Identical
divergences are counted, not stored again, and at most ``limit`` distinct ones are kept.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.events import AUDIO_APPEND
from mockrealtime.core.matching import FieldDiff
from mockrealtime.core.outbox import CloseFrame
from mockrealtime.protocol.session import SessionModel

MISMATCH_CODE = "cassette_mismatch"
STALL_CODE = "cassette_stalled"
#: The close after a divergence under the ``close`` policy (the API's fatal in-band errors use 4000).
DIVERGENCE_CLOSE = 4000
TRIGGER = "response.create"

if TYPE_CHECKING:
    from mockrealtime.core.cassette import Cassette
    from mockrealtime.core.matching import Matcher
    from mockrealtime.core.plan import Plan, Turn
#: Strings longer than this are kept as their length in the journal and in divergence records.
MAX_KEPT_STRING = 2048
JOURNAL_LIMIT = 10_000
DIVERGENCE_LIMIT = 100


@dataclasses.dataclass(frozen=True)
class Divergence:
    """A near-miss: what the recording expected next and what the live client sent instead.

    ``note`` replaces the summary for a divergence that is not about one event (a stall).
    """

    cassette: str
    session: int
    event_index: int | None  # index of the expected client event in the session, None past the end
    expected: dict[str, Any] | None
    received: dict[str, Any]
    differences: tuple[FieldDiff, ...]
    closest_index: int | None = None  # a later recorded client event that would have matched
    note: str | None = None
    kind: str = "mismatch"  # mismatch | skipped (strict) | stall

    @property
    def summary(self) -> str:
        if self.note is not None:
            return self.note
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
            "kind": self.kind,
            "summary": self.summary,
        }


def _brief(value: Any) -> str:
    text = value if isinstance(value, str) and value == "<absent>" else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def strip_audio(event: dict[str, Any]) -> dict[str, Any]:
    """A client event as the journal keeps it: audio replaced by its decoded length, long strings by theirs."""
    if event.get("type") == AUDIO_APPEND and isinstance(event.get("audio"), str):
        out = {k: v for k, v in event.items() if k != "audio"}
        out["audio_bytes"] = _audio.b64_decoded_len(event["audio"])
        return out
    return _compact(event, 0)


def _compact(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_KEPT_STRING else f"<{len(value)} characters>"
    if depth > 32:
        return "<nested too deep>"
    if isinstance(value, dict):
        if not any(isinstance(v, (str, dict, list)) for v in value.values()):
            return value
        return {k: _compact(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v, depth + 1) for v in value]
    return value


@dataclasses.dataclass(slots=True)
class JournalEntry:
    at_ms: float  # time since connect
    event: dict[str, Any]  # audio replaced by "audio_bytes", long strings by their length
    outcome: str  # "matched" | "audio" | "diverged" | "answered" | "rejected" | "stalled"
    event_index: int | None = None  # the recorded event it matched


class BoundedJournal(collections.deque):
    """A ring of journal entries; ``dropped`` counts what fell out the front."""

    def __init__(self, limit: int = JOURNAL_LIMIT) -> None:
        super().__init__(maxlen=limit)
        self.dropped = 0

    def append(self, entry: JournalEntry) -> None:
        if len(self) == self.maxlen:
            self.dropped += 1
        super().append(entry)


class DivergenceStore(list):
    """Distinct divergences in order; repeats counted in ``repeats``, overflow in ``dropped``."""

    def __init__(self, limit: int = DIVERGENCE_LIMIT) -> None:
        super().__init__()
        self.limit = limit
        self.repeats: dict[str, int] = {}
        self.dropped = 0

    def add(self, record: Divergence) -> bool:
        """Keep ``record``; False when it repeats one already kept (or the store is full)."""
        key = record.kind + "\0" + record.summary
        if key in self.repeats:
            self.repeats[key] += 1
            return False
        if len(self) >= self.limit:
            self.dropped += 1
            return False
        self.repeats[key] = 0
        self.append(record)
        return True


class JournalSnapshot(tuple):
    """A finished connection's journal: its entries, frozen, and how many fell out of the ring."""

    dropped = 0  # set on the instance only when some did (no dict otherwise)


_NO_DIVERGENCES = DivergenceStore(0)


class FinishedReplay:
    """What the server keeps about a finished replay, in place of its engine: the journal, the
    divergences, what the recording still held, and shared references to the cassette and matcher.
    Read like the engine (``journal``, ``divergences``, ``unplayed()``...); it holds no replay state."""

    __slots__ = ("cassette", "session_index", "dialect", "pace", "strict", "matcher", "connection", "journal",
                 "divergences", "stalled", "_ahead")

    closed = True

    def __init__(self, engine: Any) -> None:
        self.cassette = engine.cassette
        self.session_index, self.dialect, self.connection = engine.session_index, engine.dialect, engine.connection
        self.pace, self.strict, self.matcher, self.stalled = engine.pace, engine.strict, engine.matcher, engine.stalled
        journal = JournalSnapshot(engine.journal)
        if engine.journal.dropped:
            journal.dropped = engine.journal.dropped
        self.journal = journal
        self.divergences = engine.divergences if engine.divergences or engine.divergences.dropped else _NO_DIVERGENCES
        self._ahead = engine._ahead()  # positions into the shared plan, not a list of what they hold

    def unplayed(self) -> list[dict[str, Any]]:
        return _unplayed(*self._ahead)


def _unplayed(turns: list[Turn], start: int, unsent: frozenset[int] | None, runs: list[tuple[list[Any], int]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for turn in turns[start:]:
        if unsent is not None:
            out.extend({"event_index": c.index, "direction": "client", "type": c.type} for c in turn.cues if c.index in unsent)
        if turn.kind == "response":
            out.append({"event_index": turn.index, "direction": "client", "type": TRIGGER})
        elif turn.kind == "audio":
            out.append({"event_index": turn.index, "direction": "client", "type": AUDIO_APPEND, "until_audio_ms": turn.audio_ms})
        out.extend({"event_index": i, "direction": "server", "type": ev.type} for i, ev in turn.sends)
    for sends, pos in runs:
        out.extend({"event_index": i, "direction": "server", "type": ev.type} for i, ev in sends[pos:])
    return out


class Reporting:
    """What a ReplaySession reports: divergences, stalls, what is left unplayed; a mixin over its state."""

    # The ReplaySession state this mixin reads and writes (set in ReplaySession.__init__).
    cassette: Cassette
    session_index: int
    dialect: str
    plan: Plan
    matcher: Matcher
    strict: bool
    on_divergence: str
    journal: BoundedJournal
    divergences: DivergenceStore
    audio_ms: float
    closed: bool
    stalled: bool
    _turn: int
    _used: bytearray
    _now: collections.deque[tuple[float, int, Any]]
    _runs: collections.deque[Any]
    _override: dict[str, str]
    _chosen: dict[str, str]

    if TYPE_CHECKING:

        def new_event_id(self) -> str: ...

        def send_synthesized(self, event: dict[str, Any], now_ms: float) -> None: ...

        def _push(self, now_ms: float, frame: Any) -> None: ...

        def _note(self, now_ms: float, event: dict[str, Any], outcome: str, index: int | None = None) -> None: ...

        def trigger_differences(self, turn: Turn, event: dict[str, Any]) -> list[FieldDiff]: ...

        def _untagged(self, event: dict[str, Any]) -> dict[str, Any]: ...

    def waiting_for(self) -> str | None:
        """What the recording needs from the client next, when nothing is due (None otherwise)."""
        if self.closed or self._now or self._runs:
            return None
        turns = self.plan.turns
        i = self._turn
        while i < len(turns) and turns[i].kind == "end":
            i += 1
        if i >= len(turns):
            return None
        turn = turns[i]
        if turn.kind == "audio":
            return f"{turn.label}; the client has appended {self.audio_ms:.0f} ms"
        return turn.label

    def stall(self, after_s: float, now_ms: float) -> None:
        """Nothing was due and the client sent nothing the recording needs for ``after_s``: say so."""
        waiting = self.waiting_for()
        if waiting is None or self.stalled:
            return
        self.stalled = True
        note = (f"stalled: the server waited {after_s:g} s for {waiting} (cassette {self.cassette.label!r}, "
                f"session {self.session_index})")
        self.journal.append(JournalEntry(now_ms, {"type": "mockrealtime.stall", "waiting_for": waiting}, "stalled"))
        self.divergences.add(Divergence(self.cassette.label, self.session_index, None, None, {}, (), note=note, kind="stall"))
        self._error(STALL_CODE, "mockrealtime: " + note, None, now_ms)

    # -- output ------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Every trigger reached and every frame sent."""
        turns = self.plan.turns
        return all(t.kind == "end" for t in turns[self._turn:]) and not self._now and not self._runs

    def unplayed(self) -> list[dict[str, Any]]:
        """What the recording still held: triggers never reached, model output never sent (and in
        strict mode, recorded housekeeping the client never sent)."""
        return _unplayed(*self._ahead())

    def _ahead(self) -> tuple[list[Turn], int, frozenset[int] | None, list[tuple[list[Any], int]]]:
        """What :meth:`unplayed` lists, as positions into the shared plan: the turns from the next
        one, the cues never sent (strict), the rest of each queued run."""
        turns = self.plan.turns
        unsent = None
        if self.strict:
            unsent = frozenset(c.index for t in turns[self._turn:] for c in t.cues if not self._used[c.slot])
        return turns, self._turn, unsent, [(run.sends, run.pos) for run in self._runs]

    def release(self) -> FinishedReplay:
        """The connection closed: free the replay state; what is worth keeping about it, small."""
        finished = FinishedReplay(self)
        self.unplayed = finished.unplayed  # type: ignore[method-assign]
        self._runs.clear()
        self._now.clear()
        self.model = SessionModel(self.dialect)
        self._override.clear()
        self._chosen.clear()
        return finished

    def _error(self, code: str, message: str, client_event_id: Any, now_ms: float) -> None:
        self.send_synthesized({"type": "error", "event_id": self.new_event_id(), "error": {
            "type": "invalid_request_error", "code": code, "message": message, "param": None,
            "event_id": client_event_id if isinstance(client_event_id, str) else None}}, now_ms)
        if self.on_divergence == "close":
            self._runs.clear()
            self._push(now_ms, CloseFrame(DIVERGENCE_CLOSE, f"invalid_request_error.{code}"))

    def _diverge(self, event: dict[str, Any], expected_turn: Turn | None, diffs: Any, now_ms: float) -> None:
        turns = self.plan.turns
        expected: dict[str, Any] | None = None
        index = None
        if expected_turn is not None:
            index = expected_turn.index
            if expected_turn.trigger is not None:
                expected = expected_turn.trigger.event
            elif expected_turn.cues:
                expected = expected_turn.cues[0].event.event
            else:
                expected = {"type": AUDIO_APPEND}
        if diffs is None:  # strict mode, housekeeping: show how it differs from the nearest cue of its type
            diffs = ()
            for turn in turns[self._turn:]:
                for cue in turn.cues:
                    if cue.type == event.get("type") and not self._used[cue.slot]:
                        expected, index = cue.event.event, cue.index
                        diffs = tuple(self.matcher.all_differences(expected, event))
                        break
                if diffs:
                    break
        closest = None
        probe = self._untagged(event)
        for turn in turns[self._turn:]:
            later = [(c.index, c.event) for c in turn.cues if not self._used[c.slot] and c.index != index]
            closest = next((i for i, ev in later if not self.matcher.differences(ev.event, probe)), None)
            if closest is None and turn.trigger is not None and turn is not expected_turn \
                    and probe.get("type") == TRIGGER and not self.trigger_differences(turn, probe):
                closest = turn.index
            if closest is not None:
                break
        record = Divergence(self.cassette.label, self.session_index, index, expected, strip_audio(event), tuple(diffs),
                            closest_index=closest)
        self.divergences.add(record)
        self._note(now_ms, event, "diverged")
        self._error(MISMATCH_CODE, "mockrealtime: client event does not match the cassette: " + record.summary,
                    event.get("event_id"), now_ms)
