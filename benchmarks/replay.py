"""Replay speed against a bare aiohttp server, in one run, as ratios.

    python benchmarks/replay.py [--minutes 10] [--rounds 2000] [--repeat 5] [--warm 3] [--answer-frames 6000]

Four figures, and the server's CPU:

* push rate: one client event releases a long spoken answer (audio and transcript deltas); frames/s
  the client receives. The bare server pushes the same pre-serialised frames on any message.
* request -> first frame latency: the client sends ``conversation.item.create`` and waits for the
  answer, ``rounds`` times; p50 and p99. The bare server answers each message with one stored frame.
  mockrealtime validates the event, matches it against the cassette and echoes ids on this path.
* first frame of a long answer: ``response.create`` -> the first frame of a 6,000-frame answer
  (5 minutes of speech), cold (the first request for that cassette in the process) and warm (the
  median of the ``first-warm`` requests after it). mockrealtime streams an answer from positions into
  its plan, so this must not grow with the answer's length. The cold request is sent after the
  client idled a second, to both servers: a mockrealtime client idles while the server loads the
  cassette, and on the 2-core VM this is built on a client that idled a second waited 0.6-5 ms for
  the first frame of either server (bare aiohttp: 655-5346 us, against 171-289 us without the
  idle), so without it the cold figure measured the VM waking a CPU, against a bare server that
  never made its client wait. Compare the two servers' cold figures, not the cold figure with 1 ms.
* the longest the server's loop is held while it pushes the long answer: a callback in the server
  process ticks every millisecond during two more pushes and keeps how late it ran (no other
  connection is served for that long). The bare server never yields while it pushes.

With /proc (Linux) it also prints the server's own CPU time (user + system) per pushed frame and per
round trip over the warm runs: what the server spends rather than what it waits. (On the 2-core VM
this project is built on, CPU time per event was about three times higher on a quiet machine than on
a busy one, for both servers: compare the two servers within a run, never across runs.)

Each server runs in its own process so the client's work does not share its event loop, and each
run starts fresh processes of both (alternating): the first push and latency batch after start are
reported as *cold* (mockrealtime builds a frame's text the first time it sends it), the ones after
as *warm*. Figures are medians (min-max) over the runs, and ratios are taken within a run. The
cassettes live in a temporary folder removed at the end. Cassette load: benchmarks/load.py;
what the round trip is made of (the engine against servers doing known work): benchmarks/latency_floor.py.
Targets (issues #2, #14): push >= 0.8x bare cold and warm, p50 <= bare + 50 us, p99 <= 1.5x bare,
first frame of a 6,000-frame answer <= 1 ms cold and warm, the loop held for a few ms at most.
``MOCKREALTIME_BENCH_LOOP=uvloop`` runs both servers on uvloop (``pip install uvloop``), to compare loops.
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
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from aiohttp import web  # noqa: E402

from mockrealtime.core import cassette as _cassette  # noqa: E402
from mockrealtime.core.cassette_writer import save  # noqa: E402
from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session  # noqa: E402

from _loopback import measure_answer, measure_latency, measure_push, pct, serve_forever, server_process  # noqa: E402


def monologue(minutes: float, name: str = "monologue") -> Cassette:
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
    return Cassette(name=name, dialect="ga", sessions=[Session(events, Close("client", 1000, ""))])


BETA = {"OpenAI-Beta": "realtime=v1"}
#: Seconds the client idles before the cold request (see the docstring).
IDLE_S = 1.0


def pingpong(rounds: int) -> Cassette:
    """Beta, where the server answers an item with one event (GA sends two: added, done), so both
    servers answer a request with exactly one frame."""
    events = [RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "event_" + "0" * 21, "session": {"modalities": ["text"]}})]
    for i in range(rounds):
        events.append(RecordedEvent.make("client", 1 + i, {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
        events.append(RecordedEvent.make("server", 1.5 + i, {"type": "conversation.item.created", "event_id": f"event_{i:021d}", "previous_item_id": None,
                                                               "item": {"id": f"item_{i}", "object": "realtime.item", "type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": "hi"}]}}))
    return Cassette(name="pingpong", dialect="beta", sessions=[Session(events, Close("client", 1000, ""))])


# ------------------------------------------------------------------------------------------------
# servers (each runs in a child process)


def run_bare(directory: str, port_queue: multiprocessing.Queue, lag: Any = None) -> None:
    """The reference: an aiohttp server that sends stored frames, doing nothing else."""
    def frames(name: str) -> list[str]:
        return [e.text for e in _cassette.load(os.path.join(directory, name + ".yaml")).sessions[0].events if e.direction.value == "server"]

    stored = {name: frames(name) for name in ("monologue", "answer", "pingpong")}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        frames = stored[request.match_info["name"]]
        await ws.send_str(frames[0])
        i = 1
        async for _msg in ws:
            if frames is not stored["pingpong"]:
                for f in frames[1:]:
                    await ws.send_str(f)
            else:
                await ws.send_str(frames[i])
                i += 1
        return ws

    app = web.Application()
    app.router.add_get("/c/{name}/v1/realtime", handler)
    serve_forever(app, port_queue, lag)


def run_mock(directory: str, port_queue: multiprocessing.Queue, lag: Any = None) -> None:
    from mockrealtime.config import ServerConfig
    from mockrealtime.net.server import make_app, settle_gc_for_serving

    app = make_app(ServerConfig(cassettes=directory, port=0))
    settle_gc_for_serving()  # as `mockrealtime serve` does
    serve_forever(app, port_queue, lag)


def measure_server(target, directory: str, rounds: int, warm_runs: int, first_runs: int) -> dict[str, float]:
    """One fresh server process: its first push and latency batch (cold), then ``warm_runs`` more."""
    lag = multiprocessing.get_context("spawn").Value("d", -1.0, lock=False)  # the server's longest loop hold (us), see _loopback.watch_loop
    with server_process(target, directory, lag) as (url, pid):
        cold_push, frames = asyncio.run(measure_push(url + "/c/monologue/v1/realtime"))
        cold_lat = asyncio.run(measure_latency(url + "/c/pingpong/v1/realtime", min(rounds, 200), BETA))
        pushes, lat = [], []
        push_cpu = lat_cpu = 0.0
        for _ in range(warm_runs):
            c0 = server_cpu_s(pid)
            pushes.append(asyncio.run(measure_push(url + "/c/monologue/v1/realtime"))[0])
            c1 = server_cpu_s(pid)
            lat += asyncio.run(measure_latency(url + "/c/pingpong/v1/realtime", rounds, BETA))
            c2 = server_cpu_s(pid)
            push_cpu, lat_cpu = push_cpu + c1 - c0, lat_cpu + c2 - c1
        # cold: the client idles a second first, for both servers (the mockrealtime client waits
        # longer still, while the server loads the cassette): a VM's idle CPU wakes in up to ms
        _, answer_frames, cold_first = asyncio.run(measure_answer(url + "/c/answer/v1/realtime", IDLE_S))
        firsts = [asyncio.run(measure_answer(url + "/c/answer/v1/realtime"))[2] for _ in range(first_runs)]
        holds = []
        for _ in range(2):  # the loop watched while one more push runs
            lag.value = 0.0
            time.sleep(0.1)  # the watch is ticking every millisecond
            asyncio.run(measure_push(url + "/c/monologue/v1/realtime"))
            holds.append(lag.value)
            lag.value = -1.0
    return {"cold_push": cold_push, "warm_push": statistics.median(pushes), "frames": frames,
            "cold_p50": pct(cold_lat, 0.5), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99),
            "cold_first": cold_first, "warm_first": statistics.median(firsts), "answer_frames": answer_frames,
            "hold": max(holds), "cpu_frame": push_cpu / (warm_runs * frames) * 1e6, "cpu_round": lat_cpu / (warm_runs * rounds) * 1e6}


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc (0 where there is none): steadier
    than wall time on a shared machine, and what the server itself spends."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the spoken answer")
    parser.add_argument("--rounds", type=int, default=2000, help="request/answer round trips per latency batch")
    parser.add_argument("--repeat", type=int, default=5, help="fresh server processes of each kind")
    parser.add_argument("--warm", type=int, default=3, help="warm pushes and latency batches per process")
    parser.add_argument("--answer-frames", type=int, default=6000, help="frames of the answer whose first frame is timed")
    parser.add_argument("--first-warm", type=int, default=7, help="warm requests timed to the answer's first frame per process")
    args = parser.parse_args()

    runs: dict[str, list[dict[str, float]]] = {"bare": [], "mock": []}
    with tempfile.TemporaryDirectory(prefix="mockrealtime-replay-") as tmp:
        save(monologue(args.minutes), os.path.join(tmp, "monologue.yaml"))
        save(pingpong(args.rounds), os.path.join(tmp, "pingpong.yaml"))
        save(monologue(args.answer_frames / 1200, "answer"), os.path.join(tmp, "answer.yaml"))
        for _ in range(args.repeat):  # alternate, so drift in the machine hits both alike
            runs["bare"].append(measure_server(run_bare, tmp, args.rounds, args.warm, args.first_warm))
            runs["mock"].append(measure_server(run_mock, tmp, args.rounds, args.warm, args.first_warm))

    bare, mock = runs["bare"], runs["mock"]

    def col(rows: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in rows]

    def ratio(key: str) -> list[float]:
        return [m[key] / b[key] for b, m in zip(bare, mock, strict=True)]

    def diff(key: str) -> list[float]:
        return [m[key] - b[key] for b, m in zip(bare, mock, strict=True)]

    print(f"median (min-max) over {args.repeat} fresh processes of each server; shared machine, figures are noisy")
    print(f"push rate ({int(bare[0]['frames'])} frames: {args.minutes:g} min of 100 ms audio deltas + transcript deltas), frames/s")
    for label, key in (("cold (first push after start)", "cold_push"), (f"warm (median of {args.warm} more)", "warm_push")):
        print(f"  {label}")
        print(f"    bare aiohttp   {spread(col(bare, key))}")
        print(f"    mockrealtime   {spread(col(mock, key))}   ratio {spread(ratio(key), '{:.2f}')}x   (target >= 0.80x)")
    print(f"request -> first frame latency, us (cold: first 200 round trips; warm: {args.rounds} x {args.warm})")
    print(f"  cold p50       bare {spread(col(bare, 'cold_p50'))}   mockrealtime {spread(col(mock, 'cold_p50'))}")
    print(f"  warm p50       bare {spread(col(bare, 'p50'))}   mockrealtime {spread(col(mock, 'p50'))}   "
          f"difference {spread(diff('p50'), '{:+.1f}')} us (target <= +50 us)")
    print(f"  warm p99       bare {spread(col(bare, 'p99'))}   mockrealtime {spread(col(mock, 'p99'))}   "
          f"ratio {spread(ratio('p99'), '{:.2f}')}x (target <= 1.5x)")
    print(f"response.create -> first frame of a {int(mock[0]['answer_frames'])}-frame answer, us")
    for label, key in (("cold (first request after start)", "cold_first"), (f"warm (median of {args.first_warm} more)", "warm_first")):
        print(f"  {label:34s} bare {spread(col(bare, key))}   mockrealtime {spread(col(mock, key))}   "
              f"difference {spread(diff(key), '{:+.0f}')} us (target <= 1000 us)")
    print(f"longest the server's loop was held (no other callback ran) while it pushed the answer, us: "
          f"bare {spread(col(bare, 'hold'))}   mockrealtime {spread(col(mock, 'hold'))}   (target: a few ms)")
    if bare[0]["cpu_round"]:
        print("server CPU (user + system, warm), us: compare within this run only")
        print(f"  per pushed frame   bare {spread(col(bare, 'cpu_frame'), '{:.2f}')}   mockrealtime {spread(col(mock, 'cpu_frame'), '{:.2f}')}   "
              f"ratio {spread(ratio('cpu_frame'), '{:.2f}')}x")
        print(f"  per round trip     bare {spread(col(bare, 'cpu_round'), '{:.1f}')}   mockrealtime {spread(col(mock, 'cpu_round'), '{:.1f}')}   "
              f"difference {spread(diff('cpu_round'), '{:+.1f}')}")
    print("cassette load times: python benchmarks/load.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
