"""The event types of each dialect, and the renames between them (protocol.md §2.1, §2.2).

A static table: the ``openai`` package is a test dependency only, so the runtime never imports it.
``tests/test_catalog.py`` checks these sets against the package's unions
(``openai.types.realtime.RealtimeServerEvent`` / ``RealtimeClientEventParam`` and their
``openai.types.beta.realtime`` twins), so a new SDK release that adds or renames an event fails
there first.
"""

from __future__ import annotations

from mockrealtime.core.events import BETA, GA, Direction
from mockrealtime.protocol.validation import CLIENT_EVENT_TYPES

_BOTH_SERVER = (
    "error",
    "session.created",
    "session.updated",
    "conversation.created",
    "conversation.item.created",
    "conversation.item.retrieved",
    "conversation.item.truncated",
    "conversation.item.deleted",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "input_audio_buffer.committed",
    "input_audio_buffer.cleared",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "response.created",
    "response.done",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "rate_limits.updated",
    # WebRTC/SIP only; a WebSocket recording should not hold them, but they are valid names
    "output_audio_buffer.started",
    "output_audio_buffer.stopped",
    "output_audio_buffer.cleared",
)

#: Beta server event -> its GA name (DOC-RT's rename list).
RENAMED_SERVER: dict[str, str] = {
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
}

_GA_ONLY_SERVER = (
    *RENAMED_SERVER.values(),
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.input_audio_transcription.segment",
    "input_audio_buffer.timeout_triggered",
    "input_audio_buffer.dtmf_event_received",
    "mcp_list_tools.in_progress",
    "mcp_list_tools.completed",
    "mcp_list_tools.failed",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
)

_BETA_ONLY_SERVER = (*RENAMED_SERVER, "transcription_session.updated")

SERVER_EVENT_TYPES: dict[str, frozenset[str]] = {
    GA: frozenset((*_BOTH_SERVER, *_GA_ONLY_SERVER)),
    BETA: frozenset((*_BOTH_SERVER, *_BETA_ONLY_SERVER)),
}

#: In the GA union for old clients, but the GA server answers an item with ``.added`` + ``.done``.
GA_LEGACY_SERVER = frozenset({"conversation.item.created"})

#: What the other dialect calls an event, where it has another name.
_OTHER_NAME: dict[str, dict[str, str]] = {
    GA: dict(RENAMED_SERVER),  # a beta name seen in GA -> the GA name
    BETA: {ga: beta for beta, ga in RENAMED_SERVER.items()},
}
_OTHER_NAME[GA]["transcription_session.update"] = "session.update with session.type 'transcription'"
_OTHER_NAME[GA]["transcription_session.updated"] = "session.updated with session.type 'transcription'"
_OTHER_NAME[BETA]["conversation.item.added"] = "conversation.item.created"
_OTHER_NAME[BETA]["conversation.item.done"] = "conversation.item.created"


def event_types(direction: Direction | str, dialect: str) -> frozenset[str]:
    """Every event type ``direction`` may send in ``dialect``."""
    table = CLIENT_EVENT_TYPES if Direction(direction) is Direction.CLIENT else SERVER_EVENT_TYPES
    return table[dialect]


def other_dialect(dialect: str) -> str:
    return BETA if dialect == GA else GA


def classify(direction: Direction | str, etype: str, dialect: str) -> tuple[str, str | None]:
    """``("ok", None)``, ``("other_dialect", this dialect's name or None)`` or ``("unknown", None)``."""
    if etype in event_types(direction, dialect):
        return "ok", None
    if etype in event_types(direction, other_dialect(dialect)):
        return "other_dialect", _OTHER_NAME[dialect].get(etype)
    return "unknown", None
