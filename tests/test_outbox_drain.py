"""The push path's tight loop (``Outbox._drain_deltas``) sends what the frame-by-frame path sends and
leaves the session model in the same state: audio clock per item, transcript text per part."""

from __future__ import annotations

import base64
import json

import pytest

from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session
from mockrealtime.core.engine import ReplaySession


def spoken_answer(items: int = 2, deltas: int = 40, done: bool = True) -> Cassette:
    """One response.create answered by ``items`` spoken items, each audio deltas (of two sizes)
    interleaved with transcript deltas, each item's done event, then response.done (unless not
    ``done``: the session model keeps a response's parts until it is done)."""
    events = [RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "event_0", "session": {"type": "realtime"}}),
              RecordedEvent.make("client", 1, {"type": "response.create"})]
    t, n = 2.0, 0

    def server(body: dict) -> None:
        nonlocal t, n
        n += 1
        t += 0.5
        events.append(RecordedEvent.make("server", t, {"event_id": f"event_{n}", **body}))

    server({"type": "response.created", "response": {"id": "resp_1", "object": "realtime.response", "status": "in_progress", "output": []}})
    for k in range(items):
        item = {"id": f"item_{k}", "object": "realtime.item", "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        server({"type": "response.output_item.added", "response_id": "resp_1", "output_index": k, "item": item})
        server({"type": "conversation.item.added", "previous_item_id": f"item_{k - 1}" if k else None, "item": item})
        server({"type": "response.content_part.added", "response_id": "resp_1", "item_id": f"item_{k}", "output_index": k,
                "content_index": 0, "part": {"type": "audio", "transcript": ""}})
        for i in range(deltas):
            chunk = base64.b64encode(bytes(480 if i % 3 else 4800)).decode()
            server({"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": f"item_{k}", "output_index": k,
                    "content_index": 0, "delta": chunk})
            server({"type": "response.output_audio_transcript.delta", "response_id": "resp_1", "item_id": f"item_{k}",
                    "output_index": k, "content_index": 0, "delta": f"w{k}.{i} "})
        server({"type": "response.output_item.done", "response_id": "resp_1", "output_index": k,
                "item": {**item, "status": "completed"}})
    if done:
        server({"type": "response.done", "response": {"id": "resp_1", "object": "realtime.response", "status": "completed", "output": []}})
    return Cassette(name="spoken", dialect="ga", sessions=[Session(events, Close("client", 1000, ""))])


def play(as_bytes: bool, chunk: int | None, done: bool = True) -> tuple[list[dict], ReplaySession]:
    engine = ReplaySession(spoken_answer(done=done), connection=4, as_bytes=as_bytes)
    engine.start(0.0)
    sent = engine.pop_due(0.0)
    engine.feed('{"type":"response.create"}', 1.0)
    while True:
        frames = engine.pop_due(1.0, chunk)
        sent += frames
        if not frames or chunk is None:
            break
    return [json.loads(f) for f in sent], engine


@pytest.mark.parametrize("chunk", [None, 1, 7, 16])
def test_the_tight_loop_sends_the_frames_and_keeps_the_state_of_the_frame_by_frame_path(chunk):
    """UTF-8 frames at pace 0 take the tight loop; text frames take the frame-by-frame path.
    Same frames in the same order, same audio clock and transcript per item, in any chunking."""
    fast_frames, fast = play(as_bytes=True, chunk=chunk, done=False)
    slow_frames, slow = play(as_bytes=False, chunk=chunk, done=False)
    assert fast_frames == slow_frames
    assert len(fast_frames) == 2 + 2 * (4 + 2 * 40)
    assert fast.model.audio_ms == slow.model.audio_ms
    # 40 deltas per item: 14 of 4800 bytes (100 ms of pcm16 at 24 kHz), 26 of 480 (10 ms)
    assert fast.model.audio_ms == {"item_MR4x0": pytest.approx(1660.0), "item_MR4x1": pytest.approx(1660.0)}
    assert fast.model.assistant_audio and slow.model.assistant_audio
    for k in range(2):
        live = f"item_MR4x{k}"
        fast_text = fast.model.outputs[live].parts[0].text
        assert fast_text == slow.model.outputs[live].parts[0].text == "".join(f"w{k}.{i} " for i in range(40))


def test_a_truncate_after_the_tight_loop_checks_against_the_audio_actually_sent():
    """The audio clock the tight loop keeps is the one a truncate is checked against."""
    _, engine = play(as_bytes=True, chunk=16)
    engine.feed(json.dumps({"type": "conversation.item.truncate", "item_id": "item_MR4x0", "content_index": 0,
                            "audio_end_ms": 1700}), 2.0)
    answer = [json.loads(f) for f in engine.pop_due(2.0)]
    assert [(e["type"], e["error"]["param"]) for e in answer] == [("error", "audio_end_ms")]
    engine.feed(json.dumps({"type": "conversation.item.truncate", "item_id": "item_MR4x0", "content_index": 0,
                            "audio_end_ms": 1650}), 3.0)
    answer = [json.loads(f) for f in engine.pop_due(3.0)]
    assert [e["type"] for e in answer] == ["conversation.item.truncated"]


def test_a_client_chosen_id_shows_wherever_the_recording_names_it_and_nowhere_else():
    """Frames that name the item the client chose an id for are rendered with it; the rest (most of
    the deltas) still go out as the shared frames."""
    def run(choose: bool, as_bytes: bool) -> list[dict]:
        engine = ReplaySession(spoken_answer(), connection=4, as_bytes=as_bytes)
        if choose:
            engine.choose("item_0", "mine_0")
        engine.start(0.0)
        sent = engine.pop_due(0.0)
        engine.feed('{"type":"response.create"}', 1.0)
        while frames := engine.pop_due(1.0, 16):
            sent += frames
        return [json.loads(f) for f in sent]

    def rename(value):
        if isinstance(value, dict):
            return {k: rename(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rename(v) for v in value]
        return "mine_0" if value == "item_MR4x0" else value

    for as_bytes in (True, False):
        plain, chosen = run(False, as_bytes), run(True, as_bytes)
        assert chosen == [rename(e) for e in plain]
        assert sum("mine_0" in json.dumps(e) for e in chosen) == 2 * 40 + 5  # item_0's deltas and events
        assert all("item_MR4x0" not in json.dumps(e) for e in chosen) and any("item_MR4x1" in json.dumps(e) for e in chosen)
