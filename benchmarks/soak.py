"""Soak: many sessions, then many hostile frames, against one mockrealtime server process.

    python benchmarks/soak.py [--sessions 1000] [--frames 100000] [--connections 100] [--max-s 900]

Loopback only; the server runs in its own process (as in benchmarks/replay.py) with a log handler
that counts what it logs. Two phases:

1. ``--sessions`` concurrent connections each do the tool round trip of the ``function_call``
   cassette (session.update, the user's question, response.create, the function_call_output, the
   second response.create), waiting for each answer; all stay open until every one is done, so the
   server's RSS then holds them all.
2. ``--frames`` fuzzed frames over ``--connections`` connections (a seeded mix of recorded client
   events with one value replaced, and frames built for the parser's edges); a reader per
   connection drains what comes back; each connection ends with a sentinel frame whose ``error``
   proves the session is still answering.

Then ``POST /__admin/reset``. Printed: errors (phase 1), log records with a traceback, closes that
no ``error`` event preceded, sessions that stopped answering, and the server's RSS (at start, per
open session, after the fuzz, after reset). Figures are from a shared machine: noisy, and RSS
after reset depends on how the allocator hands memory back.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import multiprocessing
import os
import random
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import aiohttp  # noqa: E402

from mockrealtime.core.events import AUDIO_APPEND, Direction  # noqa: E402
from mockrealtime.core.library import CassetteLibrary  # noqa: E402

TIMEOUT_S = 60
#: The answer each client event of the tool round trip waits for (GA).
ANSWERS = {"session.update": "session.updated", "conversation.item.create": "conversation.item.done",
           "response.create": "response.done"}


# -- the server process -----------------------------------------------------------------------------


class _Counter(logging.Handler):
    def __init__(self, tracebacks: Any, warnings: Any) -> None:
        super().__init__(logging.WARNING)
        self.tracebacks, self.warnings = tracebacks, warnings

    def emit(self, record: logging.LogRecord) -> None:
        with self.warnings.get_lock():
            self.warnings.value += 1
        if record.exc_info:
            with self.tracebacks.get_lock():
                self.tracebacks.value += 1


def serve(port_queue: multiprocessing.Queue, tracebacks: Any, warnings: Any) -> None:
    from mockrealtime.config import ServerConfig
    from mockrealtime.net.server import make_app, settle_gc_for_serving

    from _loopback import serve_forever

    logging.basicConfig(level=logging.WARNING, handlers=[_Counter(tracebacks, warnings)])
    app = make_app(ServerConfig(port=0))
    settle_gc_for_serving()
    serve_forever(app, port_queue)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- phase 1: concurrent tool round trips --------------------------------------------------------------


def round_trip_cues() -> list[dict[str, Any]]:
    session = CassetteLibrary().resolve("function_call", "ga").sessions[0]
    return [ev.event for ev in session.events if ev.direction is Direction.CLIENT and ev.type != AUDIO_APPEND]


async def one_round_trip(http: aiohttp.ClientSession, url: str, cues: list[dict[str, Any]],
                         done: asyncio.Event, finished: list[int]) -> str | None:
    """None when the round trip completed; else what went wrong."""
    try:
        async with http.ws_connect(url, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=TIMEOUT_S)) as ws:
            async def until(wanted: str) -> str | None:
                while True:
                    msg = await asyncio.wait_for(ws.receive(), TIMEOUT_S)
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        return f"closed ({ws.close_code}) waiting for {wanted}"
                    event = json.loads(msg.data)
                    if event["type"] == "error":
                        return f"error {event['error'].get('code')}"
                    if event["type"] == wanted:
                        return None

            problem = await until("session.created")
            for cue in cues:
                if problem is not None:
                    break
                await ws.send_str(json.dumps(cue))
                problem = await until(ANSWERS[cue["type"]])
            finished.append(1)
            await done.wait()  # hold the connection: RSS is read with every session open
            return problem
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        finished.append(1)
        return f"{type(exc).__name__}: {exc}"


async def phase_sessions(url: str, sessions: int, pid: int) -> tuple[list[str], float]:
    cues = round_trip_cues()
    done = asyncio.Event()
    finished: list[int] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = [asyncio.create_task(one_round_trip(http, url, cues, done, finished)) for _ in range(sessions)]
        while len(finished) < sessions and not all(t.done() for t in tasks):
            await asyncio.sleep(0.2)
        rss_open = rss_mb(pid)
        done.set()
        results = await asyncio.gather(*tasks)
    return [r for r in results if r is not None], rss_open


# -- phase 2: fuzzed frames -------------------------------------------------------------------------

HOSTILE = [
    '{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"\\ud800"}]}}',
    '{"type":"\\udfff"}',
    '{"type":"session.update","session":{"type":"realtime","temperature":1e999}}',
    '{"type":"input_audio_buffer.append","audio":"%%%"}',
    '{"type":"input_audio_buffer.append","audio":""}',
    '{"type":"response.create","response":' + "[" * 300 + "]" * 300 + "}",
    "[" * 3000,
    '{"type":"response.create","response":NaN}',
    '{"type":"response.create","response":"x"}',
    '{"type":"conversation.item.create","item":[1]}',
    '{"type":"conversation.item.truncate","item_id":"x","content_index":' + "9" * 400 + ',"audio_end_ms":1}',
    "", "null", "{", '{"type":null}', '{"type":["a"]}', "\u00e9\u6f22\U0001f600",
]
VALUES: list[Any] = [None, True, 0, -1, 2**70, 1.5, 1e300, "", "x" * 200, "AAAA", "\u6f22", [], {}, [1, [2]], {"a": {"b": None}}]


def fuzz_frames(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    library = CassetteLibrary()
    recorded = [ev.event for name in ("hello", "function_call", "missing_call_id")
                for ev in library.resolve(name, "ga").sessions[0].events
                if ev.direction is Direction.CLIENT and ev.type != AUDIO_APPEND]
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.3:
            out.append(rng.choice(HOSTILE))
            continue
        event = copy.deepcopy(rng.choice(recorded))
        node: Any = event
        for _ in range(rng.randint(0, 3)):  # walk down a little, then replace or add one value
            children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
            containers = [(k, v) for k, v in children if isinstance(v, (dict, list)) and v]
            if not containers:
                break
            _, node = rng.choice(containers)
        if isinstance(node, dict):
            key = rng.choice(list(node) + ["bogus", "type", "item", "response"])
            node[key] = rng.choice(VALUES)
        elif isinstance(node, list) and node:
            node[rng.randrange(len(node))] = rng.choice(VALUES)
        out.append(json.dumps(event, ensure_ascii=rng.random() < 0.5))
    return out


async def fuzz_connection(http: aiohttp.ClientSession, url: str, frames: list[str], serial: int) -> dict[str, int]:
    stats = {"closed_without_error": 0, "closed_after_error": 0, "unanswered": 0}
    sentinel = f"soak_sentinel_{serial}"
    async with http.ws_connect(url, max_msg_size=0) as ws:
        last_error = False
        answered = asyncio.get_running_loop().create_future()

        async def reader() -> None:
            nonlocal last_error
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                head = msg.data[:60]
                last_error = head.startswith('{"type":"error"')
                if last_error and sentinel in msg.data[-200:] and not answered.done():
                    answered.set_result(None)
            if not answered.done():
                stats["closed_after_error" if last_error else "closed_without_error"] += 1
                answered.set_result(None)

        task = asyncio.create_task(reader())
        try:
            for frame in frames:
                await ws.send_str(frame)
            await ws.send_str(json.dumps({"type": "mockrealtime.soak.sentinel", "event_id": sentinel}))
            await asyncio.wait_for(answered, TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError):
            stats["unanswered"] += 1
        finally:
            await ws.close()
            await task
    return stats


async def phase_fuzz(url: str, frames: int, connections: int, seed: int) -> dict[str, int]:
    per = frames // connections
    totals = {"closed_without_error": 0, "closed_after_error": 0, "unanswered": 0, "frames": 0}
    limit = asyncio.Semaphore(25)
    async with aiohttp.ClientSession() as http:
        async def run(i: int) -> None:
            batch = fuzz_frames(per, seed + i)
            cassette = ("hello", "function_call", "missing_call_id")[i % 3]
            async with limit:
                stats = await fuzz_connection(http, f"{url}/c/{cassette}/v1/realtime", batch, i)
            for k, v in stats.items():
                totals[k] += v
            totals["frames"] += len(batch)

        await asyncio.gather(*(run(i) for i in range(connections)))
    return totals


async def reset(http_url: str) -> int:
    async with aiohttp.ClientSession() as http, http.post(http_url + "/__admin/reset") as resp:
        return resp.status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-s", type=float, default=900.0, help="give up (and say so) after this long")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    tracebacks, warnings = ctx.Value("i", 0), ctx.Value("i", 0)
    q = ctx.Queue()
    proc = ctx.Process(target=serve, args=(q, tracebacks, warnings), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=60)
        ws_url, http_url = f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
        time.sleep(0.5)
        rss_start = rss_mb(proc.pid)  # type: ignore[arg-type]

        async def run() -> None:
            t0 = time.perf_counter()
            errors, rss_open = await phase_sessions(ws_url + "/c/function_call/v1/realtime", args.sessions, proc.pid)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            print(f"phase 1: {args.sessions} concurrent tool round trips in {t1 - t0:.1f} s: {len(errors)} error(s)")
            for problem in sorted(set(errors))[:5]:
                print(f"  {errors.count(problem)} x {problem}")
            print(f"  RSS: {rss_start:.1f} MB at start, {rss_open:.1f} MB with all open: "
                  f"{(rss_open - rss_start) * 1024 / max(args.sessions, 1):.1f} KB per session")
            await reset(http_url)
            rss_reset1 = rss_mb(proc.pid)  # type: ignore[arg-type]
            totals = await phase_fuzz(ws_url, args.frames, args.connections, args.seed)
            t2 = time.perf_counter()
            rss_fuzz = rss_mb(proc.pid)  # type: ignore[arg-type]
            print(f"phase 2: {totals['frames']} fuzzed frames over {args.connections} connections in {t2 - t1:.1f} s")
            print(f"  closes without an error: {totals['closed_without_error']}, after an error: {totals['closed_after_error']}, "
                  f"sessions that stopped answering: {totals['unanswered']}")
            status = await reset(http_url)
            await asyncio.sleep(0.5)
            rss_after = rss_mb(proc.pid)  # type: ignore[arg-type]
            print(f"  RSS: {rss_reset1:.1f} MB before, {rss_fuzz:.1f} MB after the fuzz, {rss_after:.1f} MB after reset "
                  f"(HTTP {status}; {rss_after - rss_start:+.1f} MB against the start)")

        asyncio.run(asyncio.wait_for(run(), args.max_s))
        print(f"server log: {tracebacks.value} record(s) with a traceback, {warnings.value} warning(s) or worse in all")
        return 0 if tracebacks.value == 0 else 1
    except asyncio.TimeoutError:
        print(f"soak: gave up after {args.max_s:g} s", file=sys.stderr)
        return 2
    finally:
        proc.terminate()
        proc.join(10)


if __name__ == "__main__":
    raise SystemExit(main())
