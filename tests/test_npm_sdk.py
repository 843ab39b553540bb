"""The openai npm package against mockrealtime: its realtime clients only speak wss://, so the mock
serves TLS with a throwaway CA that Node is told to trust (NODE_EXTRA_CA_CERTS).

tests/js/roundtrip.mjs is a Node app: its backend half mints an ephemeral key with the SDK's REST
call, its client half runs the function_call cassette's tool round trip with OpenAIRealtimeWS.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.clients import JS_DIR, node


@pytest.mark.realtime("function_call")
@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_the_npm_sdk_runs_the_tool_round_trip_over_wss_with_a_minted_key(realtime_mock, dialect):
    binary = node()
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": realtime_mock.ca_file}
    proc = subprocess.run([binary, "roundtrip.mjs", dialect, realtime_mock.https_url], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr
    summary = json.loads(lines[-1])
    assert summary["errors"] == [], summary
    assert proc.returncode == 0, (summary, proc.stderr)
    assert summary["url"].startswith("wss://127.0.0.1:")
    state = realtime_mock.server.state
    minted = realtime_mock.server.call(lambda: [r.minted_key for r in state.connections if r.route == realtime_mock.token])
    assert minted == [True]  # the WebSocket was opened with the key the SDK minted
    assert summary["call"]["name"] == "list_emails" and summary["call"]["arguments"] == {"numEmails": 1}
    assert summary["responses"] == 2 and summary["close"] == 1000
    assert "error" not in summary["events"]
    assert summary["events"][0] == "session.created"
    assert "Ana" in summary["transcript"]
    realtime_mock.assert_all_played()
