"""The REST companions that mint ephemeral keys, driven by the openai SDK as a backend calls them,
and the WebSocket that accepts those keys and starts from the configuration they were minted with."""

from __future__ import annotations

import json
import time

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.beta.realtime.session_create_response import SessionCreateResponse
from openai.types.realtime.client_secret_create_response import (
    ClientSecretCreateResponse,
)

from mockrealtime.config import ServerConfig
from mockrealtime.core.ephemeral import MintedKey, websocket_refusal
from tests.oracle import assert_valid_server_event


@pytest.fixture
async def sdk():
    """openai SDK clients (``sdk(api_key, base_url)``), closed after the test."""
    clients: list[AsyncOpenAI] = []

    def make(api_key: str, base_url: str) -> AsyncOpenAI:
        clients.append(AsyncOpenAI(api_key=api_key, base_url=base_url))
        return clients[-1]

    yield make
    for client in clients:
        await client.close()


GA_SESSION = {"type": "realtime", "instructions": "Minted instructions.", "audio": {"output": {"voice": "verse"}}}


async def _first_event(url: str, *, protocols: tuple[str, ...] = (), headers: dict[str, str] | None = None) -> tuple[dict, str | None]:
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=protocols, headers=headers) as ws:
        msg = await ws.receive(timeout=10)
        event = json.loads(msg.data)
        if event["type"] == "error":
            closing = await ws.receive(timeout=10)
            return event, f"{closing.data} {closing.extra}"
        return event, ws.protocol


async def test_ga_client_secret_opens_a_browser_style_session_with_the_minted_configuration(sdk, server):
    client = sdk("sk-backend", server.http_url + "/c/function_call/v1")
    secret = await client.realtime.client_secrets.create(session=GA_SESSION)  # type: ignore[arg-type]
    ClientSecretCreateResponse.model_validate(secret.model_dump())
    assert secret.value.startswith("ek_") and secret.expires_at >= int(time.time()) + 590
    assert secret.session.instructions == "Minted instructions."  # type: ignore[union-attr]
    event, protocol = await _first_event(
        server.ws_url + "/c/function_call/v1/realtime?model=gpt-realtime",
        protocols=("realtime", "openai-insecure-api-key." + secret.value),
    )
    assert protocol == "realtime"
    assert event["type"] == "session.created"
    assert event["session"]["instructions"] == "Minted instructions."
    assert event["session"]["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "verse", "speed": 1.0}
    assert_valid_server_event(event, "ga")


@pytest.mark.parametrize("endpoint", ["sessions", "transcription_sessions"])
async def test_beta_endpoints_answer_with_a_client_secret(sdk, server, endpoint):
    client = sdk("sk-backend", server.http_url + "/v1")
    if endpoint == "sessions":
        made = await client.beta.realtime.sessions.create(model="gpt-4o-realtime-preview", instructions="Beta minted.")
        SessionCreateResponse.model_validate(made.model_dump())
        assert made.instructions == "Beta minted."
    else:
        made = await client.beta.realtime.transcription_sessions.create(input_audio_transcription={"model": "whisper-1"})
        assert made.input_audio_transcription.model == "whisper-1"  # type: ignore[union-attr]
    assert made.client_secret.value.startswith("ek_")
    assert made.client_secret.expires_at >= int(time.time()) + 50


async def test_a_beta_key_starts_a_beta_session_from_its_configuration(sdk, server):
    client = sdk("sk-backend", server.http_url + "/v1")
    made = await client.beta.realtime.sessions.create(instructions="Beta minted.", voice="verse")
    event, _ = await _first_event(
        server.ws_url + "/c/hello/v1/realtime?model=gpt-4o-realtime-preview",
        protocols=("realtime", "openai-insecure-api-key." + made.client_secret.value, "openai-beta.realtime-v1"),
    )
    assert event["type"] == "session.created"
    assert (event["session"]["instructions"], event["session"]["voice"]) == ("Beta minted.", "verse")
    assert_valid_server_event(event, "beta")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"session": {"instructions": "x"}}, 400, ("missing_required_parameter", "session.type", "Missing required parameter: 'session.type'.")),
        ({"session": {"type": "realtime", "voice": "x"}}, 400, ("unknown_parameter", "session.voice", "Unknown parameter: 'session.voice'.")),
        ({"sesion": {}}, 400, ("unknown_parameter", "sesion", "Unknown parameter: 'sesion'.")),
        ({"expires_after": {"seconds": 7201}}, 400, ("integer_above_max_value", "expires_after.seconds", None)),
    ],
)
async def test_bad_bodies_get_the_apis_errors(sdk, server, body, status, error):
    async with aiohttp.ClientSession() as http:
        async with http.post(server.http_url + "/v1/realtime/client_secrets", json=body) as response:
            assert response.status == status
            got = (await response.json())["error"]
    assert got["type"] == "invalid_request_error"
    assert (got["code"], got["param"]) == error[:2]
    if error[2]:
        assert got["message"] == error[2]


