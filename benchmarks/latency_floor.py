"""What the replay engine costs a client's round trip, against servers that do a known amount of work.

    python benchmarks/latency_floor.py [--repeat 8] [--rounds 2000] [--spins 10,20,30]

The request -> first frame figures of ``benchmarks/replay.py`` (p50, p99 against bare aiohttp) say
how much slower mockrealtime answers; this script says why, and what a faster engine would buy.
It times the same ``conversation.item.create`` round trips against:

* **bare**: the bare aiohttp server of ``replay.py`` (one stored frame per message);
* **stored**: mockrealtime's own socket and serve loop (``RealtimeSocket``, ``_serve``: batched
  writes, deadlines, the stall watch) with the engine replaced by one that answers every frame with
  one stored frame and does nothing else. Its distance from *bare* is what the I/O layer costs;
* **stored+N us**: the same, doing a fixed amount of Python work per client frame before it answers,
  as much as takes N us of CPU when nothing else runs (calibrated at start): a server whose engine
  costs N us, and is slowed by a busy machine as any work is;
* **mockrealtime**: the real server, replaying the cassette.

Where mockrealtime falls between two *stored+N* rows is what its engine costs the client, in
server time; and the *stored+N* rows show the p99 ratio an engine of N us would get on this
machine. Each kind runs in ``repeat`` fresh processes, in turn, so drift in the machine hits all
alike; figures are medians (min-max) over the processes, ratios taken within a turn. Also printed:
each server's CPU time (user + system) per round trip, from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import types
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from aiohttp import web  # noqa: E402

from mockrealtime.core.cassette_writer import save  # noqa: E402

from _loopback import measure_latency, pct, serve_forever, server_process  # noqa: E402
from replay import BETA, monologue, pingpong, run_bare, run_mock, server_cpu_s, spread  # noqa: E402


class StoredAnswer:
    """In the engine's place in ``_serve``: every client frame is answered with one stored frame,
    after ``spin_us`` microseconds' worth of Python work. No parsing, matching, state or journal."""

    acted = False
    stalled = False

    def __init__(self, created: bytes, answer: bytes, spin_us: float) -> None:
        self.created, self.answer = created, answer
        self.loops = _loops_for(spin_us)
        self._due: list[bytes] = []

    def start(self, now_ms: float) -> None:
        self._due.append(self.created)

    def feed(self, text: str | bytes, now_ms: float) -> None:
        _busy(self.loops)
        self._due.append(self.answer)

    def pop_due(self, now_ms: float, limit: int | None = None) -> list[bytes]:
        due, self._due = self._due, []
        return due

    def next_deadline(self) -> float | None:
        return None

    def waiting_for(self) -> None:
        return None


def _busy(loops: int) -> int:
    """A fixed amount of Python work (not a fixed time: a slow moment makes it late, as it makes
    the engine late)."""
    total = 0
    for i in range(loops):
        total += i
    return total


@functools.lru_cache
def _loops_for(spin_us: float) -> int:
    """How many loops of :func:`_busy` take ``spin_us`` microseconds of CPU here (the quickest of
    several timings: the work an unhurried CPU does in that time)."""
    if spin_us <= 0:
        return 0
    probe = 100_000
    best = min(_timed(probe) for _ in range(20))
    return max(1, round(probe * spin_us / 1e6 / best))


def _timed(loops: int) -> float:
    t = time.thread_time()
    _busy(loops)
    return time.thread_time() - t


