"""``mockrealtime show``: a cassette as a conversation a person can read.

One line per thing that happened, at its time since connect, with who did it:

``user``       what the user said or typed (typed text, microphone audio with its duration,
               the API's transcription of it)
``assistant``  what the model answered (text; speech with its duration and transcript; tool calls
               with their arguments), and how a response ended when it did not complete
``tool``       what the client's tool returned (``function_call_output``)
``client``     the client's other moves: session.update, response.create/cancel, truncation,
               buffer commit/clear
``vad``        server VAD: speech started/stopped at a position in the input audio, commits
``server``     session.created/updated, errors, anything else worth seeing

Deltas, content parts, item echoes and rate limits are folded into the lines above. Sans-IO:
no aiohttp, no asyncio, and audio is measured from its byte counts, never read.

Each line also says what kind it is, which event it came from, what its text shortened and where its
audio lies in the session's *tracks* (microphone, assistant speech): the HTML view draws from these.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import Cassette, RecordedEvent
from mockrealtime.core.events import AUDIO_APPEND, AUDIO_DELTA_TYPES, Direction
from mockrealtime.core.summaries import format_name, how_it_ended, quote, response_summary, session_summary, short

_TEXT_DELTAS = frozenset({"response.output_text.delta", "response.text.delta"})
_TRANSCRIPT_DELTAS = frozenset({"response.output_audio_transcript.delta", "response.audio_transcript.delta"})
_QUIET = frozenset(
    {
        "conversation.created", "conversation.item.added", "conversation.item.done", "conversation.item.created",
        "response.created", "response.output_item.added", "response.content_part.added", "response.content_part.done",
        "response.output_text.done", "response.text.done", "response.output_audio.done", "response.audio.done",
        "response.output_audio_transcript.done", "response.audio_transcript.done",
        "response.function_call_arguments.delta", "response.function_call_arguments.done", "rate_limits.updated",
        "conversation.item.input_audio_transcription.delta", "output_audio_buffer.started", "output_audio_buffer.stopped",
        *_TEXT_DELTAS, *_TRANSCRIPT_DELTAS, *AUDIO_DELTA_TYPES,
    }
)


@dataclasses.dataclass(slots=True)
class Track:
    """One side's audio of a session in one format: the audio events, in order (never read here)."""

    who: str  # user | assistant
    format: _audio.AudioFormat
    events: list[RecordedEvent] = dataclasses.field(default_factory=list)
    ms: float = 0.0  # its duration so far


@dataclasses.dataclass(frozen=True, slots=True)
class Clip:
    """The stretch of a track a line's audio is: ``tracks[track]``, from ``start_ms`` to ``end_ms``."""

    track: int
    start_ms: float
    end_ms: float


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    at_ms: float
    who: str  # user | assistant | tool | client | vad | server
    text: str
    #: what it is, as words the HTML view styles: mic, speech, said, call, output, error, cancel,
    #: cut (an answer cut short), vad, speech_started, speech_stopped, settings
    kind: str = ""
    index: int = -1  # the event it came from (its index in the session's events)
    detail: str = ""  # what ``text`` shortens, in full: tool arguments and outputs, error bodies
    clip: Clip | None = None  # its audio; for speech_started/stopped, the position in the user's track

    def render(self) -> str:
        return f"{self.at_ms / 1000:9.3f}s  {self.who:<9}  {self.text}"


@dataclasses.dataclass(slots=True)
class _Item:
    """What the stream said about one output item so far."""

    started_ms: float | None = None  # response.output_item.added
    text: list[str] = dataclasses.field(default_factory=list)
    transcript: list[str] = dataclasses.field(default_factory=list)
    audio_bytes: int = 0
    arguments: list[str] = dataclasses.field(default_factory=list)
    clip: tuple[int, float] | None = None  # (track, start_ms) of its first audio


def _obj(value: Any) -> dict[str, Any]:
    """A field that should hold a JSON object, or an empty one if it holds anything else."""
    return value if isinstance(value, dict) else {}


def _secs(ms: float) -> str:
    return f"{ms / 1000:.2f} s"


