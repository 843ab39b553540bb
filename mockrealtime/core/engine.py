"""The replay engine: client text frames in; timed server frames, divergences and a journal out.

Theory of operation
-------------------
The recording supplies the model; the session model supplies the protocol. A recorded session is
compiled once into turns (:mod:`mockrealtime.core.plan`), and a connection keeps only positions
into that shared plan:

* **Housekeeping** (``session.update``, ``conversation.item.*``, ``input_audio_buffer.clear/commit``,
  ``response.cancel`` ...) is answered from the session model, in any order, any number of times.
  ``session.updated`` is the live effective session; item echoes carry what this client sent. A
  live event that matches a recorded cue of the current turn borrows its ids, and where the
  recording shows the API's *error* for it, that recorded error is the answer.
* **Triggers** (``response.create``, or the audio clock reaching a server-VAD event) release the
  model's output the recording shows. A ``response.create`` is matched on the state the model
  would see (tool names, ``tool_choice``, modalities, formats, the conversation's item kinds and
  function call outputs) and on its own parameters. A difference is a *divergence*: it names the
  field with the live and recorded values, gets an ``error`` (``cassette_mismatch``), and under the
  ``close`` policy ends the connection.
* **Validation first**: an invalid frame gets the real API's error, unless the recording shows the
  API's error for that very event.
* **Fresh ids**: every recorded id (event, item, response, call, session) goes out with this
  connection's tag inserted after its prefix; frames are serialised once per cassette with a slot
  there, so rendering is one ``str.join``. Ids the client sends back are untagged for matching.

Sans-IO: the caller supplies time (``now_ms``), asks ``next_deadline()`` and takes ``pop_due``.
"""

from __future__ import annotations

import collections
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import Cassette
from mockrealtime.core.divergence import (JOURNAL_LIMIT, MAX_KEPT_STRING, BoundedJournal, Divergence, DivergenceStore,
                                          JournalEntry, strip_audio)
from mockrealtime.core.events import AUDIO_APPEND
from mockrealtime.core.matching import FieldDiff, Matcher
from mockrealtime.core.divergence import MISMATCH_CODE, Reporting
from mockrealtime.core.outbox import _NO_OWNER, CloseFrame, Outbox, _Live, _response_of, _retag, _Run
from mockrealtime.core.plan import TRIGGER, Cue, Plan, Turn, plan_for, state_of, tag_slot
from mockrealtime.protocol.session import OBSERVERS, SessionModel, merge_session
from mockrealtime.protocol.validation import ProtocolError, parse_client_frame

__all__ = ["CloseFrame", "Divergence", "JournalEntry", "MISMATCH_CODE", "ReplaySession", "SessionCursor", "strip_audio"]

POLICIES = ("error", "close")
#: Frames handed out per ``pop_due`` call at most when a batch size is given: the I/O layer yields
#: to other connections in between, so no answer holds the loop.
BATCH = 256
#: Frames taken per ``pop_due`` call within a batch. Small on purpose: a few hundred 6 KiB audio
#: frames alive at once outgrow the allocator's free memory, and every batch then faults fresh pages
#: in (measured: 9 us per frame rendered in lists of 256, 0.3 us in lists of 16).
CHUNK = 16


def _never(event: dict[str, Any]) -> bool:
    return False


