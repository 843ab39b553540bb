"""Headless Chromium driven over its DevTools protocol (CDP), with aiohttp as the only client.

``async with Chromium(binary, profile_dir) as browser: value = await browser.evaluate(url, expr)``
opens ``url`` in a fresh profile and returns what ``expr`` (a Promise is awaited) evaluates to.
Console lines and uncaught exceptions of the page are kept in :attr:`Chromium.console` for reports.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server", "--remote-debugging-port=0",
)
START_TIMEOUT_S = 30.0


class Chromium:
    def __init__(self, binary: str, profile_dir: Path) -> None:
        self.binary = binary
        self.profile_dir = profile_dir
        self.console: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Chromium:
        self._proc = subprocess.Popen([self.binary, *FLAGS, f"--user-data-dir={self.profile_dir}", "about:blank"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = await self._devtools_port()
        self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t["type"] == "page")
        self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.ensure_future(self._read())
        await self.send("Runtime.enable")
        await self.send("Page.enable")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    async def _devtools_port(self) -> int:
        marker = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode} before it listened")
            if marker.is_file():
                first = marker.read_text().split("\n", 1)[0].strip()
                if first:
                    return int(first)
            await asyncio.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            data = json.loads(msg.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif data.get("method") == "Runtime.consoleAPICalled":
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in data["params"]["args"]))
            elif data.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + json.dumps(data["params"]["exceptionDetails"])[:2000])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        n = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[n] = future
        await self._ws.send_json({"id": n, "method": method, "params": params})
        reply = await asyncio.wait_for(future, START_TIMEOUT_S)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    async def evaluate(self, url: str, expression: str, timeout_s: float = 30.0) -> Any:
        """Open ``url``, then the value of ``expression`` (awaited if a Promise), by value."""
        await self.send("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        while True:  # the page's module script may not have run yet
            probe = await self.send("Runtime.evaluate", expression=f"typeof ({expression})", returnByValue=True)
            if probe["result"].get("value") not in (None, "undefined") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        result = await asyncio.wait_for(
            self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True),
            max(deadline - time.monotonic(), 1.0),
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"the page threw: {result['exceptionDetails']}")
        return result["result"].get("value")
