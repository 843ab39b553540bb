"""Client-event validation against the real API's error catalogue (protocol.md §3.2); no sockets."""

from __future__ import annotations

import ast
import json
import typing
from importlib.resources import files
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openai.types.beta.realtime.realtime_client_event_param import (
    RealtimeClientEventParam as BetaClientEventParam,
)
from openai.types.realtime.realtime_client_event_param import RealtimeClientEventParam as GAClientEventParam

from mockrealtime.protocol import CLIENT_EVENT_TYPES, ClientEventValidator, ProtocolError, parse_client_frame
from mockrealtime.protocol.frames import content_error

GA_TYPES = (
    "'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear', "
    "'conversation.item.create', 'conversation.item.truncate', 'conversation.item.delete', "
    "'conversation.item.retrieve', 'response.create', 'response.cancel', and 'output_audio_buffer.clear'"
)
BETA_TYPES = (
    "'session.update', 'transcription_session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', "
    "'input_audio_buffer.clear', 'conversation.item.create', 'conversation.item.truncate', "
    "'conversation.item.delete', 'conversation.item.retrieve', 'response.create', 'response.cancel', and "
    "'output_audio_buffer.clear'"
)
CHAT_COMPLETIONS_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
NESTED_TOOL_CHOICE = {"type": "function", "function": {"name": "get_weather"}}


