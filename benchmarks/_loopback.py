"""What the benchmark scripts share: a server in a child process on a loopback port, and the two
client measurements (push rate, request -> first frame latency) with their percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
from aiohttp import web

#: The client event of the latency round trips.
REQUEST = json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}})


def serve_forever(app: web.Application, port_queue: multiprocessing.Queue, lag: Any = None) -> None:
    """Run ``app`` on 127.0.0.1, port 0, and report the port (call in a child process). With ``lag``
    (a shared double), keep in it the longest the loop was held since the parent last zeroed it."""

    async def main() -> None:
        if lag is not None:
            watch_loop(lag)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    if os.environ.get("MOCKREALTIME_BENCH_LOOP") == "uvloop":  # to compare event loops: both servers alike
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


@contextlib.contextmanager
def server_process(target: Callable[..., None], directory: str, lag: Any = None) -> Iterator[tuple[str, int]]:
    """``target(directory, port_queue[, lag])`` in a fresh (spawned) process: its base URL
    (``ws://127.0.0.1:PORT``) and pid; the process is stopped on the way out."""
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=target, args=(directory, q) if lag is None else (directory, q, lag), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=120)
        assert proc.pid is not None  # started
        yield f"ws://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.join()


#: How often the loop watch ticks, seconds.
TICK_S = 0.001


def watch_loop(lag: Any) -> None:
    """While ``lag.value`` is not negative, a callback every millisecond that keeps there how late it
    ran (us): the longest stretch the loop spent on something else (a connection pushing a long
    answer, say) without letting others in. Negative: a look every 50 ms, to stay out of the other
    figures' way."""
    loop = asyncio.get_running_loop()

    def tick(due: float) -> None:
        now = loop.time()
        if lag.value < 0:
            loop.call_at(now + 0.05, tick, now + 0.05)
            return
        late = (now - due) * 1e6
        if late > lag.value:
            lag.value = late
        loop.call_at(now + TICK_S, tick, now + TICK_S)

    loop.call_soon(tick, loop.time())


async def measure_push(url: str) -> tuple[float, int]:
    """Frames/s received after one response.create, up to response.done; and the frame count."""
    rate, n, _ = await measure_answer(url)
    return rate, n


async def measure_answer(url: str, idle_s: float = 0.0) -> tuple[float, int, float]:
    """One response.create: frames/s received up to response.done, the frame count, and the
    microseconds from sending it to the first frame back; sent ``idle_s`` after session.created."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=0, max_msg_size=0) as ws:
        await ws.receive()  # session.created
        if idle_s:
            await asyncio.sleep(idle_s)
        t0 = time.perf_counter()
        await ws.send_str('{"type":"response.create"}')
        n = 0
        first = 0.0
        while True:
            msg = await ws.receive()
            if not n:
                first = (time.perf_counter() - t0) * 1e6
            n += 1
            if '"response.done"' in msg.data[:40]:
                break
        return n / (time.perf_counter() - t0), n, first


async def measure_latency(url: str, rounds: int, headers: dict[str, str] | None = None) -> list[float]:
    """Microseconds from sending REQUEST to the first frame back, ``rounds`` times."""
    out = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=0, headers=headers) as ws:
        await ws.receive()
        for _ in range(rounds):
            t0 = time.perf_counter()
            await ws.send_str(REQUEST)
            await ws.receive()
            out.append((time.perf_counter() - t0) * 1e6)
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]
