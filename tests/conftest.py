"""Shared fixtures: a real mockrealtime server on a loopback port, and the event-shape oracle."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from mockrealtime.config import ServerConfig
from mockrealtime.net.server import STATE, MockState, make_app

# websockets >= 15 honours proxy variables; loopback must never go through a proxy
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

pytest_plugins = ["pytester"]  # the plugin's own tests drive pytest in pytest
# The plugin loads by its entry point once mockrealtime is installed (CI: pip install '.[test]').
# Run from a checkout that is not installed, load it here; loading it twice is an error.
if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") or not any(
    ep.name == "mockrealtime" for ep in importlib.metadata.entry_points(group="pytest11")
):
    pytest_plugins.append("mockrealtime.testing.plugin")


@dataclasses.dataclass
class RunningServer:
    app: web.Application
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_url(self, cassette: str | None = None) -> str:
        """What to give the openai SDK as ``websocket_base_url``."""
        return f"{self.ws_url}/c/{cassette}/v1" if cassette else f"{self.ws_url}/v1"

    @property
    def state(self) -> MockState:
        return self.app[STATE]


StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start mockrealtime apps on port 0 in the test's loop; all are cleaned up afterwards."""
    runners: list[web.AppRunner] = []

    async def start(**settings: object) -> RunningServer:
        app = make_app(ServerConfig(port=0, **settings))  # type: ignore[arg-type]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return RunningServer(app, runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    """mockrealtime serving the bundled cassettes."""
    return await start_server()
