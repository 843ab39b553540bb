"""The outgoing side of a replay: timed frames from positions into the shared plan.

A connection's queue holds *runs* (a position into a turn's shared sends, a start time and the
pace) and the frames the session model made (answers, errors, cancellations). ``pop_due`` merges
them in release order, renders recorded frames as ``tag.join(pieces)`` (fresh ids at the cost of
one join) and lets the session model observe each frame as it leaves. Sans-IO.
"""

from __future__ import annotations

import collections
import json
from typing import TYPE_CHECKING, Any

from mockrealtime.core.cassette import RecordedEvent
from mockrealtime.core.events import ID_KEYS
from mockrealtime.core.plan import tag_slot
from mockrealtime.protocol.jsontext import compact
from mockrealtime.protocol.session import OBSERVERS, SessionModel

if TYPE_CHECKING:
    from mockrealtime.core.plan import Frame, Plan

_COMPACT = (",", ":")


class CloseFrame:
    """The recording (or the policy) shows the server closing here."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CloseFrame) and (self.code, self.reason) == (other.code, other.reason)

    def __repr__(self) -> str:
        return f"CloseFrame({self.code}, {self.reason!r})"


class _Run:
    """A position into the shared sends of a turn: the frames go out as they fall due."""

    __slots__ = ("sends", "pos", "base_us", "start_ms", "owner", "cue_id", "seq", "close", "observed")

    def __init__(self, sends: list[tuple[int, RecordedEvent]], start_ms: float, base_us: int, owner: Any, cue_id: Any,
                 seq: int) -> None:
        self.sends, self.pos, self.start_ms, self.base_us, self.owner, self.cue_id = sends, 0, start_ms, base_us, owner, cue_id
        self.seq = seq
        self.close: CloseFrame | None = None  # the recording shows the server closing after the last frame
        self.observed = False  # the session model saw these at release already


class _Live:
    """A recorded event as this connection sees it (ids tagged) for the session model's observers."""

    __slots__ = ("ev", "fresh")

    def __init__(self, ev: RecordedEvent, fresh: Any) -> None:
        self.ev, self.fresh = ev, fresh

    @property
    def audio_bytes(self) -> int:
        return self.ev.audio_bytes

    def get(self, key: str, default: Any = None) -> Any:
        value = self.ev.get(key, default)
        if isinstance(value, str):
            return self.fresh(value) if key in ID_KEYS else value
        if isinstance(value, (dict, list)):
            return _retag(value, self.fresh)
        return value


def _retag(value: Any, fresh: Any) -> Any:
    if isinstance(value, dict):
        return {k: (fresh(v) if k in ID_KEYS and isinstance(v, str) else _retag(v, fresh)) for k, v in value.items()}
    if isinstance(value, list):
        return [_retag(v, fresh) for v in value]
    return value


_NO_OWNER = object()
_NONE = object()  # no audio delta seen yet in a drained run


