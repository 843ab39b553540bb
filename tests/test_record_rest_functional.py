"""Record mode captures the REST calls that mint ephemeral keys: relayed to the upstream's HTTP side,
kept in the cassette's ``rest:`` list with the minted key redacted, and answered from there on replay.
The upstream is a replaying mockrealtime, or a few lines of aiohttp; never the internet."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from openai import AsyncOpenAI

from mockrealtime.core import cassette as _cassette
from mockrealtime.errors import SecretLeftError
from mockrealtime.config import ServerConfig
from mockrealtime.net.record import recording_server

KEY = "sk-proj-" + "R3stRec0rd" * 5


async def _session_created(url: str, key: str, *, beta: bool = False) -> dict:
    protocols = ("realtime", "openai-insecure-api-key." + key) + (("openai-beta.realtime-v1",) if beta else ())
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=protocols) as ws:
        event = json.loads((await ws.receive(timeout=10)).data)
        await ws.close()
    return event


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_a_minted_key_is_recorded_redacted_and_answered_from_the_cassette(start_server, tmp_path, dialect):
    upstream = await start_server()
    out = tmp_path / "minted.yaml"
    async with recording_server(ServerConfig(upstream=f"{upstream.ws_url}/c/hello/v1/realtime", output=str(out), port=0)) as (url, _):
        async with AsyncOpenAI(api_key=KEY, base_url="http" + url[2:] + "/v1") as backend:
            if dialect == "ga":
                minted = await backend.realtime.client_secrets.create(session={"type": "realtime", "instructions": "Recorded minting."})
                key = minted.value
            else:
                made = await backend.beta.realtime.sessions.create(instructions="Recorded minting.")
                key = made.client_secret.value
        assert key.startswith("ek_")
        created = await _session_created(url + "/v1/realtime", key, beta=dialect == "beta")
        assert created["session"]["instructions"] == "Recorded minting."  # the upstream took the key
    text = out.read_text()
    assert key not in text and KEY not in text
    recorded = _cassette.load(str(out))
    (entry,) = recorded.rest
    assert (entry["method"], entry["status"]) == ("POST", 200)
    assert entry["path"] == ("/v1/realtime/client_secrets" if dialect == "ga" else "/v1/realtime/sessions")
    if dialect == "ga":
        assert entry["response"]["value"] == "<redacted>" and entry["request"]["session"]["instructions"] == "Recorded minting."
    else:
        assert entry["response"]["client_secret"]["value"] == "<redacted>"

    replayer = await start_server(cassettes=str(out))
    async with AsyncOpenAI(api_key="sk-test", base_url=replayer.http_url + "/v1") as client:
        if dialect == "ga":
            again = await client.realtime.client_secrets.create(session={"type": "realtime"})
            fresh, instructions = again.value, again.session.instructions  # type: ignore[union-attr]
        else:
            made = await client.beta.realtime.sessions.create()
            fresh, instructions = made.client_secret.value, made.instructions
    assert fresh.startswith("ek_") and fresh != key and instructions == "Recorded minting."
    assert (await _session_created(replayer.ws_url + "/v1/realtime", fresh, beta=dialect == "beta"))["session"]["instructions"] == "Recorded minting."


async def test_a_key_the_upstream_repeats_elsewhere_stops_the_save(tmp_path):
    leaked = "ek_" + "1234abcd" * 4

    async def mint(request: web.Request) -> web.Response:
        return web.json_response({"value": leaked, "expires_at": 1, "session": {"type": "realtime", "object": "realtime.session",
                                                                             "id": "sess_1", "instructions": f"key {leaked}"}})

    async def realtime(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("realtime",))
        await ws.prepare(request)
        await ws.send_json({"type": "session.created", "event_id": "event_1", "session": {"type": "realtime"}})
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_post("/v1/realtime/client_secrets", mint)
    app.router.add_get("/v1/realtime", realtime)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    out = tmp_path / "leak.yaml"
    try:
        with pytest.raises(SecretLeftError) as info:
            async with recording_server(ServerConfig(upstream=f"ws://127.0.0.1:{port}/v1/realtime", output=str(out), port=0)) as (url, _):
                async with AsyncOpenAI(api_key=KEY, base_url="http" + url[2:] + "/v1") as backend:
                    await backend.realtime.client_secrets.create(session={"type": "realtime"})
                await _session_created(url + "/v1/realtime", leaked)
    finally:
        await runner.cleanup()
    assert not out.exists()
    assert leaked not in str(info.value)
    assert "$.rest[0].response.session.instructions" in str(info.value)
