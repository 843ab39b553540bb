"""``mockrealtime record``: relay every WebSocket connection to the real Realtime API and record it.

A client connects to the recorder as it would to the API (its real key, its own path and query);
the recorder opens the same connection upstream (:class:`~mockrealtime.net.upstream.Upstream`:
path, query, ``Authorization``, ``api-key``, ``OpenAI-Beta`` and the other end-to-end headers, the
offered subprotocols), answers the client with the subprotocol the upstream chose, or with the
upstream's own HTTP error when it refused the upgrade, then relays frames both ways unchanged
(:class:`~mockrealtime.net.upstream.Relay`) and tells the sans-IO
:class:`~mockrealtime.core.recording.Recorder` about each one. Every decision about what is
kept lives there and in :mod:`mockrealtime.core.redaction`; this module moves frames and keeps time.

The output folder is checked at start: a recorder that could not save refuses to start. The
cassette grows as sessions go (see :mod:`mockrealtime.core.cassette_appender`: checked for
secrets, appended, never rewritten, in a worker thread so the relay never waits on the disk): what
a session did is saved when it ends, at a checkpoint every ``checkpoint_s`` seconds while it is
open (so a crash or SIGKILL loses at most that much),
and when the app shuts down (``on_shutdown`` records the open sessions as ended by the recorder,
with 1001, and saves before closing anything; ``cleanup_ctx`` saves once more at the very end). A
fault in the relay ends that session with 1011 and its error, and saves.

Nothing secret is logged: log lines name the connection, the path, the redacted query and event
types, and exceptions are described with their query strings and known credentials removed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from mockrealtime.config import OPENAI_REALTIME_URL, ServerConfig
from mockrealtime.core.recording import Recorder
from mockrealtime.core.redaction import redact_query
from mockrealtime.net.record_rest import add_rest_relay
from mockrealtime.net.record_state import RECORDER, RecorderState
from mockrealtime.net.upstream import LOST_REASON, REFUSAL, Relay, install_log_scrubbing, offered_protocols

__all__ = [
    "FAULT_REASON", "LOST_REASON", "OPENAI_REALTIME_URL", "RECORDER", "SHUTDOWN_REASON", "RecorderState",
    "RecordingHandle", "bind_socket", "make_record_app", "recording_server",
]

log = logging.getLogger("mockrealtime.record")

SHUTDOWN_REASON = "mockrealtime: recorder shutting down"
FAULT_REASON = "mockrealtime: recorder error"


async def relay(request: web.Request) -> web.StreamResponse:
    state = request.app[RECORDER]
    offered = offered_protocols(request)
    # offering the client's own protocols: a probe without overlap makes aiohttp log them (a key)
    if not web.WebSocketResponse(protocols=offered).can_prepare(request).ok:
        return web.Response(status=426, text="mockrealtime record: this endpoint relays Realtime API WebSocket connections\n")
    assert state.http is not None
    state.connections += 1
    number = state.connections
    holder: dict[str, Any] = {}
    REFUSAL.set(holder)
    query_label = "&".join(f"{k}={v}" for k, v in redact_query(request.query.items()).items())
    where = request.path + (f"?{query_label}" if query_label else "")
    try:
        upstream = await state.upstream.connect(state.http, request.rel_url.raw_path, request.query, request.headers, offered)
    except aiohttp.WSServerHandshakeError as exc:
        log.warning("= connection %d: %s: the upstream refused the upgrade with HTTP %d (relayed, not recorded)", number, where, exc.status)
        headers = {"Content-Type": holder.get("content_type") or "text/plain; charset=utf-8"}
        return web.Response(status=exc.status or 502, body=holder.get("body") or b"", headers=headers)
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        detail = state.describe(exc)
        log.warning("= connection %d: %s: cannot reach the upstream %s: %s", number, where, state.upstream_label, detail)
        return web.json_response(
            {"error": {"type": "server_error", "code": "upstream_unreachable",
                       "message": f"mockrealtime record: cannot reach the upstream {state.upstream_label}: {detail}"}},
            status=504 if isinstance(exc, asyncio.TimeoutError) else 502,
        )
    ws = web.WebSocketResponse(
        protocols=(upstream.protocol,) if upstream.protocol else (),
        compress=False, max_msg_size=0, autoping=True, timeout=state.config.close_timeout_s,
    )
    try:
        await ws.prepare(request)
    except BaseException:
        await upstream.close(code=1001, message=b"client went away")
        raise
    clock = asyncio.get_running_loop().time
    rec = state.recorder.open(clock() * 1000.0, path=request.path, query=list(request.query.items()),
                              headers=list(request.headers.items()), subprotocols=offered)
    link = Relay(ws, upstream, rec, number, state.describe)
    state.links.add(link)
    log.info("= connection %d: %s (%s) -> %s", number, where, rec.dialect, state.upstream_label)
    try:
        await link.run()
    except Exception as exc:
        error = f"recorder error: {state.describe(exc)}"
        if rec.end("server", 1011, FAULT_REASON, error=error):
            log.error("= connection %d: %s; the session ends here and is saved", number, error)
        await link.close_both(1011, FAULT_REASON)
    finally:
        state.links.discard(link)
        if rec.open:  # cancelled (shutdown timeout): still say how it ended
            rec.end("server", 1001, SHUTDOWN_REASON, error="relay cancelled")
        if not upstream.closed:
            await upstream.close(code=1001, message=b"")
        await state.save_quietly()
    return ws


async def healthz(request: web.Request) -> web.Response:
    state = request.app[RECORDER]
    return web.json_response({
        "status": "ok", "mode": "record", "upstream": state.upstream_label, "output": state.output,
        "sessions": len(state.recorder.recordings), "open": len(state.links),
    })


async def _on_shutdown(app: web.Application) -> None:
    state = app[RECORDER]
    links = list(state.links)
    for link in links:
        if link.rec.end("server", 1001, SHUTDOWN_REASON, error="recorder shut down"):
            log.info("= connection %d: ended by the recorder shutting down", link.number)
    if links:
        await state.save_quietly()  # before closing anything: a close that hangs cannot lose the recording
    await asyncio.gather(*(link.close_both(1001, SHUTDOWN_REASON) for link in links), return_exceptions=True)


async def _checkpoints(state: RecorderState) -> None:
    while True:
        await asyncio.sleep(state.config.checkpoint_s)
        if state.links:
            await state.save_quietly(checkpoint=True)


async def _upstream_session(app: web.Application) -> AsyncIterator[None]:
    state = app[RECORDER]
    state.http = state.upstream.client_session()
    state.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mockrealtime-record")
    checkpoints = asyncio.get_running_loop().create_task(_checkpoints(state))
    try:
        yield
    finally:
        checkpoints.cancel()
        await asyncio.gather(checkpoints, return_exceptions=True)
        await state.save_quietly()
        state.pool.shutdown(wait=True)
        state.pool = None
        state.recorder.close()
        await state.http.close()


def make_record_app(config: ServerConfig, recorder: Recorder | None = None) -> web.Application:
    """The recorder: every path relays to the upstream, except ``GET /healthz``.

    ``recorder`` lets a caller bring its own; by default a new one named after ``config.output``.
    """
    install_log_scrubbing()
    app = web.Application()
    app[RECORDER] = RecorderState(config, recorder)
    app.router.add_get("/healthz", healthz)
    add_rest_relay(app, lambda request: request.app[RECORDER])
    app.router.add_get("/{tail:.*}", relay)
    app.on_shutdown.append(_on_shutdown)
    app.cleanup_ctx.append(_upstream_session)
    return app


class RecordingHandle:
    """A running recorder, for tests and the pytest plugin."""

    def __init__(self, app: web.Application, url: str) -> None:
        self.app = app
        #: ``ws://host:port``; the openai SDK wants :attr:`websocket_base_url`.
        self.url = url

    @property
    def websocket_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def state(self) -> RecorderState:
        return self.app[RECORDER]

    @property
    def recorder(self) -> Recorder:
        return self.state.recorder

    @property
    def saved_paths(self) -> list[str]:
        """Every file written so far (cassettes and sidecars), in the order first written."""
        return list(self.state.saved_paths)



class recording_server:  # noqa: N801 - used like a function: ``async with recording_server(c) as (url, h)``
    """Run a recorder on the running event loop::

        async with recording_server(ServerConfig(upstream=upstream, output="out.yaml", port=0)) as (url, handle):
            client = AsyncOpenAI(websocket_base_url=url + "/v1")
            ...
        handle.saved_paths

    Leaving closes open connections (recorded as ended by the recorder, 1001) and saves; if a
    session was refused for a secret left in it, or the last save failed, the error is raised
    unless the block itself raised.
    """

    def __init__(self, config: ServerConfig, recorder: Recorder | None = None) -> None:
        self.config = config
        self._recorder = recorder
        self._runner: web.AppRunner | None = None
        self.handle: RecordingHandle | None = None

    async def __aenter__(self) -> tuple[str, RecordingHandle]:
        app = make_record_app(self.config, self._recorder)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.config.close_timeout_s * 2)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        url = f"ws://{host}:{port}" if ":" not in host else f"ws://[{host}]:{port}"
        self.handle = RecordingHandle(app, url)
        return url, self.handle

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._runner is not None and self.handle is not None
        await self._runner.cleanup()
        error = self.handle.state.last_error
        if exc_type is None and error is not None:
            raise error


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket bound before the app runs, so port 0 can be announced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock
