"""The ``error`` events a scenario can make the server answer, with the real API's exact strings.

From protocol.md §3.2. Each entry: the code, the message (``{param}``, ``{ms}`` ... filled in), the
default ``param``, and whether it stands alone (the server sends it unprompted, like
``session_expired``) or answers the client event of its step.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class CatalogueError:
    code: str
    message: str
    param: str | None = None
    #: Sent by the server on its own (no client event causes it).
    unprompted: bool = False
    #: What a step needs to say for the message to be complete.
    needs: tuple[str, ...] = ()


CATALOGUE: dict[str, CatalogueError] = {
    e.code: e
    for e in (
        CatalogueError("unknown_parameter", "Unknown parameter: '{param}'.", needs=("param",)),
        CatalogueError("missing_required_parameter", "Missing required parameter: '{param}'.", needs=("param",)),
        CatalogueError("invalid_event", "The 'type' field is missing."),
        CatalogueError(
            "conversation_already_has_active_response",
            "Conversation already has an active response in progress: {response_id}. Wait until the response is "
            "finished before creating a new one.",
        ),
        CatalogueError("response_cancel_not_active", "Cancellation failed: no active response found"),
        CatalogueError(
            "input_audio_buffer_commit_empty",
            "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only "
            "has {buffered_ms:.2f}ms of audio.",
        ),
        CatalogueError("truncate_too_long", "Audio content of {audio_ms}ms is already shorter than {audio_end_ms}ms",
                       "audio_end_ms"),
        CatalogueError("unsupported_content_type", "Only model output audio messages can be truncated"),
        CatalogueError("cannot_update_voice", "Cannot update a conversation's voice if assistant audio is present."),
        CatalogueError("tool_call_not_found", "Tool call ID '{call_id}' not found in conversation.", "item.call_id"),
        CatalogueError("session_expired", "Your session hit the maximum duration of {minutes} minutes.", unprompted=True),
    )
}

#: Catalogue names whose wire code differs (two messages share ``invalid_value`` on the wire).
WIRE_CODE = {"truncate_too_long": "invalid_value", "tool_call_not_found": "invalid_value"}


def error_body(name: str, values: dict[str, Any], event_id: str | None) -> dict[str, Any]:
    """The ``error`` object of an ``error`` event; KeyError names a missing value."""
    entry = CATALOGUE[name]
    param = values.get("param", entry.param)
    for needed in entry.needs:
        if values.get(needed) is None:
            raise KeyError(needed)
    message = entry.message.format(**{"param": param, **values})
    return {"type": "invalid_request_error", "code": WIRE_CODE.get(name, name), "message": message,
            "param": param, "event_id": event_id}
