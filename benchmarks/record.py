"""What recording costs: the recorder against a direct connection to the same upstream, as ratios.

    python benchmarks/record.py [--minutes 5] [--rounds 2000] [--repeat 3] [--sessions 100] [--long-minutes 10]

Two figures:

* added latency: the client sends ``conversation.item.create`` and waits for the one-frame answer,
  ``rounds`` times, directly to the upstream and through ``mockrealtime record``; p50 and p99 of
  each. A round trip through the recorder relays two frames (one each way), so the added latency
  per relayed frame is half the difference of the round trips.
* relay throughput: one client event makes the upstream push a long spoken answer (100 ms audio
  deltas + transcript deltas, pre-serialised); frames/s the client receives directly from the bare
  upstream and through the recorder.

And two figures of the recorder core alone (no sockets): the time to save each of ``--sessions``
finished sessions into one cassette, first tenth against last tenth (saving appends, so it should
not grow with the sessions before), and the memory of one ``--long-minutes`` call recorded with a
checkpoint every 2 s (frames are forgotten once saved, so it should stay flat).

The upstream is a bare aiohttp server; it and the recorder each run in their own process on
loopback, so neither shares the client's event loop. The recorder records everything for real
(and saves a cassette when each connection closes, between measurements). Targets (issue #4):
added p50 <= 200 us per frame, throughput >= 0.5x the bare server.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from aiohttp import web  # noqa: E402

from mockrealtime.core import cassette as _cassette  # noqa: E402

from _loopback import measure_latency, measure_push, pct, serve_forever  # noqa: E402

CREATED = json.dumps({"type": "session.created", "event_id": "event_" + "0" * 21, "session": {"type": "realtime", "model": "gpt-realtime"}})
ANSWER = json.dumps({"type": "conversation.item.added", "event_id": "event_" + "1" * 21, "previous_item_id": None,
                     "item": {"id": "item_1", "type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": "hi"}]}})


def monologue(minutes: float) -> list[str]:
    chunk = base64.b64encode(os.urandom(4800)).decode()  # 100 ms of 24 kHz pcm16
    frames, n = [], 0
    for _ in range(int(minutes * 600)):
        for etype, delta in (("response.output_audio.delta", chunk), ("response.output_audio_transcript.delta", "word ")):
            n += 1
            frames.append(json.dumps({"type": etype, "event_id": f"event_{n:021d}", "response_id": "resp_1", "item_id": "item_1",
                                      "output_index": 0, "content_index": 0, "delta": delta}))
    frames.append(json.dumps({"type": "response.done", "event_id": "event_done" + "0" * 17, "response": {"id": "resp_1", "status": "completed", "output": []}}))
    return frames


# ------------------------------------------------------------------------------------------------
# servers (each runs in a child process)


def run_upstream(minutes: float, port_queue: multiprocessing.Queue) -> None:
    """The bare reference: answers each message on /pingpong with one frame; pushes the monologue
    on /push when asked."""
    mono = monologue(minutes)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str(CREATED)
        push = request.path.startswith("/push")
        async for _ in ws:
            if push:
                for frame in mono:
                    await ws.send_str(frame)
            else:
                await ws.send_str(ANSWER)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    serve_forever(app, port_queue)


def run_recorder(upstream: str, output: str, port_queue: multiprocessing.Queue) -> None:
    from mockrealtime.config import ServerConfig
    from mockrealtime.net.record import make_record_app

    serve_forever(make_record_app(ServerConfig(upstream=upstream, output=output, port=0)), port_queue)


def save_times(sessions: int, minutes: float = 0.5) -> list[float]:
    """Milliseconds to save each of ``sessions`` finished sessions (a spoken exchange of ``minutes``
    each, microphone streamed the whole time), one after another, into one cassette."""
    from mockrealtime.core.recording import Recorder

    mic = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(os.urandom(960)).decode()})
    answer = monologue(minutes / 2)
    times = []
    with tempfile.TemporaryDirectory(prefix="mockrealtime-save-") as tmp:
        recorder = Recorder("saves")
        for _ in range(sessions):
            rec = recorder.open(0.0)
            rec.server_text(CREATED, 1.0)
            for i in range(int(minutes * 3000)):  # 20 ms chunks
                rec.client_text(mic, 2.0 + i * 20)
            for i, frame in enumerate(answer):
                rec.server_text(frame, 5.0 + i * 50)
            rec.end("client", 1000, "")
            t0 = time.perf_counter()
            recorder.save(os.path.join(tmp, "saves.yaml"))
            times.append((time.perf_counter() - t0) * 1000)
        recorder.close()
    return times


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def long_call_memory(minutes: float, checkpoint_s: float = 2.0) -> list[tuple[float, float]]:
    """RSS (MiB over the start) while one session of ``minutes`` is recorded and checkpointed
    every ``checkpoint_s`` of its clock: [(minute, MiB)], once a minute."""
    from mockrealtime.core.recording import Recorder

    mic = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(os.urandom(960)).decode()})
    answer = monologue(checkpoint_s / 60 / 2)  # the assistant speaks half the time
    out = []
    with tempfile.TemporaryDirectory(prefix="mockrealtime-long-") as tmp:
        recorder = Recorder("long")
        rec = recorder.open(0.0)
        rec.server_text(CREATED, 1.0)
        start = rss_mib()
        t = 2.0
        steps = int(minutes * 60 / checkpoint_s)
        per_minute = int(60 / checkpoint_s)
        for step in range(1, steps + 1):
            for i in range(int(checkpoint_s * 50)):  # 20 ms microphone chunks
                rec.client_text(mic, t + i * 20)
            if step % 2:
                for i, frame in enumerate(answer):
                    rec.server_text(frame, t + i * 50)
            t += checkpoint_s * 1000
            recorder.save(os.path.join(tmp, "long.yaml"))
            if step % per_minute == 0:
                out.append((step / per_minute, rss_mib() - start))
        rec.end("client", 1000, "")
        recorder.save(os.path.join(tmp, "long.yaml"))
        recorder.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the pushed spoken answer")
    parser.add_argument("--rounds", type=int, default=2000, help="request/answer round trips for latency")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (best push rate, pooled latencies)")
    parser.add_argument("--sessions", type=int, default=100, help="sessions saved one after another for the save-time figure")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="length of the call recorded for the memory figure")
    args = parser.parse_args()

    saves = save_times(args.sessions)
    tenth = max(1, len(saves) // 10)
    first, last = saves[:tenth], saves[-tenth:]
    print(f"save time per finished session (30 s exchange, microphone streamed), {args.sessions} sessions into one cassette")
    print(f"  first {tenth}: median {statistics.median(first):.1f} ms ({min(first):.1f}-{max(first):.1f})   "
          f"last {tenth}: median {statistics.median(last):.1f} ms ({min(last):.1f}-{max(last):.1f})   "
          f"ratio {statistics.median(last) / statistics.median(first):.2f}x (target: independent of the sessions before, ~1x)")

    grown = long_call_memory(args.long_minutes)
    print(f"recorder memory during one {args.long_minutes:g}-minute call, saved every 2 s (RSS over the start): "
          + ", ".join(f"{m:g} min +{mib:.1f} MiB" for m, mib in grown[:: max(1, len(grown) // 5)]))

    tmp = tempfile.mkdtemp()
    ctx = multiprocessing.get_context("spawn")
    procs = []
    try:
        q = ctx.Queue()
        procs.append(ctx.Process(target=run_upstream, args=(args.minutes, q), daemon=True))
        procs[-1].start()
        upstream = f"ws://127.0.0.1:{q.get(timeout=60)}"
        procs.append(ctx.Process(target=run_recorder, args=(upstream, os.path.join(tmp, "bench.yaml"), q), daemon=True))
        procs[-1].start()
        recorder = f"ws://127.0.0.1:{q.get(timeout=60)}"
        results = {}
        for _ in range(args.repeat):  # alternate, so drift in the machine hits both alike
            for label, url in (("direct", upstream), ("recorder", recorder)):
                rate, frames = asyncio.run(measure_push(url + "/push/v1/realtime"))
                lat = asyncio.run(measure_latency(url + "/pingpong/v1/realtime", args.rounds))
                best, _, pooled = results.get(label, (0.0, 0, []))
                results[label] = (max(best, rate), frames, pooled + lat)
        saved = os.path.join(tmp, "bench.yaml")
        for _ in range(1000):  # the recorder saves after each connection closes; wait for the last
            if os.path.exists(saved) and len(_cassette.load(saved).sessions) == 2 * args.repeat:
                break
            time.sleep(0.01)
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()
    direct, rec = results["direct"], results["recorder"]
    d50, d99, r50, r99 = pct(direct[2], 0.5), pct(direct[2], 0.99), pct(rec[2], 0.5), pct(rec[2], 0.99)
    print(f"round-trip latency ({args.rounds} x {args.repeat} request -> answer)")
    print(f"  direct to the upstream   p50 {d50:7.1f} us   p99 {d99:7.1f} us")
    print(f"  through the recorder     p50 {r50:7.1f} us   p99 {r99:7.1f} us")
    print(f"  added per relayed frame  p50 {(r50 - d50) / 2:+7.1f} us   p99 {(r99 - d99) / 2:+7.1f} us   (target p50 <= 200 us)")
    print(f"relay throughput ({direct[1]} frames: {args.minutes:g} min of 100 ms audio deltas + transcript deltas)")
    print(f"  bare aiohttp upstream    {direct[0]:10.0f} frames/s")
    print(f"  through the recorder     {rec[0]:10.0f} frames/s   ratio {rec[0] / direct[0]:.2f}x   (target >= 0.50x)")
    size = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
    sessions = len(_cassette.load(os.path.join(tmp, "bench.yaml")).sessions)
    print(f"recorded: {sessions} sessions, {len(os.listdir(tmp))} files, {size / 1e6:.1f} MB (YAML + WAV sidecars)")
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
