"""The bundled cassettes: compiled from the scenarios in cassettes/scenarios/, valid to the openai package."""

from __future__ import annotations

import os

import pytest

from mockrealtime.cli import main
from mockrealtime.core import cassette as _cassette
from mockrealtime.core.events import Direction
from mockrealtime.core.library import CassetteLibrary, bundled_cassette_dir

from oracle import server_event_errors

LIBRARY = CassetteLibrary()
CASES = [(e["name"], d) for e in LIBRARY.available() for d in e["dialects"]]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = os.path.join(bundled_cassette_dir(), "scenarios")
SCENARIO_FILES = sorted(os.path.join(SCENARIOS, f) for f in os.listdir(SCENARIOS) if f.endswith(".yaml"))
SEEDS = {"hello", "function_call", "turn_detected", "missing_call_id", "chat_completions_tools",
         "tool_choice_required_loop", "forced_function_as_message"}


@pytest.mark.parametrize(("name", "dialect"), CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_every_server_event_validates_against_the_openai_models(name, dialect):
    cassette = LIBRARY.resolve(name, dialect)
    assert cassette.description, "every bundled cassette says at its top what it shows"
    for session in cassette.sessions:
        for index, ev in enumerate(session.events):
            if ev.direction is Direction.SERVER:
                assert server_event_errors(ev.event, dialect) == [], f"{cassette.path} event {index}"


def test_all_seed_scenarios_are_bundled_in_both_dialects_and_as_phone_calls():
    for dialect in ("ga", "beta"):
        names = {n for n, d in CASES if d == dialect}
        assert names >= SEEDS | {f"twilio_{s}" for s in SEEDS} | {"speak_then_call"}
    assert ("long_call", "ga") in CASES


def test_every_bundled_cassette_comes_from_a_scenario_of_at_most_thirty_lines():
    scenarios = {os.path.basename(p)[: -len(".yaml")]: p for p in SCENARIO_FILES}
    assert set(scenarios) == {n for n, _ in CASES}
    for name, path in scenarios.items():
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        body = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        assert len(body) <= 30, f"{name}: {len(body)} lines of YAML (the description comment aside)"


def test_bundled_cassettes_are_byte_identical_to_what_their_scenarios_compile_to(capsys):
    assert main(["compile", "--check", "-o", bundled_cassette_dir(), *SCENARIO_FILES]) == 0, capsys.readouterr().out


def test_serving_the_bundled_cassettes_parses_none_of_them_until_one_is_asked_for(monkeypatch):
    # parsing all of them was most of `serve`'s start-up before its first /healthz
    monkeypatch.setattr(_cassette, "_CACHE", {})
    library = CassetteLibrary()
    assert "hello" in library.names() and {"ga", "beta"} <= {d for c in library.available() for d in c["dialects"]}
    assert _cassette._CACHE == {}
    assert library.resolve("hello", "beta").dialect == "beta" and len(_cassette._CACHE) == 1
