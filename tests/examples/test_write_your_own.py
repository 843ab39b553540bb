"""The README's "Write your own cassette": a scenario file beside the tests, and a test replaying it."""

import json

import pytest
from openai import AsyncOpenAI

WEATHER_TOOL = {"type": "function", "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.mark.realtime("weather")  # cassettes/test_write_your_own/weather.yaml, a scenario
async def test_the_assistant_looks_up_the_weather(realtime_mock):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "tools": [WEATHER_TOOL]})
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What's the weather in Paris?"}]}
        )
        await conn.response.create()
        answer = ""
        async for event in conn:
            if event.type == "response.done" and event.response.output[0].type == "function_call":
                call = event.response.output[0]
                assert json.loads(call.arguments) == {"city": "Paris"}
                await conn.conversation.item.create(
                    item={"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature_c": 18}'}
                )
                await conn.response.create()
            elif event.type == "response.output_audio_transcript.delta":
                answer += event.delta
            elif event.type == "response.done":
                break
    assert answer == "It's eighteen degrees and cloudy in Paris."
