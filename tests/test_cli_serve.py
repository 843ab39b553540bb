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


# -- names checked early, flags that exist ----------------------------------------------------------


@pytest.mark.parametrize("argv", [["compil", "--help"], ["serv"], ["nope"]])
def test_an_unknown_subcommand_is_an_error_not_a_cassette_path(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"unknown command {argv[0]!r}" in err and "serve" in err
    if argv == ["serv"]:
        assert "did you mean 'serve'?" in err


def test_an_unknown_default_cassette_fails_at_start_listing_what_exists(capsys):
    assert main(["serve", "--default", "helo", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "no cassette named 'helo'" in err and "did you mean 'hello'?" in err and "function_call" in err


def test_the_frame_and_admin_flags_reach_the_configuration():
    from mockrealtime.cli import build_parser

    args = build_parser().parse_args(["serve", "--max-frame-bytes", "2048", "--admin-token", "t", "--no-admin",
                                      "--allowed-origin", "https://a.example", "--allowed-origin", "https://b.example"])
    assert (args.max_frame_bytes, args.admin_token, args.no_admin) == (2048, "t", True)
    assert args.allowed_origin == ["https://a.example", "https://b.example"]


def test_beyond_loopback_the_admin_api_is_off_without_a_token_and_the_start_says_how():
    """What the container prints: it listens on 0.0.0.0."""
    proc = subprocess.Popen([sys.executable, "-m", "mockrealtime", "serve", "--host", "0.0.0.0", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        text = "".join(proc.stdout.readline() for _ in range(8))  # type: ignore[union-attr]
        assert "admin API: off" in text and "MOCKREALTIME_ADMIN_TOKEN=<a secret>" in text, text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def test_record_takes_its_settings_from_flags_over_the_environment(tmp_path, capsys, monkeypatch):
    assert main(["record"]) == 1
    assert "record mode needs an output cassette (--output PATH)" in capsys.readouterr().err
    monkeypatch.setenv("MOCKREALTIME_OUTPUT", str(tmp_path / "from_env.txt"))
    monkeypatch.setenv("MOCKREALTIME_UPSTREAM", "http://example.invalid/v1/realtime")
    assert main(["record", "--upstream", "ws://127.0.0.1:9/v1/realtime"]) == 1  # the flag wins; the output is bad
    err = capsys.readouterr().err
    assert "the output cassette must be a .yaml file" in err and "from_env.txt" in err