class _Session:
    def __init__(self, events: list[RecordedEvent]) -> None:
        self.events = events
        self.lines: list[Line] = []
        self.items: dict[str, _Item] = {}
        self.calls: dict[Any, Any] = {}  # call_id -> tool name (as recorded, whatever their JSON types)
        self.spoken: dict[str, tuple[int, float]] = {}  # item id -> where its audio begins (track, ms)
        self.input_format: _audio.AudioFormat = _audio.PCM16
        self.requested_input: _audio.AudioFormat | None = None  # by the client's last session.update
        self.output_format: _audio.AudioFormat = _audio.PCM16
        self.mic_start_ms: float | None = None  # time of the first append of the current stretch
        self.mic_chunks = 0
        self.mic_ms = 0.0  # audio in the current stretch
        self.mic_index = -1
        self.mic_bytes = 0
        self.mic_clip: tuple[int, float] | None = None
        self.input_ms = 0.0  # all input audio so far (what VAD positions count)
        self.tracks: list[Track] = []
        self._open: dict[str, int] = {}  # who -> the track their audio goes to now
        self.index = -1  # of the event being read

    def add(self, at_ms: float, who: str, text: str, kind: str = "", *, index: int | None = None,
            detail: str = "", clip: Clip | None = None) -> None:
        self.lines.append(Line(at_ms, who, text, kind, self.index if index is None else index, detail, clip))

    def _audio(self, who: str, fmt: _audio.AudioFormat, ev: RecordedEvent) -> tuple[int, float]:
        """Add an audio event to ``who``'s track (a new one when the format changed): (track, start ms)."""
        n = self._open.get(who)
        if n is None or self.tracks[n].format is not fmt:
            n = self._open[who] = len(self.tracks)
            self.tracks.append(Track(who, fmt))
        track = self.tracks[n]
        start = track.ms
        track.events.append(ev)
        track.ms += fmt.duration_ms(ev.audio_bytes)
        return n, start

    def _clip(self, start: tuple[int, float] | None, n_bytes: int) -> Clip | None:
        if start is None:
            return None
        return Clip(start[0], start[1], start[1] + self.tracks[start[0]].format.duration_ms(n_bytes))

    def _at_input(self, pos: Any) -> Clip | None:
        """A VAD position in the input audio, as a point of the user's current track."""
        n = self._open.get("user")
        if n is None or not isinstance(pos, (int, float)) or not 0 <= self.input_ms - pos <= self.tracks[n].ms:
            return None
        return Clip(n, self.tracks[n].ms - (self.input_ms - pos), self.tracks[n].ms - (self.input_ms - pos))

    def run(self) -> list[Line]:
        for index, ev in enumerate(self.events):
            self.index = index
            if ev.direction is Direction.CLIENT:
                if ev.type == AUDIO_APPEND:
                    self._append(ev)
                    continue
                self._flush_mic()
                self._client(ev)
            else:
                if ev.type.startswith("input_audio_buffer.speech_"):
                    self._flush_mic()
                self._server(ev)
        self._flush_mic()
        self.lines.sort(key=lambda line: line.at_ms)  # stable: a mic stretch is shown where it began
        return self.lines

    # -- microphone ---------------------------------------------------------------------------------

    def _append(self, ev: RecordedEvent) -> None:
        where = self._audio("user", self.input_format, ev)
        if self.mic_start_ms is None:
            self.mic_start_ms, self.mic_index, self.mic_clip = ev.offset_ms, self.index, where
        self.mic_chunks += 1
        self.mic_bytes += ev.audio_bytes
        ms = self.input_format.duration_ms(ev.audio_bytes)
        self.mic_ms += ms
        self.input_ms += ms

    def _flush_mic(self) -> None:
        if self.mic_start_ms is None:
            return
        upto = self.input_ms
        chunks = f"{self.mic_chunks} chunk{'s' if self.mic_chunks != 1 else ''}"
        mismatch = ""
        if self.requested_input not in (None, self.input_format):
            mismatch = (f"; measured as {format_name(self.input_format)}, the session's format, though the client "
                        f"asked for {format_name(self.requested_input)}")
        self.add(self.mic_start_ms, "user", f"microphone: {_secs(self.mic_ms)} of audio in {chunks} "
                 f"(input {_secs(upto - self.mic_ms)} to {_secs(upto)}{mismatch})", "mic",
                 index=self.mic_index, clip=self._clip(self.mic_clip, self.mic_bytes))
        self.mic_start_ms, self.mic_chunks, self.mic_ms, self.mic_bytes = None, 0, 0.0, 0

    # -- client -------------------------------------------------------------------------------------

    def _client(self, ev: RecordedEvent) -> None:
        e, at = ev.event, ev.offset_ms
        etype = ev.type
        if etype in ("session.update", "transcription_session.update"):
            session = _obj(e.get("session"))
            # formats change only when the server confirms (a rejected update changes nothing)
            self.requested_input = _audio.session_formats(session)[0] or self.requested_input
            self.add(at, "client", f"{etype}: {session_summary(session) or '(nothing)'}", "settings")
        elif etype == "conversation.item.create":
            self._client_item(at, _obj(e.get("item")))
        elif etype == "response.create":
            response = _obj(e.get("response"))
            extra = response_summary(response)
            self.add(at, "client", "response.create" + (f": {extra}" if extra else ""))
        elif etype == "response.cancel":
            self.add(at, "client", "response.cancel" + (f" {e['response_id']}" if e.get("response_id") else ""), "cancel")
        elif etype == "conversation.item.truncate":
            heard, spoken = e.get("audio_end_ms") or 0, self.spoken.get(str(e.get("item_id")))
            self.add(at, "client", f"truncates {e.get('item_id')} at {_secs(heard)} of its audio (what the user heard)", "truncate",
                     clip=Clip(spoken[0], spoken[1] + heard, spoken[1] + heard) if spoken and isinstance(heard, (int, float)) else None)
        elif etype == "input_audio_buffer.commit":
            self.add(at, "client", "commits the input audio buffer")
        elif etype == "input_audio_buffer.clear":
            self.add(at, "client", "clears the input audio buffer")
        else:
            self.add(at, "client", etype)

    def _client_item(self, at: float, item: dict[str, Any]) -> None:
        itype = item.get("type")
        if itype == "message":
            role = item.get("role", "?")
            parts = []
            for part in item.get("content") or []:
                if not isinstance(part, dict):
                    continue
                if isinstance(part.get("text"), str):
                    parts.append(quote(part["text"]))
                elif part.get("type") == "input_audio":
                    n = _audio.b64_decoded_len(part.get("audio") or "")
                    parts.append(f"[audio {_secs(self.input_format.duration_ms(n))}]"
                                 + (f" {quote(part['transcript'])}" if part.get("transcript") else ""))
                elif part.get("type") == "item_reference":
                    parts.append(f"[item {part.get('id')}]")
                else:
                    parts.append(f"[{part.get('type')}]")
            who = "user" if role == "user" else "client"
            prefix = "" if role == "user" else f"adds a {role} message: "
            self.add(at, who, prefix + (" ".join(parts) or "(empty)"), "said")
        elif itype == "function_call_output":
            call_id = item.get("call_id")
            name = self.calls.get(call_id, "?") if isinstance(call_id, str) else "?"
            output = str(item.get("output"))
            if call_id is None:
                self.add(at, "tool", f"output without call_id: {short(output, 200)}", "output error", detail=output)
            else:
                self.add(at, "tool", f"{name} -> {short(output, 200)}  [{call_id}]", "output", detail=output)
        elif itype == "function_call":
            self.calls[item.get("call_id")] = item.get("name")
            self.add(at, "client", f"adds a function call {item.get('name')}({item.get('arguments', '')})  [{item.get('call_id')}]",
                     "call", detail=str(item.get("arguments", "")))
        else:
            self.add(at, "client", f"adds a {itype} item")

    # -- server -------------------------------------------------------------------------------------

    def _item(self, ev: RecordedEvent) -> _Item:
        return self.items.setdefault(str(ev.get("item_id")), _Item())

    def _server(self, ev: RecordedEvent) -> None:
        etype, at = ev.type, ev.offset_ms
        if etype in AUDIO_DELTA_TYPES:
            item = self._item(ev)
            item.audio_bytes += ev.audio_bytes
            where = self._audio("assistant", self.output_format, ev)
            item.clip = item.clip or where
            return
        if etype in _TEXT_DELTAS:
            self._item(ev).text.append(ev.get("delta") or "")
            return
        if etype in _TRANSCRIPT_DELTAS:
            self._item(ev).transcript.append(ev.get("delta") or "")
            return
        if etype == "response.function_call_arguments.delta":
            self._item(ev).arguments.append(ev.get("delta") or "")
            return
        e = ev.event
        if etype == "session.created":
            session = e.get("session") or {}
            self._formats(session)
            self.add(at, "server", f"session.created: {session_summary(session, full=True)}", "settings")
        elif etype == "session.updated":
            self._formats(e.get("session") or {})
            self.add(at, "server", "session.updated", "settings")
        elif etype == "error":
            err = e.get("error") or {}
            cause = f" (answering {err['event_id']})" if err.get("event_id") else ""
            code = "/".join(str(x) for x in (err.get("type"), err.get("code")) if x)
            self.add(at, "server", f"error {code}: {err.get('message')}{cause}", "error", detail=json.dumps(err, indent=2, ensure_ascii=False))
        elif etype == "response.output_item.added":
            added = _obj(e.get("item"))
            self.items.setdefault(str(added.get("id")), _Item()).started_ms = at
            if added.get("type") == "function_call":
                self.calls[added.get("call_id")] = added.get("name")
        elif etype == "response.output_item.done":
            self._output_item(at, e.get("item") or {})
        elif etype == "response.done":
            self._response_done(at, e.get("response") or {})
        elif etype == "input_audio_buffer.speech_started":
            pos = e.get("audio_start_ms") or 0
            self.add(at, "vad", f"speech started at {_secs(pos)} of input audio", "vad speech_started", clip=self._at_input(pos))
        elif etype == "input_audio_buffer.speech_stopped":
            self.add(at, "vad", f"speech stopped at {_secs(e.get('audio_end_ms') or 0)} of input audio", "vad speech_stopped",
                     clip=self._at_input(e.get("audio_end_ms") or 0))
        elif etype == "input_audio_buffer.committed":
            self.add(at, "vad", f"input audio committed as {e.get('item_id')}", "vad")
        elif etype == "input_audio_buffer.timeout_triggered":
            self.add(at, "vad", f"idle timeout at {_secs(e.get('audio_end_ms') or 0)} of input audio", "vad")
        elif etype == "input_audio_buffer.cleared":
            self.add(at, "server", "input audio buffer cleared")
        elif etype == "conversation.item.input_audio_transcription.completed":
            self.add(at, "user", f"(transcribed) {quote(e.get('transcript') or '')}", "said transcript")
        elif etype == "conversation.item.input_audio_transcription.failed":
            err = e.get("error") or {}
            self.add(at, "server", f"transcription failed: {err.get('code')}: {err.get('message')}", "error")
        elif etype == "conversation.item.truncated":
            self.add(at, "server", f"{e.get('item_id')} truncated at {_secs(e.get('audio_end_ms') or 0)}")
        elif etype == "conversation.item.deleted":
            self.add(at, "server", f"{e.get('item_id')} deleted")
        elif etype not in _QUIET:
            self.add(at, "server", etype)

    def _output_item(self, at: float, item: dict[str, Any]) -> None:
        seen = self.items.pop(str(item.get("id")), _Item())
        if seen.clip is not None:
            self.spoken[str(item.get("id"))] = seen.clip
        at = seen.started_ms if seen.started_ms is not None else at  # when the assistant began it
        cut = "  (cut short)" if item.get("status") == "incomplete" else ""
        flag = " cut" if cut else ""
        if item.get("type") == "function_call":
            args = item.get("arguments") or "".join(seen.arguments)
            self.calls[item.get("call_id")] = item.get("name")
            self.add(at, "assistant", f"calls {item.get('name')}({args})  [{item.get('call_id')}]{cut}", "call" + flag, detail=str(args))
            return
        if item.get("type") != "message":
            self.add(at, "assistant", f"{item.get('type')} item{cut}", flag.strip())
            return
        pieces = []
        if seen.audio_bytes:
            pieces.append(f"[speech {_secs(self.output_format.duration_ms(seen.audio_bytes))}]")
        text = "".join(seen.transcript) or "".join(seen.text)
        if not text:  # a stream not in the recording: fall back to the item's own content
            for part in item.get("content") or []:
                if isinstance(part, dict):
                    text += part.get("text") or part.get("transcript") or ""
        if text:
            pieces.append(quote(text))
        self.add(at, "assistant", (" ".join(pieces) or "(nothing)") + cut, ("speech" if seen.audio_bytes else "said") + flag,
                 clip=self._clip(seen.clip, seen.audio_bytes))

    def _response_done(self, at: float, response: dict[str, Any]) -> None:
        status = response.get("status")
        if status in (None, "completed"):
            if response.get("output") == []:
                self.add(at, "assistant", "(says nothing: the response completed with no output)")
            return
        details = response.get("status_details") or {}
        why = details.get("reason") or ""
        error = details.get("error") or {}
        if error:
            why = "/".join(str(x) for x in (error.get("type"), error.get("code")) if x)
        self.add(at, "assistant", f"response {status}" + (f" ({why})" if why else ""), "error" if status == "failed" else "cancel",
                 detail=json.dumps(details, indent=2, ensure_ascii=False) if details else "")

    def _formats(self, session: dict[str, Any]) -> None:
        fin, fout = _audio.session_formats(session)
        self.input_format = fin or self.input_format
        self.output_format = fout or self.output_format


def session_lines(events: list[RecordedEvent]) -> list[Line]:
    """The timeline of one recorded session."""
    return _Session(events).run()


def session_view(events: list[RecordedEvent]) -> tuple[list[Line], list[Track]]:
    """The timeline of one recorded session and its audio tracks (what the lines' clips point into)."""
    session = _Session(events)
    return session.run(), session.tracks


def render(cassette: Cassette, sessions: list[int] | None = None) -> str:
    """The whole cassette (or the sessions listed) as text."""
    n = len(cassette.sessions)
    head = [f"{cassette.name}: {cassette.dialect}, model {cassette.model or '?'}, {n} session{'s' if n != 1 else ''}"]
    if cassette.path:
        head.append(cassette.path)
    if cassette.description:
        head.append("")
        head.extend(cassette.description.split("\n\n")[0].splitlines())
    out = head
    for index in sessions if sessions is not None else range(n):
        session = cassette.sessions[index]
        ended = how_it_ended(session)
        out.append("")
        out.append(f"session {index}" + (f" ({ended})" if ended else ""))
        out.extend(line.render() for line in session_lines(session.events))
    return "\n".join(out) + "\n"
