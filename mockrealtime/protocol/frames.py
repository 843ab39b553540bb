"""What comes before and after the schema: parsing a client frame, and checking audio payloads.

Whatever a client sends gets an ``error`` event, never a traceback, and what the server sends back
is always standard JSON. So ``parse_client_frame`` refuses, with ``invalid_json``, what Python's
``json`` would accept but nothing downstream can carry: ``NaN``/``Infinity``, numbers that overflow
a double (``1e999`` would come back out as ``Infinity``), escaped lone surrogates (``"\\ud800"``
cannot be encoded as UTF-8 when echoed), and nesting deeper than ``MAX_DEPTH`` levels (or than the
C scanner's recursion limit). We reject rather than normalise: a mock that quietly repaired a frame
would hide a client bug. What the real API answers to each of these frames is unverified.

Audio payloads (``input_audio_buffer.append``'s ``audio``, ``input_audio`` content) must be
standard base64 and not empty, checked after the schema passes. Nothing here does I/O.
"""

from __future__ import annotations

import binascii
import json
import re
import sys
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

ParamPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """an error the server reports in-band; the session stays open."""

    code: str | None
    message: str
    param: str | None
    type: str = "invalid_request_error"
    #: The event has a wrong JSON type somewhere (it may not be the error reported): never excused.
    shape: bool = field(default=False, compare=False)

    def to_event(self, client_event_id: str | None, event_id: str) -> dict[str, Any]:
        """the wire ``error`` event; ``client_event_id`` is the offending event's own id, if any."""
        return {
            "type": "error",
            "event_id": event_id,
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
                "event_id": client_event_id,
            },
        }


#: Deepest nesting accepted (serde_json's default limit, which we take to be the API's; unverified).
MAX_DEPTH = 128
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):
        raise ValueError("number out of range")
    return value


def _bounded_int(text: str) -> int:
    # ints past a double's range would overflow wherever they meet a float (durations, ratios)
    if len(text) > 300 and float(text) in (_INF, -_INF):
        raise ValueError("number out of range")
    return int(text)


_INF = float("inf")
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]  # CPython sets it in __init__


def _decode(text: str) -> Any:
    """``_DECODER.decode(text)``; an object with nothing around it (what clients send) is scanned
    directly, without decode's whitespace matching. Anything else, or anything that fails, goes
    through ``decode``, so a bad frame gets exactly decode's error."""
    if text[:1] == "{" and text[-1:] == "}":
        try:
            value, end = _SCAN(text, 0)
        except (StopIteration, ValueError):
            pass
        else:
            if end == len(text):
                return value
    return _DECODER.decode(text)


def parse_client_frame(text: str | bytes) -> tuple[dict[str, Any] | None, ProtocolError | None]:
    """decode one WebSocket message into an event object, or say why the server would refuse it.

    ``bytes`` stands for a binary frame. The binary and invalid-JSON errors are copied from one live
    capture (a third-party probe, 2026); it elided what followed "failed to parse JSON value.", so
    the position suffix here is ours, and so are the reasons for the frames of the module docstring
    (unverified: no capture of the API refusing a surrogate, a deep nesting or an overflow).
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        return None, ProtocolError(
            "invalid_event", "Expected a text WebSocket message; binary frames are not supported.", None
        )
    try:
        event = _decode(text)
    except RecursionError:
        return None, _invalid_json(" recursion limit exceeded.")
    except ValueError as exc:
        where = ""
        if isinstance(exc, json.JSONDecodeError):
            where = f" {exc.msg} at line {exc.lineno} column {exc.colno}."
        elif str(exc) == "number out of range":
            where = " number out of range."
        return None, _invalid_json(where)
    if not isinstance(event, dict):
        # Unverified: no capture of a valid JSON frame that is not an object.
        return None, ProtocolError(
            "invalid_event", f"Invalid event: expected an object, but got {kind_of(event)} instead.", None
        )
    # The walk visits containers only (a flat append: one dict); the surrogate check is one scan.
    # nesting deeper than MAX_DEPTH needs more than MAX_DEPTH brackets: two C scans spare the walk
    if len(text) > 2 * MAX_DEPTH and text.count("{") + text.count("[") > MAX_DEPTH and _too_deep(event):
        return None, _invalid_json(" recursion limit exceeded.")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(event):
        return None, _invalid_json(" lone surrogate in hex escape" + _position(text) + ".")
    return event, None


def _invalid_json(reason: str) -> ProtocolError:
    return ProtocolError("invalid_json", "Invalid event: failed to parse JSON value." + reason, None)


def _too_deep(event: dict[str, Any]) -> bool:
    level: list[Any] = [v for v in event.values() if v.__class__ is dict or v.__class__ is list]
    depth = 1
    while level:  # breadth first, one level at a time
        depth += 1
        if depth > MAX_DEPTH:
            return True
        level = [c for node in level for c in (node.values() if node.__class__ is dict else node)
                 if c.__class__ is dict or c.__class__ is list]
    return False


def _has_lone_surrogate(event: Any) -> bool:
    try:
        json.dumps(event, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _position(text: str) -> str:
    found = _LONE_SURROGATE_ESCAPE.search(text)
    if found is None:  # an escaped backslash fooled the pattern; the error stands without a place
        return ""
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    return f" at line {line} column {column}"


# -- audio payloads -----------------------------------------------------------------------------
# Captured: {"code":"invalid_value","message":"Invalid 'audio'. Expected base64-encoded audio bytes
# (mono PCM16 at 24kHz) but got an invalid value.","param":"audio.audio"} (Azure-Samples/
# aoai-realtime-audio-sdk #95, 2024; the odd param is the capture's), the same sentence for
# 'item.content[0].audio' (param unverified), and "... but got empty bytes" for an empty append
# (several user reports). The "(mono PCM16 at 24kHz)" part is shown whatever the session's format:
# what the API says for G.711 is unverified.

_AUDIO_PARAMS: dict[tuple[str | int, ...], str] = {("audio",): "audio.audio"}


def _b64decode(text: str) -> bytes:
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(text, strict_mode=True)
    if not _BASE64.fullmatch(text):  # pragma: no cover - Python 3.10
        raise binascii.Error("not base64")
    return binascii.a2b_base64(text)  # pragma: no cover


_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _bad_audio(audio: str, path: ParamPath) -> ProtocolError | None:
    try:
        empty = not _b64decode(audio)
    except (binascii.Error, ValueError):
        empty = None
    if empty is False:
        return None
    where = render(path)
    got = "empty bytes" if empty else "an invalid value"
    return ProtocolError(
        "invalid_value",
        f"Invalid '{where}'. Expected base64-encoded audio bytes (mono PCM16 at 24kHz) but got {got}.",
        _AUDIO_PARAMS.get(path, where),
    )


def content_error(event: dict[str, Any]) -> ProtocolError | None:
    """checks past the schema on a schema-valid event: audio that is not base64."""
    etype = event["type"]
    if etype == "input_audio_buffer.append":
        return _bad_audio(event["audio"], ("audio",))
    if etype == "conversation.item.create":
        content = event["item"].get("content")
        for i, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") == "input_audio" and isinstance(part.get("audio"), str):
                error = _bad_audio(part["audio"], ("item", "content", i, "audio"))
                if error is not None:
                    return error
    return None


def render(path: ParamPath) -> str:
    """the API's param style: session.tools[0].name."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text



def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
