"""Settings for every test of a module, and cassettes kept elsewhere."""

from __future__ import annotations

import os

import pytest
from openai import OpenAI


@pytest.fixture
def realtime_config():
    return {"match": "type", "allow_unplayed": True}


@pytest.mark.realtime("hello")
def test_a_session_update_matches_on_its_type_alone(realtime_mock):
    client = OpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    with client.realtime.connect(model="gpt-realtime") as conn:
        conn.session.update(session={"type": "realtime", "tools": [{"type": "function", "name": "get_weather"}]})
        assert conn.recv().type == "session.created"
        assert conn.recv().type == "session.updated"
    assert realtime_mock.journal.entries[0].outcome == "matched"


class TestRecordingsOfAnotherModule:
    @pytest.fixture
    def realtime_cassette_dir(self):
        return os.path.join(os.path.dirname(__file__), "cassettes", "test_quickstart")

    @pytest.mark.realtime("test_greeting_from_our_own_recording")
    def test_found_by_name_in_the_cassette_dir(self, realtime_mock):
        assert realtime_mock.cassette_path.endswith("test_greeting_from_our_own_recording.yaml")
