"""The guarded surface, over real loopback sockets: the admin token, Host and Origin checks, the
WebSocket's Origin policy, and keys kept out of logs and the admin journal."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI

from mockrealtime.config import ServerConfig
from mockrealtime.errors import ConfigError

TIMEOUT_S = 10
KEY = "sk-proj-" + "Q" * 40


async def status_of(server, method: str, path: str, **kwargs) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.request(method, server.http_url + path, **kwargs) as resp:
        return resp.status, await resp.json()


# -- the admin API --------------------------------------------------------------------------------


async def test_a_cross_site_text_plain_post_is_refused(server):
    """What any web page can make a browser send to localhost without a preflight."""
    status, body = await status_of(
        server, "POST", "/__admin/reset", data="{}",
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )
    assert status == 403 and body["error"]["code"] == "origin_not_allowed"
    status, _ = await status_of(server, "POST", "/__admin/reset", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert (await status_of(server, "POST", "/__admin/reset"))[0] == 200  # a program sends no Origin


async def test_a_foreign_host_is_refused_without_a_token(server):
    """DNS rebinding: the page's own name, resolved to 127.0.0.1, arrives in the Host header."""
    status, body = await status_of(server, "GET", "/__admin/journal", headers={"Host": "evil.example:8080"})
    assert status == 403 and body["error"]["code"] == "host_not_allowed"
    for host in ("localhost:1", "127.0.0.1", "[::1]:8080"):
        assert (await status_of(server, "GET", "/__admin/journal", headers={"Host": host}))[0] == 200


async def test_a_token_is_required_when_set(start_server):
    server = await start_server(admin_token="s3cret-admin-token")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-admin-token"}):
        status, body = await status_of(server, "POST", "/__admin/reset", headers=headers)
        assert status == 401 and body["error"]["code"] == "admin_token_required"
    good = {"Authorization": "Bearer s3cret-admin-token"}
    assert (await status_of(server, "POST", "/__admin/reset", headers=good))[0] == 200
    # with a token, any Host will do (a container reached by its service name)
    assert (await status_of(server, "GET", "/__admin/journal", headers={**good, "Host": "realtime:8080"}))[0] == 200
    assert (await status_of(server, "GET", "/healthz"))[0] == 200  # health stays public


async def test_no_admin_serves_no_admin_api(start_server):
    server = await start_server(admin=False)
    async with aiohttp.ClientSession() as http, http.post(server.http_url + "/__admin/reset") as resp:
        assert resp.status == 404


def test_beyond_loopback_the_admin_api_needs_a_token():
    with pytest.raises(ConfigError, match="MOCKREALTIME_ADMIN_TOKEN=SECRET"):
        ServerConfig.from_env({"MOCKREALTIME_ADMIN": "true"}, host="0.0.0.0")  # asked for, no token
    assert not ServerConfig.from_env({}, host="0.0.0.0").admin_enabled  # not asked for: off
    assert ServerConfig.from_env({}, host="0.0.0.0", admin_token="x").admin_enabled
    assert not ServerConfig.from_env({"MOCKREALTIME_ADMIN": "false"}, host="0.0.0.0", admin_token="x").admin_enabled
    assert ServerConfig.from_env({}, host="::1").admin_enabled and ServerConfig().admin_enabled
    assert "x" * 20 not in repr(ServerConfig(admin_token="x" * 20, api_key="x" * 20))


async def test_the_journal_masks_a_key_pasted_into_instructions(server):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url("hello"))
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S)
        await conn.session.update(session={"type": "realtime", "instructions": f"my key is {KEY}, keep it"})
        await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S)
    status, body = await status_of(server, "GET", "/__admin/journal?type=session.update")
    assert status == 200
    text = json.dumps(body)
    assert KEY not in text and "my key is <redacted>, keep it" in text


# -- the WebSocket ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # the SDKs, servers
        ("http://localhost:3000", True),  # the browser app being developed
        ("http://127.0.0.1:5173", True),
        ("https://evil.example", False),
        ("null", False),  # a file:// page, or a sandboxed frame of any site
        ("http://localhost.evil.example", False),
        ("http://[::1", False),  # not a URL: refused, never a traceback
    ],
)
async def test_the_websocket_origin_policy(server, origin, allowed):
    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as http:
        if allowed:
            async with http.ws_connect(server.ws_url + "/v1/realtime", headers=headers) as ws:
                assert json.loads((await ws.receive()).data)["type"] == "session.created"
        else:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.ws_url + "/v1/realtime", headers=headers)
            assert refused.value.status == 403


async def test_an_allowed_origin_may_open_the_websocket(start_server):
    server = await start_server(allowed_origins="https://app.example, null")
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(server.ws_url + "/v1/realtime", headers={"Origin": "https://app.example"}) as ws, \
            http.ws_connect(server.ws_url + "/v1/realtime", headers={"Origin": "null"}) as from_a_file:
        assert json.loads((await ws.receive()).data)["type"] == "session.created"
        assert json.loads((await from_a_file.receive()).data)["type"] == "session.created"


async def test_a_key_offered_as_the_only_subprotocol_never_reaches_the_log(server, caplog):
    """aiohttp warns with the offered subprotocols when none matches ours, key included."""
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(server.ws_url + "/v1/realtime", protocols=(f"openai-insecure-api-key.{KEY}",)) as ws:
        assert json.loads((await ws.receive()).data)["type"] == "session.created"
    short = "openai-insecure-api-key.sk-test"  # too short to look like a key: masked as a subprotocol
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/v1/realtime", protocols=(short,)) as ws:
        await ws.receive()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "openai-insecure-api-key.<redacted>" in logged  # the warning is there, the key is not
    assert KEY not in logged and "sk-test" not in logged


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=40) | st.builds(lambda h: f"http://{h}", st.text(max_size=20)))
def test_any_origin_or_host_header_is_judged_never_raises(value):
    from mockrealtime.net.security import _loopback_name, origin_allowed

    assert origin_allowed(value, ServerConfig()) in (True, False)
    assert _loopback_name(value) in (True, False)
