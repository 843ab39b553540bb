"""A hand-made cassette with everything the HTML timeline draws, in G.711 u-law (which browsers do not
play as it is): server VAD, a tool call with arguments and its output, an answer cut short by the
user (turn_detected), one the client cancels (client_cancelled), an error, and text that would be
markup if it were not escaped.
"""

from __future__ import annotations

import base64
import math

from mockrealtime.core import audio
from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session, load
from mockrealtime.core.cassette_writer import save

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)> {w}'
ARGUMENTS = '{"city": "Paris & <Lyon>"}'


def ulaw_tone(ms: int, hz: float = 440.0) -> bytes:
    """A sine in G.711 u-law at 8 kHz: for each sample, the u-law byte whose expansion is nearest."""
    _, expanded = audio.to_pcm16(audio.G711_ULAW, bytes(range(256)))
    values = [int.from_bytes(expanded[2 * b : 2 * b + 2], "little", signed=True) for b in range(256)]
    out = bytearray()
    for i in range(8 * ms):
        target = 6000 * math.sin(2 * math.pi * hz * i / 8000)
        out.append(min(range(256), key=lambda b: abs(values[b] - target)))
    return bytes(out)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _response(events: list[RecordedEvent], at: float, done_at: float, rid: str, iid: str, speech: bytes, words: str,
              status: str, reason: str | None) -> None:
    ev = events.append
    common = {"response_id": rid, "item_id": iid, "output_index": 0, "content_index": 0}
    ev(RecordedEvent.make("server", at, {"type": "response.created", "event_id": f"e_{rid}_c", "response": {"id": rid, "status": "in_progress"}}))
    ev(RecordedEvent.make("server", at + 1, {"type": "response.output_item.added", "event_id": f"e_{rid}_a", "response_id": rid, "output_index": 0,
                                              "item": {"id": iid, "type": "message", "role": "assistant", "status": "in_progress", "content": []}}))
    for n in range(0, len(speech), 800):  # 100 ms of u-law a chunk, sent faster than real time
        ev(RecordedEvent.make("server", at + 2 + n / 800, {"type": "response.output_audio.delta", "event_id": f"e_{rid}_d{n}", **common, "delta": _b64(speech[n : n + 800])}))
    ev(RecordedEvent.make("server", at + 3, {"type": "response.output_audio_transcript.delta", "event_id": f"e_{rid}_t", **common, "delta": words}))
    item_status = "completed" if status == "completed" else "incomplete"
    ev(RecordedEvent.make("server", done_at, {"type": "response.output_item.done", "event_id": f"e_{rid}_od", "response_id": rid, "output_index": 0,
                                               "item": {"id": iid, "type": "message", "role": "assistant", "status": item_status, "content": []}}))
    details = {"type": status, "reason": reason} if reason else None
    ev(RecordedEvent.make("server", done_at + 1, {"type": "response.done", "event_id": f"e_{rid}_done",
                                                   "response": {"id": rid, "status": status, "status_details": details, "output": []}}))


def everything_session() -> Session:
    mic = ulaw_tone(2000, 220.0)
    events = [
        RecordedEvent.make("server", 100, {"type": "session.created", "event_id": "e_created", "session": {
            "type": "realtime", "model": "gpt-realtime", "audio": {
                "input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}},
                "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}}}}),
    ]
    for n in range(100):  # 2 s of microphone, 20 ms (160 bytes) a chunk, in real time
        events.append(RecordedEvent.make("client", 200 + 20 * n, {"type": "input_audio_buffer.append", "audio": _b64(mic[160 * n : 160 * (n + 1)])}))
    ev = events.append
    ev(RecordedEvent.make("server", 500, {"type": "input_audio_buffer.speech_started", "event_id": "e_ss1", "audio_start_ms": 180, "item_id": "item_u1"}))
    ev(RecordedEvent.make("server", 1300, {"type": "input_audio_buffer.speech_stopped", "event_id": "e_se1", "audio_end_ms": 1000, "item_id": "item_u1"}))
    ev(RecordedEvent.make("server", 1302, {"type": "input_audio_buffer.committed", "event_id": "e_c1", "item_id": "item_u1"}))
    ev(RecordedEvent.make("server", 1400, {"type": "conversation.item.input_audio_transcription.completed", "event_id": "e_tr1",
                                           "item_id": "item_u1", "content_index": 0, "transcript": HOSTILE}))
    ev(RecordedEvent.make("server", 1500, {"type": "response.created", "event_id": "e_r1c", "response": {"id": "resp_1", "status": "in_progress"}}))
    call = {"id": "item_call", "type": "function_call", "status": "completed", "name": "get_weather", "call_id": "call_1", "arguments": ARGUMENTS}
    ev(RecordedEvent.make("server", 1501, {"type": "response.output_item.added", "event_id": "e_r1a", "response_id": "resp_1", "output_index": 0,
                                           "item": {**call, "status": "in_progress", "arguments": ""}}))
    ev(RecordedEvent.make("server", 1600, {"type": "response.output_item.done", "event_id": "e_r1od", "response_id": "resp_1", "output_index": 0, "item": call}))
    ev(RecordedEvent.make("server", 1601, {"type": "response.done", "event_id": "e_r1d", "response": {"id": "resp_1", "status": "completed", "output": [call]}}))
    ev(RecordedEvent.make("client", 1700, {"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": "call_1", "output": '{"temperature_c": 18, "note": "</pre><b>bold</b>"}'}}))
    ev(RecordedEvent.make("client", 1701, {"type": "response.create"}))
    _response(events, 1800, 2105, "resp_2", "item_a2", ulaw_tone(1500), "It is eighteen degrees in", "cancelled", "turn_detected")
    ev(RecordedEvent.make("server", 2100, {"type": "input_audio_buffer.speech_started", "event_id": "e_ss2", "audio_start_ms": 1900, "item_id": "item_u2"}))
    ev(RecordedEvent.make("client", 3200, {"type": "response.create"}))
    _response(events, 3300, 3750, "resp_3", "item_a3", ulaw_tone(800, 330.0), "Anything else?", "cancelled", "client_cancelled")
    ev(RecordedEvent.make("client", 3700, {"type": "response.cancel"}))
    ev(RecordedEvent.make("client", 4800, {"type": "response.cancel"}))
    ev(RecordedEvent.make("server", 4801, {"type": "error", "event_id": "e_err", "error": {
        "type": "invalid_request_error", "code": "response_cancel_not_active", "message": "Cancellation failed: no active response found", "param": None}}))
    events.sort(key=lambda e: e.offset_us)
    return Session(events, Close("client", 1000, ""))


def everything_cassette(directory: str) -> Cassette:
    """Saved (u-law sidecars) and loaded back, as ``show --html`` reads a file."""
    path = f"{directory}/everything.yaml"
    save(Cassette(name="everything", dialect="ga", sessions=[everything_session()], model="gpt-realtime",
                  description=f"Every kind of line the timeline draws. {HOSTILE}"), path)
    return load(path)
