"""The openai SDK's sync client against the same fixture: the server runs in a thread of its own."""

import pytest
from openai import OpenAI


@pytest.mark.realtime("hello")
def test_with_the_sync_client(realtime_mock):
    client = OpenAI(api_key="sk-test", websocket_base_url=realtime_mock.websocket_base_url)
    with client.realtime.connect(model="gpt-realtime") as conn:
        conn.session.update(session={"type": "realtime"})
        conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}
        )
        conn.response.create()
        for event in conn:
            if event.type == "response.done":
                break
    realtime_mock.assert_all_played()