def ga_session(**fields: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", **fields}}


def beta_session(**fields: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": fields}


def item(**fields: Any) -> dict[str, Any]:
    return {"type": "conversation.item.create", "item": fields}


def missing(param: str) -> tuple[str, str, str]:
    return "missing_required_parameter", f"Missing required parameter: '{param}'.", param


def unknown(param: str) -> tuple[str, str, str]:
    return "unknown_parameter", f"Unknown parameter: '{param}'.", param


def bad_value(param: str, value: str, supported: str) -> tuple[str, str, str]:
    return "invalid_value", f"Invalid value: '{value}'. Supported values are: {supported}.", param


def bad_type(param: str, expected: str, got: str) -> tuple[str, str, str]:
    return "invalid_type", f"Invalid type for '{param}': expected {expected}, but got {got} instead.", param


# (dialect, event, (code, message, param))
CATALOGUE: list[Any] = [
    pytest.param(dialect, {"event_id": "evt_1"}, ("invalid_event", "The 'type' field is missing.", None),
                 id=f"{dialect}-missing-type")
    for dialect in ("ga", "beta")
] + [
    pytest.param("ga", {"type": "scooby.dooby.doo"}, bad_value("type", "scooby.dooby.doo", GA_TYPES),
                 id="ga-unknown-type"),
    pytest.param("beta", {"type": "scooby.dooby.doo"}, bad_value("type", "scooby.dooby.doo", BETA_TYPES),
                 id="beta-unknown-type"),
    pytest.param("ga", {"type": "transcription_session.update", "session": {}},
                 bad_value("type", "transcription_session.update", GA_TYPES), id="ga-beta-only-event"),
    pytest.param("ga", {"type": 7}, bad_type("type", "a string", "an integer"), id="ga-type-not-a-string"),
    # function_call_output without call_id
    pytest.param("ga", item(type="function_call_output", output="Sunny"), missing("item.call_id"),
                 id="ga-function-call-output-no-call-id"),
    pytest.param("beta", item(type="function_call_output", output="Sunny"), missing("item.call_id"),
                 id="beta-function-call-output-no-call-id"),
    pytest.param("ga", item(type="function_call_output", call_id="call_1"), missing("item.output"),
                 id="ga-function-call-output-no-output"),
    pytest.param("ga", item(type="function_call", name="f", arguments="{}"), missing("item.call_id"),
                 id="ga-function-call-no-call-id"),
    pytest.param("beta", item(type="function_call", call_id="c", arguments="{}"), missing("item.name"),
                 id="beta-function-call-no-name"),
    pytest.param("ga", item(role="user", content=[]), missing("item.type"), id="ga-item-no-type"),
    pytest.param("ga", item(type="message", role="assistant", content=[{"type": "output_audio", "transcript": "hi"}]),
                 missing("item.content[0].text"), id="ga-assistant-audio-without-text"),
    # Chat Completions tools and tool_choice
    pytest.param("ga", ga_session(tools=[CHAT_COMPLETIONS_TOOL]), unknown("session.tools[0].function"),
                 id="ga-chat-completions-tool"),
    pytest.param("beta", beta_session(tools=[CHAT_COMPLETIONS_TOOL]), unknown("session.tools[0].function"),
                 id="beta-chat-completions-tool"),
    pytest.param("ga", ga_session(tool_choice=NESTED_TOOL_CHOICE), missing("session.tool_choice.name"),
                 id="ga-nested-tool-choice"),
    pytest.param("beta", beta_session(tool_choice=NESTED_TOOL_CHOICE), missing("session.tool_choice.name"),
                 id="beta-nested-tool-choice"),
    pytest.param("ga", {"type": "response.create", "response": {"tool_choice": NESTED_TOOL_CHOICE}},
                 missing("response.tool_choice.name"), id="ga-response-nested-tool-choice"),
    # unknown fields, as reported against the live API
    pytest.param("ga", ga_session(bogus_field=1), unknown("session.bogus_field"), id="ga-bogus-field"),
    pytest.param("beta", beta_session(custom_voice_id="v"), unknown("session.custom_voice_id"),
                 id="beta-custom-voice-id"),
    pytest.param("beta", beta_session(input_audio_transcription={"model": "whisper-1", "enabled": True}),
                 unknown("session.input_audio_transcription.enabled"), id="beta-transcription-enabled"),
    pytest.param("ga", ga_session(tools=[{"type": "function", "name": "a"}, {"type": "function", "name": "b"},
                                         {"type": "function", "name": "c", "meta": {}}]),
                 unknown("session.tools[2].meta"), id="ga-tool-meta"),
    # one dialect's fields on the other's connection
    pytest.param("beta", beta_session(type="realtime", output_modalities=["text"]), unknown("session.type"),
                 id="beta-ga-session-type"),
    pytest.param("beta", beta_session(output_modalities=["text"]), unknown("session.output_modalities"),
                 id="beta-ga-output-modalities"),
    pytest.param("ga", ga_session(input_audio_format="pcm16"), unknown("session.input_audio_format"),
                 id="ga-beta-input-audio-format"),
    pytest.param("ga", ga_session(voice="alloy"), unknown("session.voice"), id="ga-beta-voice"),
    pytest.param("ga", {"type": "session.update", "session": {"output_modalities": ["text"]}},
                 missing("session.type"), id="ga-session-without-type"),
    # enums
    pytest.param("ga", ga_session(output_modalities=["video"]),
                 bad_value("session.output_modalities[0]", "video", "'text' and 'audio'"), id="ga-bad-modality"),
    pytest.param("beta", beta_session(input_audio_format="pcm24"),
                 bad_value("session.input_audio_format", "pcm24", "'pcm16', 'g711_ulaw', and 'g711_alaw'"),
                 id="beta-bad-audio-format"),
    pytest.param("ga", ga_session(audio={"input": {"format": {"type": "audio/wav"}}}),
                 bad_value("session.audio.input.format.type", "audio/wav",
                           "'audio/pcm', 'audio/pcmu', and 'audio/pcma'"),
                 id="ga-bad-audio-format"),
    pytest.param("ga", ga_session(tool_choice="any"),
                 bad_value("session.tool_choice", "any", "'none', 'auto', and 'required'"), id="ga-bad-tool-choice"),
    pytest.param("beta", beta_session(tool_choice="any"),
                 bad_value("session.tool_choice", "any", "'none', 'auto', and 'required'"), id="beta-bad-tool-choice"),
    pytest.param("ga", ga_session(audio={"input": {"turn_detection": {"type": "push_to_talk"}}}),
                 bad_value("session.audio.input.turn_detection.type", "push_to_talk",
                           "'server_vad' and 'semantic_vad'"),
                 id="ga-bad-turn-detection"),
    pytest.param("ga", item(type="message", role="developer", content=[]),
                 bad_value("item.role", "developer", "'system', 'user', and 'assistant'"), id="ga-bad-role"),
    # ranges (the code is from a live capture, the sentence is the API's usual form)
    pytest.param("ga", ga_session(audio={"input": {"format": {"type": "audio/pcm", "rate": 16000}}}),
                 ("integer_below_min_value",
                  "Invalid 'session.audio.input.format.rate': integer below minimum value. "
                  "Expected a value >= 24000, but got 16000 instead.",
                  "session.audio.input.format.rate"), id="ga-16khz"),
    pytest.param("beta", beta_session(temperature=1.5),
                 ("decimal_above_max_value",
                  "Invalid 'session.temperature': decimal above maximum value. "
                  "Expected a value <= 1.2, but got 1.5 instead.",
                  "session.temperature"), id="beta-temperature"),
    # types
    pytest.param("ga", ga_session(instructions=5), bad_type("session.instructions", "a string", "an integer"),
                 id="ga-instructions-int"),
    pytest.param("beta", beta_session(tools={}), bad_type("session.tools", "an array", "an object"),
                 id="beta-tools-object"),
    pytest.param("ga", ga_session(tool_choice=5), bad_type("session.tool_choice", "one of a string or an object",
                                                           "an integer"), id="ga-tool-choice-int"),
    pytest.param("ga", {"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": 1.5},
                 bad_type("audio_end_ms", "an integer", "a decimal"), id="ga-truncate-float"),
    pytest.param("ga", {"type": "conversation.item.truncate", "item_id": "i"}, missing("audio_end_ms"),
                 id="ga-truncate-missing"),
    # the hot path falls back to the schema for anything unusual
    pytest.param("ga", {"type": "input_audio_buffer.append"}, missing("audio"), id="ga-append-no-audio"),
    pytest.param("beta", {"type": "input_audio_buffer.append", "audio": 5}, bad_type("audio", "a string", "an integer"),
                 id="beta-append-audio-int"),
    pytest.param("ga", {"type": "input_audio_buffer.append", "audio": "AAAA", "format": "pcm16"}, unknown("format"),
                 id="ga-append-extra"),
    pytest.param("ga", {"type": "input_audio_buffer.commit", "event_id": 1},
                 bad_type("event_id", "a string", "an integer"),
                 id="ga-event-id-int"),
    # several errors: the shallowest wins, then missing before unknown, then the field sent first
    pytest.param("ga", {"type": "session.update", "session": {"type": "realtime", "tools": [{"meta": 1}]}, "x": 1},
                 unknown("x"), id="ga-shallowest-first"),
    pytest.param("ga", ga_session(voice="alloy", modalities=["text"]), unknown("session.voice"),
                 id="ga-first-sent-first"),
    pytest.param("ga", ga_session(modalities=["text"], voice="alloy"), unknown("session.modalities"),
                 id="ga-first-sent-first-swapped"),
]


@pytest.mark.parametrize(("dialect", "event", "expected"), CATALOGUE)
def test_error_catalogue(dialect: str, event: dict[str, Any], expected: tuple[str, str, str | None]) -> None:
    error = ClientEventValidator(dialect).validate(event)
    assert error is not None
    assert (error.code, error.message, error.param) == expected
    assert error.type == "invalid_request_error"
    assert ClientEventValidator(dialect).validate(event) == error  # stable


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        pytest.param("not json", ("invalid_json", "Invalid event: failed to parse JSON value. "
                                  "Expecting value at line 1 column 1."), id="not-json"),
        pytest.param('{"type": "response.create"', ("invalid_json", "Invalid event: failed to parse JSON value. "
                                                    "Expecting ',' delimiter at line 1 column 27."), id="truncated"),
        pytest.param('{"x": NaN}', ("invalid_json", "Invalid event: failed to parse JSON value."), id="nan"),
        pytest.param(b"\x00\x01",
                     ("invalid_event", "Expected a text WebSocket message; binary frames are not supported."),
                     id="binary"),
        pytest.param("[1, 2]", ("invalid_event", "Invalid event: expected an object, but got an array instead."),
                     id="array"),
    ],
)
def test_bad_frames(frame: str | bytes, expected: tuple[str, str]) -> None:
    event, error = parse_client_frame(frame)
    assert event is None
    assert error == ProtocolError(*expected, param=None)


