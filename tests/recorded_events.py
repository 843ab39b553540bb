"""Recorded events written by hand, for the sans-IO engine, plan and report tests."""

from __future__ import annotations

import base64

from mockrealtime.core.cassette import RecordedEvent


def ev(direction: str, at_ms: float, type: str, **fields) -> RecordedEvent:
    return RecordedEvent.make(direction, at_ms, {"type": type, **fields})


def srv(at_ms: float, type: str, n: int, **fields) -> RecordedEvent:
    """A server event with the event id ``event_<n>`` (three digits)."""
    return ev("server", at_ms, type, event_id=f"event_{n:03d}", **fields)


def silence(ms: int) -> str:
    """``ms`` of pcm16 silence at 24 kHz, base64."""
    return base64.b64encode(b"\x00" * (48 * ms)).decode()
