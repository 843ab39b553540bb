"""The upstream leg: one connection to the live Realtime API, relayed and recorded.

Used by ``mockrealtime record`` (:mod:`mockrealtime.net.record`), which relays every connection,
and by ``new_episodes`` (:mod:`mockrealtime.net.episodes`), which relays a connection once the
replay no longer holds what it does.

:class:`Upstream` opens the same connection upstream that the client opened: path, query,
``Authorization``, ``api-key``, ``OpenAI-Beta`` and the other end-to-end headers, the offered
subprotocols; with ``upstream_api_key`` set, that key replaces the client's credentials.
:class:`Relay` then moves frames both ways unchanged and tells the sans-IO
:class:`~mockrealtime.core.recording.SessionRecording` about each one.

Nothing secret is logged: log lines name the connection and event types, and exceptions are
described with their query strings and known credentials removed (:func:`describe`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from mockrealtime.config import ServerConfig, url_label
from mockrealtime.core.events import Direction
from mockrealtime.core.recording import SessionRecording
from mockrealtime.core.redaction import KEY_SUBPROTOCOL, REDACTED, SECRET_PATTERNS, TRANSPORT_HEADERS, Redactor

log = logging.getLogger("mockrealtime.record")

LOST_REASON = "mockrealtime: upstream connection lost"
#: Close codes a close frame may carry (1005, 1006 and 1015 only describe what happened).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})

#: Filled by the client middleware when the upstream answers the upgrade with an HTTP error, so
#: its status, content type and body can be relayed (WSServerHandshakeError keeps no body).
REFUSAL: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("mockrealtime_refusal", default=None)


async def _keep_refusal(request: aiohttp.ClientRequest, handler: Any) -> aiohttp.ClientResponse:
    response = await handler(request)
    holder = REFUSAL.get()
    if response.status != 101 and holder is not None:
        holder["content_type"] = response.headers.get("Content-Type")
        try:
            holder["body"] = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            holder["body"] = b""
    return response


class Upstream:
    """Where the live API is and how to open a client's connection there (``config.upstream``)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.url = URL(config.upstream)
        self.label = url_label(config.upstream)
        self.fixed_path = self.url.path not in ("", "/")

    def client_session(self) -> aiohttp.ClientSession:
        """The HTTP client session connections go through (its owner closes it)."""
        timeout = aiohttp.ClientTimeout(total=None, connect=self.config.connect_timeout_s)
        return aiohttp.ClientSession(timeout=timeout, middlewares=(_keep_refusal,), auto_decompress=True)

    def url_for(self, raw_path: str, query: Mapping[str, str]) -> URL:
        """With a fixed path, that path; else the client's own. The client's query over the upstream's."""
        url = self.url if self.fixed_path else self.url.with_path(raw_path, encoded=True)
        merged = dict(self.url.query)
        merged.update(query)
        return url.with_query(merged)

    def forward_headers(self, headers: Mapping[str, str]) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        for name, value in headers.items():
            if name.lower() not in TRANSPORT_HEADERS:
                out.add(name, value)
        key = self.config.upstream_api_key
        if key:
            azure = "api-key" in out
            out.popall("Authorization", None)
            out.popall("api-key", None)
            if azure:
                out["api-key"] = key
            else:
                out["Authorization"] = f"Bearer {key}"
        return out

    def forward_protocols(self, offered: list[str]) -> list[str]:
        key = self.config.upstream_api_key
        if not key:
            return offered
        return [KEY_SUBPROTOCOL + key if p.startswith(KEY_SUBPROTOCOL) else p for p in offered]

    async def connect(
        self, http: aiohttp.ClientSession, raw_path: str, query: Mapping[str, str], headers: Mapping[str, str],
        offered: list[str],
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        """Open the client's connection upstream. Raises ``WSServerHandshakeError`` when the upstream
        refuses the upgrade (its body in :data:`REFUSAL` when the caller set a holder), and
        ``ClientError``, ``OSError`` or ``TimeoutError`` when it cannot be reached."""
        return await http.ws_connect(
            self.url_for(raw_path, query),
            headers=self.forward_headers(headers),
            protocols=self.forward_protocols(offered),
            compress=0,
            max_msg_size=0,
            autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self.config.close_timeout_s),
        )


def describe(exc: BaseException, secrets: Collection[str], redactor: Redactor) -> str:
    """An exception as it may be logged or saved: query strings and credentials removed."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = re.sub(r"\?[^\s'\"]*", "?" + REDACTED, text)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return redactor.scrub_text(text)


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


def install_log_scrubbing() -> None:
    for name in _AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _SCRUB not in logger.filters:
            logger.addFilter(_SCRUB)


def sendable(code: int | None, default: int = 1000) -> int:
    return code if code is not None and (code in _SENDABLE or 3000 <= code < 5000) else default


def close_reason(text: str | None) -> bytes:
    return (text or "").encode("utf-8")[:123]  # a close frame holds at most 123 bytes of reason


_TYPE_RE = re.compile(r'"type"\s*:\s*"([^"]{1,80})"')


def _event_type(text: str) -> str:
    m = _TYPE_RE.search(text, 0, 200)
    return m.group(1) if m else "?"


class Relay:
    """One client connection and its upstream connection, relayed both ways and recorded.

    ``on_client_text`` (optional) sees every client text frame as it goes upstream.
    """

    __slots__ = ("ws", "upstream", "rec", "number", "describe", "on_client_text", "_debug")

    def __init__(self, ws: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse[bool], rec: SessionRecording,
                 number: int, describe: Callable[[BaseException], str],
                 on_client_text: Callable[[str, float], None] | None = None) -> None:
        self.ws, self.upstream, self.rec, self.number, self.describe = ws, upstream, rec, number, describe
        self.on_client_text = on_client_text
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
                now_ms = clock() * 1000.0
                rec.client_text(msg.data, now_ms)
                if self.on_client_text is not None:
                    self.on_client_text(msg.data, now_ms)
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
                    await upstream.close(code=sendable(code), message=close_reason(reason))
                return
            else:  # CLOSING: we are closing it (already recorded); CLOSED or ERROR: the client is gone
                if rec.open:
                    if kind is WSMsgType.CLOSED:  # aiohttp reports 1000 here; 1006 says what happened
                        code, error = 1006, "client connection lost without a close frame"
                    else:
                        code, error = ws.close_code or 1006, f"client connection error: {self.describe(msg.data)}"
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
                    await ws.close(code=sendable(code), message=close_reason(reason))
                return
            else:  # CLOSING: we are closing it (already recorded); CLOSED or ERROR: the upstream is gone
                if rec.open:
                    error = ("upstream connection lost without a close frame" if kind is WSMsgType.CLOSED
                             else f"upstream connection error: {self.describe(msg.data)}")
                    rec.end("server", 1014, LOST_REASON, error=error)
                    log.warning("= connection %d: %s", self.number, error)
                    await ws.close(code=1014, message=close_reason(LOST_REASON))
                return

    async def close_both(self, code: int, reason: str) -> None:
        message = close_reason(reason)
        await asyncio.gather(self.ws.close(code=code, message=message),
                             self.upstream.close(code=1001, message=message), return_exceptions=True)


def offered_protocols(request: web.Request) -> list[str]:
    """The subprotocols a client offered, over every ``Sec-WebSocket-Protocol`` header."""
    offered: list[str] = []
    for header in request.headers.getall("Sec-WebSocket-Protocol", ()):
        offered += [p.strip() for p in header.split(",") if p.strip()]
    return offered
