"""mockrealtime in a background thread with its own event loop.

The pytest fixture shares one server between sync and async tests, and between the openai SDK's
sync and async clients: none of them may own the server's loop, so the server gets a thread of
its own. Everything that touches the app's state runs in that loop; other threads go through
:meth:`BackgroundServer.run` (a coroutine) or :meth:`BackgroundServer.call` (a plain function),
which hand the work over with ``asyncio.run_coroutine_threadsafe`` and wait for the result.

Shutdown never waits for clients: open WebSockets are closed with 1001 and, if a client does not
answer the close within ``close_timeout_s``, dropped (aiohttp would otherwise wait for them, twice
its shutdown timeout, about two minutes by default).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from aiohttp import web

from mockrealtime.config import ServerConfig
from mockrealtime.net.server import STATE, MockState, make_app
from mockrealtime.net.tls import ServerTLS, server_tls, throwaway_tls, wants_tls

T = TypeVar("T")

#: How long a client gets to answer our close frame before its connection is dropped.
CLOSE_TIMEOUT_S = 0.5
#: How long a call into the loop may take before the caller gives up (a wedged loop is a bug).
CALL_TIMEOUT_S = 30.0


class BackgroundServer:
    """A mockrealtime server on ``host:port`` (port 0: a free one), served from a daemon thread."""

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        app_factory: Callable[[ServerConfig], web.Application] = make_app,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> None:
        self.config = config or ServerConfig(port=0)
        self.close_timeout_s = close_timeout_s
        self._app_factory = app_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.app: web.Application | None = None
        self.port: int | None = None
        #: The wss:// listener, opened on first use of :meth:`tls` (same app, another port).
        self.tls_port: int | None = None
        self._tls: ServerTLS | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> BackgroundServer:
        if self._thread is not None:
            raise RuntimeError("mockrealtime: the background server is already started")
        self._thread = threading.Thread(target=self._main, name="mockrealtime-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def stop(self) -> None:
        """Close every connection, stop the server and its loop; idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            try:
                self.run(self._shutdown())
            finally:
                loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._setup())
        except BaseException as exc:  # reported to start()'s caller
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _setup(self) -> None:
        self.app = self._app_factory(self.config)
        # shutdown_timeout bounds how long cleanup waits for handlers; sockets are closed first
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=self.close_timeout_s)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        if self.app is not None and STATE in self.app:
            await close_sockets(list(self.app[STATE].sockets), self.close_timeout_s)
        if self._runner is not None:
            await self._runner.cleanup()

    def tls(self) -> ServerTLS:
        """Serve the same app over TLS too (once, on a port of its own); the context and CA file.

        The certificate is the configuration's own (``certfile``) or a throwaway one for loopback.
        """
        if self._tls is None:
            tls = server_tls(self.config) if wants_tls(self.config) else throwaway_tls(self.config.tls_dir)
            self.tls_port = self.run(self._add_site(tls))
            self._tls = tls
        return self._tls

    async def _add_site(self, tls: ServerTLS) -> int:
        assert self._runner is not None
        before = set(map(tuple, self._runner.addresses))
        site = web.TCPSite(self._runner, self.config.host, 0, ssl_context=tls.context)
        await site.start()
        added = [a for a in self._runner.addresses if tuple(a) not in before]
        return int(added[0][1])

    # -- calls into the loop ---------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = CALL_TIMEOUT_S) -> T:
        """Run a coroutine in the server's loop from another thread; returns its result."""
        loop = self._loop
        if loop is None or not loop.is_running():
            coro.close()
            raise RuntimeError("mockrealtime: the background server is not running")
        if _running_loop() is loop:
            coro.close()
            raise RuntimeError("mockrealtime: BackgroundServer.run() called from the server's own loop")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a plain function in the server's loop (where the app's state lives)."""

        async def wrapper() -> T:
            return fn(*args, **kwargs)

        return self.run(wrapper())

    # -- what clients need -----------------------------------------------------------------

    @property
    def state(self) -> MockState:
        if self.app is None:
            raise RuntimeError("mockrealtime: the background server is not started")
        return self.app[STATE]

    @property
    def host(self) -> str:
        return "127.0.0.1" if self.config.host in ("0.0.0.0", "::", "") else self.config.host

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def wss_url(self) -> str:
        """``wss://host:port`` of the TLS listener (started by this call if need be)."""
        self.tls()
        return f"wss://{self.host}:{self.tls_port}"


async def close_sockets(sockets: Iterable[web.WebSocketResponse], timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Close WebSockets with 1001; a client that does not answer within ``timeout_s`` is dropped."""

    async def close(ws: web.WebSocketResponse) -> None:
        try:
            await asyncio.wait_for(ws.close(code=1001, message=b"going away"), timeout_s)
        except (asyncio.TimeoutError, ConnectionError):
            pass  # aiohttp closed the transport on the timeout

    await asyncio.gather(*(close(ws) for ws in sockets if not ws.closed))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["BackgroundServer", "close_sockets"]
