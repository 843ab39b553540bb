"""Round trip against the length of the conversation: 10, 1,000 and 10,000 items, against bare aiohttp.

    python benchmarks/history.py [--sizes 10 1000 10000] [--rounds 1000] [--runs 3]

For each size a fresh connection first grows the conversation to that many items (pipelined
``conversation.item.create``), then times ``rounds`` more round trips: the client sends one
``conversation.item.create`` and waits for its answer (beta, where the answer is one frame). mockrealtime
answers it from its session model (the cassette records only ``session.created``, so every item is
housekeeping answered from state), which must cost the same whatever the conversation holds. The bare
server answers every message with one stored frame. Each run starts fresh server processes of both
(alternating); reported: p50 per size, median (min-max) over the runs, mockrealtime minus bare, and
the ratio of mockrealtime's p50 at the largest size to the smallest. Target (issue #14): flat from 10
to 10,000 items.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session  # noqa: E402
from mockrealtime.core.cassette_writer import save  # noqa: E402

from _loopback import REQUEST, pct, serve_forever, server_process  # noqa: E402

BETA = {"OpenAI-Beta": "realtime=v1"}
CREATED = {"type": "session.created", "event_id": "event_" + "0" * 21, "session": {"modalities": ["text"]}}
ANSWER = json.dumps({"type": "conversation.item.created", "event_id": "event_" + "1" * 21, "previous_item_id": None,
                     "item": {"id": "item_1", "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                              "content": [{"type": "input_text", "text": "hi"}]}})


def opening() -> Cassette:
    return Cassette(name="history", dialect="beta",
                    sessions=[Session([RecordedEvent.make("server", 0, CREATED)], Close("client", 1000, ""))])


def run_bare(directory: str, port_queue: multiprocessing.Queue) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str(json.dumps(CREATED))
        async for _ in ws:
            await ws.send_str(ANSWER)
        return ws

    app = web.Application()
    app.router.add_get("/c/{name}/v1/realtime", handler)
    serve_forever(app, port_queue)


def run_mock(directory: str, port_queue: multiprocessing.Queue) -> None:
    from mockrealtime.config import ServerConfig
    from mockrealtime.net.server import make_app, settle_gc_for_serving

    app = make_app(ServerConfig(cassettes=directory, port=0, stall_timeout_s=0))
    settle_gc_for_serving()  # as `mockrealtime serve` does
    serve_forever(app, port_queue)


async def at_size(url: str, size: int, rounds: int) -> float:
    """p50 of ``rounds`` round trips, in microseconds, once the conversation holds ``size`` items."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=0, headers=BETA, max_msg_size=0) as ws:
        await ws.receive()
        for start in range(0, size, 500):  # pipelined, in batches the socket buffers take
            batch = min(500, size - start)
            for _ in range(batch):
                await ws.send_str(REQUEST)
            for _ in range(batch):
                await ws.receive()
        out = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            await ws.send_str(REQUEST)
            msg = await ws.receive()
            out.append((time.perf_counter() - t0) * 1e6)
        assert '"conversation.item.created"' in msg.data, msg.data[:200]
    return pct(out, 0.5)


def measure(target, directory: str, sizes: list[int], rounds: int) -> dict[int, float]:
    with server_process(target, directory) as (base, _pid):
        url = base + "/c/history/v1/realtime"
        asyncio.run(at_size(url, 10, rounds))  # warm: the cassette loaded, code paths run once
        return {size: asyncio.run(at_size(url, size, rounds)) for size in sizes}


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10_000])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="fresh server processes of each kind")
    args = parser.parse_args()
    bare: list[dict[int, float]] = []
    mock: list[dict[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="mockrealtime-history-") as tmp:
        save(opening(), os.path.join(tmp, "history.yaml"))
        for _ in range(args.runs):
            bare.append(measure(run_bare, tmp, args.sizes, args.rounds))
            mock.append(measure(run_mock, tmp, args.sizes, args.rounds))
    print(f"conversation.item.create round trip p50 (us) by conversation length, median (min-max) of {args.runs} "
          "fresh processes; shared machine, figures are noisy")
    for size in args.sizes:
        b, m = [r[size] for r in bare], [r[size] for r in mock]
        print(f"  {size:>6} items   bare {spread(b)}   mockrealtime {spread(m)}   "
              f"difference {spread([y - x for x, y in zip(b, m, strict=True)], '{:+.0f}')} us")
    lo, hi = min(args.sizes), max(args.sizes)
    print(f"  growth {lo} -> {hi} items: bare {spread([r[hi] / r[lo] for r in bare], '{:.2f}')}x   "
          f"mockrealtime {spread([r[hi] / r[lo] for r in mock], '{:.2f}')}x   (target: flat, as bare)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
