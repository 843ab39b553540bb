"""openai-agents (RealtimeAgent + RealtimeRunner) through the bundled function_call cassette.

openai-agents validates every server event against the openai package's GA models, sends a
session.update before it sees session.created and a second "tracing" session.update whenever it
processes session.created: a replay that only followed the recording would diverge there.
"""

from __future__ import annotations

import asyncio

import pytest

agents = pytest.importorskip("agents")
from agents import function_tool  # noqa: E402
from agents.realtime import RealtimeAgent, RealtimeRunner  # noqa: E402

TIMEOUT_S = 20


async def test_openai_agents_completes_the_tool_round_trip_with_no_error_events(server):
    calls: list[int] = []

    @function_tool
    def list_emails(numEmails: int) -> str:  # noqa: N803 - the name the cassette's tool uses
        """List the user's most recent emails, newest first."""
        calls.append(numEmails)
        return '{"total": 3, "emails": [{"from": "Ana Ruiz", "subject": "Lunch on Friday?"}]}'

    agent = RealtimeAgent(name="Assistant", instructions="You are an email assistant.", tools=[list_emails])
    runner = RealtimeRunner(starting_agent=agent)
    session = await runner.run(model_config={"url": server.ws_url + "/c/function_call/v1/realtime?model=gpt-realtime",
                                             "api_key": "sk-test-agents"})
    seen: list[str] = []
    errors: list[object] = []
    async with session:
        await session.send_message("How many emails do I have? Read me the latest one")

        async def consume() -> None:
            tool_done = False
            async for event in session:
                seen.append(event.type)
                if event.type == "error":
                    errors.append(event.error)
                if event.type == "raw_model_event" and getattr(event.data, "type", None) == "error":
                    errors.append(event.data)
                if event.type == "tool_end":
                    tool_done = True
                if tool_done and event.type == "agent_end":
                    return

        await asyncio.wait_for(consume(), TIMEOUT_S)
    assert calls == [1]
    assert "tool_start" in seen and "tool_end" in seen
    assert errors == []
    report = server.state.connections[-1]
    assert report.engine.divergences == []
    outcomes = [(j.event["type"], j.outcome) for j in report.engine.journal]
    assert ("session.update", "answered") in outcomes  # the tracing update, answered from state
    assert outcomes.count(("response.create", "matched")) == 2
