"""The aiohttp edge: WebSocket upgrade, dialect negotiation, frame pacing, health and reports.

All protocol decisions are made by the sans-IO engine (:mod:`mockrealtime.core.engine`) and the
validator (:mod:`mockrealtime.protocol`); this module only moves frames and keeps time.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time

from typing import Any

from aiohttp import WSMsgType, web

from mockrealtime.config import ServerConfig
from mockrealtime.core.cassette import Cassette
from mockrealtime.core.ephemeral import websocket_refusal
from mockrealtime.core.policy import expiry, presented_key, refusal
from mockrealtime.core.recording import negotiate_dialect
from mockrealtime.errors import CassetteError, CassetteNotFoundError, ConfigError
from mockrealtime.core import plan as _plan
from mockrealtime.core.matching import Matcher
from mockrealtime.core.engine import BATCH, CHUNK, ReplaySession
from mockrealtime.net.admin import add_admin_routes
from mockrealtime.net.episodes import Episode
from mockrealtime.net.realtime_socket import RealtimeSocket
from mockrealtime.net.security import admin_guard, install_log_scrubbing, refuse_origin
from mockrealtime.net.rest import add_rest_routes
from mockrealtime.net.state import STATE, ConnectionReport, MockState  # noqa: F401 - STATE, MockState re-exported
from mockrealtime.net.upstream import offered_protocols

log = logging.getLogger("mockrealtime")

REALTIME_PATHS = ("/v1/realtime", "/realtime", "/openai/realtime", "/openai/v1/realtime")
CASSETTE_HEADER = "X-Mockrealtime-Cassette"


async def realtime(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    refused_origin = refuse_origin(request, state.config)
    if refused_origin is not None:
        return refused_origin
    name = request.match_info.get("name") or request.headers.get(CASSETTE_HEADER) or None
    chosen = name is None and state.chosen.peek() is not None
    name = name or state.chosen.peek()
    offered = offered_protocols(request)
    dialect = negotiate_dialect(request.headers.items(), offered)
    try:
        # in a thread: a first load parses the file, and no cassette may hold up other connections
        cassette = await asyncio.get_running_loop().run_in_executor(None, _resolve, state, name, dialect)
    except CassetteNotFoundError as exc:
        close = exc.closest
        log.warning("= no cassette %r for %s%s", exc.name, request.path, f"; did you mean {', '.join(close)}?" if close else "")
        return web.json_response(
            {"error": {"type": "invalid_request_error", "code": "cassette_not_found", "message": str(exc),
                       "closest": close, "available": state.library.available()}},
            status=404,
        )
    except CassetteError as exc:
        return web.json_response({"error": {"type": "server_error", "code": "cassette_error", "message": str(exc)}}, status=500)
    ws = RealtimeSocket(max_frame_bytes=state.config.max_frame_bytes, protocols=("realtime",), compress=False, autoping=True)
    if not ws.can_prepare(request).ok:
        return web.Response(status=426, text="mockrealtime: this endpoint speaks WebSocket (the Realtime API)\n")
    route = state.routes.get(name) if name else None
    try:
        settings = (route or state.config).for_connection(request.headers, request.query)
    except ConfigError as exc:
        return web.json_response({"error": {"type": "invalid_request_error", "code": "bad_setting", "message": str(exc)}}, status=400)
    key = presented_key(request.headers, request.query, offered)
    minted = state.keys.find(key)  # an ephemeral key from the REST companions
    refused = (websocket_refusal(settings, dialect, minted, time.time()) if minted is not None
               else refusal(settings, dialect, key))
    if refused is not None:
        # the real API accepts the upgrade, then sends one error and closes
        error, code, reason = refused
        await ws.prepare(request)
        await ws.send_json({"type": "error", "event_id": "event_MR" + "0" * 19, **error})
        await ws.close(code=code, message=reason.encode())
        return ws
    if chosen:
        state.chosen.consume()
    episodes = state.episodes.get(name) if name else None
    episode = None
    if episodes is not None:  # new_episodes: replayed while the cassette holds it, live beyond
        episode = episodes.open(request, dialect, offered)
        if episode.session is None:
            return await episodes.serve_live(request, episode)
    session_index = state.cursor.take(cassette)
    matcher = Matcher.build(cassette.matching, settings.matching)
    engine = ReplaySession(cassette, session_index, pace=settings.pace, matcher=matcher, strict=settings.strict,
                           session_overrides=minted.session if minted is not None else None,
                           connection=state.number(name or cassette.label), on_divergence=settings.on_divergence,
                           validator=state.validators.get(dialect), as_bytes=True)
    ws.render_error = lambda error: json.dumps(error.to_event(None, engine.new_event_id()))
    report = state.add_connection(cassette.label, session_index, dialect, request.path, engine, name, ws, minted is not None)
    if episode is not None:
        episode.report_id = report.id
    await ws.prepare(request)
    state.sockets.add(ws)
    log.info("= connection %d: cassette %s session %d (%s)", report.id, cassette.name, session_index, dialect)
    try:
        diverging = await _serve(ws, engine, state, settings.max_session_s, settings.stall_timeout_s, episode)
        if diverging is not None and episode is not None:
            await episode.go_live(ws, request, engine, diverging)
    finally:
        state.sockets.discard(ws)
        unfinished = not engine.finished
        state.finish(report, ws.close_code)  # the engine's replay state is freed; a summary stays
        if log.isEnabledFor(logging.INFO) and (engine.divergences or unfinished):
            log.info(
                "= connection %d closed: %d divergence(s), %d recorded event(s) unplayed",
                report.id, len(engine.divergences), len(report.engine.unplayed()),
            )
    return ws


def _resolve(state: MockState, name: str | None, dialect: str) -> Cassette:
    cassette = state.library.resolve(name, dialect)
    for index, session in enumerate(cassette.sessions):
        session.core  # noqa: B018 - a session's events are built on first use: here, not on the loop
        _plan.plan_for(cassette, index, warm=True)  # and so is its plan, frames serialised (cached after the first)
    return cassette


async def _serve(
    ws: RealtimeSocket, engine: ReplaySession, state: MockState, max_session_s: float | None, stall_s: float,
    episode: Episode | None = None,
) -> str | None:
    """The replay leg: client frames to the sans-IO engine, its frames to the client, its deadlines kept.

    With an ``episode`` (``new_episodes``), the frames both ways are recorded, and at the first
    divergence the replay stops without answering: the diverging frame is returned for the live leg.
    """
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def now_ms() -> float:
        return (loop.time() - t0) * 1000.0

    lock = asyncio.Lock()
    carry: list[Any] = []  # frames write_now() took but left to flush()
    timer: asyncio.TimerHandle | None = None
    stopped = False
    stall_timer: asyncio.TimerHandle | None = None

    last_event = loop.time()

    def check_stall() -> None:
        # One timer per idle stretch, not one per event: it re-arms itself for the time left.
        nonlocal stall_timer
        stall_timer = None
        if ws.closed or engine.stalled:
            return
        idle = loop.time() - last_event
        if idle < stall_s:
            stall_timer = loop.call_later(stall_s - idle, check_stall)
        elif engine.next_deadline() is None and engine.waiting_for() is not None:
            engine.stall(stall_s, now_ms())
            loop.create_task(flush())

    async def flush() -> None:
        nonlocal timer, stall_timer
        async with lock:
            if stopped:
                return
            # new_episodes: each frame shown to the client is recorded too, so it goes out as text
            recorded = episode.sender(ws.send_str) if episode is not None else None
            try:
                sent = 0
                while True:
                    if carry:
                        frames = carry[:]
                        carry.clear()
                    else:
                        frames = engine.pop_due(now_ms(), CHUNK)
                    last = frames[-1] if frames else None
                    payloads = frames if last.__class__ is bytes else frames[:-1]  # a CloseFrame ends them
                    if recorded is None:
                        await ws.send_texts(payloads)  # one write, not one system call per frame
                    else:
                        for frame in payloads:
                            await recorded(frame.decode())
                    if last is not None and last.__class__ is not bytes:
                        await ws.close(code=last.code, message=last.reason.encode())
                        return
                    if len(frames) < CHUNK:
                        break
                    sent += CHUNK
                    if sent >= BATCH:  # a long answer: let other connections in between batches
                        sent = 0
                        await asyncio.sleep(0)
            except ConnectionError:
                return  # the client went away mid-stream; the reader sees the close
            schedule()

    def schedule() -> None:
        """Wake for the next frame due, or watch for a stall when nothing is."""
        nonlocal timer, stall_timer
        deadline = engine.next_deadline()
        if deadline is not None and not ws.closed:
            if timer is not None:
                timer.cancel()
            timer = loop.call_at(t0 + deadline / 1000.0, lambda: loop.create_task(flush()))
        if stall_s and stall_timer is None and deadline is None and engine.acted and not engine.stalled:
            stall_timer = loop.call_later(stall_s, check_stall)

    def write_now() -> bool:
        """The common answer without a coroutine: a few frames due, a socket that takes them, no
        flush running. False leaves what is due to flush() (a close, a long answer, a full socket,
        new_episodes), with the frames already taken in ``carry``."""
        if episode is not None or lock.locked() or not ws.takes_writes_now:
            return False
        frames = engine.pop_due(now_ms(), CHUNK)
        if frames:
            if len(frames) == CHUNK or frames[-1].__class__ is not bytes:
                carry.extend(frames)
                return False
            ws.write_texts(frames)
        schedule()
        return True

    def expire() -> None:
        error, code, reason = expiry(max_session_s)  # type: ignore[arg-type]
        engine.end(error, code, reason, now_ms())
        loop.create_task(flush())

    expiry_timer = loop.call_at(t0 + max_session_s, expire) if max_session_s else None
    engine.start(now_ms())
    await flush()
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                last_event = loop.time()
                if episode is not None and msg.type is WSMsgType.TEXT:
                    episode.client_text(msg.data)
                # oversized or non-UTF-8 frames never get here: RealtimeSocket answers them, then 1009/1007
                engine.feed(msg.data, now_ms())
                if episode is not None and episode.diverged(engine):
                    stopped = True  # the live leg answers this event and the rest
                    return msg.data
            else:
                break
            if state.journal_waiters:  # an admin long-poll is waiting; one set lookup otherwise
                state.journal_changed()
            if not write_now():
                await flush()
        return None
    finally:
        for handle in (timer, stall_timer, expiry_timer):
            if handle is not None:
                handle.cancel()


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"status": "ok", "cassettes": state.library.names()})


async def _close_sockets(app: web.Application) -> None:
    # Without this aiohttp waits for open WebSockets on shutdown (minutes with default timeouts).
    for ws in list(app[STATE].sockets):
        await ws.close(code=1001, message=b"server shutdown")


def settle_gc_for_serving() -> None:
    """For a process that does nothing but serve (``mockrealtime serve``, the container).

    The cassettes loaded at start-up live as long as the process, yet every full collection walks
    them; a replay allocates a little per frame, so collections come often. Freezing what exists
    now and collecting young objects less often took the latency tail (p99) from 1.6-2.3x a bare
    aiohttp server to 1.2-1.7x in benchmarks/replay.py. Not for library use: the pytest fixture
    runs inside the user's test process, whose collector is not ours to tune.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def make_app(config: ServerConfig | None = None) -> web.Application:
    """The mockrealtime application: Realtime endpoints, cassette-prefixed paths and /healthz."""
    config = config or ServerConfig()
    _plan.FRAME_CACHE_BYTES = config.frame_cache_mb * 1024 * 1024  # one budget per process: the plans are shared
    install_log_scrubbing()
    app = web.Application(middlewares=[admin_guard(config)] if config.admin_enabled else [])
    app[STATE] = MockState(config)
    app.router.add_get("/healthz", healthz)
    for path in REALTIME_PATHS:
        app.router.add_get(path, realtime)
    app.router.add_get("/c/{name}", realtime)
    app.router.add_get("/c/{name}/{tail:.*}", realtime)
    app.on_shutdown.append(_close_sockets)
    if config.admin_enabled:
        add_admin_routes(app)
    add_rest_routes(app)
    return app

