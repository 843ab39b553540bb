"""What a failing test says: the README shows this report."""

from __future__ import annotations

import os

import pytest
from openai import AsyncOpenAI

from mockrealtime import DivergenceError
from mockrealtime.testing.report import display_path

HELLO = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}
GET_WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


@pytest.mark.realtime("../test_quickstart/test_greeting_from_our_own_recording.yaml", strict=True)
async def test_a_new_tool_makes_the_recording_stale(realtime_mock, pytestconfig):
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "instructions": "Be friendly.", "tools": [GET_WEATHER]})
        async for event in conn:
            if event.type == "error":
                break
    with pytest.raises(DivergenceError) as failure:
        realtime_mock.assert_all_played()
    from_root = os.path.relpath(realtime_mock.cassette_path, pytestconfig.rootpath)
    assert str(failure.value).replace(display_path(realtime_mock.cassette_path), from_root) == REPORT


REPORT = """\
mockrealtime: the client departed from the cassette (1 divergence)
cassette: tests/examples/cassettes/test_quickstart/test_greeting_from_our_own_recording.yaml

connection 0 (session 0, ga), recorded event 1:
  expected: session.update
  received: session.update
  compared by the matching rules, these fields made it a mismatch:
  ! session.tools[*].name: expected <absent>, received ["get_weather"]
  expected event (-) against received event (+):
    @@ -3,5 +3,14 @@
       "session": {
         "type": "realtime",
    -    "instructions": "Be friendly."
    +    "instructions": "Be friendly.",
    +    "tools": [
    +      {
    +        "type": "function",
    +        "name": "get_weather",
    +        "parameters": {
    +          "type": "object"
    +        }
    +      }
    +    ]
       }
     }
  closest recorded event: event 1 session.update (the expected one), differing in session.tools[*].name
  37 recorded event(s) were left unplayed

What to do:
  * if the client is right and the recording is stale, re-record it: pytest --realtime-record-mode=rewrite tests/examples/test_reports.py::test_a_new_tool_makes_the_recording_stale
  * or keep what matches and record only the rest of the session live: pytest --realtime-record-mode=new_episodes tests/examples/test_reports.py::test_a_new_tool_makes_the_recording_stale
  * if these fields do not matter to the test, stop comparing them: @pytest.mark.realtime(match={'rules': {'session.update': ['session.type', 'session.tool_choice']}})"""
