"""Which cassette the next connections get when they name none: chosen from outside (admin API).

A connection that names a cassette (``/c/<name>/...`` or the ``X-Mockrealtime-Cassette`` header)
gets it. One that names none takes the head of this queue; without a queue, the library's
default. An entry is for a number of connections, or (count None) for every connection until it
is cleared or the server is reset, so entries behind an open-ended one are never reached.

Sans-IO: the upgrade handler peeks before it knows the connection will be served (a plain GET,
or a cassette missing in the client's dialect, must not use up a choice) and consumes after.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(slots=True)
class Choice:
    cassette: str
    remaining: int | None  # None: until cleared or reset

    def to_dict(self) -> dict[str, Any]:
        return {"cassette": self.cassette, "connections": self.remaining}


class CassetteQueue:
    def __init__(self) -> None:
        self._entries: list[Choice] = []

    def add(self, cassette: str, connections: int | None = None) -> None:
        if connections is not None and connections < 1:
            raise ValueError("connections must be 1 or more, or null for every connection until reset")
        self._entries.append(Choice(cassette, connections))

    def peek(self) -> str | None:
        """The cassette the next connection that names none would get from the queue."""
        return self._entries[0].cassette if self._entries else None

    def consume(self) -> None:
        """A connection was served the head's cassette."""
        if not self._entries:
            return
        head = self._entries[0]
        if head.remaining is not None:
            head.remaining -= 1
            if head.remaining <= 0:
                del self._entries[0]

    def clear(self) -> None:
        self._entries.clear()

    def to_list(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self._entries]
