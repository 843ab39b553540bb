"""Start-up: ``mockrealtime serve`` to its first ``/healthz`` answer, against a bare aiohttp app.

    python benchmarks/startup.py [--runs 7]

Each run starts a fresh process (``python -m mockrealtime serve --port 0``, the bundled cassettes;
or a bare aiohttp app with one ``/healthz`` route) and times from spawning it to the first 200 from
``/healthz``; the two alternate, so drift in a shared machine hits both alike. Reported: median
(min-max) of each and of the difference. Target (issue #14): mockrealtime <= bare + 100 ms.

Both start from compiled bytecode, as after ``pip install`` (aiohttp's is in site-packages): the
children write and read mockrealtime's in a temporary ``PYTHONPYCACHEPREFIX``, filled by one untimed
start of each first (with ``PYTHONDONTWRITEBYTECODE`` set, every start compiled mockrealtime's
sources, about a third of its start-up).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

BARE = r"""
import socket, sys
from aiohttp import web
async def healthz(request):
    return web.json_response({"status": "ok"})
app = web.Application()
app.router.add_get("/healthz", healthz)
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(128)
print(f"listening: http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
web.run_app(app, sock=sock, print=None, access_log=None)
"""


def time_to_health(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall ms from spawn to the first 200, and the CPU ms the process used in all (to its exit)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        port = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if "http://" in line:
                port = int(line.split("http://", 1)[1].split("/")[0].rsplit(":", 1)[1])
                break
        assert port is not None, "the server printed no address"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            try:
                with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    if response.status == 200:
                        wall = (time.perf_counter() - t0) * 1000
                        break
            except OSError:
                time.sleep(0.001)
    finally:
        proc.terminate()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms ({min(values):.0f}-{max(values):.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bare, mock = [], []
    bare_argv = [sys.executable, "-c", BARE]
    mock_argv = [sys.executable, "-m", "mockrealtime", "serve", "--port", "0"]
    with tempfile.TemporaryDirectory(prefix="mockrealtime-startup-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])), PYTHONPYCACHEPREFIX=pycache)
        time_to_health(bare_argv, env)  # untimed: bytecode written
        time_to_health(mock_argv, env)
        for _ in range(args.runs):
            bare.append(time_to_health(bare_argv, env))
            mock.append(time_to_health(mock_argv, env))
    print(f"spawn -> first /healthz, median (min-max) of {args.runs} runs each; shared machine, figures are noisy")
    print("(CPU: what the process used from start to exit, less sensitive to other load than wall time)")
    for i, what in ((0, "wall"), (1, "CPU")):
        b, m = [r[i] for r in bare], [r[i] for r in mock]
        diffs = [y - x for x, y in zip(b, m, strict=True)]
        print(f"  {what:4s} bare aiohttp {spread(b)}   mockrealtime {spread(m)}   "
              f"difference {statistics.median(diffs):+.0f} ms ({min(diffs):+.0f} to {max(diffs):+.0f})   (target <= +100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
