"""A bare WebSocket client that plays a bundled cassette's client side against a running server and
collects what the server sends, for the hand-written oracles (tests/test_oracles_functional.py).

It sends the recorded client events in order; before each, it waits until the server has sent as
many events of the last non-delta server type recorded before it as the recording holds up to there
(a count per type, so a different chunking of the deltas does not matter).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import aiohttp

from mockrealtime.core.events import Direction
from mockrealtime.core.library import CassetteLibrary
from replay_compare import IdBook

TIMEOUT_S = 10


def _is_delta(etype: str) -> bool:
    return etype.endswith(".delta")


async def play(server: Any, name: str, dialect: str) -> list[dict[str, Any]]:
    """Every server event of one connection replaying ``name`` in ``dialect``, in arrival order."""
    session = CassetteLibrary().resolve(name, dialect).sessions[0]
    headers = {"OpenAI-Beta": "realtime=v1"} if dialect == "beta" else {}
    received: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    arrived = asyncio.Event()
    book = IdBook()  # every connection has fresh ids: send back the call_id / item id it was shown

    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{server.ws_url}/c/{name}/v1/realtime?model=gpt-realtime", headers=headers) as ws:

            async def read() -> None:
                async for msg in ws:
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        break
                    event = json.loads(msg.data)
                    book.learn(event)
                    received.append(event)
                    seen[event["type"]] += 1
                    arrived.set()

            async def until(etype: str, count: int) -> None:
                while seen[etype] < count:
                    arrived.clear()
                    try:
                        await asyncio.wait_for(arrived.wait(), TIMEOUT_S)
                    except TimeoutError:
                        raise AssertionError(
                            f"{name} ({dialect}): waited for {etype} #{count}; got {[e['type'] for e in received]}"
                        ) from None

            reader = asyncio.create_task(read())
            recorded: Counter[str] = Counter()
            gate: tuple[str, int] | None = None
            for ev in session.events:
                if ev.direction is Direction.SERVER:
                    recorded[ev.type] += 1
                    if not _is_delta(ev.type):
                        gate = (ev.type, recorded[ev.type])
                    continue
                if gate is not None:
                    await until(*gate)
                await ws.send_str(json.dumps(book.send(ev.event)))  # the ids this connection was given
            if gate is not None:
                await until(*gate)
            await ws.close()
            await asyncio.wait_for(reader, TIMEOUT_S)
    return received
