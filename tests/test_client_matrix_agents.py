"""The openai-agents column of the client matrix: every GA bundled cassette driven by a real
``RealtimeAgent`` through ``RealtimeRunner``/``RealtimeSession`` over a loopback socket.

openai-agents is the strictest client there is: it validates every server event against the openai
package's GA models (a bad one becomes an ``error`` event), sends its own ``session.update`` before
it sees ``session.created`` and a second, tracing one when it does, answers tool calls by itself
(``function_call_output`` + ``response.create``), and truncates the assistant's audio when server
VAD hears the user. The agent here is configured from the session the recorded model saw (its
tools, ``tool_choice``, output modalities, audio formats, turn detection); the user's part is the
recording's: typed messages through ``session.send_message`` and the microphone through
``session.send_audio``. Every cell must end with zero ``error`` events, zero divergences and
stalls, the recording's model output byte for byte (ids aside), the recorded tool calls reaching
the agent's tool functions with the recorded arguments, and the recorded answers in the agent's
history.

GA only: openai-agents speaks no beta (it rejects beta event names as validation errors).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from mockrealtime.core.events import AUDIO_APPEND, Direction
from mockrealtime.core.library import CassetteLibrary

from replay_compare import is_state_made, split

agents = pytest.importorskip("agents")
from agents import FunctionTool  # noqa: E402
from agents.realtime import RealtimeAgent, RealtimeRunner  # noqa: E402
from openai.types.responses.tool_choice_function import ToolChoiceFunction  # noqa: E402

TIMEOUT_S = 30
BUNDLED = CassetteLibrary()
GA = sorted(entry["name"] for entry in BUNDLED.available() if "ga" in entry["dialects"])

#: GA cassettes openai-agents cannot replay, and why (each is driven by the openai SDK in the matrix).
NOT_DRIVABLE = {
    "missing_call_id": "the recording's point is a function_call_output without call_id (the API's "
                       "missing_required_parameter); openai-agents always answers a call with its call_id, so its "
                       "output is accepted and the next response.create meets a conversation the recorded model "
                       "never saw (the last test here shows that divergence, named)",
    "twilio_missing_call_id": "the phone form of missing_call_id: the same call_id-less output",
}
DRIVEN = [name for name in GA if name not in NOT_DRIVABLE]

Events = list[dict[str, Any]]


def recorded(name: str) -> tuple[Events, Events]:
    """(the recorded client events, the recorded server events) of the GA cassette."""
    session = BUNDLED.resolve(name, "ga").sessions[0]
    client = [e.event for e in session.events if e.direction is Direction.CLIENT]
    server = [e.event for e in session.events if e.direction is Direction.SERVER]
    return client, server


def seen_session(server: Events) -> dict[str, Any]:
    """The session the recorded model worked with: the last confirmed one (session.created's if the
    client's update was refused)."""
    sessions = [e["session"] for e in server if e["type"] in ("session.created", "session.updated")]
    return sessions[-1]


def recorded_calls(server: Events) -> list[tuple[str, Any]]:
    return [(e["name"], json.loads(e["arguments"])) for e in server if e["type"] == "response.function_call_arguments.done"]


def recorded_outputs(client: Events) -> list[str]:
    """What the recorded client answered each tool call with, in order."""
    return [e["item"]["output"] for e in client if e["type"] == "conversation.item.create"
            and e["item"].get("type") == "function_call_output"]


def words(content: list[Any]) -> str:
    """What an assistant message says: its audio transcripts or its texts (dicts or agents' models)."""
    parts = [p if isinstance(p, dict) else p.model_dump() for p in content]
    return "".join(p.get("transcript") or p.get("text") or "" for p in parts)


def recorded_messages(server: Events) -> list[tuple[str, str]]:
    """(status, words) of every assistant message the recorded model produced, in order."""
    return [(e["item"]["status"], words(e["item"]["content"])) for e in server
            if e["type"] == "response.output_item.done" and e["item"]["type"] == "message"]


def agent_messages(history: list[Any]) -> list[tuple[str, str]]:
    """(status, words) of every assistant message in the agent's history."""
    return [(item.status, words(item.content)) for item in history
            if getattr(item, "type", None) == "message" and item.role == "assistant"]


def gives_up_after(client: Events, server: Events) -> int | None:
    """How many calls the recorded client answered before it gave up (None: it answered every one)."""
    calls, outputs = len(recorded_calls(server)), len(recorded_outputs(client))
    return outputs if outputs < calls else None


def model_settings(session: dict[str, Any]) -> dict[str, Any]:
    """openai-agents settings that ask for ``session`` (what its model matching compares and more)."""
    audio_in, audio_out = session["audio"]["input"], session["audio"]["output"]
    return {
        "output_modalities": session["output_modalities"],
        # a forced function as the openai package's model (agents passes tool_choice on as it is)
        "tool_choice": ToolChoiceFunction(**choice) if isinstance(choice := session["tool_choice"], dict) else choice,
        "audio": {"input": {"format": audio_in["format"], "turn_detection": audio_in["turn_detection"]},
                  "output": {"format": audio_out["format"], "voice": audio_out["voice"]}},
    }


class Tools:
    """The agent's tool functions, one per recorded tool: each call is noted and answered with what
    the recorded client answered; past ``cap`` calls, the app asks for approval and gives up there."""

    def __init__(self, session: dict[str, Any], outputs: list[str], cap: int | None, calls: list[tuple[str, Any]]) -> None:
        self.calls, self.outputs, self.cap = calls, outputs, cap
        self.tools = [self._tool(t) for t in session["tools"]]

    def _tool(self, spec: dict[str, Any]) -> FunctionTool:
        name = spec["name"]

        async def invoke(ctx: Any, arguments: str) -> str:
            self.calls.append((name, json.loads(arguments)))
            return self.outputs[len(self.calls) - 1]

        async def needs_approval(ctx: Any, params: dict[str, Any], call_id: str) -> bool:
            return self.cap is not None and len(self.calls) >= self.cap

        return FunctionTool(name=name, description=spec.get("description", ""), params_json_schema=spec["parameters"],
                            on_invoke_tool=invoke, strict_json_schema=False, needs_approval=needs_approval)


@dataclasses.dataclass
class Seen:
    """What one agent session saw."""

    expected: Events  # the recorded server events
    raw: Events = dataclasses.field(default_factory=list)  # every server event, as the agent got it
    errors: list[Any] = dataclasses.field(default_factory=list)  # the session's error events
    rejected: list[Any] = dataclasses.field(default_factory=list)  # server events the agent refused (validation)
    calls: list[tuple[str, Any]] = dataclasses.field(default_factory=list)  # reached the tool functions
    approvals: list[tuple[str, Any]] = dataclasses.field(default_factory=list)  # held for approval (given up)
    history: list[Any] = dataclasses.field(default_factory=list)
    model_events: int = 0
    turns_ended: int = 0

    def __post_init__(self) -> None:
        expected = self.expected
        self.want = (len(split(expected, errors_apart=True)[0]), sum(1 for e in expected if e["type"] == "response.done"),
                     len(recorded_calls(expected)))

    def replayed(self) -> bool:
        """All the recorded model output arrived and the agent has dealt with it."""
        model, turns, calls = self.want
        return self.model_events >= model and self.turns_ended >= turns and len(self.calls) + len(self.approvals) >= calls


async def drive_agent(server: Any, name: str, until: Callable[[Seen], bool] = Seen.replayed) -> Seen:
    """Run one agent session against ``name`` until ``until`` holds (bounded by TIMEOUT_S)."""
    client, expected = recorded(name)
    session_seen = seen_session(expected)
    seen = Seen(expected)
    tools = Tools(session_seen, recorded_outputs(client), gives_up_after(client, expected), seen.calls)
    agent = RealtimeAgent(name="Matrix", instructions="Matrix agent: instructions of its own.", tools=tools.tools)
    runner = RealtimeRunner(starting_agent=agent, config={"model_settings": model_settings(session_seen)})
    session = await runner.run(model_config={"url": f"{server.ws_url}/c/{name}/v1/realtime?model=gpt-realtime",
                                             "api_key": "sk-test-agents"})
    async with session:

        async def user() -> None:  # the recorded user: typed messages and the microphone, in order
            for event in client:
                if event["type"] == AUDIO_APPEND:
                    await session.send_audio(base64.b64decode(event["audio"]))
                elif event["type"] == "conversation.item.create" and event["item"].get("role") == "user":
                    (part,) = event["item"]["content"]
                    await session.send_message(part["text"])

        async def consume() -> None:
            async for event in session:
                if event.type == "error":
                    seen.errors.append(event.error)
                elif event.type == "raw_model_event":
                    data = event.data
                    if data.type == "raw_server_event":
                        seen.raw.append(data.data)
                        # counted as they come: splitting everything per event is quadratic on a long call
                        seen.model_events += not (is_state_made(data.data) or data.data["type"] == "error")
                    elif data.type == "exception":
                        seen.rejected.append(data)
                elif event.type == "tool_approval_required":
                    seen.approvals.append((event.tool.name, json.loads(event.arguments)))
                elif event.type == "agent_end":
                    seen.turns_ended += 1
                elif event.type == "history_updated":
                    seen.history = list(event.history)
                if until(seen):
                    return

        speaking = asyncio.create_task(user())
        try:
            await asyncio.wait_for(consume(), TIMEOUT_S)
            await asyncio.wait_for(speaking, TIMEOUT_S)
        finally:
            speaking.cancel()
    return seen


@pytest.mark.parametrize("name", DRIVEN)
async def test_openai_agents_replays_the_recording(server, name):
    seen = await drive_agent(server, name)
    expected = seen.expected
    assert seen.errors == [] and seen.rejected == []  # no error event, no server event the agent refused
    got_model, want_model = split(seen.raw, errors_apart=True)[0], split(expected, errors_apart=True)[0]
    assert [e["type"] for e in got_model] == [e["type"] for e in want_model]
    for got, want in zip(got_model, want_model, strict=True):
        assert got == want, got["type"]
    # the recorded calls reached the agent's tool functions (or its approval hook, where the recorded
    # client gave up) with the recorded arguments; the agent's history holds the recorded answers
    assert seen.calls + seen.approvals == recorded_calls(expected)
    assert agent_messages(seen.history) == recorded_messages(expected)
    report = server.state.connections[-1]
    assert list(report.engine.divergences) == []  # no divergence, no stall


@pytest.mark.parametrize("name", sorted(NOT_DRIVABLE))
async def test_openai_agents_answering_the_call_the_recording_refused_gets_the_divergence_named(server, name):
    """Why these cannot replay: the agent answers the call properly, so the conversation differs from
    the recorded one where the model was asked for its next response; the divergence names that."""
    seen = await drive_agent(server, name, until=lambda seen: bool(seen.errors))
    assert seen.calls == recorded_calls(seen.expected)  # the tool ran with the recorded arguments
    assert seen.rejected == []
    (error,) = seen.errors
    # on the response.create that follows its tool output (the agent's last one)
    assert error.code == "cassette_mismatch" and error.event_id.startswith("agents_py_response_create_")
    assert "function_call_output" in error.message
    (divergence,) = server.state.connections[-1].engine.divergences
    fields = {d.path: (d.expected, d.received) for d in divergence.differences}
    (call_id,) = fields["conversation function_call_output call_ids"][1]
    assert fields["conversation function_call_output call_ids"][0] == []
    assert call_id == next(e["call_id"] for e in seen.expected if e["type"] == "response.function_call_arguments.done")


def test_every_ga_cassette_is_driven_by_openai_agents_or_says_why_not():
    assert set(NOT_DRIVABLE) < set(GA) and DRIVEN == [n for n in GA if n not in NOT_DRIVABLE]
    assert all(reason for reason in NOT_DRIVABLE.values())
