"""A small voice agent, as a team would write one: a phone media stream bridged to the Realtime API.

In the style of Twilio's media-stream demos. The phone side connects to ``/media-stream`` and
speaks Twilio's JSON messages: ``start`` (with ``customParameters``), ``media`` (base64 audio:
G.711 u-law at 8 kHz as Twilio sends it, or pcm16 at 24 kHz for an agent set up that way), ``stop``. The bridge opens one Realtime session per call with the openai
SDK, forwards the caller's audio, plays the assistant's audio back as ``media`` messages, runs
tool calls locally and answers them, and on barge-in (server VAD hears the caller while the
assistant speaks) tells the phone to ``clear`` its buffer and truncates what was not heard.
After each spoken answer it sends a ``mark`` so the phone knows the answer is complete.

Nothing here knows about mockrealtime: the tests only choose the Realtime URL.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from openai import AsyncOpenAI

REALTIME_URL = web.AppKey("realtime_url", str)
AGENT = web.AppKey("agent", "Agent")
CALLS = web.AppKey("calls", list)


@dataclasses.dataclass
class Tool:
    schema: dict[str, Any]
    run: Callable[..., Any]


@dataclasses.dataclass
class Agent:
    instructions: str
    tools: dict[str, Tool] = dataclasses.field(default_factory=dict)
    #: server VAD settings: the caller's audio decides when a turn ends
    turn_detection: dict[str, Any] | None = None
    model: str = "gpt-realtime"
    #: what the phone line carries both ways: "g711_ulaw" (Twilio) or "pcm16"
    audio_format: str = "pcm16"
    tool_choice: str | dict[str, Any] | None = "auto"
    #: stop answering tool calls after this many rounds in one call (a model stuck calling tools)
    max_tool_rounds: int | None = None

    def session(self) -> dict[str, Any]:
        session: dict[str, Any] = {"type": "realtime", "instructions": self.instructions}
        if self.tools:
            session["tools"] = [tool.schema for tool in self.tools.values()]
            if self.tool_choice:
                session["tool_choice"] = self.tool_choice
        audio: dict[str, Any] = {"input": {}, "output": {}}
        if self.audio_format == "g711_ulaw":
            audio = {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}
        if self.turn_detection:
            audio["input"]["turn_detection"] = self.turn_detection
        if audio["input"] or audio["output"]:
            session["audio"] = {k: v for k, v in audio.items() if v}
        return session

    @property
    def bytes_per_ms(self) -> float:
        return 8.0 if self.audio_format == "g711_ulaw" else 48.0


@dataclasses.dataclass
class Call:
    """What happened on one phone call, for logs (and tests)."""

    stream_sid: str = ""
    transcripts: list[str] = dataclasses.field(default_factory=list)
    tool_calls: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    interruptions: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


class Playback:
    """The assistant audio sent to the phone, assumed to play in real time from its first chunk."""

    def __init__(self, bytes_per_ms: float = 48.0) -> None:
        self.bytes_per_ms = bytes_per_ms
        self.reset()

    def reset(self) -> None:
        self.item_id: str | None = None
        self.sent_ms = 0.0
        self.started_at = 0.0

    def add(self, item_id: str, audio_b64: str, now: float) -> None:
        if item_id != self.item_id:
            self.item_id, self.sent_ms, self.started_at = item_id, 0.0, now
        self.sent_ms += len(base64.b64decode(audio_b64)) / self.bytes_per_ms

    def played_ms(self, now: float) -> int:
        return int(min(self.sent_ms, (now - self.started_at) * 1000))


async def media_stream(request: web.Request) -> web.WebSocketResponse:
    phone = web.WebSocketResponse()
    await phone.prepare(request)
    agent: Agent = request.app[AGENT]
    call = Call()
    request.app[CALLS].append(call)
    client = AsyncOpenAI(api_key="sk-not-used-by-the-mock", websocket_base_url=request.app[REALTIME_URL])
    async with client.realtime.connect(model=agent.model) as realtime:
        await realtime.session.update(session=agent.session())
        playing = Playback(agent.bytes_per_ms)
        loop = asyncio.get_running_loop()

        async def from_phone() -> None:
            async for msg in phone:
                if msg.type is not WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data["event"] == "start":
                    call.stream_sid = data["start"]["streamSid"]
                    question = data["start"].get("customParameters", {}).get("question")
                    if question:  # the caller picked a question from the menu: ask it as text
                        await realtime.conversation.item.create(
                            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}
                        )
                        await realtime.response.create()
                elif data["event"] == "media":
                    await realtime.input_audio_buffer.append(audio=data["media"]["payload"])
                elif data["event"] == "stop":
                    break

        async def to_phone() -> None:
            async for event in realtime:
                if event.type == "response.output_audio.delta":
                    playing.add(event.item_id, event.delta, loop.time())
                    await phone.send_json({"event": "media", "streamSid": call.stream_sid, "media": {"payload": event.delta}})
                elif event.type == "response.output_audio_transcript.done":
                    call.transcripts.append(event.transcript)
                elif event.type == "input_audio_buffer.speech_started" and playing.item_id is not None:
                    # barge-in: stop what the phone still buffers, and tell the model what was heard
                    call.interruptions += 1
                    await phone.send_json({"event": "clear", "streamSid": call.stream_sid})
                    await realtime.conversation.item.truncate(
                        item_id=playing.item_id, content_index=0, audio_end_ms=playing.played_ms(loop.time())
                    )
                    playing.reset()
                elif event.type == "error":
                    call.errors.append(event.error.message)
                elif event.type == "response.done":
                    calls = [item for item in event.response.output or [] if item.type == "function_call"]
                    if calls and agent.max_tool_rounds is not None and len(call.tool_calls) >= agent.max_tool_rounds:
                        await phone.send_json({"event": "mark", "streamSid": call.stream_sid, "mark": {"name": "gave up"}})
                        continue
                    for item in calls:
                        arguments = json.loads(item.arguments or "{}")
                        call.tool_calls.append((item.name, arguments))
                        output = agent.tools[item.name].run(**arguments)
                        await realtime.conversation.item.create(
                            item={"type": "function_call_output", "call_id": item.call_id, "output": json.dumps(output)}
                        )
                    if calls:
                        await realtime.response.create()
                    elif event.response.status == "completed":
                        await phone.send_json({"event": "mark", "streamSid": call.stream_sid, "mark": {"name": "answered"}})
                        playing.reset()

        listener = asyncio.ensure_future(to_phone())
        try:
            await from_phone()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    await phone.close()
    return phone


def make_bridge(agent: Agent, realtime_url: str = "wss://api.openai.com/v1") -> web.Application:
    """The bridge app; ``realtime_url`` is the openai SDK's ``websocket_base_url``."""
    app = web.Application()
    app[AGENT] = agent
    app[REALTIME_URL] = realtime_url
    app[CALLS] = []
    app.router.add_get("/media-stream", media_stream)
    return app


