"""The bundled long call (cassettes/long_call.yaml, compiled from cassettes/scenarios/long_call.yaml).

    python benchmarks/long_call.py [--repeat 5]

Two figures: loading the bundled three-minute phone call from disk with the cache cleared (median),
and compiling its scenario (what `serve` does once for a scenario file it meets; median). Both are
times on this machine, so read them next to load.py's figures from the same run (the load here includes
building the session's events, which load.py reports apart).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from mockrealtime.core import cassette as _cassette  # noqa: E402
from mockrealtime.core.library import bundled_cassette_dir  # noqa: E402
from mockrealtime.scenario import compile_file  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = os.path.join(bundled_cassette_dir(), "long_call.yaml")
    loads = []
    for _ in range(args.repeat):
        _cassette._CACHE.clear()
        t0 = time.perf_counter()
        cassette = _cassette.load(path)
        events = sum(len(s.events) for s in cassette.sessions)
        loads.append((time.perf_counter() - t0) * 1000)
    compiles = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            compile_file(os.path.join(bundled_cassette_dir(), "scenarios", "long_call.yaml"), tmp)
            compiles.append((time.perf_counter() - t0) * 1000)
    last = cassette.sessions[0].events[-1].offset_ms / 60_000
    print(f"long_call: {last:.1f} min, {events} events, {os.path.getsize(path) / 1024:.0f} KiB YAML + WAV sidecars")
    print(f"  load     median {statistics.median(loads):7.1f} ms")
    print(f"  compile  median {statistics.median(compiles):7.1f} ms (the scenario to cassette + sidecars on disk)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
