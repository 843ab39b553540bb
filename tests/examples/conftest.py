"""Fixtures of the example suite: the voice agent's bridge on a free port, and a phone to call it."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from voice_agent import CALLS, Agent, Call, make_bridge

TIMEOUT_S = 10
CHUNK_MS = 20


class Phone:
    """The caller's side of a Twilio-style media stream."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, call: Call, audio_format: str = "pcm16") -> None:
        self.ws = ws
        self.call = call
        self.audio_format = audio_format
        self.bytes_per_ms = 8 if audio_format == "g711_ulaw" else 48
        self.audio_ms = 0.0  # assistant audio received, as the phone plays it
        self.audio_bytes = 0
        self.cleared = 0  # barge-ins: the bridge told the phone to drop what it buffers
        self.marks: asyncio.Queue[str] = asyncio.Queue()
        self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if data["event"] == "media":
                n = len(base64.b64decode(data["media"]["payload"]))
                self.audio_bytes += n
                self.audio_ms += n / self.bytes_per_ms
            elif data["event"] == "clear":
                self.cleared += 1
            elif data["event"] == "mark":
                self.marks.put_nowait(data["mark"]["name"])

    async def speak(self, seconds: float) -> None:
        """Stream microphone audio in 20 ms frames: u-law (160 bytes of 0xFF, silence) or pcm16."""
        frame = b"\xff" * (CHUNK_MS * 8) if self.audio_format == "g711_ulaw" else bytes(CHUNK_MS * 48)
        chunk = base64.b64encode(frame).decode()
        for _ in range(int(seconds * 1000 / CHUNK_MS)):
            await self.ws.send_json({"event": "media", "media": {"payload": chunk}})

    async def wait_for_mark(self, name: str) -> None:
        while await asyncio.wait_for(self.marks.get(), TIMEOUT_S) != name:
            pass

    async def hang_up(self) -> None:
        await self.ws.send_json({"event": "stop"})
        await asyncio.wait_for(self._listener, TIMEOUT_S)


@pytest.fixture
async def call_agent(realtime_mock):
    """Start the bridge against this test's cassette and call it: ``phone = await call_agent(agent)``."""
    servers: list[TestServer] = []
    phones: list[Phone] = []
    async with aiohttp.ClientSession() as http:

        async def call(agent: Agent, **parameters: Any) -> Phone:
            server = TestServer(make_bridge(agent, realtime_mock.websocket_base_url))
            await server.start_server()
            servers.append(server)
            ws = await http.ws_connect(server.make_url("/media-stream"))
            await ws.send_json({"event": "start", "start": {"streamSid": "MZ0001", "customParameters": parameters}})
            while not server.app[CALLS]:
                await asyncio.sleep(0.001)
            phones.append(Phone(ws, server.app[CALLS][-1], agent.audio_format))
            return phones[-1]

        yield call
        for phone in phones:  # a test that failed mid-call: hang up, or the bridge waits for the caller
            await phone.ws.close()
            phone._listener.cancel()
        for server in servers:
            await server.close()
