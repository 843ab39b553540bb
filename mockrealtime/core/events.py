"""Names shared by every layer: directions, dialects and the event types that need special care."""

from __future__ import annotations

import enum


class Direction(str, enum.Enum):
    """Who sent a recorded event."""

    CLIENT = "client"
    SERVER = "server"


GA = "ga"
BETA = "beta"
DIALECTS = (GA, BETA)

#: Client events that carry audio; they are counted by duration, never used as cues.
AUDIO_APPEND = "input_audio_buffer.append"

#: Server events carrying a base64 audio chunk in ``delta``.
AUDIO_DELTA_TYPES = frozenset({"response.output_audio.delta", "response.audio.delta"})

#: Server events whose ``delta`` is a piece of text; runs of them collapse in a cassette.
TEXT_DELTA_TYPES = frozenset(
    {
        "response.output_text.delta",
        "response.text.delta",
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
        "response.function_call_arguments.delta",
        "conversation.item.input_audio_transcription.delta",
    }
)

#: Server-VAD events: released by the live client's audio position, not by a client event.
#: The value names the field holding that position.
VAD_POSITION_FIELD = {
    "input_audio_buffer.speech_started": "audio_start_ms",
    "input_audio_buffer.speech_stopped": "audio_end_ms",
    "input_audio_buffer.timeout_triggered": "audio_end_ms",
}

#: Keys whose string values are ids that a replay may have to rewrite.
ID_KEYS = frozenset({"id", "item_id", "previous_item_id", "call_id", "response_id"})
