"""Kill rate per module from mutmut's results (mutants/**/*.py.meta), for tools/mutation.sh.

    python tools/mutation_report.py [module ...]    e.g. matching redaction; none: every module

A mutant counts as killed when a test failed, timed out or the type check caught it; survivors are
listed by name (``mutmut show NAME`` prints the change). Mutants not run yet are left out.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def main(modules: list[str]) -> int:
    rows = []
    for meta in sorted(Path("mutants").glob("mockrealtime/**/*.py.meta")):
        module = meta.name[: -len(".py.meta")]
        if modules and module not in modules:
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        status = {name: status_by_exit_code[code] for name, code in codes.items() if code is not None}
        if not status:
            continue
        counts = Counter("killed" if s in KILLED else s for s in status.values())
        survivors = sorted(n for n, s in status.items() if s not in KILLED)
        rows.append((str(meta.relative_to("mutants"))[: -len(".meta")], len(status), counts, survivors))
    if not rows:
        print("no mutation results yet: run tools/mutation.sh", file=sys.stderr)
        return 1
    for path, total, counts, _ in rows:
        others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "killed")
        print(f"{path:42} {counts['killed']:5}/{total:<5} killed  {100 * counts['killed'] / total:5.1f} %   {others}")
    for _, _, _, survivors in rows:
        for name in survivors:
            print(f"  not killed: {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
