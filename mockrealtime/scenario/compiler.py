"""Compiling a scenario into cassettes: the events both sides send, timed, in each dialect.

Theory of operation
-------------------
Each session is played forward on one clock (ms from the WebSocket upgrade). Client steps put the
client's events on it and the server's answers a few ms later; an ``assistant`` step streams a
response (:mod:`mockrealtime.scenario.stream`) from whatever asked for it: the client's
``response.create``, or server VAD's commit when the user stopped speaking.

The microphone, with server VAD, is a second clock: from the first ``speak`` step to the end of the
session the client appends 20 ms chunks as they are captured (quiet room noise, with the user's
voice where a ``speak`` step put it). VAD positions come from that audio: speech starts at the first
20 ms frame loud enough (:func:`mockrealtime.scenario.synth.voiced_span`), ``speech_started`` is
sent once about 180 ms more has been appended and says ``audio_start_ms`` = onset - prefix padding;
``speech_stopped`` comes when the silence after the last loud frame reaches
``silence_duration_ms`` and says ``audio_end_ms`` = that point. A barge-in places the next
utterance at the playback position asked for, and the response is cut when ``speech_started`` is
sent; the client then truncates the assistant item at what it had played.

Everything is deterministic (see :mod:`mockrealtime.scenario.synth`), so a scenario compiles to
the same bytes every time; the bundled cassettes are checked against their scenarios that way.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import os
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import Cassette, Close, Handshake, RecordedEvent, Session
from mockrealtime.errors import ScenarioError
from mockrealtime.scenario import model as m
from mockrealtime.scenario import synth
from mockrealtime.scenario.errors import CATALOGUE, error_body
from mockrealtime.scenario.recorder import BETA_MODEL, GA_MODEL, Recorder, effective_patch, session_patch
from mockrealtime.scenario.stream import Call, Response, Speech, Text, argument_deltas, respond

VAD_ONSET_MS = 180  # speech the VAD needs before it reports a start
USER_F0, ASSISTANT_F0, ROOM_NOISE = 125.0, 190.0, 70.0


def dialect_note(dialect: str) -> str:
    if dialect == "ga":
        return "Dialect: GA (no OpenAI-Beta header; conversation.item.added/.done, response.output_* names)."
    return ("Dialect: beta (OpenAI-Beta: realtime=v1; conversation.created after session.created, "
            "conversation.item.created, response.text/audio/audio_transcript.* names, flat session).")


def model_for(setup: m.Setup, dialect: str) -> str:
    return setup.model_in(dialect) or (GA_MODEL if dialect == "ga" else BETA_MODEL)


def compile_scenario(scenario: m.Scenario, path: str = "<scenario>") -> dict[str, Cassette]:
    """The cassette of each dialect the scenario asks for; ScenarioError names the failing step."""
    out = {}
    for dialect in scenario.dialects:
        sessions = [_SessionBuilder(scenario, dialect, i, steps, path).run() for i, steps in enumerate(scenario.session_steps())]
        model = model_for(scenario.setup, dialect)
        headers = {"OpenAI-Beta": "realtime=v1"} if dialect == "beta" else {}
        description = "\n\n".join(p for p in (scenario.description.strip(), dialect_note(dialect)) if p)
        out[dialect] = Cassette(name=scenario.name, dialect=dialect, sessions=sessions, model=model,
                                handshake=Handshake("/v1/realtime", {"model": model}, headers), description=description)
    return out


@dataclasses.dataclass
class _Mic:
    """The microphone of a server-VAD session: streams from ``t0`` (wall ms) to the close."""

    t0: float
    fmt: _audio.AudioFormat
    ns: str
    segments: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)

    def sent_at(self, i: int) -> float:
        """When chunk ``i`` (audio [20 i, 20 i + 20) ms) leaves the client: once captured, plus jitter."""
        return round(self.t0 + synth.FRAME_MS * (i + 1) + (synth.seed(self.ns, "mic", i) % 25) / 10, 1)

    def when_buffered(self, position_ms: float) -> float:
        return self.sent_at(max(0, -(-int(position_ms) // synth.FRAME_MS) - 1))

    def chunks(self, close_at: float) -> list[tuple[float, bytes]]:
        n = 0
        while self.sent_at(n) < close_at:
            n += 1
        size = round(synth.FRAME_MS * self.fmt.bytes_per_ms)
        buf = bytearray(synth.quiet(self.fmt, n * synth.FRAME_MS, ROOM_NOISE))
        for position, data in self.segments:
            start = round(position * self.fmt.bytes_per_ms)
            piece = data[: max(0, len(buf) - start)]
            buf[start : start + len(piece)] = piece
        return [(self.sent_at(i), bytes(buf[i * size : (i + 1) * size])) for i in range(n)]


@dataclasses.dataclass
class _Barge:
    speech: bytes
    span: tuple[int, int]
    position_ms: int = 0
    started_at: float = 0.0


class _SessionBuilder:
    def __init__(self, scenario: m.Scenario, dialect: str, index: int, steps: list[m.Step], path: str) -> None:
        self.scenario, self.dialect, self.steps, self.path = scenario, dialect, steps, path
        self.ns = f"{scenario.name}/{dialect}" + (f"/s{index}" if index else "")
        self.r = Recorder(self.ns, dialect, model_for(scenario.setup, dialect))
        self.client_in = _audio.PCM16  # the input format the client believes in (it may have been refused)
        self.mic: _Mic | None = None
        self.trigger: float | None = None  # when the server may start a response
        self.playback_end = 0.0
        self.calls: list[str] = []
        self.barge: _Barge | None = None
        self.where = "$"
        self.last_response: str | None = None
        self.forced: dict[str, Any] | None = None  # beta: a forced tool_choice rides on response.create

    def fail(self, message: str) -> ScenarioError:
        return ScenarioError(self.path, self.where, message)

    def run(self) -> Session:
        r = self.r
        self.t = r.open(120 + r.gap(4, 12))
        self.ready = self.t + r.gap(12, 20)
        if self.scenario.setup.sends():
            self.where = "$.session"
            self._update(self.scenario.setup)
        for i, step in enumerate(self.steps):
            self.where = f"step {i + 1} ({type(step).__name__.lower()})"
            self.index = i
            getattr(self, _HANDLERS[type(step)])(step)
        if self.barge is not None:
            raise self.fail("a barge-in needs a speak step right after it")
        close_at = max(self.t, self.playback_end) + r.gap(100, 200)
        if self.mic is not None:
            for at, chunk in self.mic.chunks(close_at):
                r.client(at, {"type": "input_audio_buffer.append", "audio": _b64(chunk)})
        return Session(_ordered(r.events), Close("client", 1000, ""))

    # -- client steps --------------------------------------------------------------------------------

    def _client_time(self) -> float:
        """When the client sends its next event: ``ready`` is kept at or after what it waits for."""
        return self.ready

    def _update(self, setup: m.Setup) -> None:
        r = self.r
        at = self._client_time()
        patch = session_patch(setup, r.ga)
        event: dict[str, Any] = {"type": "session.update"}
        if setup.event_id:
            event["event_id"] = setup.event_id
        event["session"] = patch
        r.client(at, event)
        if setup.input_format is not None:
            self.client_in = _audio.FORMATS[setup.input_format]
        if not r.ga and isinstance(setup.tool_choice, dict):
            self.forced = setup.tool_choice
        if setup.error:
            self.t = at + r.gap(28, 40)
            r.error(self.t, self._error_body(setup.error, setup.values, event))
        else:
            self.t = at + r.gap(35, 60)
            r.session_updated(self.t, effective_patch(patch, r.ga))
        # Like the openai SDK examples, the client goes on without waiting for session.updated.
        self.ready = at + 0.6

    def _error_body(self, name: str, values: dict[str, Any], event: dict[str, Any] | None) -> dict[str, Any]:
        known: dict[str, Any] = {"minutes": 60 if self.r.ga else 30}
        if self.last_response is not None:
            known["response_id"] = self.last_response
        if event is not None and isinstance(event.get("item"), dict) and "call_id" in event["item"]:
            known["call_id"] = event["item"]["call_id"]
        try:
            return error_body(name, {**known, **values}, None if event is None else event.get("event_id"))
        except KeyError as exc:
            raise self.fail(f"the {name} error needs {exc.args[0]!r} (say it next to error:)") from None
        except ValueError as exc:
            raise self.fail(f"the {name} error's message cannot be filled in: {exc}") from None

    def _item_step(self, item: dict[str, Any], respond: bool, event_id: str | None, error: str | None,
                   values: dict[str, Any]) -> None:
        r = self.r
        at = self._client_time()
        event: dict[str, Any] = {"type": "conversation.item.create"}
        if event_id:
            event["event_id"] = event_id
        event["item"] = item
        r.client(at, event)
        if respond:
            r.client(at + 0.6, self._response_create())
        answer_at = max(at + r.gap(30, 45), self.t + r.gap(3, 8))  # after what the server still owes
        if error:
            if CATALOGUE[error].unprompted:
                raise self.fail(f"{error} is sent by the server on its own: make it a step of its own")
            self.t = answer_at
            r.error(self.t, self._error_body(error, values, event))
        else:
            self.t = r.accept_item(answer_at, item)
        self.trigger = self.t if respond else None
        self.ready = self.t + r.gap(5, 15)

    def _response_create(self) -> dict[str, Any]:
        if self.forced is None:
            return {"type": "response.create"}
        return {"type": "response.create", "response": {"tool_choice": copy.deepcopy(self.forced)}}

    def _user(self, step: m.User) -> None:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": step.text}]}
        self._item_step(item, step.respond, step.event_id, step.error, step.values)

    def _tooloutput(self, step: m.ToolOutput) -> None:
        item: dict[str, Any] = {"type": "function_call_output"}
        if step.call_id is True:
            if not self.calls:
                raise self.fail("tool_output answers a call, and no response has called a tool yet")
            item["call_id"] = self.calls[-1]
        elif isinstance(step.call_id, str):
            item["call_id"] = step.call_id
        item["output"] = m.dumps_value(step.output)
        self.ready = max(self.ready, self.t + self.r.gap(110, 160))  # the app runs the tool
        self._item_step(item, step.respond, step.event_id, step.error, step.values)

    def _update_step(self, step: m.Update) -> None:
        self._update(step.setup)

    def _wait(self, step: m.Wait) -> None:
        self.t = max(self.t, self.ready) + step.ms
        self.ready = self.t

    def _servererror(self, step: m.ServerError) -> None:
        self.t = max(self.t, self.ready) + self.r.gap(5, 20)
        self.r.error(self.t, self._error_body(step.error, step.values, None))
        self.ready = self.t + self.r.gap(5, 15)

    # -- the user speaks -----------------------------------------------------------------------------------

    def _speech(self, step: m.Speak, index: int) -> bytes:
        fmt = self.client_in
        if step.wav is not None:
            wav = os.path.join(self.scenario.base_dir, step.wav)
            try:
                with open(wav, "rb") as f:
                    source, data = _audio.parse_wav(f.read())
            except (OSError, ValueError) as exc:
                raise self.fail(f"cannot use {step.wav}: {exc}") from None
            return synth.convert(data, source, fmt)
        return synth.utterance(fmt, step.ms or 0, f"{self.ns}/speak{index}", f0=USER_F0, noise=ROOM_NOISE)

    def _speak(self, step: m.Speak) -> None:
        r = self.r
        vad = r.turn_detection
        server_in, _ = r.formats
        if vad is None:
            return self._push_to_talk(step)
        first = self.mic is None
        if self.mic is None:
            # The microphone opens once session.updated is in: appends before it would be read (and
            # kept in the cassette) in the previous format.
            self.mic = _Mic(max(self._client_time(), self.t), self.client_in, self.ns)
        mic = self.mic
        if self.barge is not None:
            barge, self.barge = self.barge, None
            speech, position, started_at = barge.speech, barge.position_ms, barge.started_at
            onset, offset = (position + barge.span[0], position + barge.span[1])
        else:
            speech = self._speech(step, self.index)
            position = step.lead_ms if first else round(max(self.ready, self.playback_end) + step.lead_ms - mic.t0)
            span = synth.voiced_span(speech, self.client_in)
            if span is None:
                raise self.fail("the speech holds no sound loud enough for the VAD")
            onset, offset = position + span[0], position + span[1]
            started_at = mic.when_buffered(onset + VAD_ONSET_MS) + r.gap(6, 14)
        mic.segments.append((position, speech))
        if server_in is not self.client_in:
            # The server decodes the audio in another format than the client sends: the VAD hears
            # noise, not this speech (inference); no VAD turn is recorded.
            self.ready = self.t = max(self.t, started_at)
            return None
        prefix = int(vad.get("prefix_padding_ms", 300))
        silence = int(vad.get("silence_duration_ms", 500))
        end = offset + silence
        stopped_at = mic.when_buffered(end) + r.gap(6, 14)
        self.t = r.vad_turn(started_at, max(0, onset - prefix), stopped_at, end, r.ids.new("item"))
        self.trigger = self.t if vad.get("create_response", True) else None
        self.ready = self.t
        return None

    def _push_to_talk(self, step: m.Speak) -> None:
        r = self.r
        at = self._client_time()
        fmt = self.client_in
        speech = synth.quiet(fmt, step.lead_ms, ROOM_NOISE) + self._speech(step, self.index)
        size = round(synth.FRAME_MS * fmt.bytes_per_ms)
        for i in range(0, len(speech), size):
            at += synth.FRAME_MS
            r.client(at, {"type": "input_audio_buffer.append", "audio": _b64(speech[i : i + size])})
        at += r.gap(2, 6)
        r.client(at, {"type": "input_audio_buffer.commit"})
        r.client(at + 0.6, self._response_create())
        self.t = r.committed(at + r.gap(20, 40), r.ids.new("item"), int(fmt.duration_ms(len(speech))))
        self.trigger = self.t
        self.ready = self.t + r.gap(5, 15)

    # -- the assistant ----------------------------------------------------------------------------------------

    def _assistant(self, step: m.Assistant) -> None:
        r = self.r
        if self.trigger is None:
            raise self.fail("nothing asks for this response: put a user, speak or tool_output step before it")
        outputs: list[Any] = []
        _, out_fmt = r.formats
        if step.text is not None:
            if r.speaks:
                ms = step.audio_ms if step.audio_ms is not None else max(600, round(len(step.text) * 55, -2))
                key = f"{self.ns}/say{self.index}"
                outputs.append(Speech(step.text, synth.utterance(out_fmt, ms, key, f0=ASSISTANT_F0)))
            else:
                outputs.append(Text(step.text))
        if step.call is not None:
            outputs.append(Call(step.call, argument_deltas(m.dumps_value(step.arguments if step.arguments is not None else {}))))
        cancel, reason = None, "turn_detected"
        if step.barge_in_ms is not None:
            cancel = self._barge_in(step.barge_in_ms)
        elif step.cancel_ms is not None:
            cancel, reason = self._client_cancel(step.cancel_ms), "client_cancelled"
        resp = respond(r, self.trigger + r.gap(25, 45), outputs, cancel=cancel, reason=reason)
        self.trigger = None
        self.last_response = resp.response_id
        self.calls += [item["call_id"] for item in resp.items if item["type"] == "function_call"]
        self.t = resp.end_ms
        heard = resp.first_audio_ms is not None
        self.playback_end = (resp.first_audio_ms + resp.audio_ms) if heard else resp.end_ms  # type: ignore[operator]
        self.ready = max(self.t, self.playback_end if not resp.cancelled else self.t) + r.gap(5, 15)
        if step.barge_in_ms is not None:
            self._truncate(resp)

    def _barge_in(self, playback_ms: int) -> Any:
        if self.mic is None:
            raise self.fail("a barge-in needs the microphone running: a speak step before it (server VAD)")
        if self.index + 1 >= len(self.steps) or not isinstance(self.steps[self.index + 1], m.Speak):
            raise self.fail("a barge-in needs a speak step right after it")
        speech = self._speech(self.steps[self.index + 1], self.index + 1)  # type: ignore[arg-type]
        span = synth.voiced_span(speech, self.client_in)
        if span is None:
            raise self.fail("the barge-in speech holds no sound loud enough for the VAD")
        barge = _Barge(speech, span)
        mic = self.mic

        def cancel(resp: Response) -> float:
            heard_from = resp.first_audio_ms if resp.first_audio_ms is not None else resp.first_output_ms
            barge.position_ms = round(heard_from + playback_ms - mic.t0)
            barge.started_at = mic.when_buffered(barge.position_ms + span[0] + VAD_ONSET_MS) + self.r.gap(6, 14)
            return barge.started_at

        self.barge = barge
        return cancel

    def _client_cancel(self, after_ms: int) -> Any:
        def cancel(resp: Response) -> float:
            heard_from = resp.first_audio_ms if resp.first_audio_ms is not None else resp.first_output_ms
            at = heard_from + after_ms
            self.r.client(at, {"type": "response.cancel"})
            return at + self.r.gap(2, 6)

        return cancel

    def _truncate(self, resp: Response) -> None:
        r = self.r
        speech = [i for i in resp.items if i["type"] == "message"]
        if not resp.cancelled or not speech or resp.first_audio_ms is None or self.barge is None:
            return
        played = int(min(resp.audio_ms, self.barge.started_at - resp.first_audio_ms))
        at = resp.end_ms + r.gap(6, 12)
        cut = {"item_id": speech[0]["id"], "content_index": 0, "audio_end_ms": played}
        r.client(at, {"type": "conversation.item.truncate", **cut})
        self.t = at + r.gap(20, 35)
        r.server(self.t, "conversation.item.truncated", **cut)
        self.playback_end = at
        self.ready = self.t


_HANDLERS = {m.User: "_user", m.Speak: "_speak", m.Assistant: "_assistant", m.ToolOutput: "_tooloutput",
             m.Update: "_update_step", m.ServerError: "_servererror", m.Wait: "_wait"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ordered(events: list[tuple[str, float, dict[str, Any]]]) -> list[RecordedEvent]:
    """Wire order by time (ties keep build order), at 0.1 ms, strictly increasing."""
    keyed = sorted(enumerate(events), key=lambda e: (round(e[1][1], 1), e[0]))
    out, last = [], -1.0
    for _, (direction, at, event) in keyed:
        at = round(max(round(at, 1), last + 0.1), 1)
        last = at
        out.append(RecordedEvent.make(direction, at, event))
    return out
