"""A synthetic long call, shaped like a real one: mic audio streamed in 20 ms chunks the whole time,
server VAD turns, and spoken answers with interleaved audio and transcript deltas."""

from __future__ import annotations

import base64
import os

from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session


def build(minutes: float = 10.0, turn_s: float = 10.0) -> Cassette:
    chunk = base64.b64encode(os.urandom(960)).decode()  # 20 ms of pcm16 at 24 kHz
    answer_chunk = base64.b64encode(os.urandom(4800)).decode()  # 100 ms
    events: list[RecordedEvent] = []
    add = events.append
    n = 0

    def server(at: float, body: dict) -> None:
        nonlocal n
        n += 1
        add(RecordedEvent.make("server", at, {"type": body.pop("type"), "event_id": f"event_{n:021d}", **body}))

    server(0, {"type": "session.created", "session": {"type": "realtime", "object": "realtime.session", "id": "sess_1", "model": "gpt-realtime"}})
    total_ms = minutes * 60_000
    turn_ms = turn_s * 1000
    t = 0.0
    turn = 0
    mic = 0.0
    while t < total_ms:
        # the user speaks for 3 s, VAD fires, the assistant answers for ~5 s
        start = t
        item = f"item_u{turn}"
        resp = f"resp_{turn}"
        a_item = f"item_a{turn}"
        timeline = []
        timeline.append((start + 300, {"type": "input_audio_buffer.speech_started", "audio_start_ms": int(start + 100), "item_id": item}))
        timeline.append((start + 3500, {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": int(start + 3000), "item_id": item}))
        timeline.append((start + 3501, {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": item}))
        timeline.append((start + 3502, {"type": "conversation.item.added", "previous_item_id": None, "item": {"id": item, "type": "message", "role": "user", "content": []}}))
        timeline.append((start + 3600, {"type": "response.created", "response": {"id": resp, "object": "realtime.response", "status": "in_progress", "output": []}}))
        at = start + 3700
        words = "this is a long answer from the assistant that goes on for a while ".split()
        for k in range(50):  # 5 s of audio in 100 ms deltas, with transcript deltas between
            timeline.append((at, {"type": "response.output_audio.delta", "response_id": resp, "item_id": a_item, "output_index": 0, "content_index": 0, "delta": answer_chunk}))
            timeline.append((at + 1, {"type": "response.output_audio_transcript.delta", "response_id": resp, "item_id": a_item, "output_index": 0, "content_index": 0, "delta": words[k % len(words)] + " "}))
            at += 40
        timeline.append((at + 10, {"type": "response.output_audio.done", "response_id": resp, "item_id": a_item, "output_index": 0, "content_index": 0}))
        timeline.append((at + 11, {"type": "response.done", "response": {"id": resp, "object": "realtime.response", "status": "completed", "output": [],
                                     "usage": {"total_tokens": 300, "input_tokens": 100, "output_tokens": 200}}}))
        timeline.append((at + 12, {"type": "rate_limits.updated", "rate_limits": [{"name": "tokens", "limit": 1000, "remaining": 900, "reset_seconds": 1.0}]}))
        end = start + turn_ms
        while mic < end:
            while timeline and timeline[0][0] <= mic:
                when, body = timeline.pop(0)
                server(when, body)
            add(RecordedEvent.make("client", mic, {"type": "input_audio_buffer.append", "audio": chunk}))
            mic += 20
        for when, body in timeline:
            server(when, body)
        t = end
        turn += 1
    events.sort(key=lambda e: e.offset_us)
    return Cassette(name="longcall", dialect="ga", model="gpt-realtime", sessions=[Session(events, Close("client", 1000, ""))],
                    description=f"A synthetic {minutes:g}-minute call for benchmarks.")
