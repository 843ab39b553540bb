"""The voice agent on a phone line: Twilio's u-law media both ways, server VAD, the caller speaks.

Each test replays a bundled Twilio-style cassette (compiled from cassettes/scenarios/twilio_*.yaml)
through the bridge, driven by a fake media stream: 20 ms u-law frames in, the assistant's audio out.
"""

from __future__ import annotations

import json

import pytest

from voice_agent import (
    BAKERY_WITH_CHAT_TOOLS, PHONE_EMAIL_ASSISTANT, PHONE_HELLO, PHONE_WEATHER_ASSISTANT, PHONE_WEATHER_FORCED,
    PHONE_WEATHER_REQUIRED,
)


@pytest.mark.realtime("twilio_hello")
async def test_the_caller_says_hello_and_hears_an_answer(realtime_mock, call_agent):
    phone = await call_agent(PHONE_HELLO)
    await phone.speak(seconds=3)
    await phone.wait_for_mark("answered")
    await phone.hang_up()

    assert phone.call.transcripts == ["Hi there! How can I help you today?"]
    assert 1800 <= phone.audio_ms <= 2000 and phone.audio_bytes == phone.audio_ms * 8
    assert realtime_mock.journal.types() == ["session.update"]  # VAD commits and answers: no response.create


@pytest.mark.realtime("twilio_function_call")
async def test_the_caller_asks_out_loud_and_the_agent_looks_up_the_inbox(realtime_mock, call_agent):
    phone = await call_agent(PHONE_EMAIL_ASSISTANT)
    await phone.speak(seconds=4)
    await phone.wait_for_mark("answered")
    await phone.hang_up()

    assert phone.call.tool_calls == [("list_emails", {"numEmails": 1})]
    assert "Ana Ruiz" in phone.call.transcripts[-1]
    assert 2800 <= phone.audio_ms <= 3000  # the answer, played as the u-law it is
    appends = realtime_mock.journal.of_type("input_audio_buffer.append")
    assert len(appends) == 200 and {a["audio_bytes"] for a in appends} == {160}  # 20 ms frames of u-law
    assert realtime_mock.divergences == []


@pytest.mark.realtime("twilio_turn_detected")
async def test_the_caller_interrupts_after_a_tool_call(realtime_mock, call_agent):
    phone = await call_agent(PHONE_WEATHER_ASSISTANT)
    await phone.speak(seconds=12)
    await phone.wait_for_mark("answered")
    await phone.hang_up()

    assert phone.call.tool_calls == [("get_weather", {"city": "Paris"})]
    assert (phone.cleared, phone.call.interruptions) == (1, 1)
    truncate = realtime_mock.journal.first("conversation.item.truncate")
    assert truncate["content_index"] == 0
    output = realtime_mock.journal.first("conversation.item.create", item__type="function_call_output")
    assert json.loads(output["item"]["output"])["city"] == "Paris"
    assert phone.call.transcripts[-1] == "Tomorrow looks cooler, around eighteen degrees with some clouds."
    assert realtime_mock.divergences == []


@pytest.mark.realtime("twilio_chat_completions_tools")
async def test_chat_completions_tools_leave_the_caller_with_static(realtime_mock, call_agent):
    phone = await call_agent(BAKERY_WITH_CHAT_TOOLS, question="Greet the caller briefly.")
    await phone.wait_for_mark("answered")
    await phone.speak(seconds=2)
    await phone.hang_up()

    assert phone.call.errors == ["Unknown parameter: 'session.tools[0].function'."]
    # The session stayed pcm16: 2.6 s of 24 kHz audio, which the phone plays as 15.6 s of u-law noise.
    assert phone.audio_bytes == 2600 * 48 and phone.audio_ms == 2600 * 6
    assert phone.call.transcripts == ["Hi there, thanks for calling the bakery! How can I help you today?"]


@pytest.mark.realtime("twilio_tool_choice_required_loop")
async def test_the_agent_gives_up_on_a_model_that_only_calls_tools(realtime_mock, call_agent):
    phone = await call_agent(PHONE_WEATHER_REQUIRED)
    await phone.speak(seconds=3)
    await phone.wait_for_mark("gave up")
    await phone.hang_up()

    assert phone.call.tool_calls == [("get_weather", {"city": "Paris"})] * 2
    assert phone.audio_ms == 0  # the caller heard nothing
    assert realtime_mock.divergences == []


@pytest.mark.realtime("twilio_forced_function_as_message")
async def test_a_forced_call_comes_back_as_speech(realtime_mock, call_agent):
    phone = await call_agent(PHONE_WEATHER_FORCED)
    await phone.speak(seconds=3)
    await phone.wait_for_mark("answered")
    await phone.hang_up()

    assert phone.call.tool_calls == []
    assert phone.call.transcripts == ['{"city":"Paris"}']  # the arguments, read out to the caller