async def test_unparsable_body_and_a_bad_beta_field(sdk, server):
    async with aiohttp.ClientSession() as http:
        async with http.post(server.http_url + "/v1/realtime/client_secrets", data=b"{nope") as response:
            assert response.status == 400
            assert (await response.json())["error"]["message"].startswith("We could not parse the JSON body of your request.")
    client = sdk("sk-backend", server.http_url + "/v1")
    with pytest.raises(openai.BadRequestError) as info:
        await client.beta.realtime.sessions.create(voice=3)  # type: ignore[arg-type]
    assert info.value.body["param"] == "voice" and info.value.body["code"] == "invalid_type"  # type: ignore[index]


async def test_with_an_api_key_only_keys_minted_under_it_open_a_session(sdk, start_server):
    server = await start_server(api_key="sk-right-key-123456")
    wrong = sdk("sk-wrong-key-123456", server.http_url + "/v1")
    with pytest.raises(openai.AuthenticationError) as info:
        await wrong.realtime.client_secrets.create(session={"type": "realtime"})
    assert info.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    right = sdk("sk-right-key-123456", server.http_url + "/v1")
    secret = await right.realtime.client_secrets.create(session={"type": "realtime"})
    event, _ = await _first_event(server.ws_url + "/v1/realtime", protocols=("realtime", "openai-insecure-api-key." + secret.value))
    assert event["type"] == "session.created"
    # a key minted under another API key (this connection requires a different one) is refused
    event, closed = await _first_event(server.ws_url + "/v1/realtime", headers={"X-Mockrealtime-Api-Key": "sk-other-key-123456"},
                                       protocols=("realtime", "openai-insecure-api-key." + secret.value))
    assert event["error"]["code"] == "invalid_api_key" and closed == "3000 invalid_request_error.invalid_api_key"
    assert secret.value not in event["error"]["message"]


def test_an_expired_key_is_refused():
    key = MintedKey("ek_" + "0" * 32, 1000, "ga", {}, None)
    assert websocket_refusal(ServerConfig(), "ga", key, now_s=999) is None
    refused = websocket_refusal(ServerConfig(), "ga", key, now_s=1000)
    assert refused is not None and refused[1:] == (3000, "invalid_request_error.invalid_api_key")


async def test_a_recorded_client_secret_is_answered_from_the_cassette_with_a_fresh_key(sdk, start_server, tmp_path):
    from mockrealtime.core.cassette import load

    text = (load_bundled("hello")).read_text()
    recorded = {"method": "POST", "path": "/v1/realtime/client_secrets", "request": {"session": {"type": "realtime"}}, "status": 200,
                "response": {"value": "<redacted>", "expires_at": 1767229200,
                             "session": {"type": "realtime", "object": "realtime.session", "id": "sess_REC",
                                         "model": "gpt-realtime", "instructions": "Recorded instructions."}}}
    import shutil

    shutil.copy(load_bundled("hello").with_name("hello.s0.server.pcm16.wav"), tmp_path)
    (tmp_path / "hello.yaml").write_text(text.replace("\nsessions:\n", "\nrest:\n- " + json.dumps(recorded) + "\nsessions:\n", 1))
    assert load(str(tmp_path / "hello.yaml")).rest[0]["status"] == 200
    server = await start_server(cassettes=str(tmp_path))
    client = sdk("sk-backend", server.http_url + "/c/hello/v1")
    secret = await client.realtime.client_secrets.create(session={"type": "realtime", "instructions": "asked"})
    assert secret.session.id == "sess_REC" and secret.session.instructions == "Recorded instructions."  # type: ignore[union-attr]
    assert secret.value.startswith("ek_") and secret.expires_at > time.time()
    event, _ = await _first_event(server.ws_url + "/c/hello/v1/realtime", headers={"Authorization": f"Bearer {secret.value}"})
    assert event["session"]["instructions"] == "Recorded instructions."


def load_bundled(name: str):
    from pathlib import Path

    from mockrealtime.core.library import bundled_cassette_dir

    return Path(bundled_cassette_dir()) / f"{name}.yaml"
