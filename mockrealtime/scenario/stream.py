"""One response as the server streams it: items, content parts, deltas, and how it ends.

Timing: ``response.created`` comes 25-45 ms after what triggered it and the first output 280-420 ms
after that; audio is generated about three times faster than it plays, in 100-200 ms deltas, with
the transcript running a little ahead of the audio. A response can be cut short: by the user's
speech (server VAD, ``turn_detected``) or by the client's ``response.cancel`` (``client_cancelled``);
then the open parts still get their ``.done`` events, the item is ``incomplete``, and
``response.done`` says ``cancelled``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from mockrealtime.scenario import synth
from mockrealtime.scenario.recorder import Recorder, ntokens, text_tokens

AUDIO_DELTA_MS = (100, 150, 200, 150, 200, 100)
STREAM_SPEED = 3.0


@dataclasses.dataclass(frozen=True)
class Speech:
    transcript: str
    audio: bytes  # in the session's output format: what the model would say if not interrupted


@dataclasses.dataclass(frozen=True)
class Text:
    text: str


@dataclasses.dataclass(frozen=True)
class Call:
    name: str
    argument_deltas: tuple[str, ...]


Output = Speech | Text | Call


@dataclasses.dataclass
class Response:
    response_id: str
    items: list[dict[str, Any]]
    end_ms: float
    first_output_ms: float = 0.0
    first_audio_ms: float | None = None
    audio_ms: float = 0.0
    cancelled: bool = False
    cancel_at: float | None = None


def argument_deltas(arguments: str) -> tuple[str, ...]:
    """Function arguments split the way the model streams them: a few characters at a time."""
    parts = []
    for token in text_tokens(arguments) or [arguments]:
        while len(token) > 6:
            parts.append(token[:6])
            token = token[6:]
        parts.append(token)
    return tuple(parts)


def _obfuscation(ns: str, n: int, delta: str) -> str:
    # Capture: the padding makes len(delta) + len(obfuscation) a multiple of 16.
    return synth.digest(ns, "obf", n)[: 16 - len(delta) % 16]


class _Cut(Exception):
    """The response is cut at this moment."""


def respond(r: Recorder, created_at: float, outputs: list[Output], *, first_output_after: float | None = None,
            cancel: Callable[[Response], float | None] | None = None, reason: str = "turn_detected") -> Response:
    """Stream a whole response. ``cancel`` is asked once the first output (or audio) is out; the time
    it returns, if any, is when the server stops."""
    r.requests_used += 1
    rid = r.ids.new("resp")
    r.server(created_at, "response.created", response=r.response_object(rid, "in_progress", []))
    t = created_at + (first_output_after if first_output_after is not None else r.gap(280, 420))
    resp = Response(rid, [], t, first_output_ms=t)
    out_text = out_audio = 0
    for index, out in enumerate(outputs):
        if resp.cancel_at is not None and t >= resp.cancel_at:
            break
        item, t, cut, text_n, audio_ms = _stream_item(r, rid, index, out, t, resp, cancel)
        resp.items.append(item)
        out_text += text_n
        out_audio += int(audio_ms) // 50  # assistant audio: one token per 50 ms
        resp.audio_ms += audio_ms
        if cut:
            resp.cancelled = True
            break
    if not outputs and cancel is not None:
        resp.cancel_at = cancel(resp)
        resp.cancelled = resp.cancel_at is not None
        t = max(t, resp.cancel_at or t)
    details = {"type": "cancelled", "reason": reason} if resp.cancelled else None
    usage = r.usage(out_text, out_audio)
    r.ctx_text += out_text
    r.ctx_audio += out_audio
    t += r.gap(1.0, 4.0) if resp.cancelled else r.gap(15, 40)
    body = r.response_object(rid, "cancelled" if resp.cancelled else "completed", json.loads(json.dumps(resp.items)),
                             details, usage)
    r.server(t, "response.done", response=body)
    t += r.gap(0.5, 2.5)
    r.rate_limits(t, usage["total_tokens"])
    resp.end_ms = t
    return resp


def _stream_item(r: Recorder, rid: str, index: int, out: Output, t: float, resp: Response,
                 cancel: Callable[[Response], float | None] | None) -> tuple[dict[str, Any], float, bool, int, float]:
    """One output item; returns (final item, time, cut short?, text tokens, audio ms)."""
    item_id = r.ids.new("item")
    common = {"response_id": rid, "item_id": item_id, "output_index": index}
    at_index = {"response_id": rid, "output_index": index}
    if resp.cancel_at is None and cancel is not None and index == 0 and not isinstance(out, Speech):
        resp.cancel_at = cancel(resp)  # no audio to wait for: the cut is timed from the first output
    if isinstance(out, Call):
        return _stream_call(r, out, item_id, common, at_index, t)
    audio = isinstance(out, Speech)
    item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    r.server(t, "response.output_item.added", **at_index, item=r.wire_item(item))
    t = r.item_added(t + r.gap(0.3, 1.5), item, finished=False)
    t += r.gap(0.5, 2.0)
    start_part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
    r.server(t, "response.content_part.added", **common, content_index=0, part=start_part)
    c = {**common, "content_index": 0}
    if audio:
        text_type = "response.output_audio_transcript.delta" if r.ga else "response.audio_transcript.delta"
    else:
        text_type = "response.output_text.delta" if r.ga else "response.text.delta"
    words = text_tokens(out.transcript if isinstance(out, Speech) else out.text)
    full = "".join(words)
    emitted: list[str] = []
    _, out_fmt = r.formats
    total_ms = out_fmt.duration_ms(len(out.audio)) if isinstance(out, Speech) else 10.0 * len(full)
    sent_ms = 0.0

    def check(at: float) -> None:
        if resp.cancel_at is not None and at >= resp.cancel_at:
            raise _Cut

    def emit_text(at: float, upto: float, spacing: tuple[float, float] = (4, 12)) -> float:
        # Send the words that belong before audio position ``upto`` (the transcript leads the audio).
        while len(emitted) < len(words):
            if len("".join(emitted)) / max(1, len(full)) * total_ms > upto:
                break
            at += r.gap(*spacing)
            check(at)
            delta = words[len(emitted)]
            fields: dict[str, Any] = {**c, "delta": delta}
            if r.ga:
                r._obf += 1
                fields["obfuscation"] = _obfuscation(r.ns, r._obf, delta)
            r.server(at, text_type, **fields)
            emitted.append(delta)
        return at

    cut = False
    try:
        if isinstance(out, Speech):
            audio_type = "response.output_audio.delta" if r.ga else "response.audio.delta"
            stream_start = t + r.gap(8, 20)
            k = 0
            while sent_ms < total_ms - 1e-9:
                chunk_ms = min(AUDIO_DELTA_MS[k % len(AUDIO_DELTA_MS)], total_ms - sent_ms)
                k += 1
                due = stream_start + sent_ms / STREAM_SPEED + r.gap(0, 12)
                t = emit_text(t, sent_ms + chunk_ms + 250)
                t = max(t + r.gap(3, 9), due)
                check(t)
                a = round(sent_ms * out_fmt.bytes_per_ms)
                b = round((sent_ms + chunk_ms) * out_fmt.bytes_per_ms)
                r.server(t, audio_type, **c, delta=base64.b64encode(out.audio[a:b]).decode("ascii"))
                if resp.first_audio_ms is None:
                    resp.first_audio_ms = t
                    if cancel is not None and resp.cancel_at is None:
                        resp.cancel_at = cancel(resp)
                sent_ms += chunk_ms
            t = emit_text(t, 10**9)
        else:
            t = emit_text(t, 10**9, spacing=(18, 40))
    except _Cut:
        cut = True
        t = resp.cancel_at + r.gap(0.8, 2.0)  # type: ignore[operator]
    text = "".join(emitted)
    t += 0.0 if cut else r.gap(2, 6)
    if audio:
        r.server(t, "response.output_audio.done" if r.ga else "response.audio.done", **c)
        t += r.gap(0.3, 1.0)
        done_type = "response.output_audio_transcript.done" if r.ga else "response.audio_transcript.done"
        r.server(t, done_type, **c, transcript=text)
        part = {"type": "audio", "transcript": text}
        content = {"type": "output_audio" if r.ga else "audio", "transcript": text}
    else:
        r.server(t, "response.output_text.done" if r.ga else "response.text.done", **c, text=text)
        part = {"type": "text", "text": text}
        content = {"type": "output_text" if r.ga else "text", "text": text}
    t += r.gap(0.3, 1.0)
    r.server(t, "response.content_part.done", **c, part=part)
    final = r.wire_item({**item, "status": "incomplete" if cut else "completed", "content": [content]})
    t += r.gap(0.3, 1.2)
    r.server(t, "response.output_item.done", **at_index, item=final)
    if r.ga:
        t += r.gap(0.3, 1.2)
        r.server(t, "conversation.item.done", previous_item_id=r.previous_of(item_id), item=final)
    return final, t, cut, ntokens(text) + 2, sent_ms


def _stream_call(r: Recorder, out: Call, item_id: str, common: dict[str, Any], at_index: dict[str, Any],
                 t: float) -> tuple[dict[str, Any], float, bool, int, float]:
    call_id = r.ids.new("call")
    item = {"id": item_id, "type": "function_call", "status": "in_progress", "name": out.name, "call_id": call_id,
            "arguments": ""}
    r.server(t, "response.output_item.added", **at_index, item=r.wire_item(item))
    t = r.item_added(t + r.gap(0.3, 1.5), item, finished=False)
    for delta in out.argument_deltas:
        t += r.gap(18, 40)
        r.server(t, "response.function_call_arguments.delta", **common, call_id=call_id, delta=delta)
    arguments = "".join(out.argument_deltas)
    t += r.gap(8, 25)
    # The real beta server sends ``name`` here too (protocol.md §2.4); bridges read it.
    r.server(t, "response.function_call_arguments.done", **common, call_id=call_id, name=out.name, arguments=arguments)
    final = r.wire_item({**item, "status": "completed", "arguments": arguments})
    t += r.gap(0.5, 2.0)
    r.server(t, "response.output_item.done", **at_index, item=final)
    if r.ga:
        t += r.gap(0.3, 1.2)
        r.server(t, "conversation.item.done", previous_item_id=r.previous_of(item_id), item=final)
    return final, t, False, ntokens(arguments) + 6, 0.0
