"""Memory per session against a bare aiohttp server: finished sessions, idle ones, mid-replay ones.

    python benchmarks/memory.py [--sessions 1000] [--runs 3]

Each run starts a fresh server process of each kind (alternating) and reads its resident memory
(VmRSS from /proc) between steps; the client runs in this process:

1. *finished*: ``sessions`` connections one after another, each a complete tool round trip
   (``conversation.item.create`` -> answer, ``response.create`` -> answer), then closed by the
   client, after as many to warm up: RSS growth per session is what a finished session leaves
   behind. The warm-up matters: ``serve`` collects cyclic garbage rarely (see
   ``settle_gc_for_serving``), so over the first thousand connections RSS grows by ~10 KiB each
   whatever is kept, and then stops. mockrealtime runs with ``keep_finished`` above the count, so
   every finished connection's summary is still kept when RSS is read (by default a server keeps
   1,000 and forgets older ones, so beyond that nothing grows).
2. *idle*: ``sessions`` connections open at once, each after its ``session.created``.
3. *mid-replay*, in another fresh process (so that its RSS growth is not read against memory the
   steps before freed): ``sessions`` connections at once, each replaying a 60 s spoken answer at
   pace 1 (recorded timing: a 100 ms audio delta and a transcript delta every 100 ms), measured once
   each has received five frames; then all closed mid-answer, and what stays is *closed mid-replay*.

The bare server sends the same pre-serialised frames: it answers the round trip from a list, keeps
idle sockets, and streams the answer with ``asyncio.sleep`` between frames. Reported: median
(min-max) over the runs, bytes per session. Targets (issue #14): <= 4 KiB retained per finished
session; per replaying session <= 2x bare. RSS moves in pages and the allocator keeps freed memory,
so small figures are noisy, and this machine is shared: read the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from mockrealtime.core import cassette as _cassette  # noqa: E402
from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session  # noqa: E402
from mockrealtime.core.cassette_writer import save  # noqa: E402

from _loopback import serve_forever, server_process  # noqa: E402

ITEM = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "what is the weather?"}]}
CREATE = json.dumps({"type": "conversation.item.create", "item": ITEM})
RESPOND = json.dumps({"type": "response.create"})


def created(n: int) -> RecordedEvent:
    return RecordedEvent.make("server", 0, {"type": "session.created", "event_id": f"event_{n:021d}",
                                            "session": {"type": "realtime", "object": "realtime.session", "model": "gpt-realtime"}})


def roundtrip() -> Cassette:
    """The tool round trip of step 1: an item, then a response that calls a tool."""
    call = {"id": "item_2", "type": "function_call", "status": "completed", "name": "get_weather", "call_id": "call_1", "arguments": '{"city":"Paris"}'}
    events = [
        created(0),
        RecordedEvent.make("client", 10, json.loads(CREATE)),
        RecordedEvent.make("server", 11, {"type": "conversation.item.added", "event_id": "event_" + "1" * 21, "previous_item_id": None,
                                          "item": {"id": "item_1", **ITEM, "status": "completed"}}),
        RecordedEvent.make("client", 20, json.loads(RESPOND)),
        RecordedEvent.make("server", 21, {"type": "response.done", "event_id": "event_" + "2" * 21,
                                          "response": {"id": "resp_1", "object": "realtime.response", "status": "completed", "output": [call]}}),
    ]
    return Cassette(name="roundtrip", dialect="ga", sessions=[Session(events, Close("client", 1000, ""))])


def speech(seconds: int = 60) -> Cassette:
    chunk = base64.b64encode(os.urandom(4800)).decode()  # 100 ms of pcm16 at 24 kHz
    events = [created(0), RecordedEvent.make("client", 1, json.loads(RESPOND))]
    n = 0
    for i in range(seconds * 10):
        for etype, delta in (("response.output_audio.delta", chunk), ("response.output_audio_transcript.delta", "word ")):
            n += 1
            events.append(RecordedEvent.make("server", 2 + i * 100 + (n % 2), {"type": etype, "event_id": f"event_{n:021d}", "response_id": "resp_1",
                                                                               "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": delta}))
    events.append(RecordedEvent.make("server", 2 + seconds * 1000, {"type": "response.done", "event_id": "event_done" + "0" * 17,
                                                                   "response": {"id": "resp_1", "status": "completed", "output": []}}))
    return Cassette(name="speech", dialect="ga", sessions=[Session(events, Close("client", 1000, ""))])


# ------------------------------------------------------------------------------------------------
# servers (each runs in a child process)


def run_bare(directory: str, port_queue: multiprocessing.Queue) -> None:
    def frames(name: str) -> list[tuple[float, str]]:
        events = _cassette.load(os.path.join(directory, name + ".yaml")).sessions[0].events
        return [(e.offset_ms, e.text) for e in events if e.direction.value == "server"]

    trip, talk = frames("roundtrip"), frames("speech")

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str(trip[0][1])
        if request.match_info["name"] == "roundtrip":
            i = 1
            async for _ in ws:
                await ws.send_str(trip[i][1])
                i += 1
            return ws
        async for _ in ws:  # response.create: the answer at recorded timing
            start, t0 = asyncio.get_running_loop().time(), talk[1][0]
            for at, text in talk[1:]:
                delay = start + (at - t0) / 1000 - asyncio.get_running_loop().time()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    await ws.send_str(text)
                except ConnectionError:
                    break
        return ws

    app = web.Application()
    app.router.add_get("/c/{name}/v1/realtime", handler)
    serve_forever(app, port_queue)


def run_mock(directory: str, port_queue: multiprocessing.Queue) -> None:
    from mockrealtime.config import ServerConfig
    from mockrealtime.net.server import make_app, settle_gc_for_serving

    app = make_app(ServerConfig(cassettes=directory, port=0, pace=1.0, keep_finished=1_000_000))
    settle_gc_for_serving()  # as `mockrealtime serve` does
    serve_forever(app, port_queue)


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


# ------------------------------------------------------------------------------------------------
# the client


async def one_roundtrip(http: aiohttp.ClientSession, url: str) -> None:
    async with http.ws_connect(url + "/c/roundtrip/v1/realtime") as ws:
        await ws.receive()
        for frame in (CREATE, RESPOND):
            await ws.send_str(frame)
            await ws.receive()


async def steps(url: str, pid: int, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(n):  # warm: cassettes loaded, code paths run, the collector's garbage at its steady level
            await one_roundtrip(http, url)
        await asyncio.sleep(0.2)
        before = rss(pid)
        for _ in range(n):
            await one_roundtrip(http, url)
        await asyncio.sleep(0.2)
        after = rss(pid)
        out["finished"] = (after - before) / n

        sockets = await asyncio.gather(*(http.ws_connect(url + "/c/roundtrip/v1/realtime") for _ in range(n)))
        await asyncio.gather(*(ws.receive() for ws in sockets))
        out["idle"] = (rss(pid) - after) / n
        await asyncio.gather(*(ws.close() for ws in sockets))
    return out


async def replay_steps(url: str, pid: int, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.ws_connect(url + "/c/speech/v1/realtime") as ws:  # warm: the cassette loaded, planned
            await ws.receive()
            await ws.send_str(RESPOND)
            await ws.receive()
        await asyncio.sleep(0.2)
        base = rss(pid)
        sockets = await asyncio.gather(*(http.ws_connect(url + "/c/speech/v1/realtime") for _ in range(n)))
        await asyncio.gather(*(ws.receive() for ws in sockets))
        await asyncio.gather(*(ws.send_str(RESPOND) for ws in sockets))

        async def frames(ws: aiohttp.ClientWebSocketResponse, k: int) -> None:
            for _ in range(k):
                await ws.receive()

        await asyncio.gather(*(frames(ws, 5) for ws in sockets))
        out["replaying"] = (rss(pid) - base) / n
        await asyncio.gather(*(ws.close() for ws in sockets))
        await asyncio.sleep(0.5)
        out["closed_mid_replay"] = (rss(pid) - base) / n
    return out


def measure(target, directory: str, n: int, phase=steps) -> dict[str, float]:
    with server_process(target, directory) as (url, pid):
        result = asyncio.run(phase(url, pid, n))
        result["rest"] = rss(pid)
        return result


def kib(values: list[float]) -> str:
    return f"{statistics.median(values) / 1024:7.1f} KiB ({min(values) / 1024:.1f} to {max(values) / 1024:.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="fresh server processes of each kind")
    args = parser.parse_args()
    rows: dict[str, list[dict[str, float]]] = {"bare": [], "mock": []}
    with tempfile.TemporaryDirectory(prefix="mockrealtime-memory-") as tmp:
        save(roundtrip(), os.path.join(tmp, "roundtrip.yaml"))
        save(speech(), os.path.join(tmp, "speech.yaml"))
        for _ in range(args.runs):
            for kind, target in (("bare", run_bare), ("mock", run_mock)):
                # each phase in a fresh process: RSS growth is not read against what an earlier phase freed
                row = measure(target, tmp, args.sessions)
                replaying = measure(target, tmp, args.sessions, replay_steps)
                row.update({k: v for k, v in replaying.items() if k != "rest"})
                rows[kind].append(row)
    print(f"memory per session (RSS growth / {args.sessions} sessions), median (min-max) of {args.runs} fresh processes;")
    print("shared machine: RSS moves in pages and the allocator keeps freed memory, read the spread")
    labels = {
        "finished": "finished (tool round trip, closed)",
        "idle": "idle (open, after session.created)",
        "replaying": "replaying at pace 1",
        "closed_mid_replay": "closed mid-replay (left behind)",
    }
    targets = {"finished": "(target <= 4 KiB)", "replaying": "(target <= 2x bare)"}
    for key, label in labels.items():
        b, m = [r[key] for r in rows["bare"]], [r[key] for r in rows["mock"]]
        print(f"  {label}")
        print(f"    bare aiohttp   {kib(b)}")
        print(f"    mockrealtime   {kib(m)}   {targets.get(key, '')}")
    print(f"  process at the end: bare {statistics.median(r['rest'] for r in rows['bare']) / 2**20:.0f} MiB, "
          f"mockrealtime {statistics.median(r['rest'] for r in rows['mock']) / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
