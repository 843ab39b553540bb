"""A browser app's real start-up against mockrealtime, in headless Chromium: the backend mints an
ephemeral key (REST), the page opens the WebSocket with ``openai-insecure-api-key.<key>`` and runs
the function_call cassette's tool round trip. The README's "Browsers" section shows these files."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer
from browser.backend import SESSION, make_backend

from tests.chromium import chromium_page


@pytest.mark.realtime("function_call")
async def test_the_browser_app_runs_the_tool_round_trip_with_a_minted_key(realtime_mock):
    backend = TestServer(make_backend(realtime_mock.http_url, realtime_mock.ws_url, api_key="sk-backend-test"),
                         host="127.0.0.1", port=0)
    await backend.start_server()
    try:
        async with chromium_page() as page:
            await page.goto(str(backend.make_url("/")))
            result = await page.evaluate("window.conversation")
    finally:
        await backend.close()
    assert result is not None
    assert result["errors"] == [], result
    assert result["protocol"] == "realtime"
    assert result["instructions"] == SESSION["instructions"]  # the session started from the minted key's configuration
    assert result["calls"] == [{"name": "list_emails", "arguments": {"numEmails": 1}}]
    assert result["events"].count("response.done") == 2 and result["close"] == 1000
    assert "Ana" in result["transcript"]
    state = realtime_mock.server.state
    assert realtime_mock.server.call(lambda: [r.minted_key for r in state.connections if r.route == realtime_mock.token]) == [True]
    realtime_mock.assert_all_played()
