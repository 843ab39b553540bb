"""Write the bundled seed cassettes from their scripts in tools/seeds.py.

The seeds cannot be recorded from the live API here, so they are authored to the exact shapes of
the protocol notes and saved through the same writer the recorder uses:

    python tools/write_seed_cassettes.py            # writes cassettes/<name>.yaml, <name>.beta.yaml
    python tools/write_seed_cassettes.py --check    # exit 1 if the files on disk are stale
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

from mockrealtime.core.cassette import Cassette, Close, Handshake, RecordedEvent, Session  # noqa: E402
from mockrealtime.core.cassette_writer import save  # noqa: E402

import seeds  # noqa: E402


def to_cassette(spec: dict) -> Cassette:
    sessions = []
    for s in spec["sessions"]:
        events = [RecordedEvent.make(e["dir"], e["at_ms"], e["event"]) for e in s["events"]]
        close = s.get("close")
        sessions.append(Session(events, Close(close["by"], close.get("code"), close.get("reason")) if close else None))
    hs = spec.get("handshake") or {}
    return Cassette(
        name=spec["name"], dialect=spec["dialect"], model=spec.get("model"), sessions=sessions,
        handshake=Handshake(hs.get("path", "/v1/realtime"), dict(hs.get("query") or {}), dict(hs.get("headers") or {})),
        description=spec.get("description", ""),
    )


def file_name(spec: dict) -> str:
    return f"{spec['name']}.yaml" if spec["dialect"] == "ga" else f"{spec['name']}.{spec['dialect']}.yaml"


def write(directory: str) -> list[str]:
    written = []
    for spec in seeds.build():
        written += save(to_cassette(spec), os.path.join(directory, file_name(spec)))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with cassettes/ instead of writing")
    parser.add_argument("--out", default=os.path.join(ROOT, "cassettes"))
    args = parser.parse_args()
    if not args.check:
        for path in write(args.out):
            print(os.path.relpath(path, ROOT))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        stale = []
        for path in write(tmp):
            name = os.path.basename(path)
            target = os.path.join(args.out, name)
            with open(path, "rb") as a:
                fresh = a.read()
            if not os.path.exists(target) or open(target, "rb").read() != fresh:
                stale.append(name)
    for name in stale:
        print(f"stale: cassettes/{name}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
