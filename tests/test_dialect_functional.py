"""Dialect negotiation in every form a client uses, through both readers of a handshake: the replay
server over a real loopback socket, and the recorder (record mode reads the handshake it relays).

The real API speaks beta to a handshake that carries ``realtime=v1`` in an ``OpenAI-Beta`` header
(alone, among other comma-separated betas, or in one of several such headers) or offers the
``openai-beta.realtime-v1`` subprotocol; everything else gets GA (/work/shared/protocol.md).
"""

from __future__ import annotations

import json

import aiohttp
import pytest
from replay_compare import untag
from multidict import CIMultiDict

from mockrealtime.core.library import CassetteLibrary
from mockrealtime.core.recording import negotiate_dialect

TIMEOUT_S = 10
KEY_PROTOCOL = "openai-insecure-api-key.sk-test-not-a-key"

# (headers as sent, in order, repeated names allowed; subprotocols offered; the dialect spoken)
HANDSHAKES = [
    pytest.param([], [], "ga", id="nothing-is-GA"),
    pytest.param([("OpenAI-Beta", "realtime=v1")], [], "beta", id="beta-header"),
    pytest.param([("openai-beta", "realtime=v1")], [], "beta", id="header-name-in-any-case"),
    pytest.param([("OpenAI-Beta", "assistants=v2, realtime=v1")], [], "beta", id="multi-value-header"),
    pytest.param([("OpenAI-Beta", "realtime=v1,assistants=v2")], [], "beta", id="multi-value-without-spaces"),
    pytest.param([("OpenAI-Beta", "assistants=v2"), ("OpenAI-Beta", "realtime=v1")], [], "beta", id="repeated-header-beta-second"),
    pytest.param([("OpenAI-Beta", "realtime=v1"), ("OpenAI-Beta", "assistants=v2")], [], "beta", id="repeated-header-beta-first"),
    pytest.param([("OpenAI-Beta", "assistants=v2")], [], "ga", id="another-beta-is-GA"),
    pytest.param([], ["realtime", "openai-beta.realtime-v1"], "beta", id="beta-subprotocol"),
    pytest.param([], ["realtime", KEY_PROTOCOL, "openai-beta.realtime-v1"], "beta", id="beta-subprotocol-after-the-key"),
    pytest.param([], ["realtime", KEY_PROTOCOL], "ga", id="GA-subprotocols"),
    pytest.param([("OpenAI-Beta", "assistants=v2")], ["realtime", "openai-beta.realtime-v1"], "beta", id="subprotocol-beside-another-beta"),
]

BUNDLED = CassetteLibrary()


def recorded_session_id(dialect: str) -> str:
    return BUNDLED.resolve("hello", dialect).sessions[0].events[0].event["session"]["id"]


@pytest.mark.parametrize(("headers", "subprotocols", "dialect"), HANDSHAKES)
async def test_the_server_replays_the_dialect_the_handshake_asks_for(server, headers, subprotocols, dialect):
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            server.ws_url + "/v1/realtime?model=gpt-realtime", headers=CIMultiDict(headers), protocols=subprotocols
        ) as ws:
            created = json.loads((await ws.receive(timeout=TIMEOUT_S)).data)
    # the hello cassette's variant for that dialect answered, and the connection says so
    assert (created["type"], untag(created["session"]["id"])) == ("session.created", recorded_session_id(dialect))
    assert server.state.connections[-1].dialect == dialect


@pytest.mark.parametrize(("headers", "subprotocols", "dialect"), HANDSHAKES)
def test_the_recorder_reads_the_same_dialect_from_the_handshake(headers, subprotocols, dialect):
    assert negotiate_dialect(headers, subprotocols) == dialect


@pytest.mark.parametrize(
    ("offered", "dialect"),
    [
        (["realtime, openai-beta.realtime-v1"], "beta"),  # as websockets (the openai SDK) writes it
        (["realtime", "openai-beta.realtime-v1"], "beta"),  # the header repeated
        (["realtime, openai-insecure-api-key.sk-x"], "ga"),
    ],
)
async def test_the_server_reads_the_subprotocol_header_as_clients_write_it(server, offered, dialect):
    headers = CIMultiDict(("Sec-WebSocket-Protocol", value) for value in offered)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url + "/v1/realtime?model=gpt-realtime", headers=headers) as ws:
            await ws.receive(timeout=TIMEOUT_S)
    assert server.state.connections[-1].dialect == dialect
