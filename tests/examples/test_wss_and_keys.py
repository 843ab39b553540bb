"""The README's "TLS, ephemeral keys, Node and browsers" section: the fixture over wss://, a minted key."""

import ssl

import pytest
from openai import AsyncOpenAI, DefaultAsyncHttpxClient


@pytest.mark.realtime("hello", allow_unplayed=True)
async def test_a_minted_key_over_wss(realtime_mock):
    ctx = ssl.create_default_context(cafile=realtime_mock.ca_file)
    # the backend mints a key over https ...
    async with AsyncOpenAI(api_key="sk-test", base_url=realtime_mock.https_url,
                           http_client=DefaultAsyncHttpxClient(verify=ctx)) as backend:
        secret = await backend.realtime.client_secrets.create(session={"type": "realtime", "instructions": "Be brief."})
    # ... and the client connects with it over wss://
    client = AsyncOpenAI(api_key=secret.value, websocket_base_url=realtime_mock.wss_base_url)
    async with client.realtime.connect(model="gpt-realtime", websocket_connection_options={"ssl": ctx}) as conn:
        created = await conn.recv()
    assert created.session.instructions == "Be brief."  # the session starts as the key was minted