# -- the agents of the examples -------------------------------------------------------------------


def list_emails(numEmails: int) -> dict[str, Any]:  # noqa: N803 - the tool's parameter name
    emails = [{"from": "Ana Ruiz", "subject": "Lunch on Friday?", "body": "Are you free for lunch on Friday at noon?"}]
    return {"total": 3, "emails": emails[:numEmails]}


EMAIL_ASSISTANT = Agent(
    instructions="You are an email assistant. Use the tools to answer questions about the user's inbox.",
    tools={
        "list_emails": Tool(
            {
                "type": "function",
                "name": "list_emails",
                "description": "List the user's most recent emails, newest first.",
                "parameters": {
                    "type": "object",
                    "properties": {"numEmails": {"type": "integer", "description": "How many emails to return."}},
                    "required": ["numEmails"],
                },
            },
            list_emails,
        )
    },
)

WEATHER_ASSISTANT = Agent(
    instructions="You are a weather assistant. Answer in one or two short sentences.",
    turn_detection={"type": "server_vad", "silence_duration_ms": 500, "interrupt_response": True},
)


def get_weather(city: str) -> dict[str, Any]:
    return {"city": city, "temperature_c": 22, "conditions": "sunny"}


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}},
                   "required": ["city"]},
}

#: The phone versions: Twilio's u-law both ways, server VAD, the caller speaks.
PHONE_TURNS = {"type": "server_vad", "silence_duration_ms": 500}
PHONE_EMAIL_ASSISTANT = dataclasses.replace(EMAIL_ASSISTANT, audio_format="g711_ulaw", turn_detection=PHONE_TURNS)
PHONE_WEATHER_ASSISTANT = Agent(
    instructions="You are a weather assistant. Answer in one or two short sentences.",
    tools={"get_weather": Tool(WEATHER_TOOL, get_weather)}, tool_choice=None,
    audio_format="g711_ulaw", turn_detection=PHONE_TURNS,
)
#: A bakery's bridge that declares its tool the Chat Completions way: the session.update is refused.
BAKERY_WITH_CHAT_TOOLS = Agent(
    instructions="You are a phone assistant for a small bakery. Be brief and friendly.",
    tools={"get_weather": Tool({"type": "function", "function": {k: v for k, v in WEATHER_TOOL.items() if k != "type"}}, get_weather)},
    tool_choice=None, audio_format="g711_ulaw", turn_detection=PHONE_TURNS,
)
PHONE_HELLO = Agent(instructions="You are a friendly assistant on the phone. Keep answers short.", audio_format="g711_ulaw",
                    turn_detection=PHONE_TURNS)
PHONE_WEATHER_REQUIRED = dataclasses.replace(PHONE_WEATHER_ASSISTANT, instructions="You are a weather assistant. Use get_weather to answer.",
                                             tool_choice="required", max_tool_rounds=2)
PHONE_WEATHER_FORCED = dataclasses.replace(PHONE_WEATHER_ASSISTANT, instructions="You are a weather assistant.",
                                           tool_choice={"type": "function", "name": "get_weather"})
