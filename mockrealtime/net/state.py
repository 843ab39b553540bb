"""What the server keeps per app: the cassettes, per-test routes, and what connections did."""

from __future__ import annotations

import asyncio
import collections
import ctypes
import dataclasses
import gc
from typing import Any

from aiohttp import web

from mockrealtime.config import ServerConfig
from mockrealtime.core.cassette_queue import CassetteQueue
from mockrealtime.core.divergence import FinishedReplay
from mockrealtime.core.engine import ReplaySession, SessionCursor
from mockrealtime.core.ephemeral import KeyStore
from mockrealtime.core.events import BETA, GA
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.net.episodes import Episodes
from mockrealtime.protocol import ClientEventValidator


@dataclasses.dataclass
class ConnectionReport:
    """What one connection did: kept for the fixture and the admin API.

    While the connection is open, ``engine`` is its replay engine and ``socket`` its WebSocket; at
    close (:meth:`MockState.finish`) the engine gives way to a :class:`FinishedReplay` (journal,
    divergences, unplayed) and the socket is let go, so a finished connection costs little.
    """

    id: int
    cassette: str
    session: int
    dialect: str
    path: str
    engine: ReplaySession | FinishedReplay
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
        #: Finished connections dropped from ``connections`` (beyond ``config.keep_finished``) since reset.
        self.forgotten = 0
        self._finished: collections.deque[ConnectionReport] = collections.deque()  # oldest first
        self._next_id = 0
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
                       route: str | None, socket: web.WebSocketResponse, minted_key: bool = False) -> ConnectionReport:
        report = ConnectionReport(self._next_id, cassette, session, dialect, path, engine, route=route, socket=socket,
                                  minted_key=minted_key)
        self._next_id += 1
        self.connections.append(report)
        return report

    def finish(self, report: ConnectionReport, close_code: int | None) -> None:
        """The connection closed: keep a summary of it, and forget the oldest finished ones beyond
        ``keep_finished`` (but not those of a test still running: its route is registered)."""
        engine = report.engine
        if isinstance(engine, ReplaySession):
            report.engine = engine.release()
        report.open, report.close_code, report.socket = False, close_code, None
        self._finished.append(report)
        if len(self._finished) > self.config.keep_finished:
            self._forget()
        self.journal_changed()

    def _forget(self) -> None:
        keep, kept, dropped = self.config.keep_finished, collections.deque[ConnectionReport](), set()
        while len(self._finished) > keep:
            old = self._finished.popleft()
            if old.route is not None and old.route in self.routes:
                kept.append(old)  # a running test reads it when it ends
            else:
                dropped.add(id(old))
        self._finished.extendleft(reversed(kept))
        if dropped:
            self.connections = [r for r in self.connections if id(r) not in dropped]
            self.forgotten += len(dropped)

    def reset(self) -> None:
        self.config = self.started_with
        self._numbers.clear()
        self.cursor.reset()
        self.connections.clear()
        self._finished.clear()
        self.forgotten = 0
        self._next_id = 0
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
