"""Documented behaviours broken one line at a time: does the test that guards each one fail?

    python tools/bug_probes.py

Each probe replaces one line of the package, runs the named test, prints CAUGHT or MISSED, and puts the
file back (also when interrupted). The examples of issue #15 plus this round's fixes; mutation testing
(tools/mutation.sh) is the systematic version of the same question.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PY = sys.executable
PROBES = [
    ("barge-in: _interrupts() always False", "mockrealtime/core/engine.py",
     '        """A speech_started turn opening while a response is still going out, not recorded as cut."""\n',
     '        """A speech_started turn opening while a response is still going out, not recorded as cut."""\n        return False\n',
     "tests/test_engine_turns.py::test_a_barge_in_the_recording_does_not_hold_is_cancelled_by_the_engine_with_turn_detected"),
    ("barge-in: reason client_cancelled", "mockrealtime/core/engine.py",
     'self.model.cancel("turn_detected")', 'self.model.cancel("client_cancelled")',
     "tests/test_engine_turns.py::test_a_barge_in_the_recording_does_not_hold_is_cancelled_by_the_engine_with_turn_detected"),
    ("matching table: item.call_id rule removed", "mockrealtime/core/matching.py",
     '        "item.call_id",\n', '',
     "tests/test_engine_turns.py::test_matching_by_item_call_id"),
    ("atomic save: the old file is not put back on failure", "mockrealtime/core/cassette_writer.py",
     "                os.replace(kept, file)\n", "                pass\n",
     "tests/test_cassette_save.py"),
    ("id echo: the client's own item id ignored", "mockrealtime/protocol/session.py",
     'item_id = item.get("id") if isinstance(item.get("id"), str) else (item_id or self.new_id("item"))',
     'item_id = item_id or self.new_id("item")',
     "tests/test_session_model.py"),
    ("dialect: multi-value OpenAI-Beta read as one value", "mockrealtime/core/recording.py",
     '"realtime=v1" in value.replace(" ", "")', 'value.replace(" ", "") == "realtime=v1"',
     "tests/test_dialect_functional.py"),
    ("journal filter: connection ignored", "mockrealtime/net/admin.py",
     "if (self.connection is None or r.id == self.connection)", "if (True)",
     "tests/test_admin_functional.py::test_journal_filters_by_type_outcome_connection_and_cassette"),
    ("release clamp removed", "mockrealtime/core/outbox.py",
     "        start = max(now_ms, self._last_at)\n", "        start = now_ms\n",
     "tests/test_replay.py::test_a_later_release_is_never_scheduled_before_an_earlier_one"),
    ("reset does not wake the long-polls", "mockrealtime/net/state.py",
     "        self.rest_calls.clear()\n        self.journal_changed()\n", "        self.rest_calls.clear()\n",
     "tests/test_admin_functional.py::test_reset_wakes_a_wait_that_then_keeps_waiting"),
    ("plan: commit echo attributed as before (sent twice)", "mockrealtime/core/plan.py",
     "        if kind == \"conversation.item.create\" and self.by_item:", "        if False:",
     "tests/test_plan_attribution.py"),
    ("validation memo keeps refused frames", "mockrealtime/protocol/validation.py",
     "        if error is None and len(text) <= ACCEPTED_MAX_CHARS:", "        if len(text) <= ACCEPTED_MAX_CHARS:",
     "tests/test_protocol_validation.py"),
]
missed = 0
for name, rel, old, new, test in PROBES:
    path = ROOT / rel
    text = path.read_text()
    if text.count(old) != 1:
        print(f"SKIP {name}: pattern found {text.count(old)} times")
        missed += 1
        continue
    path.write_text(text.replace(old, new))
    try:
        r = subprocess.run([PY, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test], cwd=ROOT, capture_output=True, text=True, timeout=600)
        last = (r.stdout.strip().splitlines() or ["?"])[-1]
        missed += r.returncode == 0
        print(("CAUGHT " if r.returncode else "MISSED ") + f"{name} -> {test}: {last}", flush=True)
    finally:
        path.write_text(text)
sys.exit(1 if missed else 0)
