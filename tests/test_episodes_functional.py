"""new_episodes inside the connection, on the net layer: a route that replays until the first divergence,
then goes on with the live API; the "live API" is a second mockrealtime on loopback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from mockrealtime.config import ServerConfig
from mockrealtime.core.library import bundled_cassette_dir
from mockrealtime.net.episodes import Episodes

TIMEOUT_S = 10
FUNCTION_CALL = f"{bundled_cassette_dir()}/function_call.yaml"
TOOL = {"type": "function", "name": "list_emails", "parameters": {"type": "object", "properties": {"numEmails": {"type": "integer"}}}}
QUESTION = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How many emails do I have?"}]}


async def until(ws: aiohttp.ClientWebSocketResponse, *types: str) -> list[dict[str, Any]]:
    out = []
    while True:
        msg = await asyncio.wait_for(ws.receive(), TIMEOUT_S)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        out.append(json.loads(msg.data))
        if out[-1]["type"] in types:
            return out


async def test_a_diverging_connection_goes_on_with_the_live_api_at_the_clients_own_path(start_server):
    live = await start_server(match="type")  # answers whatever state it is given with the bundled hello
    replay = await start_server()
    state = replay.state
    state.library.register("t1", [FUNCTION_CALL])
    cassette = state.library.resolve("t1", "ga")
    state.routes["t1"] = state.config
    # an upstream without a path: the client's own path goes up, not the route's /c/t1/...
    episodes = Episodes(ServerConfig(upstream=live.ws_url, upstream_api_key="sk-live-key-0123456789"), {"ga": cassette})
    state.episodes["t1"] = episodes

    async with aiohttp.ClientSession() as http, http.ws_connect(replay.ws_url + "/c/t1/v1/realtime?model=gpt-realtime") as ws:
        await until(ws, "session.created")
        await ws.send_json({"type": "session.update", "session": {"type": "realtime", "tools": [TOOL], "tool_choice": "auto"}})
        await ws.send_json({"type": "conversation.item.create", "item": QUESTION})
        await ws.send_json({"type": "response.create"})
        call = (await until(ws, "response.done"))[-1]["response"]["output"][0]
        await ws.send_json({"type": "conversation.item.create",
                            "item": {"type": "function_call_output", "call_id": call["call_id"], "output": "{}"}})
        await ws.send_json({"type": "response.create", "response": {"tool_choice": "none"}})  # the recording: "auto"
        answer = await until(ws, "response.done", "error")
    assert answer[-1]["type"] == "response.done" and not [e for e in answer if e["type"] == "error"]
    assert "Hi there!" in "".join(e.get("delta", "") for e in answer if e["type"] == "response.output_audio_transcript.delta")

    (handed,) = live.state.connections
    assert handed.path == "/v1/realtime"
    assert [(j.event["type"], j.event.get("item", {}).get("id")) for j in handed.engine.journal] == [
        ("session.update", None),
        *[("conversation.item.create", item_id) for item_id in state.connections[0].engine.model.item_order()],
        ("response.create", None),
    ]
    problems = await episodes.close(0.5)
    assert problems == []
    (episode,) = episodes.episodes
    assert (episode.session, episode.handed_over, episode.report_id) == (0, True, state.connections[0].id)
    ((path, saved),) = episodes.cassettes(lambda dialect: "unused.yaml", "live").values()
    assert path == FUNCTION_CALL  # where the base came from (the plugin writes a bundled one's to the test's dir)
    session = saved.sessions[0]
    client_types = [e.type for e in session.events if e.direction.value == "client"]
    assert client_types == ["session.update", "conversation.item.create", "response.create",
                            "conversation.item.create", "response.create"]
    assert "cassette_mismatch" not in json.dumps([e.event for e in session.events])
    assert saved.description.endswith("new_episodes (live): session 0 continued live.")
