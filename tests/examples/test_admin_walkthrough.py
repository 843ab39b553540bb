"""The README's "Admin API" walk-through: a test in any language, with only HTTP and a WebSocket.

Each request is the README's curl line (quoted above it) against a server on a free port; the agent
is the openai SDK doing the tool round trip of the bundled function_call cassette.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosed

TIMEOUT_S = 10
TOOL = {"type": "function", "name": "list_emails", "description": "List the user's most recent emails.",
        "parameters": {"type": "object", "properties": {"numEmails": {"type": "integer"}}, "required": ["numEmails"]}}


async def until(conn: Any, type_: str) -> dict[str, Any]:
    while True:
        event = json.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S))
        if event["type"] == type_:
            return event


async def agent(base_url: str, early: bool = False) -> None:
    """The agent: its tool round trip (``early``: it asks for a response before saying anything)."""
    client = AsyncOpenAI(api_key="sk-test-not-a-key", websocket_base_url=base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await until(conn, "session.created")
        if early:
            await conn.response.create()
            await until(conn, "error")
            await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S)  # the close: the SDK raises
        await conn.session.update(session={"type": "realtime", "tools": [TOOL]})
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How many emails?"}]})
        await conn.response.create()
        call = (await until(conn, "response.done"))["response"]["output"][0]
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call["call_id"], "output": json.dumps({"total": 3})})
        await conn.response.create()
        await until(conn, "response.done")


async def test_the_admin_walk_through(server):
    async with aiohttp.ClientSession(base_url=server.http_url) as http:

        async def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
            async with http.request(method, "/__admin" + path, json=body) as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json()

        # curl -s -X POST localhost:8080/__admin/reset
        await call("POST", "/reset")
        # curl -s -X PATCH localhost:8080/__admin/config -d '{"on_divergence": "close"}'   # a diverging client is closed (4000)
        assert (await call("PATCH", "/config", {"on_divergence": "close"}))["config"]["on_divergence"] == "close"
        # curl -s -X POST localhost:8080/__admin/cassettes/next -d '{"cassette": "function_call", "connections": 1}'
        await call("POST", "/cassettes/next", {"cassette": "function_call", "connections": 1})
        # ... the agent connects to ws://localhost:8080/v1/realtime and does its tool round trip ...
        await agent(server.base_url())
        # curl -s 'localhost:8080/__admin/journal/wait?type=conversation.item.create&count=2&timeout_s=10'
        waited = await call("GET", "/journal/wait?type=conversation.item.create&count=2&timeout_s=10")
        assert waited["count"] == 2
        # curl -s 'localhost:8080/__admin/journal/wait?connection=0&closed=true'
        await call("GET", "/journal/wait?connection=0&closed=true")
        # curl -s localhost:8080/__admin/connections/0      # divergences and unplayed should be []
        connection = await call("GET", "/connections/0")
        assert (connection["cassette"], connection["divergences"], connection["unplayed"]) == ("function_call", [], [])

        # the policy at work: an agent that diverges is closed after the error
        await call("POST", "/cassettes/next", {"cassette": "function_call", "connections": 1})
        with pytest.raises(ConnectionClosed) as closed:
            await agent(server.base_url(), early=True)
        assert closed.value.rcvd.code == 4000
        assert (await call("GET", "/connections/1"))["close_code"] == 4000