class Outbox:
    """The frames a ReplaySession sends; a mixin over the session's own state."""

    # The ReplaySession state this mixin reads and writes (set in ReplaySession.__init__).
    model: SessionModel
    plan: Plan
    pace: float
    tag: str
    _btag: bytes
    as_bytes: bool
    _now: collections.deque[tuple[float, int, Any]]
    _seq: int
    _runs: collections.deque[_Run]
    _cancelled: set[str]
    _override: dict[str, str]
    _metadata: dict[str, Any]

    if TYPE_CHECKING:

        def new_event_id(self) -> str: ...

        def fresh(self, recorded: str) -> str: ...

        def untag(self, live: str) -> str: ...

    def send_synthesized(self, event: dict[str, Any], now_ms: float) -> None:
        """Queue an event the mock made (not from the recording): it goes out before anything due later."""
        if "event_id" not in event:
            event = {"type": event["type"], "event_id": self.new_event_id(), **event}
        handler = OBSERVERS.get(event["type"])
        if handler is not None:
            handler(self.model, event)  # the server's state changes when it answers, not when the frame leaves
        self._push(now_ms, self._dump(event))

    def _dump(self, event: dict[str, Any]) -> Any:
        """JSON for the wire: UTF-8 where it can be; escaped (never a broken frame) where a client
        sent a lone surrogate that the answer echoes."""
        text = compact(event)
        try:
            data = text.encode()
        except UnicodeEncodeError:
            text = json.dumps(event, separators=_COMPACT)
            data = text.encode()
        return data if self.as_bytes else text

    def _push(self, now_ms: float, frame: Any) -> None:
        self._seq += 1
        self._now.append((max(now_ms, self._now[-1][0] if self._now else now_ms), self._seq, frame))

    def end(self, error: dict[str, Any], code: int, reason: str, now_ms: float) -> None:
        """End the session now: what is still queued is dropped, then one error and a close."""
        self._runs.clear()
        self._now.clear()
        self._last_at = now_ms
        self.send_synthesized(error, now_ms)
        self._push(now_ms, CloseFrame(code, reason))

    def next_deadline(self) -> float | None:
        """When the next queued frame is due (ms since connect), or None if nothing is queued."""
        a = self._now[0][0] if self._now else None
        b = self._run_due(self._runs[0]) if self._runs else None
        if a is None:
            return b
        return a if b is None or a < b else b

    def _run_due(self, run: _Run) -> float:
        if not self.pace:
            return run.start_ms
        ev = run.sends[min(run.pos, len(run.sends) - 1)][1]
        return run.start_ms + (ev.offset_us - run.base_us) / 1000.0 * self.pace

    def pop_due(self, now_ms: float, limit: int | None = None) -> list[Any]:
        """Frames due by ``now_ms``, in order: JSON text (str, or UTF-8 bytes with ``as_bytes``), or
        a CloseFrame; at most ``limit`` of them."""
        out: list[str | CloseFrame] = []
        now, runs = self._now, self._runs
        budget = limit if limit is not None else -1
        pace = self.pace
        while budget != 0:
            run = runs[0] if runs else None
            if now:
                run_key = (self._run_due(run), run.seq) if run is not None else None
                if now[0][0] <= now_ms and (run_key is None or now[0][:2] < run_key):
                    frame = now.popleft()[2]
                elif run_key is not None and run_key[0] <= now_ms:
                    frame = self._next_of(run)  # type: ignore[arg-type]
                else:
                    break
            elif run is not None and (run.start_ms if not pace else self._run_due(run)) <= now_ms:
                if not pace and self.as_bytes and not self._cancelled:
                    taken = self._drain_deltas(run, out, budget)
                    if taken:
                        budget -= taken
                        continue
                frame = self._next_of(run)
            else:
                break
            if frame is None:
                continue
            out.append(frame)
            if frame.__class__ is CloseFrame:
                self._closed()
                break
            budget -= 1
        return out

    def _closed(self) -> None:
        self.closed = True
        self._now.clear()
        self._runs.clear()

    def _drain_deltas(self, run: _Run, out: list[Any], budget: int) -> int:
        """The run's next audio and text deltas, in one tight loop (the bulk of a spoken answer).

        Only at pace 0, as UTF-8, with nothing cancelled, and up to a delta that names an id the
        client chose (:meth:`_names_chosen`): then a delta is always sent as ``tag.join(pieces)``,
        and nothing else can fall due before it. The session model sees the
        same additions in the same order as frame by frame, applied once per run of deltas."""
        sends = run.sends
        pos = start = run.pos
        end = len(sends) if budget < 0 else min(len(sends), pos + budget)
        frames = self.plan.frames
        join = self._btag.join
        append = out.append
        observe = not run.observed
        model = self.model
        duration = model.output_format.duration_ms
        live = self._live_id
        chosen = self._override  # _names_chosen, inline: this loop runs per frame of an answer
        audio_item: Any = _NONE
        audio_ms = 0.0
        text_key: Any = None
        text: list[str] = []
        while pos < end:
            index, ev = sends[pos]
            frame = frames.get(index)
            if frame is None:
                break
            kind = frame.delta_kind
            if kind != 1 and kind != 2 or chosen and not chosen.keys().isdisjoint(frame.ids):
                break
            append(join(frame.bpieces))
            pos += 1
            if not observe:
                continue
            item_id = frame.item_id
            if kind == 1:
                if item_id != audio_item:
                    if audio_item is not _NONE:
                        model.audio_ms[live(audio_item)] = audio_ms
                    audio_item = item_id
                    audio_ms = model.audio_ms.get(live(item_id), 0.0)
                audio_ms += duration(ev.audio_bytes)
            else:
                key = (item_id, frame.content_index)
                if key != text_key:
                    if text:
                        model.text_deltas(live(text_key[0]), text_key[1], text)
                    text_key, text = key, []
                text.append(frame.delta or "")
        if audio_item is not _NONE:
            model.audio_ms[live(audio_item)] = audio_ms
            model.assistant_audio = True
        if text:
            model.text_deltas(live(text_key[0]), text_key[1], text)
        run.pos = pos
        if pos >= len(sends) and run.close is None:
            self._runs.popleft()
        return pos - start

    def _names_chosen(self, frame: Frame) -> bool:
        """The frame names an item whose id the client chose: it is rendered with that id."""
        return bool(self._override) and not self._override.keys().isdisjoint(frame.ids)

    def _live_id(self, recorded: Any) -> Any:
        return self.fresh(recorded) if isinstance(recorded, str) else recorded

    def _next_of(self, run: _Run) -> str | bytes | CloseFrame | None:
        """The next frame of a run (None if it was skipped: a cancelled response's rest)."""
        sends = run.sends
        if run.pos >= len(sends):
            self._runs.popleft()
            return run.close
        index, ev = sends[run.pos]
        run.pos += 1
        if run.pos >= len(sends) and run.close is None:
            self._runs.popleft()
        if self._cancelled:
            rid = _response_of(ev)
            if rid is not None and self.fresh(rid) in self._cancelled:
                return None
        etype = ev.type
        frame = self.plan.frames.get(index)
        if frame is None:
            frame = self.plan.frame(index, ev)
        if etype == "error" or self._names_chosen(frame) or (self._metadata and etype in ("response.created", "response.done")):
            text, data = self._render(index, ev, run.owner, run.cue_id)
        elif self.as_bytes:
            text, data = self._btag.join(frame.bpieces), None
        else:
            text, data = self.tag.join(frame.pieces), None
        if run.observed:
            return text
        kind = frame.delta_kind
        if kind:
            item_id = frame.item_id
            item_id = self.fresh(item_id) if isinstance(item_id, str) else item_id
            if kind == 1:
                self.model.audio_delta(item_id, ev.audio_bytes)
            elif kind == 2:
                self.model.text_delta(item_id, frame.content_index, frame.delta or "")  # type: ignore[arg-type]
            else:
                self.model.arguments_delta(item_id, frame.delta or "")
        else:
            handler = OBSERVERS.get(etype)
            if handler is not None:
                handler(self.model, data if data is not None else _Live(ev, self.fresh))
        return text

    def _render(self, index: int, ev: RecordedEvent, owner: Any, cue_id: Any) -> tuple[str | bytes, dict[str, Any] | None]:
        etype = ev.type
        patch = None
        if etype == "error" and owner is not _NO_OWNER:
            err = ev.event.get("error") or {}
            if err.get("event_id") in (cue_id, None) and err.get("event_id") != owner:
                patch = {"error": {**err, "event_id": owner}}
        elif self._metadata and etype in ("response.created", "response.done"):
            response = ev.event.get("response") or {}
            if response.get("id") in self._metadata:
                patch = {"response": {**response, "metadata": self._metadata[response["id"]]}}
        if patch is None:
            frame = self.plan.frame(index, ev)
            if not self._names_chosen(frame):
                return (self._btag.join(frame.bpieces) if self.as_bytes else self.tag.join(frame.pieces)), None
        data = {**ev.event, **(patch or {})}
        data = _retag({k: v for k, v in data.items() if k != "error"}, self.fresh) | (
            {"error": data["error"]} if "error" in data else {})
        data["event_id"] = tag_slot(ev.event["event_id"], self.tag)
        return self._dump(data), data

    def _release(self, sends: list[tuple[int, RecordedEvent]], now_ms: float, *, owner: Any = _NO_OWNER,
                 cue_id: Any = None, base_us: int | None = None) -> None:
        if not sends:
            return
        start = max(now_ms, self._last_at)
        self._seq += 1
        run = _Run(sends, start, sends[0][1].offset_us if base_us is None else base_us, owner, cue_id, self._seq)
        if self.pace:
            self._last_at = start + (sends[-1][1].offset_us - run.base_us) / 1000.0 * self.pace
        else:
            self._last_at = start
        self._runs.append(run)

    def _drop_response(self, live_id: str | None, now_ms: float | None = None) -> None:
        """Never send the recorded rest of a response cut short; what comes after it moves up."""
        if live_id is None:
            return
        self._cancelled.add(live_id)
        if now_ms is None:
            return
        recorded = self.untag(live_id)
        kept = collections.deque(run for run in self._runs
                                 if any(_response_of(ev) != recorded for _, ev in run.sends[run.pos:]) or run.close)
        self._runs = kept
        self._last_at = max([now_ms] + [self._run_end(run) for run in kept])

    def _run_end(self, run: _Run) -> float:
        if not self.pace:
            return run.start_ms
        return run.start_ms + (run.sends[-1][1].offset_us - run.base_us) / 1000.0 * self.pace


def _response_of(ev: RecordedEvent) -> str | None:
    """The (recorded) response a recorded server event belongs to."""
    rid = ev.get("response_id")
    if rid is None and ev.type in ("response.created", "response.done"):
        response = ev.get("response")
        rid = response.get("id") if isinstance(response, dict) else None
    return rid if isinstance(rid, str) else None
