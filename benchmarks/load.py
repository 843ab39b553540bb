"""Cold cassette load of long calls: 1, 10 and 60 minutes, each in fresh processes, with memory.

    python benchmarks/load.py [--minutes 1 10 60] [--runs 5]

Each call is built by benchmarks/_longcall.py (microphone streamed in 20 ms chunks the whole time,
VAD turns, spoken answers) and saved once into a temporary folder. Then, ``runs`` times, a fresh
Python process imports mockrealtime (the process "at rest"), loads the cassette from disk (parsed
and checked; its session's events are built on first use), then builds the events and the replay
plan, as a server does for the first connection (in a worker thread, then on the loop). Reported:
median (min-max) over the runs of each step's time and the memory it added to the process at rest
(RSS; and the peak RSS during the load).

Targets (issue #14): a 60-minute call loads in <= 300 ms cold and costs <= 64 MB beyond the
process at rest. Figures from a shared, noisy machine vary from run to run: compare runs made
side by side, and read the min-max spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

CHILD = r"""
import json, sys, time

def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

def rss_kib():
    return status_kib("VmRSS")

from mockrealtime.core import cassette
from mockrealtime.core.plan import plan_for
rest = rss_kib()
peak_before = status_kib("VmHWM")
t0, cpu0 = time.perf_counter(), time.process_time()
c = cassette.load(sys.argv[1])
t1, cpu1 = time.perf_counter(), time.process_time()
after = rss_kib()
peak = status_kib("VmHWM")
c.sessions[0].core
t2 = time.perf_counter()
built = rss_kib()
plan_for(c, 0, warm=True)  # as the server does for the first connection
t3 = time.perf_counter()
planned = rss_kib()
print(json.dumps({"load_ms": (t1 - t0) * 1000, "load_cpu_ms": (cpu1 - cpu0) * 1000, "build_ms": (t2 - t1) * 1000, "plan_ms": (t3 - t2) * 1000,
                  "rest_kib": rest, "added_kib": after - rest, "peak_added_kib": max(0, peak - peak_before),
                  "built_kib": built - rest, "planned_kib": planned - rest,
                  "events": len(c.sessions[0].core) + sum(len(r.offsets_us) for r in c.sessions[0].runs)}))
"""


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def measure(path: str, runs: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    out = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True, env=env, check=True)
        out.append(json.loads(done.stdout))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per call length")
    args = parser.parse_args()

    from mockrealtime.core.cassette_writer import save

    import _longcall

    print(f"cold load in a fresh process, median (min-max) of {args.runs} runs; shared machine, figures are noisy")
    with tempfile.TemporaryDirectory(prefix="mockrealtime-load-") as tmp:
        for minutes in args.minutes:
            path = os.path.join(tmp, f"call{minutes:g}.yaml")
            save(_longcall.build(minutes), path)
            on_disk = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp) if f.startswith(f"call{minutes:g}."))
            yaml_kib = os.path.getsize(path) / 1024
            rows = measure(path, args.runs)
            print(f"{minutes:g}-minute call: {rows[0]['events']} events, {yaml_kib:.0f} KiB YAML, {on_disk / 1e6:.0f} MB with sidecars")
            mib = "{:.1f}"
            print(f"  load   {spread([r['load_ms'] for r in rows])} ms (CPU {spread([r['load_cpu_ms'] for r in rows])} ms), {spread([r['added_kib'] / 1024 for r in rows], mib)} MiB "
                  f"added to the {statistics.median(r['rest_kib'] for r in rows) / 1024:.0f} MiB process at rest "
                  f"(peak during the load +{spread([r['peak_added_kib'] / 1024 for r in rows], mib)} MiB)"
                  + ("   (target <= 300 ms, <= 64 MB)" if minutes == 60 else ""))
            print(f"  first use: events built {spread([r['build_ms'] for r in rows])} ms (then "
                  f"{spread([r['built_kib'] / 1024 for r in rows], mib)} MiB over rest), replay plan "
                  f"{spread([r['plan_ms'] for r in rows])} ms (then {spread([r['planned_kib'] / 1024 for r in rows], mib)} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
