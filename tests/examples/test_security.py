"""The README's "Security" snippet: a server beyond loopback with an admin token, and curl."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request


def _get(url: str, headers: dict[str, str]) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_admin_api_answers_the_token_and_nothing_else():
    # MOCKREALTIME_ADMIN_TOKEN=change-me mockrealtime serve --host 0.0.0.0   (port 0 here: a free one)
    proc = subprocess.Popen([sys.executable, "-m", "mockrealtime", "serve", "--host", "0.0.0.0", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "MOCKREALTIME_ADMIN_TOKEN": "change-me"})
    try:
        text = "".join(proc.stdout.readline() for _ in range(7))  # type: ignore[union-attr]
        port = re.search(r"http://127\.0\.0\.1:(\d+)/healthz", text).group(1)  # type: ignore[union-attr]
        assert "Authorization: Bearer" in text
        url = f"http://localhost:{port}/__admin/connections"
        # curl -s -H 'Authorization: Bearer change-me' localhost:8080/__admin/connections
        assert _get(url, {"Authorization": "Bearer change-me"}) == 200
        assert _get(url, {}) == 401
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
