"""The per-test handle behind the ``realtime_mock`` fixture: one test's cassette on a shared server.

Theory of operation
-------------------
One :class:`~mockrealtime.testing.runner.BackgroundServer` serves a whole test session (per xdist
worker). Each test gets a *route* of its own, ``/c/<token>/``: its cassette is registered in the
server's library under the token and its configuration (pace, matching, strictness) goes with the
route, so tests never see each other's cassettes, sessions or journals. Setting a test up is a
few dictionary writes in the server's loop; the cassette is parsed once and cached by file.

The record mode chooses what the test runs on (:mod:`mockrealtime.testing.modes`): the replay
route, a recorder, or the replay route recording what the cassette does not hold. Where the
cassette is on disk is :mod:`mockrealtime.testing.storage`.

The handle turns what the server saw into test outcomes: a divergence or an unplayed remainder is
returned as a report (:mod:`mockrealtime.testing.report`) that the plugin raises as a
:class:`~mockrealtime.errors.DivergenceError`.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Sequence
from typing import Any

from mockrealtime.config import ServerConfig
from mockrealtime.core import cassette as _cassette
from mockrealtime.core.engine import Divergence
from mockrealtime.core.events import AUDIO_APPEND
from mockrealtime.core.journal import Journal
from mockrealtime.errors import ConfigError, DivergenceError
from mockrealtime.testing.modes import MODES, Case, Seen
from mockrealtime.testing.report import ConnectionOutcome, Context, divergence_report, unplayed_report
from mockrealtime.testing.runner import BackgroundServer
from mockrealtime.testing.storage import CassetteLocation

#: How long to wait for a connection whose socket is closing to be finished by the server.
SETTLE_S = 1.0
_tokens = itertools.count(1)


# -- the handle -------------------------------------------------------------------------------------


class RealtimeMock:
    """One test's view of mockrealtime: the URLs to give a client, the journal, the checks.

    :attr:`websocket_base_url` is what the openai SDK takes (``AsyncOpenAI(websocket_base_url=...)``);
    :attr:`ws_url` is the full Realtime endpoint for clients that take a URL as is (openai-agents'
    ``model_config={"url": ...}``); :attr:`http_url` is the same base with an ``http`` scheme for
    clients that derive the WebSocket URL from an HTTP base (``base_url=``).
    """

    def __init__(self, server: BackgroundServer, config: ServerConfig, location: CassetteLocation, *, nodeid: str = "") -> None:
        self.server = server
        #: The test's configuration (:func:`mockrealtime.config.resolve`).
        self.config = config
        self.location = location
        self.nodeid = nodeid
        self.token = f"t{next(_tokens)}"
        self.run = MODES[config.record_mode].run_for(Case(server, config, location, self.token, nodeid))
        self._accepted: dict[int, int] = {}  # connection id -> divergences accepted by the test
        self._reported: dict[int, int] = {}  # connection id -> divergences already reported
        self._unplayed_checked = False
        self._finished = False

    @property
    def mode(self) -> str:
        """What the test runs on: "replay", "record" or "episodes" (replay, recording what the cassette does not hold)."""
        return self.run.kind

    # -- URLs ----------------------------------------------------------------------------------

    @property
    def websocket_base_url(self) -> str:
        """For the openai SDK: ``AsyncOpenAI(websocket_base_url=realtime_mock.websocket_base_url)``."""
        return self.run.base_url + "/v1"

    @property
    def ws_url(self) -> str:
        """The Realtime endpoint itself, for clients that use a URL verbatim."""
        return self.run.base_url + "/v1/realtime"

    @property
    def http_url(self) -> str:
        """The base with an http scheme, for clients that derive the WebSocket URL (``base_url=``)."""
        return "http" + self.websocket_base_url[2:]

    @property
    def wss_url(self) -> str:
        """:attr:`ws_url` over TLS, for clients that insist on ``wss://`` (trust :attr:`ca_file`)."""
        return self._tls_base("wss") + "/v1/realtime"

    @property
    def wss_base_url(self) -> str:
        """:attr:`websocket_base_url` over TLS (``AsyncOpenAI(websocket_base_url=...)``)."""
        return self._tls_base("wss") + "/v1"

    @property
    def https_url(self) -> str:
        """The base over TLS with an https scheme: the npm SDK's ``baseURL``, the REST endpoints."""
        return self._tls_base("https") + "/v1"

    @property
    def ca_file(self) -> str | None:
        """The CA file that signed the TLS listener's certificate (None for your own certfile)."""
        return self.server.tls().ca_file

    def _tls_base(self, scheme: str) -> str:
        if self.mode != "replay":
            raise ConfigError(
                f"mockrealtime: realtime_mock.{scheme}_url is for replay; in a {self.mode} mode connect "
                "over ws:// (realtime_mock.ws_url)"
            )
        self.server.tls()
        return f"{scheme}://{self.server.host}:{self.server.tls_port}/c/{self.token}"

    @property
    def cassette_path(self) -> str:
        """The cassette replayed (the GA variant when there are two), or the one being recorded."""
        return self.location.files[0] if self.location.files and self.run.judged else self.location.path

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> RealtimeMock:
        try:
            self.run.start()
        except BaseException:
            self.run.cleanup()
            raise
        return self

    def finish(self, *, passed: bool) -> str | None:
        """End the test: close its connections, save a recording, unregister; a failure report or None."""
        if self._finished:
            return None
        self._finished = True
        try:
            text = self.run.stop(passed)
            if passed and text is None and self.run.judged:
                text = self._failure(final=True)
            return text
        finally:
            self.run.cleanup()

    # -- what the client did -------------------------------------------------------------------

    def _seen(self) -> list[Seen]:
        return self.run.seen()

    @property
    def journal(self) -> Journal:
        """What the client sent, in order, over all of this test's connections (see :class:`Journal`)."""
        return self.run.journal()

    @property
    def connections(self) -> list[dict[str, Any]]:
        """One summary per connection: session, dialect, open, close code, divergences, unplayed."""
        return [
            {"id": s.id, "session": s.session, "dialect": s.dialect, "open": s.open, "close_code": s.close_code,
             "divergences": [d.to_dict() for d in s.divergences], "unplayed": s.unplayed}
            for s in self._seen()
        ]

    @property
    def divergences(self) -> list[Divergence]:
        return [d for s in self._seen() for d in s.divergences]

    def unplayed(self) -> list[dict[str, Any]]:
        """What the recording still holds that no connection played (per connection, event by event)."""
        return [dict(item, connection=s.id) for s in self._seen() for item in s.unplayed]

    def accept_divergences(self) -> list[Divergence]:
        """The divergences so far, marked as expected by the test: they no longer fail it."""
        seen = self._seen()
        for s in seen:
            self._accepted[s.id] = len(s.divergences)
        return [d for s in seen for d in s.divergences]

    def assert_all_played(self) -> None:
        """Fail (DivergenceError) if a connection diverged or left recorded events unplayed."""
        __tracebackhide__ = True
        text = self._failure(final=True, allow_unplayed=False)
        if text:
            raise DivergenceError(text)

    # -- checks ----------------------------------------------------------------------------------

    def check_after_call(self) -> str | None:
        """After the test function returned: divergences, and unplayed events if every connection is closed."""
        return self._failure(final=False)

    def explain(self) -> str | None:
        """For a test that failed on its own: what mockrealtime saw, if it might be why."""
        seen = self._settled()
        diverged = self._divergence_text(seen, mark=False)
        if diverged is None and self.run.judged:
            # also for a connection still open: what the replay waits for is often why a test timed out
            return self._unplayed_text(seen)
        return diverged

    def _settled(self) -> list[Seen]:
        """A snapshot once the server has finished with connections whose socket is already closing."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            seen = self._seen()
            if not any(s.open and s.closing for s in seen) or time.monotonic() > deadline:
                return seen
            time.sleep(0.002)

    def _failure(self, *, final: bool, allow_unplayed: bool | None = None) -> str | None:
        if not self.run.judged:
            return None
        seen = self._settled()
        diverged = self._divergence_text(seen, mark=True)
        allow = self.config.allow_unplayed if allow_unplayed is None else allow_unplayed
        if not allow and not self._unplayed_checked and (final or all(not s.open for s in seen)):
            self._unplayed_checked = True
            if diverged is None:  # after a divergence, what is left unplayed follows from it
                return self._unplayed_text(seen)
        return diverged

    def _divergence_text(self, seen: list[Seen], *, mark: bool) -> str | None:
        outcomes = []
        cassette = matcher = None
        for s in seen:
            skip = max(self._accepted.get(s.id, 0), self._reported.get(s.id, 0))
            new = s.divergences[skip:]
            if mark:
                self._reported[s.id] = len(s.divergences)
            if new:
                outcomes.append(self._outcome(s, divergences=new))
                cassette, matcher = s.engine.cassette, s.engine.matcher
        if not outcomes:
            return None
        return divergence_report(outcomes, self._context(cassette.path if cassette else None), cassette, matcher)

    def _unplayed_text(self, seen: list[Seen]) -> str | None:
        cassette_sessions = self._session_count(seen)
        played = self.run.played_sessions()
        missing = tuple(i for i in range(cassette_sessions) if i not in played)
        context = dataclasses.replace(self._context(seen[0].engine.cassette.path if seen else None),
                                      unplayed_sessions=missing, connected=bool(played))
        return unplayed_report([self._outcome(s) for s in seen], context, seen[0].engine.matcher if seen else None)

    def _session_count(self, seen: list[Seen]) -> int:
        if seen:
            return len(seen[0].engine.cassette.sessions)
        files = self.location.variants(self.config.dialect) if self.location.files else []
        return len(_cassette.load(files[0]).sessions) if files else 0

    def _outcome(self, s: Seen, divergences: Sequence[Divergence] | None = None) -> ConnectionOutcome:
        matched = [j.event_index for j in s.journal if j.outcome == "matched" and j.event_index is not None]
        return ConnectionOutcome(
            s.id, s.session, s.dialect, s.open, s.close_code,
            tuple(s.divergences if divergences is None else divergences), tuple(s.unplayed),
            max(matched) if matched else None, _near_misses(s),
        )

    def _context(self, path: str | None) -> Context:
        return Context(
            cassette_path=path or self.cassette_path, nodeid=self.nodeid or None, match=self.config.match,
            record_mode=self.config.record_mode.value,
        )


def _near_misses(s: Seen) -> tuple[tuple[int, dict[str, Any], dict[str, Any], tuple[Any, ...]], ...]:
    """Events answered from state (lenient mode) that have the type of the next recorded client event."""
    nxt = next((i for i in s.unplayed if i["direction"] == "client" and i["type"] != AUDIO_APPEND), None)
    if nxt is None or nxt.get("event_index") is None:
        return ()
    expected = s.engine.cassette.sessions[s.session].events[nxt["event_index"]].event
    out = []
    for j in s.journal:
        if j.outcome == "answered" and j.event.get("type") == nxt["type"]:
            diffs = tuple(s.engine.matcher.differences(expected, j.event))
            out.append((nxt["event_index"], expected, j.event, diffs))
    return tuple(out)


