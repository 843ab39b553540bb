"""The first tests a team writes with the plugin; the README's "pytest plugin" section shows them."""

import pytest
from openai import AsyncOpenAI


@pytest.mark.realtime("hello")
async def test_the_assistant_greets_back(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "instructions": "Be friendly."})
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}
        )
        await conn.response.create()
        async for event in conn:
            if event.type == "response.done":
                break
    assert event.response.status == "completed"
    assert realtime_mock.journal.types() == ["session.update", "conversation.item.create", "response.create"]


@pytest.mark.realtime
async def test_greeting_from_our_own_recording(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "instructions": "Be friendly."})
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}
        )
        await conn.response.create()
        transcript = ""
        async for event in conn:
            if event.type == "response.output_audio_transcript.delta":
                transcript += event.delta
            if event.type == "response.done":
                break
    assert transcript == "Hi there! How can I help you today?"