class ReplaySession(Outbox, Reporting):
    """One live connection replaying one recorded session. Sans-IO: the caller supplies time."""

    def __init__(
        self,
        cassette: Cassette,
        session_index: int = 0,
        *,
        pace: float = 0.0,
        matcher: Matcher | None = None,
        strict: bool = False,
        connection: int = 0,
        on_divergence: str = "error",
        session_overrides: dict[str, Any] | None = None,
        validator: Any = None,
        max_frame_bytes: int | None = None,
        journal_limit: int = JOURNAL_LIMIT,
        as_bytes: bool = False,
    ) -> None:
        if pace < 0:
            raise ValueError("pace must be 0 (as fast as possible) or more")
        if on_divergence not in POLICIES:
            raise ValueError(f"on_divergence must be one of {', '.join(POLICIES)}")
        self.cassette = cassette
        self.session_index = session_index
        self.dialect = cassette.dialect
        self.pace = pace
        self.matcher = matcher or Matcher.build(cassette.matching)
        self.plan: Plan = plan_for(cassette, session_index, warm=as_bytes)
        #: strict: every client event must be in the recording, and no recorded cue skipped.
        self.strict = strict
        self.on_divergence = on_divergence
        self.validator = validator
        self.max_frame_bytes = max_frame_bytes
        self.connection = connection
        self.tag = f"MR{connection}x"  # goes after the prefix of every recorded id: item_MR3xCDX...
        self._btag = self.tag.encode()
        #: frames as UTF-8 bytes (the I/O layer sends them as text frames without encoding again)
        self.as_bytes = as_bytes
        self.model = SessionModel(cassette.dialect, tag=f"{connection:03d}")
        self.session_overrides = session_overrides
        self.journal = BoundedJournal(journal_limit)
        self.divergences = DivergenceStore()
        self.audio_ms = 0.0  # live audio appended this session
        self._turn = 0  # the next turn to open
        self._used = bytearray(self.plan.cue_count)  # recorded cues consumed, by Cue.slot
        self._first_unused: dict[tuple[int, str], int] = {}  # (turn, type) -> first cue not yet consumed
        self._now: collections.deque[tuple[float, int, Any]] = collections.deque()  # synthesized frames
        self._seq = 0  # release order: breaks ties between synthesized frames and runs due at once
        self._runs: collections.deque[_Run] = collections.deque()
        self._cancelled: set[str] = set()  # live response ids cut short: their recorded rest is never sent
        self._last_at = 0.0
        self._override: dict[str, str] = {}  # recorded id -> the id the client chose
        self._chosen: dict[str, str] = {}  # and back
        self._fresh: dict[str, str] = {}  # recorded id -> tagged, for the ids the session model sees
        self._metadata: dict[str, Any] = {}  # recorded response id -> live metadata
        self._serial = 0
        self._small = False  # the frame being handled is too short to hold a long string
        self.acted = False  # the client sent something since the last release (for stall detection)
        self.stalled = False
        self.closed = False

    # -- ids -------------------------------------------------------------------------------------

    def fresh(self, recorded: str) -> str:
        """The id this connection shows for a recorded id."""
        if self._override:
            chosen = self._override.get(recorded)
            if chosen is not None:
                return chosen
        found = self._fresh.get(recorded)
        if found is None:
            found = self._fresh[recorded] = tag_slot(recorded, self.tag)
        return found

    def choose(self, recorded: str, chosen: str) -> None:
        """The client named an item the recording made (``recorded``) ``chosen``: show that id for it."""
        self._override[recorded] = chosen
        self._chosen.setdefault(chosen, recorded)

    def untag(self, live: str) -> str:
        """The recorded id behind one this connection showed (unchanged if it is not one)."""
        recorded = self._chosen.get(live)
        if recorded is not None:
            return recorded
        head, sep, body = live.partition("_")
        if sep and body.startswith(self.tag):
            return head + sep + body[len(self.tag):]
        return live[len(self.tag):] if not sep and live.startswith(self.tag) else live

    def new_event_id(self) -> str:
        self._serial += 1
        return f"event_MR{self.connection:03d}{self._serial:015d}"

    # -- input -------------------------------------------------------------------------------

    def start(self, now_ms: float) -> None:
        """The connection is open: release what the server sent before any client event."""
        sends = self.plan.connect
        if self.session_overrides and sends and sends[0][1].type == "session.created":
            first = sends[0][1]
            recorded = first.event.get("session") or {}
            live = _retag(merge_session(recorded, self.session_overrides), self.fresh)
            data = {**_retag({k: v for k, v in first.event.items() if k != "session"}, self.fresh),
                    "event_id": tag_slot(first.event["event_id"], self.tag), "session": live}
            self.send_synthesized(data, now_ms)
            sends = sends[1:]
        for _, ev in sends:  # the session is what session.created says from the start
            handler = OBSERVERS.get(ev.type)
            if handler is not None:
                handler(self.model, _Live(ev, self.fresh))
        self._release(sends, now_ms)
        if self._runs:
            self._runs[-1].observed = True
        self._open_audio_turns(now_ms)

    def feed(self, text: str | bytes, now_ms: float) -> None:
        """A frame arrived: parse, validate (the API's error first), then replay."""
        if self.max_frame_bytes is not None and len(text) > self.max_frame_bytes:
            self._reject(ProtocolError("message_too_large",
                                       f"mockrealtime: message of {len(text)} bytes exceeds the {self.max_frame_bytes}-byte limit",
                                       None), None, now_ms)
            return
        if isinstance(text, bytes):
            self._reject(parse_client_frame(text)[1], None, now_ms)  # type: ignore[arg-type]
            return
        self._small = len(text) <= MAX_KEPT_STRING
        event, error = parse_client_frame(text)
        if error is None and self.validator is not None:
            # the API's error for it, always (validation first); a wrong JSON type even with the
            # schemas off (the validator's shape check)
            error = self.validator.admit_frame(text, event)
        if error is not None:
            # the recorded answer wins only where the recording shows the API rejecting this event
            if isinstance(event, dict) and not getattr(error, "shape", False) and self._recorded_error(event, now_ms):
                return
            self._reject(error, event, now_ms)
            return
        self.receive(event, now_ms)  # type: ignore[arg-type]
        self._small = False

    def _note(self, now_ms: float, event: dict[str, Any], outcome: str, index: int | None = None) -> None:
        """A journal entry; a frame too short to hold a long string is kept as parsed (no walk)."""
        kept = event if self._small and event.get("type") != AUDIO_APPEND else strip_audio(event)
        self.journal.append(JournalEntry(now_ms, kept, outcome, index))

    def _reject(self, error: ProtocolError, event: dict[str, Any] | None, now_ms: float) -> None:
        client_event_id = event.get("event_id") if isinstance(event, dict) else None
        if not isinstance(client_event_id, str):
            client_event_id = None
        self.reject(error.to_event(client_event_id, self.new_event_id()), event, now_ms)

    def reject(self, error: dict[str, Any], client_event: dict[str, Any] | None, now_ms: float) -> None:
        """Queue an ``error`` event for a client frame that failed validation."""
        self.send_synthesized(error, now_ms)
        if client_event is not None:
            self.journal.append(JournalEntry(now_ms, strip_audio(client_event), "rejected"))

    def receive(self, event: dict[str, Any], now_ms: float) -> None:
        """A valid client event (a dict) arrived."""
        etype = event.get("type")
        if etype == AUDIO_APPEND:
            audio = event.get("audio")
            if isinstance(audio, str):
                self.audio_ms += self.model.observe_client_audio(_audio.b64_decoded_len(audio))
            self._note(now_ms, event, "audio")
            self.acted = True
            self._open_audio_turns(now_ms)
            return
        self.acted = True
        if etype == TRIGGER:
            self._trigger(event, now_ms)
        else:
            self._housekeeping(event, now_ms)

    # -- triggers ------------------------------------------------------------------------------

    def _next_response_turn(self, start: int | None = None) -> int | None:
        turns = self.plan.turns
        i = self._turn if start is None else start
        while i < len(turns) and turns[i].kind == "audio":
            i += 1
        return i if i < len(turns) and turns[i].kind == "response" else None

    def _refused_by_validation(self, recorded: Turn | Cue) -> bool:
        """The recording shows the API refusing this trigger or cue, and the validator refuses the
        recorded event too: a valid live event is not that event (the real API would accept it)."""
        event = recorded.trigger if isinstance(recorded, Turn) else recorded.event
        return (recorded.error and event is not None and self.validator is not None
                and self.validator.admit(event.event, _never) is not None)

    def _trigger(self, event: dict[str, Any], now_ms: float) -> None:
        refused = self.model.answer(event)
        if refused:  # a response is still active: the API's error, from state
            self._answer(refused, now_ms)
            self._note(now_ms, event, "answered")
            return
        i = self._next_response_turn()
        while i is not None and self._refused_by_validation(self.plan.turns[i]):
            i = self._next_response_turn(i + 1)
        if i is None:
            self._diverge(event, None, (), now_ms)
            return
        turn = self.plan.turns[i]
        diffs = self.trigger_differences(turn, event)
        if diffs:
            self._diverge(event, turn, diffs, now_ms)
            return
        for skipped in self.plan.turns[self._turn:i]:  # a refused trigger passed over: its error never goes out
            self._open(skipped, now_ms, None, sends=not (skipped.kind == "response" and skipped.error))
        self._open(turn, now_ms, event)
        self._turn = i + 1
        self._note(now_ms, event, "matched", turn.index)
        self._open_audio_turns(now_ms)

    def trigger_differences(self, turn: Turn, event: dict[str, Any]) -> list[FieldDiff]:
        """Why ``event`` (a live response.create) is not the recorded trigger: its own fields, then
        the state the model would see."""
        assert turn.trigger is not None
        diffs = self.matcher.differences(turn.trigger.event, event)
        if diffs or self.matcher.mode == "type" or turn.state is None:
            return diffs
        want, have = turn.state, state_of(self.model, self.untag)
        d = self.model.d
        for path, a, b in (
            ("session.tools[*].name", want.tools, have.tools),
            ("session.tool_choice", want.tool_choice, have.tool_choice),
            (f"session.{d.modalities_key}", want.modalities, have.modalities),
            ("session.audio formats (input, output)", list(want.formats), list(have.formats)),
            ("conversation.items[*] (type:role)", want.items, have.items),
            ("conversation function_call_output call_ids", want.outputs, have.outputs),
        ):
            if a != b:
                diffs.append(FieldDiff(path, a, b, True))
        return diffs

    # -- housekeeping --------------------------------------------------------------------------

    def _find_cue(self, event: dict[str, Any]) -> tuple[int, Cue] | None:
        """A recorded cue the live event matches, in this turn or (past server-VAD turns) a later one."""
        turns = self.plan.turns
        probe = self._untagged(event)
        etype: Any = probe.get("type")  # validated (a string) before any event gets here
        used = self._used
        for i in range(self._turn, len(turns)):
            cues = turns[i].by_type.get(etype)
            if cues:
                start = self._first_unused.get((i, etype), 0)
                while start < len(cues) and used[cues[start].slot]:
                    start += 1  # consumed cues are skipped once, not on every event
                self._first_unused[(i, etype)] = start
                for j in range(start, len(cues)):  # no slice: a long turn must not be copied per event
                    cue = cues[j]
                    if not used[cue.slot] and not self.matcher.differences(cue.event.event, probe):
                        return i, cue
            if turns[i].kind == "response":
                break
        return None

    def _untagged(self, event: dict[str, Any]) -> dict[str, Any]:
        item = event.get("item")
        if isinstance(item, dict) and isinstance(item.get("call_id"), str):
            return {**event, "item": {**item, "call_id": self.untag(item["call_id"])}}
        return event

    def _recorded_error(self, event: dict[str, Any], now_ms: float) -> bool:
        """An invalid event the recording shows the API rejecting: replay that error."""
        if event.get("type") == TRIGGER:
            i = self._next_response_turn()
            if i is None or not self.plan.turns[i].error or self.matcher.differences(self.plan.turns[i].trigger.event, event):  # type: ignore[union-attr]
                return False
            self._trigger_forced(i, event, now_ms)
            return True
        found = self._find_cue(event)
        if found is None or not found[1].error:
            return False
        self._housekeeping(event, now_ms, found)
        return True

    def _trigger_forced(self, i: int, event: dict[str, Any], now_ms: float) -> None:
        turn = self.plan.turns[i]
        for skipped in self.plan.turns[self._turn:i]:
            self._open(skipped, now_ms, None)
        self._open(turn, now_ms, event)
        self._turn = i + 1
        self._note(now_ms, event, "matched", turn.index)

    def _housekeeping(self, event: dict[str, Any], now_ms: float, found: tuple[int, Cue] | None = None) -> None:
        if found is None:
            found = self._find_cue(event)
            if found is not None and self._refused_by_validation(found[1]):
                found = None  # valid where the refused recorded event is not: the API would accept this one
        if found is None and self.strict:
            self._diverge(event, self._strict_expected(), None, now_ms)
            return
        cue = found[1] if found is not None else None
        if found is not None:
            for skipped in self.plan.turns[self._turn:found[0]]:  # server-VAD turns the client moved past
                self._open(skipped, now_ms, None)
            self._turn = max(self._turn, found[0])
            self._used[cue.slot] = 1  # type: ignore[union-attr]
        if cue is not None and cue.error:
            self._release(cue.answers, now_ms, owner=event.get("event_id"), cue_id=cue.event.get("event_id"))
        else:
            answers = self.model.answer(event, self._hint(cue, event))
            if answers is None and cue is not None:
                self._release(cue.answers, now_ms)
            elif answers:
                if event.get("type") == "response.cancel" and answers[-1]["type"] == "response.done":
                    self._drop_response(self.model.active_response_id, now_ms)
                self._answer(answers, now_ms)
        if cue is not None and cue.tail:
            self._release(cue.tail, now_ms)
        self._note(now_ms, event, "matched" if cue else "answered", cue.index if cue else None)

    def _hint(self, cue: Cue | None, event: dict[str, Any]) -> str | None:
        """The live id of the item a create or commit makes: the recorded one, tagged (or the client's)."""
        recorded = cue.made_item() if cue is not None else None
        if recorded is None:
            return None
        item = event.get("item")
        chosen = item.get("id") if isinstance(item, dict) else None
        if isinstance(chosen, str):
            self.choose(recorded, chosen)
            return chosen
        return self.fresh(recorded)

    def _strict_expected(self) -> Turn | None:
        turns = self.plan.turns
        return turns[self._turn] if self._turn < len(turns) else None

    def _answer(self, answers: list[dict[str, Any]], now_ms: float) -> None:
        for answer in answers:
            self.send_synthesized(answer, now_ms)

    # -- internals ---------------------------------------------------------------------------

    def _open_audio_turns(self, now_ms: float) -> None:
        turns = self.plan.turns
        while self._turn < len(turns):
            turn = turns[self._turn]
            if turn.kind != "audio" or self.audio_ms + 1e-6 < turn.audio_ms:
                return
            self._open(turn, now_ms, None)
            self._turn += 1

    def _open(self, turn: Turn, now_ms: float, live: dict[str, Any] | None, sends: bool = True) -> None:
        """Release a turn: the tails of recorded housekeeping the client never sent, then its sends
        (unless not ``sends``: a refused trigger the live client never sent)."""
        for cue in turn.cues:
            if not self._used[cue.slot]:
                self._used[cue.slot] = 1
                if self.strict:
                    self.divergences.add(Divergence(
                        self.cassette.label, self.session_index, cue.index, cue.event.event,
                        {"type": None}, (), kind="skipped",
                        note=f"the client never sent the recorded {cue.type!r} (event {cue.index}) before {turn.label}"))
                if cue.tail:
                    self._release(cue.tail, now_ms)
        if not sends:
            return
        owner: Any = _NO_OWNER
        cue_id = None
        if live is not None and turn.trigger is not None:
            owner = live.get("event_id")
            cue_id = turn.trigger.get("event_id")
            self._learn_metadata(turn, live)
        interrupted = self._interrupts(turn)
        if interrupted:
            # server VAD heard the user while a response was still going out: cut it short
            response_id = self.model.active_response_id
            cancel = self.model.cancel("turn_detected")
            self._drop_response(response_id, now_ms)
            first = turn.sends[:1]
            self._release(first, now_ms)
            for event in cancel:
                self.send_synthesized(event, now_ms)
            self._release(turn.sends[1:], now_ms, owner=owner, cue_id=cue_id)
        else:
            # a response's first frame keeps the recorded delay after its trigger (the model's latency)
            base = turn.at_us if turn.trigger is not None else None
            self._release(turn.sends, now_ms, owner=owner, cue_id=cue_id, base_us=base)
        if turn is self.plan.turns[-1] and self.plan.close is not None and self.plan.close.by == "server":
            close = CloseFrame(self.plan.close.code or 1000, self.plan.close.reason or "")
            if self._runs:
                self._runs[-1].close = close
            else:
                self._push(now_ms, close)

    def _learn_metadata(self, turn: Turn, live: dict[str, Any]) -> None:
        response = live.get("response")
        live_meta = response.get("metadata") if isinstance(response, dict) else None
        recorded = turn.trigger.event.get("response") if turn.trigger is not None else None
        recorded_meta = recorded.get("metadata") if isinstance(recorded, dict) else None
        if live_meta != recorded_meta:
            for _, ev in turn.sends:
                if ev.type == "response.created":
                    rid = (ev.event.get("response") or {}).get("id")
                    if isinstance(rid, str):
                        self._metadata[rid] = live_meta
                    break

    def _interrupts(self, turn: Turn) -> bool:
        """A speech_started turn opening while a response is still going out, not recorded as cut."""
        if turn.kind != "audio" or not turn.sends or turn.sends[0][1].type != "input_audio_buffer.speech_started":
            return False
        live_id = self.model.active_response_id
        if live_id is None or not self.model.interrupt_response:
            return False
        recorded_id = self.untag(live_id)
        pending = any(_response_of(ev) == recorded_id for run in self._runs for _, ev in run.sends[run.pos:])
        recorded_end = any(ev.type == "response.done" and _response_of(ev) == recorded_id for _, ev in turn.sends)
        return pending and not recorded_end

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
