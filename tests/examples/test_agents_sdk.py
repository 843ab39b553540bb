"""A voice agent built with openai-agents, which takes the Realtime URL as is: ``realtime_mock.ws_url``."""

from __future__ import annotations

import asyncio

import pytest
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner


@function_tool
def list_emails(numEmails: int) -> str:  # noqa: N803 - the tool's parameter name
    """List the user's most recent emails, newest first."""
    return '{"total": 3, "emails": [{"from": "Ana Ruiz", "subject": "Lunch on Friday?"}]}'


@pytest.mark.realtime("function_call")
async def test_an_openai_agents_voice_agent_uses_its_tool(realtime_mock):
    agent = RealtimeAgent(name="Assistant", instructions="You are an email assistant.", tools=[list_emails])
    runner = RealtimeRunner(starting_agent=agent)
    session = await runner.run(model_config={"url": realtime_mock.ws_url, "api_key": "sk-test"})
    async with session:
        await session.send_message("How many emails do I have? Read me the latest one")
        seen = await asyncio.wait_for(events_until_answered(session), timeout=10)
    assert "tool_end" in seen and "error" not in seen
    assert realtime_mock.journal.first("conversation.item.create", item__type="function_call_output")


async def events_until_answered(session) -> list[str]:
    """Event types up to the end of the answer that follows the tool call."""
    seen = []
    async for event in session:
        seen.append(event.type)
        if event.type == "agent_end" and "tool_end" in seen:
            return seen
    return seen
