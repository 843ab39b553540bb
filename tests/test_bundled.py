"""The bundled cassettes: every server event in them is what the official openai package accepts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mockrealtime.core.events import Direction
from mockrealtime.core.library import CassetteLibrary, bundled_cassette_dir

from oracle import server_event_errors

LIBRARY = CassetteLibrary()
CASES = [(e["name"], d) for e in LIBRARY.available() for d in e["dialects"]]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(("name", "dialect"), CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_every_server_event_validates_against_the_openai_models(name, dialect):
    cassette = LIBRARY.resolve(name, dialect)
    assert cassette.description, "every bundled cassette says at its top what it shows"
    for session in cassette.sessions:
        for index, ev in enumerate(session.events):
            if ev.direction is Direction.SERVER:
                assert server_event_errors(ev.event, dialect) == [], f"{cassette.path} event {index}"


def test_all_seed_scenarios_are_bundled_in_both_dialects():
    names = {"hello", "function_call", "turn_detected", "missing_call_id", "chat_completions_tools",
             "tool_choice_required_loop", "forced_function_as_message"}
    assert {n for n, d in CASES if d == "ga"} >= names
    assert {n for n, d in CASES if d == "beta"} >= names


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "tools", "seeds.py")), reason="needs a source checkout")
def test_bundled_cassettes_are_what_the_seed_scripts_write():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "write_seed_cassettes.py"), "--check",
                          "--out", bundled_cassette_dir()], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
