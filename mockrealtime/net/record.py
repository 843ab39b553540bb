"""Record mode's upstream leg: relay WebSocket connections to the real Realtime API and record them.

A client connects to the recorder as it would to the API (its real key, its own path and query);
the recorder opens the same connection upstream (``aiohttp.ClientSession.ws_connect``: path, query,
``Authorization``, ``api-key``, ``OpenAI-Beta`` and the other end-to-end headers, the offered
subprotocols), answers the client with the subprotocol the upstream chose, or with the upstream's
own HTTP error when it refused the upgrade, then relays frames both ways unchanged and tells the
sans-IO :class:`~mockrealtime.core.recording.Recorder` about each one. Every decision about what is
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
import contextvars
import logging
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from mockrealtime.core.events import Direction
from mockrealtime.core.recording import Recorder, SessionRecording
from mockrealtime.core.redaction import KEY_SUBPROTOCOL, REDACTED, SECRET_PATTERNS, redact_query
from mockrealtime.net.record_rest import add_rest_relay
from mockrealtime.net.record_config import OPENAI_REALTIME_URL, RecordConfig
from mockrealtime.net.record_state import RECORDER, RecorderState

__all__ = [
    "FAULT_REASON", "LOST_REASON", "OPENAI_REALTIME_URL", "RECORDER", "SHUTDOWN_REASON", "RecordConfig", "RecorderState",
    "RecordingHandle", "bind_socket", "make_record_app", "recording_server",
]

log = logging.getLogger("mockrealtime.record")

SHUTDOWN_REASON = "mockrealtime: recorder shutting down"
LOST_REASON = "mockrealtime: upstream connection lost"
FAULT_REASON = "mockrealtime: recorder error"
#: Close codes a close frame may carry (1005, 1006 and 1015 only describe what happened).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


#: Filled by the client middleware when the upstream answers the upgrade with an HTTP error, so
#: its status, content type and body can be relayed (WSServerHandshakeError keeps no body).
_REFUSAL: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("mockrealtime_refusal", default=None)


async def _keep_refusal(request: aiohttp.ClientRequest, handler: Any) -> aiohttp.ClientResponse:
    response = await handler(request)
    holder = _REFUSAL.get()
    if response.status != 101 and holder is not None:
        holder["content_type"] = response.headers.get("Content-Type")
        try:
            holder["body"] = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            holder["body"] = b""
    return response


_KEY_IN_PROTOCOL = re.compile(re.escape(KEY_SUBPROTOCOL) + r"[^'\"\s,\]]+")


class _ScrubSecrets(logging.Filter):
    """Scrubs what aiohttp's own loggers might print of a handshake (it logs offered subprotocols,
    ``openai-insecure-api-key.<key>`` among them, when none is chosen) and anything key-shaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        scrubbed = _KEY_IN_PROTOCOL.sub(KEY_SUBPROTOCOL + REDACTED, message)
        for pattern, _ in SECRET_PATTERNS:
            scrubbed = pattern.sub(REDACTED, scrubbed)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


_SCRUB = _ScrubSecrets()
_AIOHTTP_LOGGERS = ("aiohttp.websocket", "aiohttp.server", "aiohttp.web", "aiohttp.access", "aiohttp.client")


def _install_log_scrubbing() -> None:
    for name in _AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _SCRUB not in logger.filters:
            logger.addFilter(_SCRUB)


def _sendable(code: int | None, default: int = 1000) -> int:
    return code if code is not None and (code in _SENDABLE or 3000 <= code < 5000) else default


def _reason(text: str | None) -> bytes:
    return (text or "").encode("utf-8")[:123]  # a close frame holds at most 123 bytes of reason


_TYPE_RE = re.compile(r'"type"\s*:\s*"([^"]{1,80})"')


def _event_type(text: str) -> str:
    m = _TYPE_RE.search(text, 0, 200)
    return m.group(1) if m else "?"


