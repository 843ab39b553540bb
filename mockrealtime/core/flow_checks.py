"""Checks of what a recording makes a client wait for: the ``validate`` findings that mean a hang.

A replayed cassette hangs a client in a few ways the format cannot see:

* a response is created and never done: a client waiting for ``response.done`` waits forever;
* a function call is announced and never finished (no ``function_call_arguments.done``, no
  ``output_item.done``): a client that runs tools when the call is complete never runs it;
* a recorded client event names an id the server announces only later (a tool output for a
  ``call_id`` the server has not sent yet, a truncate of an item not announced yet): no live client
  can send that cue, so the replay waits for it forever;
* audio kept in a sidecar whose format is not the session's at that point: a client decoding it as
  the session says plays noise.

Each check returns ``(severity, code, event index, message)``; :mod:`mockrealtime.core.checks`
turns them into findings. Sans-IO.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import RecordedEvent
from mockrealtime.core.events import AUDIO_APPEND, AUDIO_DELTA_TYPES, Direction

Problem = tuple[str, str, int, str]
_CLIENT_ITEM_REFS = ("conversation.item.truncate", "conversation.item.delete", "conversation.item.retrieve")


def unfinished(events: list[RecordedEvent]) -> Iterator[Problem]:
    created: dict[str, int] = {}
    done: set[str] = set()
    calls: dict[str, int] = {}
    finished_calls: set[str] = set()
    for index, ev in enumerate(events):
        if ev.direction is not Direction.SERVER or ev.type in AUDIO_DELTA_TYPES:
            continue
        if ev.type in ("response.created", "response.done"):
            rid = (ev.event.get("response") or {}).get("id")
            if isinstance(rid, str) and ev.type == "response.created":
                created.setdefault(rid, index)
            elif isinstance(rid, str):
                done.add(rid)
        elif ev.type == "response.output_item.added":
            item = ev.event.get("item") or {}
            if item.get("type") == "function_call" and isinstance(item.get("id"), str):
                calls.setdefault(item["id"], index)
        elif ev.type in ("response.output_item.done", "response.function_call_arguments.done"):
            item_id = ev.event.get("item_id") or (ev.event.get("item") or {}).get("id")
            if isinstance(item_id, str):
                finished_calls.add(item_id)
    for rid, index in created.items():
        if rid not in done:
            yield ("error", "unfinished_response", index,
                   f"response {rid!r} is created but never done: a client waiting for response.done hangs")
    for item_id, index in calls.items():
        if item_id not in finished_calls:
            yield ("error", "unfinished_call", index,
                   f"function call {item_id!r} is announced but its arguments never finish (no "
                   "function_call_arguments.done or output_item.done): a client that runs tools on completion hangs")


def _references(ev: RecordedEvent) -> list[tuple[str, str]]:
    event = ev.event
    refs = []
    item: dict[str, Any] = event["item"] if isinstance(event.get("item"), dict) else {}
    if ev.type == "conversation.item.create" and item.get("type") == "function_call_output" and isinstance(item.get("call_id"), str):
        refs.append(("call_id", item["call_id"]))
    if ev.type in _CLIENT_ITEM_REFS and isinstance(event.get("item_id"), str):
        refs.append(("item_id", event["item_id"]))
    if ev.type == "response.cancel" and isinstance(event.get("response_id"), str):
        refs.append(("response_id", event["response_id"]))
    previous = event.get("previous_item_id")
    if isinstance(previous, str) and previous != "root":
        refs.append(("previous_item_id", previous))
    return refs


def _ids_in(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("id", "item_id", "call_id", "response_id") and isinstance(value, str):
                out.add(value)
            elif isinstance(value, (dict, list)):
                _ids_in(value, out)
    elif isinstance(node, list):
        for value in node:
            _ids_in(value, out)


def impossible_cues(events: list[RecordedEvent]) -> Iterator[Problem]:
    """Client events that name an id no event before them has shown the client."""
    first_seen: dict[str, int] = {}
    for index, ev in enumerate(events):
        if ev.type in AUDIO_DELTA_TYPES or ev.type == AUDIO_APPEND:
            continue
        found: set[str] = set()
        if ev.direction is Direction.SERVER:
            _ids_in(ev.event, found)
        elif ev.type == "conversation.item.create" and isinstance((ev.event.get("item") or {}).get("id"), str):
            found.add(ev.event["item"]["id"])  # an id the client chose itself
        for value in found:
            first_seen.setdefault(value, index)
    for index, ev in enumerate(events):
        if ev.direction is not Direction.CLIENT or ev.type == AUDIO_APPEND:
            continue
        for field, value in _references(ev):
            seen = first_seen.get(value)
            if seen is not None and seen > index:
                yield ("error", "impossible_cue", index,
                       f"{field} {value!r} is first shown to the client at event {seen}, after this event: no live "
                       "client can send it here, so a replay would wait for it forever")


def audio_formats(events: list[RecordedEvent]) -> Iterator[Problem]:
    """Sidecar audio in a format other than the session's at that point (one problem per file)."""
    fmt_in, fmt_out = _audio.PCM16, _audio.PCM16
    reported: set[str] = set()
    for index, ev in enumerate(events):
        if ev.direction is Direction.SERVER and ev.type in ("session.created", "session.updated"):
            i, o = _audio.session_formats(ev.event.get("session") or {})
            fmt_in, fmt_out = i or fmt_in, o or fmt_out
            continue
        ref = ev.audio
        if ref is None or (ev.type not in AUDIO_DELTA_TYPES and ev.type != AUDIO_APPEND):
            continue
        sidecar = ref.sidecar
        expected = fmt_out if ev.direction is Direction.SERVER else fmt_in
        actual = sidecar.format  # read with the header, at load
        if actual is not expected and sidecar.path not in reported:
            reported.add(sidecar.path)
            side = "output" if ev.direction is Direction.SERVER else "input"
            yield ("error", "audio_format", index,
                   f"{sidecar.path.rsplit('/', 1)[-1]} holds {actual.name} but the session's {side} format here is "
                   f"{expected.name}: a client decoding it as the session says hears noise")
