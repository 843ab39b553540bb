"""A chunk of an answer goes out in one write (net/realtime_socket.py): the frames a client reads are
the same, in the same order, for every length form; a client that stops reading holds the answer
back instead of the server buffering it; where the fast path does not apply, frame by frame."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import struct

import aiohttp
import trustme
import websockets.asyncio.client
from aiohttp import web

from mockrealtime.config import ServerConfig

from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session
from mockrealtime.core.cassette_writer import save
from mockrealtime.net.realtime_socket import RealtimeSocket, text_frames
from mockrealtime.net.server import STATE, make_app


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """RFC 6455 §5.2, by hand: (first byte, payload) of each unmasked frame."""
    out, i = [], 0
    while i < len(data):
        first, second = data[i], data[i + 1]
        assert not second & 0x80, "a server's frame is never masked"
        n, i = second & 0x7F, i + 2
        if n == 126:
            n, i = struct.unpack("!H", data[i:i + 2])[0], i + 2
        elif n == 127:
            n, i = struct.unpack("!Q", data[i:i + 8])[0], i + 8
        out.append((first, data[i:i + n]))
        i += n
    return out


def test_text_frames_use_the_shortest_length_form_at_each_boundary():
    payloads = [b"", b"a" * 125, b"b" * 126, b"c" * 65535, b"d" * 65536, "é".encode()]
    data = text_frames(payloads)
    assert parse_frames(data) == [(0x81, p) for p in payloads]  # FIN + text, in order
    assert data[:2] == b"\x81\x00" and data[2:4] == b"\x81\x7d"  # 7-bit lengths up to 125
    assert data[129:133] == b"\x81\x7e\x00\x7e"  # 126: the 16-bit form
    assert b"\x81\x7e\xff\xff" + b"c" in data  # and up to 65535 (the shortest form, RFC 6455 §5.2)
    assert b"\x81\x7f" + (65536).to_bytes(8, "big") in data  # 65536: the 64-bit form


def answer(deltas: list[str], name: str = "answer") -> Cassette:
    """One response.create answered by transcript deltas of the given texts."""
    events = [RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "event_0", "session": {"type": "realtime"}}),
              RecordedEvent.make("client", 1, {"type": "response.create"})]
    for n, delta in enumerate(deltas, 1):
        events.append(RecordedEvent.make("server", 1 + n, {
            "type": "response.output_audio_transcript.delta", "event_id": f"event_{n}", "response_id": "resp_1",
            "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": delta}))
    events.append(RecordedEvent.make("server", 2 + len(deltas), {"type": "response.done", "event_id": "event_done",
                                                                 "response": {"id": "resp_1", "status": "completed", "output": []}}))
    return Cassette(name=name, dialect="ga", sessions=[Session(events, Close("client", 1000, ""))])


async def test_a_long_answer_reaches_aiohttp_and_websockets_clients_whole_and_in_order(start_server, tmp_path):
    # 16-bit and 64-bit frame lengths, mixed within one chunk, across many chunks
    deltas = [f"{n}:" + "w" * (n * 37 % 300) if n % 50 else f"{n}:" + "L" * 70_000 for n in range(1, 400)]
    save(answer(deltas), str(tmp_path / "answer.yaml"))
    server = await start_server(cassettes=str(tmp_path))
    url = server.ws_url + "/c/answer/v1/realtime"

    async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
        await ws.receive()
        assert all(s.writes_in_batches for s in server.state.sockets)  # the fast path, with the aiohttp we require
        await ws.send_str('{"type":"response.create"}')
        got = [json.loads((await ws.receive()).data) for _ in range(len(deltas) + 1)]
    assert [e.get("delta") for e in got[:-1]] == deltas and got[-1]["type"] == "response.done"

    async with websockets.asyncio.client.connect(url, max_size=None) as conn:  # the openai SDK's transport
        await conn.recv()
        await conn.send('{"type":"response.create"}')
        got = [json.loads(await conn.recv()) for _ in range(len(deltas) + 1)]
    assert [e.get("delta") for e in got[:-1]] == deltas and got[-1]["type"] == "response.done"


async def test_a_client_that_stops_reading_holds_the_answer_back(start_server, tmp_path):
    """Flow control: the server writes no further than the client's socket takes (it does not
    buffer a 38 MB answer for a client that stopped reading), and the client then gets all of it."""
    chunk = base64.b64encode(os.urandom(4800)).decode()
    frames = 6000
    save(answer([chunk] * frames), str(tmp_path / "answer.yaml"))
    server = await start_server(cassettes=str(tmp_path))
    async with websockets.asyncio.client.connect(server.ws_url + "/c/answer/v1/realtime", max_size=None, max_queue=4) as conn:
        await conn.recv()
        await conn.send('{"type":"response.create"}')
        await asyncio.sleep(0.5)  # not reading: the client's queue, then both sockets' buffers, fill
        held = server.state.connections[-1].engine.unplayed()
        assert len(held) > frames // 2, "the server pushed the answer into memory instead of waiting"
        got = [json.loads(await conn.recv()) for _ in range(frames + 1)]
    assert all(e.get("delta") == chunk for e in got[:-1]) and got[-1]["type"] == "response.done"


async def test_a_compressed_connection_sends_frame_by_frame_with_the_same_payloads():
    """The batched write does not apply to permessage-deflate: send_texts falls back to aiohttp's
    own send_frame, and the client reads the same texts."""
    payloads = [json.dumps({"type": "x", "n": n, "pad": "p" * (n * 101 % 70_000)}).encode() for n in range(40)]
    seen: list[bool] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = RealtimeSocket(max_frame_bytes=1 << 20, compress=True)
        await ws.prepare(request)
        seen.append(ws.writes_in_batches)
        await ws.send_texts(payloads)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{port}/", compress=15, max_msg_size=0) as ws:
            assert ws.compress == 15  # deflate was negotiated
            got = [(await ws.receive()).data.encode() for _ in payloads]
    finally:
        await runner.cleanup()
    assert seen == [False] and got == payloads


async def test_over_wss_a_long_answer_arrives_whole_and_a_stalled_reader_holds_it_back(tmp_path):
    """The batched write goes through the TLS transport as it does through TCP: same frames, same
    flow control (the TLS layer passes the client's full socket up as paused writing)."""
    chunk = base64.b64encode(os.urandom(4800)).decode()
    frames = 4000
    save(answer([chunk] * frames), str(tmp_path / "answer.yaml"))
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    app = make_app(ServerConfig(cassettes=str(tmp_path), port=0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    try:
        url = f"wss://127.0.0.1:{runner.addresses[0][1]}/c/answer/v1/realtime"
        async with websockets.asyncio.client.connect(url, ssl=client_ctx, max_size=None, max_queue=4) as conn:
            await conn.recv()
            await conn.send('{"type":"response.create"}')
            await asyncio.sleep(0.5)
            assert len(app[STATE].connections[-1].engine.unplayed()) > frames // 2
            got = [json.loads(await conn.recv()) for _ in range(frames + 1)]
    finally:
        await runner.cleanup()
    assert all(e.get("delta") == chunk for e in got[:-1]) and got[-1]["type"] == "response.done"
