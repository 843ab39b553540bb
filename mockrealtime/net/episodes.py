"""``new_episodes`` inside the connection: replay what the cassette holds, go live for the rest.

Theory of operation
-------------------
A route (the pytest plugin's ``/c/<token>/``) whose test runs in record mode ``new_episodes`` has an
:class:`Episodes`. Connection *n* to it, in a dialect:

* **within the recorded sessions**: replayed as usual, on its *replay leg*. The pump shows the
  connection's :class:`Episode` every client frame and every frame it sends (:meth:`Episode.client_text`,
  :meth:`Episode.sender`), and after each client event asks whether the replay diverged
  (:meth:`Episode.diverged`). At the first divergence the pump stops: the replay's answer to that
  event is never sent, and the connection switches to its *live leg* (:meth:`Episode.go_live`).
* **beyond the recorded sessions**: live from the start (:meth:`Episodes.serve_live`).

The live leg is the same upstream connection as ``mockrealtime record``'s
(:class:`~mockrealtime.net.upstream.Upstream`, :class:`~mockrealtime.net.upstream.Relay`). Going live
mid-session, the session model (:meth:`SessionModel.rebuild`) brings the live session to the state the
client was shown, without a model call: ``session.update`` with the effective session, then every
conversation item with the ids the client knows, each waiting for the server's acknowledgement; none
of it reaches the client or the cassette. Then the diverging event goes up, and the relay takes over.
Not carried over: microphone audio appended but not committed at the divergence, and a response still
streaming at that moment (at pace 0 a replayed response is complete by then).

Recording: each connection's :class:`~mockrealtime.core.recording.SessionRecording` holds what the
client sent and was shown, replay and live alike, with this run's timing. :meth:`Episodes.cassettes`
gives the cassettes to save: a handed-over session replaces recorded session *n* (the matching prefix
and the live remainder), sessions recorded beyond the cassette are appended.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from mockrealtime.config import ServerConfig
from mockrealtime.core.cassette import Cassette, cassette_name
from mockrealtime.core.engine import ReplaySession, strip_audio
from mockrealtime.core.events import AUDIO_APPEND, GA
from mockrealtime.core.journal import SentEvent
from mockrealtime.core.recording import Recorder, SessionRecording
from mockrealtime.core.redaction import Redactor
from mockrealtime.net.upstream import REFUSAL, Relay, Upstream, describe, offered_protocols

log = logging.getLogger("mockrealtime.episodes")

#: How long the live API may take to acknowledge each event that rebuilds the client's state.
ACK_TIMEOUT_S = 15.0
HANDOVER_FAILED = "mockrealtime new_episodes: hand-over failed"


class HandOverError(Exception):
    """The live session could not be opened or brought to the client's state."""


