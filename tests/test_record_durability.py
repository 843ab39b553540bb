"""The recorder fails fast and loses little (issue #13, item 5; #14, item 6): an output it cannot
write stops it at start; open sessions are checkpointed, so a SIGKILL loses at most the last few
seconds; what is saved is appended, not rewritten, and leaves memory."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading

import aiohttp
import pytest

from mockrealtime.cli import main
from mockrealtime.core import cassette as _cassette
from mockrealtime.core.cassette_appender import AppendingCassette
from mockrealtime.core.events import Direction
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.errors import CassetteError, ConfigError
from mockrealtime.config import ServerConfig
from mockrealtime.net.record import make_record_app, recording_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MS = 0.001 * float(os.environ.get("MOCKREALTIME_TEST_TIMEOUT_FACTOR", "1"))
TIMEOUT_S = 10_000 * MS
HELLO = CassetteLibrary().resolve("hello", "ga").sessions[0]
FIRST_CUE = next(e.event for e in HELLO.events if e.direction is Direction.CLIENT)


async def until(predicate, timeout_s: float = TIMEOUT_S):
    for _ in range(int(timeout_s / (10 * MS))):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(10 * MS)
    raise AssertionError("timed out waiting")


def saved_types(path) -> list[str] | None:
    """Event types of the first saved session, or None while there is none (or the file is new)."""
    try:
        return [e.type for e in _cassette.load(str(path)).sessions[0].events]
    except CassetteError:
        return None


def test_an_output_it_cannot_write_stops_the_recorder_at_start(tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    output = tmp_path / "a-file" / "out.yaml"
    with pytest.raises(ConfigError, match="cannot write the output cassette"):
        asyncio.run(recording_server(ServerConfig(upstream="ws://127.0.0.1:9/v1/realtime", output=str(output), port=0)).__aenter__())
    assert main(["record", "--output", str(output), "--upstream", "ws://127.0.0.1:9/v1/realtime", "--port", "0"]) == 1
    assert "cannot write the output cassette" in capsys.readouterr().err
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(ConfigError, match="it is a directory"):
        make_record_app(ServerConfig(upstream="ws://127.0.0.1:9/v1/realtime", output=str(tmp_path / "folder.yaml"), port=0))
    assert not any(name.startswith(".mockrealtime-probe") for name in os.listdir(tmp_path))


async def test_open_sessions_are_checkpointed_and_leave_memory(start_server, tmp_path, monkeypatch):
    writers: set[int] = set()
    real_append = AppendingCassette.append
    monkeypatch.setattr(AppendingCassette, "append", lambda *a, **kw: writers.add(threading.get_ident()) or real_append(*a, **kw))
    upstream = await start_server()
    out = tmp_path / "open.yaml"
    config = ServerConfig(upstream=f"{upstream.ws_url}/c/hello/v1/realtime", output=str(out), checkpoint_s=0.05, port=0)
    async with recording_server(config) as (url, handle), aiohttp.ClientSession() as http:
        async with http.ws_connect(url + "/v1/realtime") as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            await ws.send_json(FIRST_CUE)
            assert (await ws.receive_json())["type"] == "session.updated"
            # still open: the checkpoint saved it as it stands, and the recorder let go of the frames
            assert await until(lambda: saved_types(out) == ["session.created", "session.update", "session.updated"])
            rec = handle.recorder.recordings[0]
            assert rec.open and rec.frames == []
    session = _cassette.load(str(out)).sessions[0]
    assert session.close is not None and session.close.by == "client"
    assert writers and threading.get_ident() not in writers  # written in a worker: the loop keeps relaying
    assert out.read_text().count("\nsession: 0\n") >= 2  # the open part, then the close in a part of its own


async def test_a_sigkill_loses_at_most_the_last_checkpoint(start_server, tmp_path):
    upstream = await start_server()
    out = tmp_path / "killed.yaml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mockrealtime", "record", "--output", str(out), "--checkpoint-s", "0.1",
        "--upstream", f"{upstream.ws_url}/c/hello/v1/realtime", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    try:
        while "listening:" not in (line := (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT_S)).decode()):
            assert line, "mockrealtime record exited before listening"
        port = int(line.split("ws://", 1)[1].split()[0].rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime") as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            await ws.send_json(FIRST_CUE)
            assert (await ws.receive_json())["type"] == "session.updated"
            await until(lambda: saved_types(out) == ["session.created", "session.update", "session.updated"])
            proc.send_signal(signal.SIGKILL)  # no shutdown, no last save
            await asyncio.wait_for(proc.wait(), TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    session = _cassette.load(str(out)).sessions[0]
    assert [e.type for e in session.events] == ["session.created", "session.update", "session.updated"]
    assert session.close is None  # it never ended: what the last checkpoint saw
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # no half-written file left visible
