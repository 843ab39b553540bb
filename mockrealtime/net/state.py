"""What the server keeps per app: the cassettes, per-test routes, and what connections did."""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import gc
from typing import Any

from aiohttp import web

from mockrealtime.config import ServerConfig
from mockrealtime.core.cassette_queue import CassetteQueue
from mockrealtime.core.engine import ReplaySession, SessionCursor
from mockrealtime.core.ephemeral import KeyStore
from mockrealtime.core.events import BETA, GA
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.net.episodes import Episodes
from mockrealtime.protocol import ClientEventValidator


@dataclasses.dataclass
class ConnectionReport:
    """What one connection did: kept for the fixture and the admin API."""

    id: int
    cassette: str
    session: int
    dialect: str
    path: str
    engine: ReplaySession
    open: bool = True
    close_code: int | None = None
    #: The /c/<name>/ the client connected to, when it named one (the pytest plugin's per-test route).
    route: str | None = None
    socket: web.WebSocketResponse | None = dataclasses.field(default=None, repr=False, compare=False)
    #: The client authenticated with an ephemeral key minted by the REST companions.
    minted_key: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cassette": self.cassette,
            "session": self.session,
            "dialect": self.dialect,
            "path": self.path,
            "open": self.open,
            "close_code": self.close_code,
            "minted_key": self.minted_key,
            "journal": [dataclasses.asdict(j) for j in self.engine.journal],
            "journal_dropped": self.engine.journal.dropped,
            "divergences": [d.to_dict() for d in self.engine.divergences],
            "divergences_repeated": sum(self.engine.divergences.repeats.values()),
            "divergences_dropped": self.engine.divergences.dropped,
            "unplayed": [] if self.open else self.engine.unplayed(),
        }


class MockState:
    """Per-app state: the cassettes, which session each takes next, and what connections did."""

    def __init__(self, config: ServerConfig) -> None:
        #: Read at each upgrade; the admin API may replace it (``PATCH /__admin/config``), reset restores it.
        self.config = self.started_with = config
        self.library = CassetteLibrary(config.cassettes, config.default_cassette)
        self.cursor = SessionCursor()
        self.connections: list[ConnectionReport] = []
        self._numbers: dict[str, int] = {}  # per route or cassette: connection numbers, for deterministic ids
        self.sockets: set[web.WebSocketResponse] = set()
        # without validation, the validator still refuses wrong JSON types (what the engine cannot read)
        self.validators = {d: ClientEventValidator(d, schema=config.validate) for d in (GA, BETA)}
        #: The pytest plugin gives each test a route of its own on a shared server: the connections
        #: to that cassette name get the test's configuration in place of the server's.
        self.routes: dict[str, ServerConfig] = {}
        #: Routes whose test runs in record mode new_episodes (:mod:`mockrealtime.net.episodes`).
        self.episodes: dict[str, Episodes] = {}
        #: Admin API: cassettes chosen for connections that name none; long-polls on the journals.
        self.chosen = CassetteQueue()
        self.journal_waiters: set[asyncio.Future[None]] = set()
        #: Ephemeral keys minted by the REST companions; recorded REST answers served per cassette.
        self.keys = KeyStore()
        self.rest_calls: dict[tuple[str, str], int] = {}

    def number(self, key: str) -> int:
        """The next connection number for a route (or cassette): a test gets the same ids every run."""
        n = self._numbers.get(key, 0)
        self._numbers[key] = n + 1
        return n

    def add_connection(self, cassette: str, session: int, dialect: str, path: str, engine: ReplaySession,
                       route: str | None, socket: web.WebSocketResponse) -> ConnectionReport:
        report = ConnectionReport(len(self.connections), cassette, session, dialect, path, engine, route=route, socket=socket)
        self.connections.append(report)
        return report

    def reset(self) -> None:
        self.config = self.started_with
        self._numbers.clear()
        self.cursor.reset()
        self.connections.clear()
        self.chosen.clear()
        self.rest_calls.clear()
        self.journal_changed()

    def journal_changed(self) -> None:
        """Wake the admin long-polls: a journal grew, a connection closed, or a reset."""
        for waiter in self.journal_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.journal_waiters.clear()


def release_memory() -> None:
    """After a reset: collect what the journals held and hand the freed heap back to the OS.

    CPython keeps freed memory for reuse, so a server that once held a large journal would keep
    that RSS for good; glibc's ``malloc_trim`` returns the free pages at the top and between
    allocations (elsewhere it does not exist, and this only collects).
    """
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim() -> Any:
    try:  # the process's own symbols: libc's on Linux, without searching the disk for it
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


STATE = web.AppKey("mockrealtime_state", MockState)
