"""Replay speed against a bare aiohttp server, in one run, as ratios.

    python benchmarks/replay.py [--minutes 10] [--rounds 2000] [--repeat 3]

Three figures:

* push rate: one client event releases a long spoken answer (audio and transcript deltas); frames/s
  the client receives. The bare server pushes the same pre-serialised frames on any message.
* request -> first frame latency: the client sends ``conversation.item.create`` and waits for the
  answer, ``rounds`` times; p50 and p99. The bare server answers each message with one stored frame.
  mockrealtime validates the event, matches it against the cassette and echoes ids on this path.
* cassette load: a synthetic 10-minute call (microphone streamed in 20 ms chunks the whole time,
  VAD turns, spoken answers), parsed from disk with the cache cleared; median of several loads.

Each server runs in its own process so the client's work does not share its event loop. Targets
(issue #2): push >= 0.8x bare, p50 <= bare + 50 us, p99 <= 1.5x bare, load <= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from aiohttp import web  # noqa: E402

from mockrealtime.core import cassette as _cassette  # noqa: E402
from mockrealtime.core.cassette_writer import save  # noqa: E402
from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session  # noqa: E402

import _longcall  # noqa: E402
from _loopback import measure_latency, measure_push, pct, serve_forever  # noqa: E402


def monologue(minutes: float) -> Cassette:
    """One response.create answered by `minutes` of speech: 100 ms audio deltas + transcript deltas."""
    chunk = base64.b64encode(os.urandom(4800)).decode()
    events = [RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "event_" + "0" * 21, "session": {"type": "realtime"}})]
    events.append(RecordedEvent.make("client", 1, {"type": "response.create"}))
    t, n = 2.0, 0
    for _ in range(int(minutes * 600)):
        for body in (
            {"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": chunk},
            {"type": "response.output_audio_transcript.delta", "response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": "word "},
        ):
            n += 1
            events.append(RecordedEvent.make("server", t, {"type": body.pop("type"), "event_id": f"event_{n:021d}", **body}))
            t += 0.5
    events.append(RecordedEvent.make("server", t, {"type": "response.done", "event_id": "event_done" + "0" * 17, "response": {"id": "resp_1", "status": "completed", "output": []}}))
    return Cassette(name="monologue", dialect="ga", sessions=[Session(events, Close("client", 1000, ""))])


def pingpong(rounds: int) -> Cassette:
    events = [RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "event_" + "0" * 21, "session": {"type": "realtime"}})]
    for i in range(rounds):
        events.append(RecordedEvent.make("client", 1 + i, {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
        events.append(RecordedEvent.make("server", 1.5 + i, {"type": "conversation.item.added", "event_id": f"event_{i:021d}", "previous_item_id": None,
                                                               "item": {"id": f"item_{i}", "type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": "hi"}]}}))
    return Cassette(name="pingpong", dialect="ga", sessions=[Session(events, Close("client", 1000, ""))])


# ------------------------------------------------------------------------------------------------
# servers (each runs in a child process)


def run_bare(directory: str, port_queue: multiprocessing.Queue) -> None:
    """The reference: an aiohttp server that sends stored frames, doing nothing else."""
    mono = [e.text for e in _cassette.load(os.path.join(directory, "monologue.yaml")).sessions[0].events if e.direction.value == "server"]
    pong = [e.text for e in _cassette.load(os.path.join(directory, "pingpong.yaml")).sessions[0].events if e.direction.value == "server"]

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        frames = mono if request.match_info["name"] == "monologue" else pong
        await ws.send_str(frames[0])
        i = 1
        async for msg in ws:
            if frames is mono:
                for f in frames[1:]:
                    await ws.send_str(f)
            else:
                await ws.send_str(frames[i])
                i += 1
        return ws

    app = web.Application()
    app.router.add_get("/c/{name}/v1/realtime", handler)
    serve_forever(app, port_queue)


def run_mock(directory: str, port_queue: multiprocessing.Queue) -> None:
    from mockrealtime.config import ServerConfig
    from mockrealtime.net.server import make_app, settle_gc_for_serving

    app = make_app(ServerConfig(cassettes=directory, port=0))
    settle_gc_for_serving()  # as `mockrealtime serve` does
    serve_forever(app, port_queue)


def load_times(minutes: float, repeat: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "call.yaml")
        save(_longcall.build(minutes), path)
        size = os.path.getsize(path)
        times = []
        for _ in range(repeat):
            _cassette._CACHE.clear()
            t0 = time.perf_counter()
            _cassette.load(path)
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the spoken answer and of the loaded call")
    parser.add_argument("--rounds", type=int, default=2000, help="request/answer round trips for latency")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each measurement (best push rate, pooled latencies)")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp()
    save(monologue(args.minutes), os.path.join(tmp, "monologue.yaml"))
    save(pingpong(args.rounds), os.path.join(tmp, "pingpong.yaml"))
    ctx = multiprocessing.get_context("spawn")
    results = {}
    for label, target in (("bare aiohttp", run_bare), ("mockrealtime", run_mock)):
        q = ctx.Queue()
        proc = ctx.Process(target=target, args=(tmp, q), daemon=True)
        proc.start()
        try:
            url = f"ws://127.0.0.1:{q.get(timeout=60)}"
            # One warm-up run each, not counted: mockrealtime builds an audio frame's text the
            # first time it sends it (cold start is the load figure's business), and both servers
            # then get the same number of counted tries.
            asyncio.run(measure_push(url + "/c/monologue/v1/realtime"))
            asyncio.run(measure_latency(url + "/c/pingpong/v1/realtime", min(args.rounds, 200)))
            pushes, lat = [], []
            for _ in range(args.repeat):
                rate, frames = asyncio.run(measure_push(url + "/c/monologue/v1/realtime"))
                pushes.append(rate)
                lat += asyncio.run(measure_latency(url + "/c/pingpong/v1/realtime", args.rounds))
            results[label] = (max(pushes), frames, pct(lat, 0.5), pct(lat, 0.99))
        finally:
            proc.terminate()
            proc.join()
    load_ms, size = load_times(args.minutes, max(5, args.repeat))

    bare, mock = results["bare aiohttp"], results["mockrealtime"]
    print(f"push rate ({bare[1]} frames: {args.minutes:g} min of 100 ms audio deltas + transcript deltas)")
    print(f"  bare aiohttp   {bare[0]:10.0f} frames/s")
    print(f"  mockrealtime   {mock[0]:10.0f} frames/s   ratio {mock[0] / bare[0]:.2f}x   (target >= 0.80x)")
    print(f"request -> first frame latency ({args.rounds} x {args.repeat} round trips)")
    print(f"  bare aiohttp   p50 {bare[2]:7.1f} us   p99 {bare[3]:7.1f} us")
    print(f"  mockrealtime   p50 {mock[2]:7.1f} us   p99 {mock[3]:7.1f} us")
    print(f"  p50 difference {mock[2] - bare[2]:+.1f} us (target <= +50 us)   p99 ratio {mock[3] / bare[3]:.2f}x (target <= 1.5x)")
    print(f"cassette load ({args.minutes:g}-minute call, {size / 1024:.0f} KiB YAML + WAV sidecars)")
    print(f"  median {load_ms:.1f} ms (target <= 150 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