def test_good_frame_parses() -> None:
    assert parse_client_frame('{"type": "response.create"}') == ({"type": "response.create"}, None)


def test_error_event_wire_shape() -> None:
    error = ProtocolError("invalid_event", "The 'type' field is missing.", None)
    assert error.to_event("my_event", "event_abc") == {
        "type": "error",
        "event_id": "event_abc",
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_event",
            "message": "The 'type' field is missing.",
            "param": None,
            "event_id": "my_event",
        },
    }


AGENTS_SESSION = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "audio": {
            "input": {
                "format": {"rate": 24000, "type": "audio/pcm"},
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "turn_detection": {"type": "semantic_vad", "interrupt_response": True},
            },
            "output": {"format": {"rate": 24000, "type": "audio/pcm"}, "voice": "ash"},
        },
        "instructions": "Be brief.",
        "model": "gpt-realtime-2.1",
        "output_modalities": ["text"],
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Get the weather for a city.",
                "parameters": {
                    "type": "object",
                    "title": "get_weather_args",
                    "properties": {"city": {"title": "City", "type": "string"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            }
        ],
    },
}
USER_TEXT = item(type="message", role="user", content=[{"type": "input_text", "text": "hi"}])
GOOD_FRAMES = {
    "ga": [
        # the openai SDK (clients.md)
        ga_session(output_modalities=["text"], instructions="be brief", tools=[{
            "type": "function", "name": "get_weather", "description": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]),
        USER_TEXT,
        {"type": "response.create"},
        # openai-agents (clients.md)
        AGENTS_SESSION,
        {"type": "response.create", "event_id": "agents_py_response_create_1"},
        ga_session(model="gpt-realtime-2.1", tracing="auto"),
        item(type="function_call_output", call_id="call_abc", output="Sunny in Paris"),
        {"type": "input_audio_buffer.append", "audio": "AAAA"},
        {"type": "input_audio_buffer.commit"},
        # a GA transcription session (live capture)
        {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {"type": "server_vad"}}}}},
        # the rest of the surface
        ga_session(audio={"input": {"turn_detection": None, "noise_reduction": None, "transcription": None},
                          "output": {"voice": {"id": "voice_123"}, "speed": 1.2}},
                   tool_choice={"type": "function", "name": "get_weather"}, tracing=None, truncation="auto",
                   max_output_tokens="inf", prompt=None),
        ga_session(tool_choice={"type": "mcp", "server_label": "docs"},
                   truncation={"type": "retention_ratio", "retention_ratio": 0.8},
                   tools=[{"type": "mcp", "server_label": "docs", "require_approval": "never"}]),
        {"type": "conversation.item.create", "previous_item_id": "root", "event_id": "e1", "item": {
            "id": "item_1", "type": "message", "role": "system", "content": [{"type": "input_text", "text": "x"}]}},
        item(type="message", role="assistant", content=[{"type": "output_text", "text": "hello"}]),
        item(type="function_call", call_id="call_1", name="get_weather", arguments='{"city": "Paris"}'),
        {"type": "response.create", "response": {"conversation": "none", "metadata": {"client_event_id": "e2"},
                                                 "input": [{"type": "item_reference", "id": "item_1"}],
                                                 "output_modalities": ["audio"], "tool_choice": "required"}},
        {"type": "conversation.item.truncate", "item_id": "item_2", "content_index": 0, "audio_end_ms": 1500},
        {"type": "conversation.item.retrieve", "item_id": "item_2"},
        {"type": "conversation.item.delete", "item_id": "item_2"},
        {"type": "response.cancel", "response_id": "resp_1"},
        {"type": "input_audio_buffer.clear"},
        {"type": "output_audio_buffer.clear"},
    ],
    "beta": [
        beta_session(modalities=["text", "audio"], voice="alloy", input_audio_format="pcm16",
                     output_audio_format="g711_ulaw", input_audio_transcription={"model": "whisper-1"},
                     turn_detection={"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                     "silence_duration_ms": 500},
                     tools=[{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}],
                     tool_choice="auto", temperature=0.8, max_response_output_tokens="inf"),
        beta_session(turn_detection=None, input_audio_transcription=None,
                     tool_choice={"type": "function", "name": "f"}),
        {"type": "transcription_session.update", "session": {
            "input_audio_format": "pcm16", "input_audio_transcription": {"model": "gpt-4o-transcribe"},
            "turn_detection": {"type": "semantic_vad", "eagerness": "low"}}},
        USER_TEXT,
        item(type="function_call_output", call_id="call_abc", output="Sunny in Paris"),
        {"type": "response.create", "response": {"modalities": ["text"], "instructions": "short",
                                                 "input": [{"type": "item_reference", "id": "item_1"}]}},
        {"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "e3"},
        {"type": "conversation.item.truncate", "item_id": "item_2", "content_index": 0, "audio_end_ms": 0},
    ],
}


@pytest.mark.parametrize(
    ("dialect", "event"),
    [pytest.param(dialect, event, id=f"{dialect}-{index}-{event['type']}")
     for dialect, events in GOOD_FRAMES.items() for index, event in enumerate(events)],
)
def test_real_client_frames_are_accepted(dialect: str, event: dict[str, Any]) -> None:
    assert ClientEventValidator(dialect).validate(event) is None


def _sdk_event_types(union: Any) -> set[str]:
    types: set[str] = set()
    for param in typing.get_args(union):
        types.update(typing.get_args(typing.get_type_hints(param)["type"]))
    return types


@pytest.mark.parametrize(("dialect", "union"), [("ga", GAClientEventParam), ("beta", BetaClientEventParam)])
def test_every_sdk_client_event_has_a_schema(dialect: str, union: Any) -> None:
    shipped = {entry.name for entry in files("mockrealtime.protocol").joinpath("schemas", dialect).iterdir()}
    assert _sdk_event_types(union) == CLIENT_EVENT_TYPES[dialect]
    assert shipped == {f"{name}.json" for name in CLIENT_EVENT_TYPES[dialect]} | {"_defs.json"}


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_schemas_are_valid_draft_2020_12(dialect: str) -> None:
    for entry in files("mockrealtime.protocol").joinpath("schemas", dialect).iterdir():
        schema = json.loads(entry.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


APPENDS = [
    {"type": "input_audio_buffer.append", "audio": "AAAA"},
    {"type": "input_audio_buffer.append", "audio": "", "event_id": "e"},
    {"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": None},
    {"type": "input_audio_buffer.append", "audio": None},
    {"type": "input_audio_buffer.append", "audio": ["AAAA"]},
    {"type": "input_audio_buffer.append", "event_id": "e"},
    {"type": "input_audio_buffer.append", "audio": "AAAA", "extra": True},
]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
@pytest.mark.parametrize("event", APPENDS)
def test_append_fast_path_agrees_with_the_schema(dialect: str, event: dict[str, Any]) -> None:
    folder = files("mockrealtime.protocol").joinpath("schemas", dialect)
    schema = json.loads(folder.joinpath("input_audio_buffer.append.json").read_text(encoding="utf-8"))
    accepted = Draft202012Validator(schema).is_valid(event) and content_error(event) is None  # base64 on top
    assert (ClientEventValidator(dialect).validate(event) is None) == accepted


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dialect 'v2'"):
        ClientEventValidator("v2")


def test_protocol_package_stays_sans_io() -> None:
    for entry in files("mockrealtime.protocol").iterdir():
        if not entry.name.endswith(".py"):
            continue
        tree = ast.parse(entry.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {name.split(".")[0] for name in imported} & {"aiohttp", "asyncio"}, entry.name


def test_a_frame_accepted_once_is_accepted_again_and_a_refused_one_is_refused_every_time(monkeypatch):
    """admit_frame remembers accepted texts (a test suite sends the same frames on every connection);
    a refused frame is checked, and refused, every time; at most ACCEPTED_LIMIT texts are kept."""
    from mockrealtime.protocol import validation

    validator = validation.ClientEventValidator("ga")
    good = '{"type":"response.create"}'
    bad = '{"type":"response.create","response":{"modalities":["text"]}}'
    assert validator.admit_frame(good, json.loads(good)) is None
    walks = []
    monkeypatch.setattr(validation.ClientEventValidator, "validate", lambda self, event: walks.append(event))
    assert validator.admit_frame(good, json.loads(good)) is None
    assert walks == []  # remembered: no second walk
    monkeypatch.undo()
    for _ in range(2):
        error = validator.admit_frame(bad, json.loads(bad))
        assert error is not None and error.param == "response.modalities"
    monkeypatch.setattr(validation, "ACCEPTED_LIMIT", 3)
    for n in range(5):
        text = json.dumps({"type": "response.create", "event_id": f"e{n}"})
        assert validator.admit_frame(text, json.loads(text)) is None
    assert len(validator._accepted) == 3 and good not in validator._accepted
