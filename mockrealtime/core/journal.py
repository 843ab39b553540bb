"""What a client sent, queryable by event type and field: the journal a test asserts on.

Sans-IO: built from the server's per-connection journals (audio replaced by its decoded length,
``audio_bytes``), in the order the server received the events.

::

    journal.types()                                     # ['session.update', 'conversation.item.create', ...]
    journal.of_type("response.create")                  # every response.create, as dicts
    journal.where("conversation.item.create", item__type="function_call_output")
    journal.where("session.update", {"session.tools[*].name": "list_emails"})
    journal.first("conversation.item.truncate")["audio_end_ms"]

Field paths use the matching rules' syntax (``a.b``, ``a[0]``, ``a[*].b``); in keyword form ``__``
stands for the dot. A field matches when any value at its path equals the one given, or, when a
callable is given, when the callable returns true for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

from mockrealtime.core.matching import parse_path


@dataclasses.dataclass(frozen=True, slots=True)
class SentEvent:
    """One client event as the server received it."""

    connection: int  # the connection's id on the server
    at_ms: float  # since that connection opened
    event: dict[str, Any]  # audio replaced by "audio_bytes"
    outcome: str  # matched | audio | answered | diverged | rejected
    event_index: int | None = None  # the recorded event it matched

    @property
    def type(self) -> str | None:
        return self.event.get("type")


class Journal(Sequence[dict[str, Any]]):
    """The client events of a test's connections, in order. Indexing and iteration give the events."""

    def __init__(self, entries: Sequence[SentEvent] = ()) -> None:
        self.entries: tuple[SentEvent, ...] = tuple(entries)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [e.event for e in self.entries[index]]
        return self.entries[index].event

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (e.event for e in self.entries)

    def __repr__(self) -> str:
        return f"Journal({self.types()!r})"

    def types(self, *, audio: bool = False) -> list[str]:
        """The event types in order; audio appends are left out unless ``audio=True``."""
        return [e.type or "?" for e in self.entries if audio or e.type != "input_audio_buffer.append"]

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [e.event for e in self.entries if e.type in types]

    def where(self, type: str | None = None, fields: Mapping[str, Any] | None = None, /, **kw: Any) -> list[dict[str, Any]]:
        """Events of ``type`` (any type if None) whose fields have the given values."""
        wanted = [(path, parse_path(path), value) for path, value in _fields(fields, kw)]
        out = []
        for entry in self.entries:
            if type is not None and entry.type != type:
                continue
            if all(_has(entry.event, parts, value) for _, parts, value in wanted):
                out.append(entry.event)
        return out

    def first(self, type: str | None = None, fields: Mapping[str, Any] | None = None, /, **kw: Any) -> dict[str, Any]:
        """The first event :meth:`where` finds; AssertionError naming what was sent if there is none."""
        __tracebackhide__ = True
        found = self.where(type, fields, **kw)
        if not found:
            conditions = ", ".join(f"{p}={v!r}" for p, v in _fields(fields, kw))
            what = f"{type or 'event'}" + (f" with {conditions}" if conditions else "")
            raise AssertionError(f"the client sent no {what}; it sent: {', '.join(self.types()) or 'nothing'}")
        return found[0]

    def audio_bytes(self) -> int:
        """Decoded bytes of audio the client appended."""
        return sum(e.event.get("audio_bytes", 0) for e in self.entries if e.type == "input_audio_buffer.append")


def _fields(fields: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out = list((fields or {}).items())
    out.extend((k.replace("__", "."), v) for k, v in kw.items())
    return out


def _values(value: Any, parts: Sequence[str | int]) -> Iterator[Any]:
    if not parts:
        yield value
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(value, list):
            for item in value:
                yield from _values(item, rest)
    elif isinstance(head, int):
        if isinstance(value, list) and -len(value) <= head < len(value):
            yield from _values(value[head], rest)
    elif isinstance(value, dict) and head in value:
        yield from _values(value[head], rest)


def _has(event: dict[str, Any], parts: Sequence[str | int], wanted: Any) -> bool:
    test = wanted if callable(wanted) else (lambda v: v == wanted)
    return any(test(v) for v in _values(event, parts))