@dataclasses.dataclass(eq=False)
class Episode:
    """One connection of a ``new_episodes`` route: its recording, and the switch to the live leg."""

    episodes: Episodes
    number: int  # per dialect
    dialect: str
    #: The recorded session it replays; None: live from the start.
    session: int | None
    rec: SessionRecording
    #: The server's report of the connection (its replay leg), when it has one.
    report_id: int | None = None
    handed_over: bool = False
    problem: str | None = None
    #: Client events that went to the live API: (ms since the connection opened, event).
    live: list[tuple[float, dict[str, Any]]] = dataclasses.field(default_factory=list)
    _t0_ms: float = 0.0

    # -- the replay leg: the pump's hooks ------------------------------------------------------

    def client_text(self, text: str) -> None:
        self.rec.client_text(text, _clock_ms())

    def sender(self, send: Callable[[str], Awaitable[None]]) -> Callable[[str], Awaitable[None]]:
        """``send`` that also records each frame as shown to the client."""
        rec, at = self.rec, _clock_ms()

        async def send_recorded(frame: str) -> None:
            rec.server_text(frame, at)
            await send(frame)

        return send_recorded

    @staticmethod
    def diverged(engine: ReplaySession) -> bool:
        return bool(engine.divergences)

    # -- the live leg --------------------------------------------------------------------------

    async def go_live(self, ws: web.WebSocketResponse, request: web.Request, engine: ReplaySession, pending: str) -> None:
        """Open the live session, rebuild the client's state there, send ``pending`` (the event the
        replay could not answer), then relay the rest. A failure closes the client with 1011."""
        self.handed_over = True
        episodes = self.episodes
        try:
            live = await episodes.connect(request)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return await self._fail(ws, f"cannot reach the live API {episodes.upstream.label}: {episodes.describe(exc)}")
        try:
            await self._rebuild(live, engine)
            await live.send_str(pending)
        except HandOverError as exc:
            await live.close()
            return await self._fail(ws, str(exc))
        self._note_live(pending)
        log.info("= connection %d handed over to %s", self.number, episodes.upstream.label)
        await episodes.relay(ws, live, self)

    async def _rebuild(self, live: aiohttp.ClientWebSocketResponse[bool], engine: ReplaySession) -> None:
        await self._expect(live, ("session.created",), "the live session to open")
        item_ack = ("conversation.item.done",) if self.dialect == GA else ("conversation.item.created",)
        for event in engine.model.rebuild():
            await live.send_json(event)
            if event["type"] == "session.update":
                await self._expect(live, ("session.updated",), "session.update to be applied")
            else:
                await self._expect(live, item_ack, f"conversation item {event['item']['id']} to be recreated")

    async def _expect(self, live: aiohttp.ClientWebSocketResponse[bool], types: tuple[str, ...], what: str) -> None:
        async def wait() -> None:
            while True:
                msg = await live.receive()
                if msg.type is not WSMsgType.TEXT:
                    raise HandOverError(f"the live API closed while waiting for {what} ({msg.type.name})")
                event = _parse(msg.data) or {}
                if event.get("type") in types:
                    return
                if event.get("type") == "error":
                    raise HandOverError(f"the live API refused while waiting for {what}: {event.get('error')}")

        try:
            await asyncio.wait_for(wait(), ACK_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise HandOverError(f"no answer from the live API within {ACK_TIMEOUT_S:.0f} s waiting for {what}") from None

    async def _fail(self, ws: web.WebSocketResponse, problem: str) -> None:
        self.problem = problem
        log.warning("= connection %d: %s", self.number, problem)
        self.rec.end("server", 1011, HANDOVER_FAILED, error=problem)
        await ws.close(code=1011, message=HANDOVER_FAILED.encode())

    def _note_live(self, text: str, now_ms: float | None = None) -> None:
        event = _parse(text)
        if event is not None:
            self.live.append(((_clock_ms() if now_ms is None else now_ms) - self._t0_ms, strip_audio(event)))

    # -- what the test sees --------------------------------------------------------------------

    def journal(self, index: int, replayed: list[Any]) -> list[SentEvent]:
        """This connection's client events: the replay leg's journal (``replayed``; the diverging
        event went live), then what went live."""
        out = [SentEvent(index, j.at_ms, j.event, j.outcome, j.event_index)
               for j in replayed if not (self.handed_over and j.outcome == "diverged")]
        for at_ms, event in self.live:
            out.append(SentEvent(index, at_ms, event, "audio" if event.get("type") == AUDIO_APPEND else "live"))
        return out


class Episodes:
    """A ``new_episodes`` route: its cassette, the live API, and every connection's recording."""

    def __init__(self, config: ServerConfig, cassettes: Mapping[str, Cassette]) -> None:
        self.config = config
        self.cassettes_by_dialect = dict(cassettes)
        self.upstream = Upstream(config)
        self.recorder = Recorder("episodes", redactor=Redactor(config.redact_paths, config.redact_patterns))
        self.recorder.add_secret(config.upstream_api_key)
        self.episodes: list[Episode] = []
        self._counts: dict[str, int] = {}
        self._http: aiohttp.ClientSession | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def describe(self, exc: BaseException) -> str:
        return describe(exc, self.recorder.known_secrets, self.recorder.redactor)

    def open(self, request: web.Request, dialect: str, offered: list[str]) -> Episode:
        """A connection arrived: which recorded session it replays (None: beyond them, live)."""
        number = self._counts.get(dialect, 0)
        self._counts[dialect] = number + 1
        cassette = self.cassettes_by_dialect.get(dialect)
        session = number if cassette is not None and number < len(cassette.sessions) else None
        now_ms = _clock_ms()
        rec = self.recorder.open(now_ms, path=client_path(request), query=list(request.query.items()),
                                 headers=list(request.headers.items()), subprotocols=offered)
        episode = Episode(self, number, dialect, session, rec, _t0_ms=now_ms)
        self.episodes.append(episode)
        return episode

    async def connect(self, request: web.Request) -> aiohttp.ClientWebSocketResponse[bool]:
        """The client's connection, opened on the live API (mockrealtime's own headers left out)."""
        if self._http is None:
            self._http = self.upstream.client_session()
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if not k.lower().startswith("x-mockrealtime-"))
        path = client_path(request)
        return await self.upstream.connect(self._http, path, request.query, headers, offered_protocols(request))

    async def serve_live(self, request: web.Request, episode: Episode) -> web.StreamResponse:
        """A connection beyond the recorded sessions: relayed to the live API from its handshake on."""
        holder: dict[str, Any] = {}
        REFUSAL.set(holder)
        try:
            live = await self.connect(request)
        except aiohttp.WSServerHandshakeError as exc:
            episode.problem = f"the live API refused the connection with HTTP {exc.status}"
            episode.rec.end("server", None, None, error=episode.problem)
            headers = {"Content-Type": holder.get("content_type") or "text/plain; charset=utf-8"}
            return web.Response(status=exc.status or 502, body=holder.get("body") or b"", headers=headers)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            episode.problem = f"cannot reach the live API {self.upstream.label}: {self.describe(exc)}"
            episode.rec.end("server", None, None, error=episode.problem)
            return web.json_response({"error": {"type": "server_error", "code": "upstream_unreachable", "message": episode.problem}},
                                     status=502)
        ws = web.WebSocketResponse(protocols=(live.protocol,) if live.protocol else (), compress=False, max_msg_size=0)
        try:
            await ws.prepare(request)
        except BaseException:
            await live.close(code=1001, message=b"client went away")
            raise
        log.info("= connection %d (%s): beyond the recorded sessions, live from %s", episode.number, episode.dialect,
                 self.upstream.label)
        await self.relay(ws, live, episode)
        return ws

    async def relay(self, ws: web.WebSocketResponse, live: aiohttp.ClientWebSocketResponse[bool], episode: Episode) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._sockets.add(ws)
        relay = Relay(ws, live, episode.rec, episode.number, self.describe,
                      on_client_text=lambda text, now_ms: episode._note_live(text, now_ms))
        try:
            await relay.run()
        except Exception as exc:
            episode.problem = f"relay error: {self.describe(exc)}"
            episode.rec.end("server", 1011, HANDOVER_FAILED, error=episode.problem)
            await relay.close_both(1011, HANDOVER_FAILED)
        finally:
            self._sockets.discard(ws)
            if task is not None:
                self._tasks.discard(task)
            if not live.closed:
                await live.close(code=1001, message=b"")

    async def close(self, close_timeout_s: float) -> list[str]:
        """Close every live connection and the HTTP session; the problems met, per connection."""
        await asyncio.gather(*(_close(ws, close_timeout_s) for ws in list(self._sockets)))
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2 * close_timeout_s)
        if self._http is not None:
            await self._http.close()
        for episode in self.episodes:
            if episode.rec.open:
                episode.rec.end("client", 1000, "")
        return [f"connection {i}: {e.problem}" for i, e in enumerate(self.episodes) if e.problem]

    # -- what to save ----------------------------------------------------------------------------

    def cassettes(self, path_for: Callable[[str], str], upstream_label: str) -> dict[str, tuple[str, Cassette]]:
        """dialect -> (path, cassette) for every dialect that recorded something new."""
        out = {}
        for dialect in sorted({e.dialect for e in self.episodes if e.handed_over or e.session is None}):
            base = self.cassettes_by_dialect.get(dialect)
            sessions = list(base.sessions) if base is not None else []
            notes = []
            mine = [e for e in self.episodes if e.dialect == dialect]
            for episode in mine:
                if episode.handed_over and episode.session is not None:
                    sessions[episode.session] = episode.rec.to_session()
                    notes.append(f"session {episode.session} continued live")
                elif episode.session is None and episode.problem is None:
                    sessions.append(episode.rec.to_session())
                    notes.append(f"session {len(sessions) - 1} recorded live")
            stamp = f"new_episodes ({upstream_label}): {', '.join(notes)}."
            if base is not None:
                path = base.path or path_for(dialect)
                description = base.description.rstrip() + "\n" + stamp if base.description else stamp
                cassette = Cassette(name=base.name, dialect=dialect, sessions=sessions, model=base.model,
                                    handshake=base.handshake, description=description, matching=dict(base.matching))
            else:
                path = path_for(dialect)
                first = mine[0].rec
                cassette = Cassette(name=cassette_name(path), dialect=dialect, sessions=sessions, model=first.model,
                                    handshake=first.handshake, description=stamp, matching={})
            out[dialect] = (path, cassette)
        return out


async def _close(ws: web.WebSocketResponse, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(ws.close(code=1001, message=b"going away"), timeout_s)
    except (asyncio.TimeoutError, ConnectionError):
        pass


def client_path(request: web.Request) -> str:
    """The path the client asked for, without the route's ``/c/<name>`` prefix."""
    if "name" in request.match_info:
        return "/" + request.match_info.get("tail", "")
    return request.rel_url.raw_path


def _clock_ms() -> float:
    return asyncio.get_running_loop().time() * 1000.0


def _parse(text: str) -> dict[str, Any] | None:
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
