"""Session-level behaviours of the real API over a real socket: keys, expiry, beta retirement,
strictness, and the seed's failed session.update leaving the formats alone."""

from __future__ import annotations

import json

import aiohttp
import pytest

from oracle import server_event_errors


async def _first_then_close(ws) -> tuple[dict, int | None, str]:
    event = json.loads((await ws.receive()).data)
    msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.CLOSE
    return event, ws.close_code, msg.extra or ""


async def test_a_wrong_api_key_gets_invalid_api_key_then_close_3000(start_server):
    server = await start_server(api_key="sk-proj-the-right-key-0000")
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bearer sk-proj-wrongwrongwrong-sQoA"}
        async with http.ws_connect(server.ws_url + "/v1/realtime?model=gpt-realtime", headers=headers) as ws:
            event, code, reason = await _first_then_close(ws)
        assert event["error"] == {
            "type": "invalid_request_error", "code": "invalid_api_key", "param": None, "event_id": None,
            "message": "Incorrect API key provided: sk-proj-...sQoA. You can find your API key at https://platform.openai.com/account/api-keys.",
        }
        assert server_event_errors(event, "ga") == []
        assert (code, reason) == (3000, "invalid_request_error.invalid_api_key")
        # the right key, given as a browser subprotocol, is let in
        protocols = ("realtime", "openai-insecure-api-key.sk-proj-the-right-key-0000")
        async with http.ws_connect(server.ws_url + "/v1/realtime", protocols=protocols) as ws:
            assert json.loads((await ws.receive()).data)["type"] == "session.created"
    assert len(server.state.connections) == 1  # the refused one used no recorded session


async def test_the_session_expires_at_its_maximum_duration(start_server):
    server = await start_server(max_session_s=0.2)
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/v1/realtime") as ws:
        assert json.loads((await ws.receive()).data)["type"] == "session.created"
        event, code, reason = await _first_then_close(ws)
    assert event["error"]["code"] == "session_expired"
    assert event["error"]["message"] == "Your session hit the maximum duration of 0.00333 minutes."
    assert server_event_errors(event, "ga") == []
    assert code == 1001 and reason == event["error"]["message"]


@pytest.mark.parametrize(("how", "value"), [("header", "true"), ("query", "1")])
async def test_beta_retired_per_connection(server, how, value):
    headers = {"OpenAI-Beta": "realtime=v1"}
    url = server.ws_url + "/v1/realtime?model=gpt-4o-realtime-preview"
    if how == "header":
        headers["X-Mockrealtime-Beta-Retired"] = value
    else:
        url += "&mockrealtime_beta_retired=" + value
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, headers=headers) as ws:
            event, code, reason = await _first_then_close(ws)
        assert event["error"]["code"] == "beta_api_shape_disabled"
        assert event["error"]["message"] == "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
        assert (code, reason) == (4000, "invalid_request_error.beta_api_shape_disabled")
        async with http.ws_connect(server.ws_url + "/v1/realtime", headers={"X-Mockrealtime-Beta-Retired": "true"}) as ws:
            assert json.loads((await ws.receive()).data)["type"] == "session.created"  # GA is unaffected


async def test_strict_per_connection_turns_housekeeping_into_divergence(server):
    async with aiohttp.ClientSession() as http:
        for strict, expected in (("0", "input_audio_buffer.cleared"), ("1", "error")):
            async with http.ws_connect(server.ws_url + "/v1/realtime", headers={"X-Mockrealtime-Strict": strict}) as ws:
                await ws.receive()
                await ws.send_json({"type": "input_audio_buffer.clear"})
                assert json.loads((await ws.receive()).data)["type"] == expected


async def test_a_bad_setting_is_refused_at_the_handshake(server):
    async with aiohttp.ClientSession() as http, http.get(server.http_url + "/v1/realtime?mockrealtime_strict=maybe",
                                                          headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                                   "Sec-WebSocket-Version": "13"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == "bad value for strict: 'maybe'"


async def test_a_rejected_session_update_changes_nothing(server):
    """The seed's Twilio bridge: tools in Chat-Completions form; the formats stay pcm16."""
    async with aiohttp.ClientSession() as http:
        url = server.ws_url + "/c/chat_completions_tools/v1/realtime?model=gpt-4o-realtime-preview"
        async with http.ws_connect(url, headers={"OpenAI-Beta": "realtime=v1"}) as ws:
            await ws.receive()
            await ws.receive()  # conversation.created
            await ws.send_json({"type": "session.update", "session": {
                "input_audio_format": "g711_ulaw", "output_audio_format": "g711_ulaw",
                "tools": [{"type": "function", "function": {"name": "list_emails", "parameters": {"type": "object"}}}]}})
            error = json.loads((await ws.receive()).data)
            assert (error["error"]["code"], error["error"]["param"]) == ("unknown_parameter", "session.tools[0].function")
            await ws.send_json({"type": "session.update", "session": {"instructions": "Speak slowly."}})
            updated = json.loads((await ws.receive()).data)
    assert updated["type"] == "session.updated"
    assert (updated["session"]["input_audio_format"], updated["session"]["output_audio_format"]) == ("pcm16", "pcm16")
    assert server_event_errors(updated, "beta") == []
