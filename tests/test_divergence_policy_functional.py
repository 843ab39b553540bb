"""Divergence policy and stalls over a real socket: the error, the close, and the report."""

from __future__ import annotations

import asyncio
import json

import aiohttp

TIMEOUT_S = 10
UPDATE = {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}}


async def test_a_stall_gets_an_error_naming_what_the_server_waits_for(start_server):
    server = await start_server(stall_timeout_s=0.2)
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/c/hello/v1/realtime") as ws:
        assert json.loads((await ws.receive(timeout=TIMEOUT_S)).data)["type"] == "session.created"
        await ws.send_json(UPDATE)
        assert json.loads((await ws.receive(timeout=TIMEOUT_S)).data)["type"] == "session.updated"
        error = json.loads((await ws.receive(timeout=TIMEOUT_S)).data)  # nothing else is due: the stall
    assert error["type"] == "error" and error["error"]["code"] == "cassette_stalled"
    assert "response.create" in error["error"]["message"]
    report = server.state.connections[-1].to_dict()
    assert [d["kind"] for d in report["divergences"]] == ["stall"]
    assert report["journal"][-1]["outcome"] == "stalled"


async def test_no_stall_while_the_client_has_not_acted(start_server):
    server = await start_server(stall_timeout_s=0.05)
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/c/hello/v1/realtime") as ws:
        await ws.receive(timeout=TIMEOUT_S)
        await asyncio.sleep(0.3)  # connected, idle, never asked for anything: not a stall
    engine = server.state.connections[-1].engine
    assert (engine.stalled, list(engine.divergences)) == (False, [])


async def test_the_close_policy_by_header_closes_after_the_error(server):
    headers = {"X-Mockrealtime-On-Divergence": "close"}
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/c/hello/v1/realtime", headers=headers) as ws:
        await ws.receive(timeout=TIMEOUT_S)
        await ws.send_json({"type": "response.create", "event_id": "early"})
        error = json.loads((await ws.receive(timeout=TIMEOUT_S)).data)
        closing = await ws.receive(timeout=TIMEOUT_S)
    assert (error["error"]["code"], error["error"]["event_id"]) == ("cassette_mismatch", "early")
    assert closing.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 4000


async def test_the_close_policy_by_server_configuration(start_server):
    server = await start_server(on_divergence="close")
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/c/hello/v1/realtime") as ws:
        await ws.receive(timeout=TIMEOUT_S)
        await ws.send_json({"type": "response.create"})
        await ws.receive(timeout=TIMEOUT_S)
        assert (await ws.receive(timeout=TIMEOUT_S)).type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == 4000


async def test_a_bad_policy_value_is_refused_before_the_upgrade(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.http_url + "/c/hello/v1/realtime", headers={"X-Mockrealtime-On-Divergence": "explode",
                            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as resp:
            assert resp.status == 400