def run_stored(spin_us: float, directory: str, port_queue: multiprocessing.Queue, lag: Any = None) -> None:
    """mockrealtime's socket and serve loop around a :class:`StoredAnswer`."""
    from mockrealtime.core import cassette as _cassette
    from mockrealtime.net.realtime_socket import RealtimeSocket
    from mockrealtime.net.server import _serve, settle_gc_for_serving

    recorded = [e.text for e in _cassette.load(os.path.join(directory, "pingpong.yaml")).sessions[0].events
                if e.direction.value == "server"]
    created, answer = recorded[0].encode(), recorded[1].encode()
    state = types.SimpleNamespace(journal_waiters=())  # what _serve reads of the server's state

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = RealtimeSocket(max_frame_bytes=15 * 1024 * 1024, protocols=("realtime",), compress=False, autoping=True)
        await ws.prepare(request)
        await _serve(ws, StoredAnswer(created, answer, spin_us), state, None, 0.0)  # type: ignore[arg-type]  # duck-typed
        return ws

    app = web.Application()
    app.router.add_get("/c/{name}/v1/realtime", handler)
    settle_gc_for_serving()
    serve_forever(app, port_queue, lag)


def measure(target: Any, directory: str, rounds: int, warm_runs: int) -> tuple[float, float, float]:
    """One fresh server process: 200 round trips to warm up, then ``warm_runs`` x ``rounds`` timed.
    p50 and p99 (us), and the server's CPU per timed round trip (us)."""
    with server_process(target, directory) as (base, pid):
        url = base + "/c/pingpong/v1/realtime"
        asyncio.run(measure_latency(url, 200, BETA))
        lat: list[float] = []
        c0 = server_cpu_s(pid)
        for _ in range(warm_runs):
            lat += asyncio.run(measure_latency(url, rounds, BETA))
        cpu = (server_cpu_s(pid) - c0) / (warm_runs * rounds) * 1e6
    return pct(lat, 0.5), pct(lat, 0.99), cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8, help="fresh processes of each kind")
    parser.add_argument("--rounds", type=int, default=2000, help="round trips per timed batch")
    parser.add_argument("--warm", type=int, default=3, help="timed batches per process")
    parser.add_argument("--spins", default="10,20,30", help="busy microseconds per frame of the stored+N servers")
    args = parser.parse_args()
    spins = [float(s) for s in args.spins.split(",") if s]

    kinds: dict[str, Any] = {"bare aiohttp": run_bare, "stored": functools.partial(run_stored, 0.0)}
    kinds.update({f"stored+{s:g} us": functools.partial(run_stored, s) for s in spins})
    kinds["mockrealtime"] = run_mock
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="mockrealtime-floor-") as tmp:
        save(pingpong(args.rounds), os.path.join(tmp, "pingpong.yaml"))
        for name in ("monologue", "answer"):  # run_bare and run_mock load these too
            save(monologue(0.1, name), os.path.join(tmp, name + ".yaml"))
        for _ in range(args.repeat):
            for kind, target in kinds.items():
                runs[kind].append(measure(target, tmp, args.rounds, args.warm))

    bare = runs["bare aiohttp"]
    print(f"request -> first frame, us: median (min-max) over {args.repeat} fresh processes of each kind, "
          f"{args.warm} x {args.rounds} round trips each")
    print(f"{'server':16s} {'p50':>16s} {'p99':>18s} {'p50 - bare':>20s} {'p99 / bare':>20s} {'CPU/round trip':>18s}")
    for kind, rows in runs.items():
        d50 = [r[0] - b[0] for r, b in zip(rows, bare, strict=True)]
        r99 = [r[1] / b[1] for r, b in zip(rows, bare, strict=True)]
        print(f"{kind:16s} {spread([r[0] for r in rows]):>16s} {spread([r[1] for r in rows]):>18s} "
              f"{spread(d50, '{:+.1f}'):>20s} {spread(r99, '{:.2f}'):>20s} {spread([r[2] for r in rows], '{:.1f}'):>18s}")
    mock50 = statistics.median(r[0] for r in runs["mockrealtime"])
    below = [k for k in kinds if k.startswith("stored") and statistics.median(r[0] for r in runs[k]) <= mock50]
    print(f"mockrealtime's p50 is at or above that of: {', '.join(below) or 'none of the stored servers'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
