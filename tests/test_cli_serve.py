"""`mockrealtime serve` as a user runs it: a real process, its printed URL, a real client, SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
from openai import AsyncOpenAI

from mockrealtime.cli import main


async def test_serve_prints_where_it_listens_and_replays_the_default_cassette():
    proc = subprocess.Popen([sys.executable, "-m", "mockrealtime", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = [proc.stdout.readline() for _ in range(6)]  # type: ignore[union-attr]
        text = "".join(lines)
        base = re.search(r'websocket_base_url="(ws://127\.0\.0\.1:\d+/v1)"', text)
        assert base, text
        assert "hello" in text and "(default: hello)" in text
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=base.group(1))
        async with client.realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_a_broken_cassette_stops_serve_with_the_file_and_path(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("version: 1\ndialect: ga\nsessions:\n- events:\n  - {at: -1, server: {type: x}}\n")
    assert main(["serve", str(tmp_path), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.yaml'}: $.sessions[0].events[0].at: -1 is less than the minimum of 0" in err


@pytest.mark.parametrize("argv", [["--version"], ["serve", "--help"]])
def test_help_and_version_exit_cleanly(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "mockrealtime" in capsys.readouterr().out