class _Link:
    """One client connection and its upstream connection, relayed both ways."""

    __slots__ = ("ws", "upstream", "rec", "number", "state", "_debug")

    def __init__(self, ws: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse[bool], rec: SessionRecording,
                 number: int, state: RecorderState) -> None:
        self.ws, self.upstream, self.rec, self.number, self.state = ws, upstream, rec, number, state
        self._debug = log.isEnabledFor(logging.DEBUG)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # The upstream's side first: what it sent during the client's handshake (session.created)
        # came before anything the client sends now, and a replay must find it in that order.
        tasks = [loop.create_task(self._upstream_to_client()), loop.create_task(self._client_to_upstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _client_to_upstream(self) -> None:
        ws, upstream, rec = self.ws, self.upstream, self.rec
        clock = asyncio.get_running_loop().time
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                rec.client_text(msg.data, clock() * 1000.0)
                if self._debug:
                    log.debug("< %d %s", self.number, _event_type(msg.data))
                try:
                    await upstream.send_str(msg.data)
                except ConnectionError:
                    return  # the upstream is going; its side records how
            elif kind is WSMsgType.BINARY:
                rec.binary(Direction.CLIENT, len(msg.data), clock() * 1000.0)
                try:
                    await upstream.send_bytes(msg.data)
                except ConnectionError:
                    return
            elif kind is WSMsgType.CLOSE:
                code, reason = msg.data, msg.extra or ""
                if rec.end("client", code, reason):
                    log.info("= connection %d: the client closed with %s", self.number, code)
                    await upstream.close(code=_sendable(code), message=_reason(reason))
                return
            else:  # CLOSING: we are closing it (already recorded); CLOSED or ERROR: the client is gone
                if rec.open:
                    if kind is WSMsgType.CLOSED:  # aiohttp reports 1000 here; 1006 says what happened
                        code, error = 1006, "client connection lost without a close frame"
                    else:
                        code, error = ws.close_code or 1006, f"client connection error: {self.state.describe(msg.data)}"
                    rec.end("client", code, None, error=error)
                    log.info("= connection %d: %s", self.number, error)
                    await upstream.close(code=1001, message=b"client went away")
                return

    async def _upstream_to_client(self) -> None:
        ws, upstream, rec = self.ws, self.upstream, self.rec
        clock = asyncio.get_running_loop().time
        while True:
            msg = await upstream.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                rec.server_text(msg.data, clock() * 1000.0)
                if self._debug:
                    log.debug("> %d %s", self.number, _event_type(msg.data))
                try:
                    await ws.send_str(msg.data)
                except ConnectionError:
                    return
            elif kind is WSMsgType.BINARY:
                rec.binary(Direction.SERVER, len(msg.data), clock() * 1000.0)
                try:
                    await ws.send_bytes(msg.data)
                except ConnectionError:
                    return
            elif kind is WSMsgType.CLOSE:
                code, reason = msg.data, msg.extra or ""
                if rec.end("server", code, reason):
                    log.info("= connection %d: the upstream closed with %s", self.number, code)
                    await ws.close(code=_sendable(code), message=_reason(reason))
                return
            else:  # CLOSING: we are closing it (already recorded); CLOSED or ERROR: the upstream is gone
                if rec.open:
                    error = ("upstream connection lost without a close frame" if kind is WSMsgType.CLOSED
                             else f"upstream connection error: {self.state.describe(msg.data)}")
                    rec.end("server", 1014, LOST_REASON, error=error)
                    log.warning("= connection %d: %s", self.number, error)
                    await ws.close(code=1014, message=_reason(LOST_REASON))
                return

    async def close_both(self, code: int, reason: str) -> None:
        message = _reason(reason)
        await asyncio.gather(self.ws.close(code=code, message=message),
                             self.upstream.close(code=1001, message=message), return_exceptions=True)


def _offered_protocols(request: web.Request) -> list[str]:
    offered: list[str] = []
    for header in request.headers.getall("Sec-WebSocket-Protocol", ()):
        offered += [p.strip() for p in header.split(",") if p.strip()]
    return offered


async def relay(request: web.Request) -> web.StreamResponse:
    state = request.app[RECORDER]
    offered = _offered_protocols(request)
    # offering the client's own protocols: a probe without overlap makes aiohttp log them (a key)
    if not web.WebSocketResponse(protocols=offered).can_prepare(request).ok:
        return web.Response(status=426, text="mockrealtime record: this endpoint relays Realtime API WebSocket connections\n")
    assert state.http is not None
    state.connections += 1
    number = state.connections
    holder: dict[str, Any] = {}
    _REFUSAL.set(holder)
    query_label = "&".join(f"{k}={v}" for k, v in redact_query(request.query.items()).items())
    where = request.path + (f"?{query_label}" if query_label else "")
    try:
        upstream = await state.http.ws_connect(
            state.upstream_url(request),
            headers=state.forward_headers(request.headers),
            protocols=state.forward_protocols(offered),
            compress=0,
            max_msg_size=0,
            autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=state.config.close_timeout_s),
        )
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
    link = _Link(ws, upstream, rec, number, state)
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
        "status": "ok", "mode": "record", "upstream": state.upstream_label, "output": state.config.output,
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
    timeout = aiohttp.ClientTimeout(total=None, connect=state.config.connect_timeout_s)
    state.http = aiohttp.ClientSession(timeout=timeout, middlewares=(_keep_refusal,), auto_decompress=True)
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


def make_record_app(config: RecordConfig, recorder: Recorder | None = None) -> web.Application:
    """The recorder: every path relays to the upstream, except ``GET /healthz``.

    ``recorder`` lets a caller bring its own; by default a new one named after ``config.output``.
    """
    _install_log_scrubbing()
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

    @property
    def errors(self) -> list[Exception]:
        """Saves that failed (SecretLeftError, I/O errors), oldest first."""
        return list(self.state.errors)

    def save(self) -> list[str]:
        """Save now, open sessions as they stand; raises SecretLeftError when a secret remains."""
        return self.state.save()


class recording_server:  # noqa: N801 - used like a function: ``async with recording_server(c) as (url, h)``
    """Run a recorder on the running event loop::

        async with recording_server(RecordConfig(upstream, "out.yaml")) as (url, handle):
            client = AsyncOpenAI(websocket_base_url=url + "/v1")
            ...
        handle.saved_paths

    Leaving closes open connections (recorded as ended by the recorder, 1001) and saves; if a
    session was refused for a secret left in it, or the last save failed, the error is raised
    unless the block itself raised.
    """

    def __init__(self, config: RecordConfig, recorder: Recorder | None = None) -> None:
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
