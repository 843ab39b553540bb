"""The background server the pytest fixture shares, and per-test routes on it (library.register, state.routes)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import threading

import pytest
from openai import AsyncOpenAI, OpenAI

from mockrealtime.config import ServerConfig
from mockrealtime.errors import CassetteFormatError
from mockrealtime.core.library import CassetteLibrary, bundled_cassette_dir
from mockrealtime.testing.runner import BackgroundServer

HELLO = f"{bundled_cassette_dir()}/hello.yaml"
HELLO_BETA = f"{bundled_cassette_dir()}/hello.beta.yaml"
# A bound on what would otherwise hang, well under pytest-timeout's minute; never a timing assertion.
HANG_S = 40
USER_HELLO = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}


@pytest.fixture(scope="module")
def background():
    with BackgroundServer(ServerConfig(port=0)) as server:
        yield server


def test_register_serves_files_under_a_name_that_is_not_listed(tmp_path):
    shutil.copy(HELLO, tmp_path / "greeting.yaml")
    shutil.copy(f"{bundled_cassette_dir()}/hello.s0.server.pcm16.wav", tmp_path)
    library = CassetteLibrary(bundled_cassette_dir())
    variants = library.register("t1", [str(tmp_path / "greeting.yaml"), HELLO_BETA])
    assert variants == {"ga": str(tmp_path / "greeting.yaml"), "beta": HELLO_BETA}
    assert library.resolve("t1", "ga").path == str(tmp_path / "greeting.yaml")
    assert library.resolve("t1", "beta").path == HELLO_BETA
    assert "t1" not in library.names()
    library.unregister("t1")
    with pytest.raises(Exception, match="no cassette named 't1'"):
        library.resolve("t1", "ga")


def test_register_loads_now_so_a_broken_cassette_fails_at_once(tmp_path):
    (tmp_path / "broken.yaml").write_text("version: 1\nsessions: nope\n")
    with pytest.raises(CassetteFormatError, match=r"broken\.yaml"):
        CassetteLibrary(bundled_cassette_dir()).register("t1", [str(tmp_path / "broken.yaml")])


def test_sync_and_async_sdk_clients_share_the_background_server(background):
    async def async_client() -> str:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=background.ws_url + "/c/hello/v1")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            return (await conn.recv()).type

    client = OpenAI(api_key="sk-test", websocket_base_url=background.ws_url + "/c/hello/v1")
    with client.realtime.connect(model="gpt-realtime") as conn:
        assert conn.recv().type == "session.created"
        assert asyncio.run(async_client()) == "session.created"


def test_a_route_carries_its_own_pace_and_matching(background):
    state = background.state

    def install() -> None:
        state.library.register("slow", [HELLO])
        state.routes["slow"] = dataclasses.replace(state.config, pace=2.0, match="type")

    background.call(install)
    client = OpenAI(api_key="sk-test", websocket_base_url=background.ws_url + "/c/slow/v1")
    with client.realtime.connect(model="gpt-realtime") as conn:
        conn.recv()
        conn.session.update(session={"type": "realtime", "tools": [{"type": "function", "name": "other"}]})
        assert conn.recv().type == "session.updated"  # matched on type alone
    report = background.call(lambda: [r for r in state.connections if r.route == "slow"][-1])
    assert (report.engine.pace, report.engine.matcher.mode, report.engine.divergences) == (2.0, "type", [])
    assert (report.socket is not None) == report.open  # known while open (to close it), let go at close


def test_calls_run_in_the_servers_loop_thread(background):
    assert background.call(threading.current_thread).name == "mockrealtime-server"


def test_stop_does_not_wait_for_a_client_that_never_answers_the_close():
    server = BackgroundServer(ServerConfig(port=0), close_timeout_s=0.1).start()
    loop = asyncio.new_event_loop()

    async def connect():
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=server.ws_url + "/v1")
        conn = await client.realtime.connect(model="gpt-realtime").enter()
        await conn.recv()
        return conn

    conn = loop.run_until_complete(connect())  # then its loop never runs again: no close answer
    # waiting for the answer would take aiohttp's shutdown timeout twice, about two minutes: a hang
    stopping = threading.Thread(target=server.stop, daemon=True)
    stopping.start()
    stopping.join(HANG_S)
    assert not stopping.is_alive(), "stop() is waiting for a client that never answers the close"
    loop.run_until_complete(conn.close())
    loop.close()


def test_start_reports_a_port_in_use():
    with BackgroundServer(ServerConfig(port=0)) as first:
        with pytest.raises(OSError):
            BackgroundServer(ServerConfig(port=first.port)).start()


def test_healthz_answers_on_the_announced_port(background):
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(background.http_url + "/healthz", timeout=5) as response:
        assert json.loads(response.read())["status"] == "ok"
