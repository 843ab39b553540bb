"""The plan compiler: a recorded session as *turns*, shared by every connection that replays it.

Theory of operation
-------------------
The recording supplies the model; the session model supplies the protocol. So a recorded session
is compiled into:

* ``connect``: what the server sent before the first client event (``session.created``);
* ``turns``: each opened by a *generating trigger*, either a recorded ``response.create`` or a
  server-VAD event (``speech_started`` / ``speech_stopped`` / ``timeout_triggered``) that the live
  client's audio clock reaches. A trigger releases the model's output the recording shows after it
  (response items, deltas, audio, transcripts, arguments, ``response.done``...).

Every other client event is *housekeeping* (``session.update``, ``conversation.item.*``,
``input_audio_buffer.clear/commit``, ``response.cancel`` ...): the live server answers it from its
state, in any order, any number of times. The recorded housekeeping cues of a turn are kept as a
set of *hints*: the recorded answers (ids of echoed items, or the API's error when the recording
shows one), and the server events that followed them but answer nothing (a transcription).

For each response trigger the plan also keeps the *state* the recorded model saw: the effective
session's tool names, ``tool_choice``, modalities and audio formats, and the conversation's item
kinds and the function call outputs' ``call_id``s. The engine compares the live state with it.

Frames are serialised once per cassette as *pieces*: the JSON text split where an id sits, so a
connection renders a frame as ``tag.join(pieces)`` with its own id tag (fresh ids at no extra cost).

Plans are cached here by cassette identity and session index (never stored on the cassette).
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import Cassette, RecordedEvent
from mockrealtime.core.events import AUDIO_APPEND, AUDIO_DELTA_TYPES, ID_KEYS, VAD_POSITION_FIELD, Direction
from mockrealtime.protocol.conversation import rebuilt
from mockrealtime.protocol.jsontext import compact
from mockrealtime.protocol.session import OBSERVERS, SessionModel

TRIGGER = "response.create"
#: Where the per-connection tag goes in a serialised id (never in recorded text: a private-use char).
_SLOT = "\ue000"

#: Server events that answer one kind of housekeeping client event: the session model makes them.
ANSWERS: dict[str, str] = {
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
    "output_audio_buffer.cleared": "output_audio_buffer.clear",
}
_ANSWER_KINDS = frozenset(ANSWERS.values())


_UNKNOWN: Any = object()


@dataclasses.dataclass(slots=True)
class Cue:
    """A recorded housekeeping client event and what the recording shows for it."""

    index: int  # event index in the session
    event: RecordedEvent
    answers: list[tuple[int, RecordedEvent]] = dataclasses.field(default_factory=list)
    tail: list[tuple[int, RecordedEvent]] = dataclasses.field(default_factory=list)
    error: bool = False  # the recording shows the API rejecting it: its answer wins
    slot: int = 0  # its number among the session's cues (0, 1, ...): where a replay marks it consumed
    _made: Any = dataclasses.field(default=_UNKNOWN, repr=False, compare=False)

    @property
    def type(self) -> str:
        return self.event.type

    def made_item(self) -> str | None:
        """The recorded id of the item this cue's answer made (a create's echo, a commit), if any:
        found once per plan (the answers are complete before any replay asks)."""
        made = self._made
        if made is _UNKNOWN:
            made = None
            for _, ev in self.answers:
                if ev.type in ("conversation.item.created", "conversation.item.added"):
                    made = (ev.event.get("item") or {}).get("id")
                    break
                if ev.type == "input_audio_buffer.committed":
                    made = ev.get("item_id")
                    break
            made = self._made = made if isinstance(made, str) else None
        return made


@dataclasses.dataclass(slots=True)
class TurnState:
    """What the recorded model saw when the trigger reached it."""

    tools: list[str]
    tool_choice: Any
    modalities: Any
    formats: tuple[str | None, str | None]
    items: list[str]  # "type" or "type:role" per conversation item
    outputs: list[str]  # call_ids of function_call_output items, recorded ids


@dataclasses.dataclass(slots=True)
class Turn:
    kind: str  # "response" | "audio" | "end" (housekeeping after the last trigger)
    index: int  # event index of the trigger (-1 for "end")
    at_us: int
    trigger: RecordedEvent | None = None  # the recorded response.create
    audio_ms: float = 0.0  # audio turns: live audio position that opens it
    cues: list[Cue] = dataclasses.field(default_factory=list)  # housekeeping recorded in the turn
    sends: list[tuple[int, RecordedEvent]] = dataclasses.field(default_factory=list)
    error: bool = False  # an error among the sends answers the trigger
    state: TurnState | None = None
    by_type: dict[str, list[Cue]] = dataclasses.field(default_factory=dict)  # cues by client event type

    def index_cues(self) -> None:
        self.by_type = {}
        for cue in self.cues:
            self.by_type.setdefault(cue.type, []).append(cue)

    @property
    def label(self) -> str:
        if self.kind == "response":
            return f"response.create (recorded event {self.index})"
        if self.kind == "audio":
            return f"input audio up to {self.audio_ms:.0f} ms (server VAD, recorded event {self.index})"
        return "nothing (end of the recording)"


#: Bytes of serialised frames that all plans of the process together may keep (``frame_cache_mb``).
#: A frame beyond it (the audio of long calls, mostly) is serialised again each time it is sent, so
#: the memory a server holds for replays does not grow with the length of what it replays.
FRAME_CACHE_BYTES = 256 * 1024 * 1024
_cached_bytes = 0  # held now by the plans alive


def frame_cache_used() -> int:
    """Bytes of serialised frames the plans alive keep now."""
    return _cached_bytes


class Frame:
    """A recorded server event serialised once for every replay: its text split at the id slots
    (as UTF-8 bytes, what the server sends), and what the session model reads from a delta."""

    __slots__ = ("bpieces", "ids", "delta_kind", "item_id", "content_index", "delta")

    def __init__(self, ev: RecordedEvent) -> None:
        ids: list[str] = []
        self.bpieces = [p.encode() for p in _serialise(ev.event, ids)]
        #: The recorded ids in its slots but the event's own: a frame none of whose ids a client
        #: chose (``conversation.item.create`` with an ``id``) goes out as ``tag.join(pieces)``.
        self.ids = frozenset(ids)
        self.delta_kind = DELTA_KINDS.get(ev.type, 0)
        self.item_id = self.content_index = self.delta = None
        if self.delta_kind:
            self.item_id = ev.get("item_id")
            self.content_index = ev.get("content_index") or 0
            self.delta = ev.get("delta") if self.delta_kind != 1 else None

    @property
    def pieces(self) -> list[str]:
        """The pieces as str (for a caller that sends text frames; the server sends the bytes)."""
        return [p.decode() for p in self.bpieces]

    def size(self) -> int:
        """About the bytes it holds: the UTF-8 text and an object per piece (and its id set)."""
        return sum(map(len, self.bpieces)) + 60 * len(self.bpieces) + 100 + (216 if self.ids else 0)


#: Deltas the session model reads on a fast path: 1 audio, 2 text, 3 function arguments.
DELTA_KINDS = {t: 1 for t in AUDIO_DELTA_TYPES} | {
    "response.output_audio_transcript.delta": 2, "response.audio_transcript.delta": 2,
    "response.output_text.delta": 2, "response.text.delta": 2, "response.function_call_arguments.delta": 3}


class Plan:
    """The compiled session: connect sends, turns, and the shared serialised frames."""

    __slots__ = ("connect", "turns", "close", "frames", "cached_bytes", "cue_count")

    def __init__(self, connect: list[tuple[int, RecordedEvent]], turns: list[Turn], close: Any) -> None:
        self.connect = connect
        self.turns = turns
        #: Cues in the session: a replay marks the ones consumed in a bytearray this long (a set of
        #: them grew a table, copied whole on each resize: the slowest 1 % of round trips in-process)
        self.cue_count = max((c.slot for t in turns for c in t.cues), default=-1) + 1
        self.close = close  # cassette.Close | None
        self.frames: dict[int, Frame] = {}
        self.cached_bytes = 0

    def __del__(self) -> None:
        global _cached_bytes
        if self.cached_bytes and _cached_bytes is not None:  # (None: the interpreter is shutting down)
            _cached_bytes -= self.cached_bytes

    def frame(self, index: int, ev: RecordedEvent) -> Frame:
        """The event serialised with id slots; built once per cassette and shared by all replays
        while :data:`FRAME_CACHE_BYTES` lasts, built each time it is sent beyond it."""
        global _cached_bytes
        found = self.frames.get(index)
        if found is None:
            found = Frame(ev)
            size = found.size()
            if _cached_bytes + size <= FRAME_CACHE_BYTES:
                _cached_bytes += size
                self.cached_bytes += size
                self.frames[index] = found
        return found

    def warm(self) -> None:
        """Serialise every frame now (a server does it at start so the first replay is not slower),
        as far as :data:`FRAME_CACHE_BYTES` allows."""
        for i, ev in self.connect:
            self.frame(i, ev)
        for turn in self.turns:
            for i, ev in turn.sends:
                if _cached_bytes >= FRAME_CACHE_BYTES:
                    return  # the rest is serialised when sent
                self.frame(i, ev)
            for cue in turn.cues:
                for i, ev in (*cue.answers, *cue.tail):
                    self.frame(i, ev)


def _serialise(event: dict[str, Any], ids: list[str] | None = None) -> list[str]:
    return compact(_mark(event, ids if ids is not None else [], True)).split(_SLOT)


def _mark(value: Any, ids: list[str], top: bool = False) -> Any:
    """``value`` with a slot in every id (``ids`` gets them, but the event's own)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, str) and (k in ID_KEYS or (top and k == "event_id")):
                out[k] = tag_slot(v)
                if k != "event_id" or not top:
                    ids.append(v)
            elif isinstance(v, (dict, list)) and not (k == "error"):
                out[k] = _mark(v, ids)
            else:
                out[k] = v
        return out
    if isinstance(value, list):
        return [_mark(v, ids) for v in value]
    return value


def tag_slot(value: str, slot: str = _SLOT) -> str:
    """``item_ABC`` -> ``item_<slot>ABC``: the tag goes after the id's prefix."""
    head, sep, body = value.partition("_")
    return head + sep + slot + body if sep else slot + value


#: Plans by cassette identity, least recently used first; a cassette reloaded from a changed file is
#: a new object and gets new plans, the old ones age out.
_CACHE: collections.OrderedDict[int, tuple[Cassette, dict[int, Plan]]] = collections.OrderedDict()
CACHE_SIZE = 64


def plan_for(cassette: Cassette, session_index: int, warm: bool = False) -> Plan:
    """The plan of one recorded session, compiled once and shared by every connection.

    ``warm``: serialise every frame at once (a server does, so that the first replay pushes as
    fast as the next; the cost moves to the first connection's set-up)."""
    key = id(cassette)
    entry = _CACHE.get(key)
    if entry is None or entry[0] is not cassette:
        entry = _CACHE[key] = (cassette, {})
        while len(_CACHE) > CACHE_SIZE:
            try:  # the server's loader threads plan too
                _CACHE.popitem(last=False)
            except KeyError:
                break
    else:
        _CACHE.move_to_end(key)
    per = entry[1]
    found = per.get(session_index)
    if found is None:
        found = per[session_index] = compile_plan(cassette, session_index)
        if warm:
            found.warm()
    return found


def compile_plan(cassette: Cassette, session_index: int) -> Plan:
    session = cassette.sessions[session_index]
    dialect = cassette.dialect
    connect: list[tuple[int, RecordedEvent]] = []
    turns: list[Turn] = []
    pending_cues: list[Cue] = []  # housekeeping seen since the last trigger
    owners = _Owners()  # for attributing answers that come late (pipelined clients)
    current: Turn | None = None  # the latest trigger: model output goes to it
    model = SessionModel(dialect)  # the recorded server's state, to snapshot at each trigger
    position_ms = 0.0
    in_fmt = _audio.PCM16
    chunks = heapq.merge(*(zip(r.offsets_us, r.chunk_bytes, strict=False) for r in session.runs))
    pending = next(chunks, None)
    consumed = 0
    unanswered_triggers: list[Turn] = []
    cue_slots = 0
    window: list[Cue | Turn] = []  # client events since the server last sent something
    for core_index, ev in enumerate(session.core):
        while pending is not None and pending[0] < ev.offset_us:
            position_ms += in_fmt.duration_ms(pending[1])
            consumed += 1
            pending = next(chunks, None)
        index = core_index + consumed
        if ev.direction is Direction.CLIENT:
            if ev.type == AUDIO_APPEND:
                position_ms += in_fmt.duration_ms(ev.audio_bytes)
            elif ev.type == TRIGGER:
                current = Turn("response", index, ev.offset_us, trigger=ev, cues=pending_cues)
                pending_cues = []
                turns.append(current)
                unanswered_triggers.append(current)
                window.append(current)
            else:
                cue = Cue(index, ev, slot=cue_slots)
                cue_slots += 1
                pending_cues.append(cue)
                owners.add(cue)
                window.append(cue)
            continue
        if ev.type in ("session.created", "session.updated"):
            fmt, _ = _audio.session_formats(ev.event.get("session") or {})
            in_fmt = fmt or in_fmt
        field = VAD_POSITION_FIELD.get(ev.type)
        if field is not None and position_ms > 0:
            stated = ev.get(field)
            threshold = min(stated, position_ms) if isinstance(stated, (int, float)) else position_ms
            current = Turn("audio", index, ev.offset_us, audio_ms=float(threshold), cues=pending_cues)
            pending_cues = []
            turns.append(current)
        # where does this server event go?
        owner = owners.owner(ev)
        if owner is None and ev.type == "error" and (ev.event.get("error") or {}).get("event_id") is None:
            # an error naming no event answers the first unanswered client event the client sent
            # since the server last spoke (a pipelining client sends several before the answers)
            first = next((c for c in window if isinstance(c, Turn) or not c.answers), None)
            owner = first if isinstance(first, Cue) else None
        window = []
        if ev.type == "session.created":
            connect.append((index, ev))  # whenever it was recorded: the client may have sent first
        elif owner is not None:
            owner.answers.append((index, ev))
            owner.error = owner.error or ev.type == "error"
            owners.answered(owner, ev)
        elif ev.type == "error" and _error_of_trigger(ev, turns) is not None:
            turn = _error_of_trigger(ev, turns)
            turn.sends.append((index, ev))  # type: ignore[union-attr]
            turn.error = True  # type: ignore[union-attr]
            if turn in unanswered_triggers:  # the API refused it: the next response answers a later trigger
                unanswered_triggers.remove(turn)
        elif ev.type == "response.created" and unanswered_triggers:
            turn = unanswered_triggers.pop(0)
            if turn.state is None:
                turn.state = _snapshot(model)
            turn.sends.append((index, ev))
            current = turn  # the model output that follows is this response's
        elif current is None:
            if turns or pending_cues:
                # after housekeeping but before any trigger: a tail of the latest cue
                (pending_cues[-1].tail if pending_cues else connect).append((index, ev))
            else:
                connect.append((index, ev))
        else:
            if current.kind == "response" and current.state is None:
                current.state = _snapshot(model)
            current.sends.append((index, ev))
        handler = OBSERVERS.get(ev.type)
        if handler is not None:
            handler(model, ev)
    for turn in turns:
        if turn.kind == "response" and turn.state is None:
            turn.state = _snapshot(model)
    if pending_cues:
        turns.append(Turn("end", -1, session.core[-1].offset_us if session.core else 0, cues=pending_cues))
    for turn in turns:
        turn.index_cues()
    return Plan(connect, turns, session.close)


class _Owners:
    """Which housekeeping cue a recorded answer belongs to, found without rescanning every cue."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[Cue]] = {}
        self.start: dict[tuple[str, str], int] = {}  # (kind, answer type) -> first cue that may still take it
        self.by_event_id: dict[str, Cue] = {}
        self.by_item: dict[str, Cue] = {}  # the item a commit made (its committed answer names it)

    def answered(self, cue: Cue, ev: RecordedEvent) -> None:
        if ev.type == "input_audio_buffer.committed" and isinstance(ev.get("item_id"), str):
            self.by_item[ev.get("item_id")] = cue

    def add(self, cue: Cue) -> None:
        self.by_kind.setdefault(cue.type, []).append(cue)
        event_id = cue.event.get("event_id")
        if isinstance(event_id, str):
            self.by_event_id.setdefault(event_id, cue)

    def owner(self, ev: RecordedEvent) -> Cue | None:
        """The housekeeping cue a recorded server event answers (an echo, or an error naming it)."""
        if ev.type == "error":
            wanted = (ev.event.get("error") or {}).get("event_id")
            return self.by_event_id.get(wanted) if isinstance(wanted, str) else None
        kind = ANSWERS.get(ev.type)
        if kind is None:
            return None
        if kind == "conversation.item.create" and self.by_item:
            # the echo of the item a commit made answers the commit (the session model makes both)
            item = ev.event.get("item")
            commit = self.by_item.get(item.get("id")) if isinstance(item, dict) else None  # type: ignore[arg-type]
            if commit is not None and not any(a.type == ev.type for _, a in commit.answers):
                return commit
        cues = self.by_kind.get(kind, [])
        key = (kind, ev.type)
        i = self.start.get(key, 0)
        while i < len(cues) and (cues[i].error or any(a.type == ev.type for _, a in cues[i].answers)):
            i += 1
        self.start[key] = i
        for cue in cues[i:]:
            if cue.error or any(a.type == ev.type for _, a in cue.answers):
                continue
            if kind == "conversation.item.create" and not _same_item(cue.event.get("item"), ev.event.get("item")):
                continue
            return cue
        return None


def _error_of_trigger(ev: RecordedEvent, turns: list[Turn]) -> Turn | None:
    wanted = (ev.event.get("error") or {}).get("event_id")
    for turn in reversed(turns):
        if turn.trigger is not None and wanted is not None and turn.trigger.get("event_id") == wanted:
            return turn
    if wanted is None and turns and turns[-1].kind == "response" and not turns[-1].sends:
        return turns[-1]
    return None


def _same_item(sent: Any, echoed: Any) -> bool:
    if not isinstance(sent, dict) or not isinstance(echoed, dict):
        return False
    if sent.get("id") is not None:
        return sent.get("id") == echoed.get("id")
    return sent.get("type") == echoed.get("type") and sent.get("role") == echoed.get("role")


def _snapshot(model: SessionModel) -> TurnState:
    return state_of(model, None)


def state_of(model: SessionModel, untag: Any) -> TurnState:
    """The state a trigger is matched on, from a session model (recorded or live)."""
    session = model.session
    tools = session.get("tools")
    names = sorted(t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)) if isinstance(tools, list) else []
    choice = session.get("tool_choice", "auto")
    modalities = session.get("output_modalities" if model.dialect == "ga" else "modalities")
    fin, fout = _audio.session_formats(session)
    kinds = model.kinds
    if kinds is None:  # after a delete or an insert in the middle: built again once, then kept
        kinds = model.kinds = rebuilt(model.item_order(), model.item_data)
    outputs = [untag(c) if untag is not None and isinstance(c, str) else c for c in kinds.outputs]
    return TurnState(names, choice, modalities, (fin.name if fin else None, fout.name if fout else None), list(kinds.kinds), outputs)
