"""Divergence policy and stalls over a real socket: the error, the close, and the report."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

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


async def admin_config(server, method: str, body: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.http_url + "/__admin/config", json=body) as resp:
            return resp.status, await resp.json()


async def diverge(server) -> tuple[dict, aiohttp.WSMessage]:
    """A client that asks for a response before saying anything: the error, and what comes next."""
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/c/hello/v1/realtime") as ws:
        await ws.receive(timeout=TIMEOUT_S)
        await ws.send_json({"type": "response.create", "event_id": "early"})
        error = json.loads((await ws.receive(timeout=TIMEOUT_S)).data)
        await ws.send_json(UPDATE)  # a session that goes on answers it
        return error, await ws.receive(timeout=TIMEOUT_S)


async def test_the_policy_set_through_the_admin_api_applies_to_new_connections(server):
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/c/hello/v1/realtime") as before:
        await before.receive(timeout=TIMEOUT_S)
        status, body = await admin_config(server, "PATCH", {"on_divergence": "close"})
        assert (status, body["config"]["on_divergence"]) == (200, "close")
        assert (await admin_config(server, "GET"))[1]["config"]["on_divergence"] == "close"
        error, after = await diverge(server)
        assert error["error"]["code"] == "cassette_mismatch"
        assert after.type is aiohttp.WSMsgType.CLOSE and after.data == 4000
        # a connection opened before the change keeps the policy it started with
        await before.send_json({"type": "response.create"})
        assert json.loads((await before.receive(timeout=TIMEOUT_S)).data)["error"]["code"] == "cassette_mismatch"
        await before.send_json(UPDATE)
        assert json.loads((await before.receive(timeout=TIMEOUT_S)).data)["type"] == "session.updated"
    status, body = await admin_config(server, "PATCH", {"on_divergence": "error"})
    assert (status, body["config"]["on_divergence"]) == (200, "error")
    error, after = await diverge(server)
    assert (error["error"]["code"], error["error"]["event_id"]) == ("cassette_mismatch", "early")
    assert json.loads(after.data)["type"] == "session.updated"  # the session went on


@pytest.mark.parametrize(("body", "message"), [
    ({"on_divergence": "explode"}, "on_divergence 'explode' is not one of error, close"),
    ({"on_divergence": 1}, "on_divergence=1 is not a non-empty string"),
    ({"on_divergence": {"close": [1]}}, "is not a non-empty string"),
    ({"on_divergence": "close", "api_key": "sk-x"}, "cannot change api_key; settable at run time: on_divergence"),
    ({"pace": 1}, "settable at run time: on_divergence"),
    ({}, "settable at run time: on_divergence"),
])
async def test_the_admin_api_refuses_a_setting_it_cannot_change_and_changes_nothing(server, body, message):
    status, answer = await admin_config(server, "PATCH", body)
    assert (status, answer["error"]["code"]) == (400, "bad_setting")
    assert message in answer["error"]["message"]
    assert answer["error"]["settable"] == ["on_divergence"]
    assert (await admin_config(server, "GET"))[1]["config"] == server.state.config.to_dict()
    assert server.state.config.on_divergence == "error"


@pytest.mark.parametrize("body", ["[" * 5000, '["on_divergence"]', '{"on_divergence": 1e999}'])
async def test_a_hostile_config_body_gets_a_400_never_a_traceback(server, caplog, body):
    async with aiohttp.ClientSession() as http, http.patch(server.http_url + "/__admin/config", data=body) as resp:
        assert resp.status == 400
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert server.state.config.on_divergence == "error"


async def test_reset_restores_the_policy_the_server_started_with(start_server):
    server = await start_server(on_divergence="close")
    assert (await admin_config(server, "PATCH", {"on_divergence": "error"}))[1]["config"]["on_divergence"] == "error"
    async with aiohttp.ClientSession() as http:
        async with http.post(server.http_url + "/__admin/reset") as resp:
            assert resp.status == 200
    assert (await admin_config(server, "GET"))[1]["config"]["on_divergence"] == "close"
