"""The voice agent against the bundled cassettes: a tool round trip, and a caller who interrupts."""

from __future__ import annotations

import json

import pytest

from voice_agent import EMAIL_ASSISTANT, WEATHER_ASSISTANT


@pytest.mark.realtime("function_call")
async def test_the_agent_looks_up_the_inbox_and_reads_the_latest_email(realtime_mock, call_agent):
    phone = await call_agent(EMAIL_ASSISTANT, question="How many emails do I have? Read me the latest one")
    await phone.wait_for_mark("answered")
    await phone.hang_up()

    assert phone.call.tool_calls == [("list_emails", {"numEmails": 1})]
    output = realtime_mock.journal.first("conversation.item.create", item__type="function_call_output")
    assert json.loads(output["item"]["output"])["emails"][0]["from"] == "Ana Ruiz"
    assert "Ana Ruiz" in phone.call.transcripts[-1]
    assert phone.audio_ms > 2000


@pytest.mark.realtime("turn_detected")
async def test_the_caller_interrupts_the_assistant(realtime_mock, call_agent):
    phone = await call_agent(WEATHER_ASSISTANT)
    await phone.speak(seconds=8.4)
    await phone.wait_for_mark("answered")
    await phone.hang_up()

    assert (phone.cleared, phone.call.interruptions) == (1, 1)
    truncate = realtime_mock.journal.first("conversation.item.truncate")
    assert truncate["content_index"] == 0
    assert phone.call.transcripts[-1] == "Tomorrow looks cooler, around eighteen degrees with some clouds."
