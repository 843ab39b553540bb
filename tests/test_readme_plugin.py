"""Every snippet of the README's "pytest plugin" section is (part of) a test under tests/examples/."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "examples"


def plugin_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## pytest plugin\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def test_every_snippet_of_the_plugin_section_is_in_the_example_suite():
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", plugin_section(), flags=re.S | re.M)
    assert len(blocks) >= 6
    sources = {path.name: path.read_text() for path in EXAMPLES.glob("*.py")}
    for language, block in blocks:
        assert language in ("python", "text"), f"only code the example suite runs: {language or 'untyped'} block"
        found = [name for name, text in sources.items() if block.rstrip("\n") in text]
        assert found, f"this README snippet is in no file of tests/examples/:\n{block}"


def test_the_example_suite_holds_the_tool_round_trip_and_the_interruption():
    text = (EXAMPLES / "test_voice_agent.py").read_text()
    assert '@pytest.mark.realtime("function_call")' in text and '@pytest.mark.realtime("turn_detected")' in text


def test_every_snippet_of_write_your_own_cassette_is_in_the_example_suite():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Write your own cassette\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", section, flags=re.S | re.M)
    assert [language for language, _ in blocks] == ["yaml", "python"]
    scenario = (EXAMPLES / "cassettes" / "test_write_your_own" / "weather.yaml").read_text()
    assert blocks[0][1] == scenario, "the README's scenario is the example suite's file, verbatim"
    assert blocks[1][1].rstrip("\n") in (EXAMPLES / "test_write_your_own.py").read_text()
