"""Scenario files wherever a cassette goes: a served directory, the admin API, serve FILE, the marker."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap

import aiohttp
import pytest
from openai import AsyncOpenAI

from mockrealtime.core.library import CassetteLibrary
from mockrealtime.scenario import is_scenario_file

from test_pytest_plugin import plugin_args

TIMEOUT_S = 10
GREET = textwrap.dedent("""\
    # greet: a user says hi, the assistant answers.
    scenario: 1
    session: {instructions: Be brief.}
    steps:
      - user: Hi!
      - assistant: Hello from a scenario.
        audio_ms: 800
    """)


async def converse(base_url: str, dialect: str = "ga") -> list[dict]:
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=base_url)
    connect = client.beta.realtime.connect(model="gpt-4o-realtime-preview") if dialect == "beta" else client.realtime.connect(model="gpt-realtime")
    events = []
    async with connect as conn:
        session = {"instructions": "Be brief."} | ({"type": "realtime"} if dialect == "ga" else {})
        await conn.session.update(session=session)
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi!"}]})
        await conn.response.create()
        while not events or events[-1]["type"] != "response.done":
            events.append(json.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S)))
    return events


def transcript(events: list[dict]) -> str:
    return "".join(e["delta"] for e in events if e["type"] in ("response.output_audio_transcript.delta", "response.audio_transcript.delta"))


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_a_served_directory_compiles_its_scenarios_on_load(start_server, tmp_path, dialect):
    (tmp_path / "greet.yaml").write_text(GREET)
    server = await start_server(cassettes=str(tmp_path))
    assert server.state.library.names() == ["greet"]
    events = await converse(server.base_url("greet"), dialect)
    assert transcript(events) == "Hello from a scenario."
    assert events[-1]["response"]["status"] == "completed"
    assert server.state.connections[-1].engine.divergences == []
    assert os.listdir(tmp_path) == ["greet.yaml"]  # compiled into the cache, never next to the scenario


async def test_the_admin_api_picks_a_scenario_by_name(start_server, tmp_path):
    (tmp_path / "greet.yaml").write_text(GREET)
    (tmp_path / "other.yaml").write_text(GREET.replace("Hello from a scenario.", "Another one."))
    server = await start_server(cassettes=str(tmp_path), default_cassette="other")
    async with aiohttp.ClientSession(base_url=server.http_url) as http:
        async with http.get("/__admin/cassettes") as resp:
            listed = {c["name"]: c for c in (await resp.json())["cassettes"]}
        assert listed["greet"]["dialects"] == ["beta", "ga"]
        assert listed["greet"]["description"].startswith("greet: a user says hi")
        async with http.post("/__admin/cassettes/next", json={"cassette": "greet", "connections": 1}) as resp:
            assert resp.status == 200
    assert transcript(await converse(server.base_url())) == "Hello from a scenario."
    assert transcript(await converse(server.base_url())) == "Another one."


async def test_serve_takes_a_single_scenario_file(start_server, tmp_path):
    (tmp_path / "greet.yaml").write_text(GREET)
    server = await start_server(cassettes=str(tmp_path / "greet.yaml"))
    assert transcript(await converse(server.base_url())) == "Hello from a scenario."


def test_compiling_is_cached_until_the_scenario_changes(tmp_path):
    path = tmp_path / "greet.yaml"
    path.write_text(GREET)
    first = CassetteLibrary(str(tmp_path)).resolve("greet", "ga")
    again = CassetteLibrary(str(tmp_path)).resolve("greet", "ga")
    assert first.path == again.path and first is again  # same compiled file, loaded once
    path.write_text(GREET.replace("Hello from a scenario.", "Changed."))
    changed = CassetteLibrary(str(tmp_path)).resolve("greet", "ga")
    assert changed.path != first.path and not is_scenario_file(changed.path)


def test_the_marker_takes_a_scenario_and_never_records_over_it(pytester):
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n")
    pytester.mkdir("cassettes")
    (pytester.path / "cassettes" / "test_calls").mkdir()
    (pytester.path / "cassettes" / "test_calls" / "greet.yaml").write_text(GREET)
    pytester.makepyfile(test_calls=textwrap.dedent("""\
        import json
        import pytest
        from openai import OpenAI

        def talk(mock):
            client = OpenAI(api_key="sk-test", websocket_base_url=mock.websocket_base_url)
            with client.realtime.connect(model="gpt-realtime") as conn:
                conn.session.update(session={"type": "realtime", "instructions": "Be brief."})
                conn.conversation.item.create(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi!"}]})
                conn.response.create()
                text = ""
                for event in conn:
                    if event.type == "response.output_audio_transcript.delta":
                        text += event.delta
                    if event.type == "response.done":
                        return text

        @pytest.mark.realtime("greet")
        def test_replays_the_scenario(realtime_mock):
            assert talk(realtime_mock) == "Hello from a scenario."

        @pytest.mark.realtime("greet", record_mode="rewrite")
        def test_rewrite_is_refused(realtime_mock):
            pass
        """))
    result = pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*greet.yaml is a scenario: it is compiled, never recorded over*"])
    assert (pytester.path / "cassettes" / "test_calls" / "greet.yaml").read_text() == GREET
