"""The backend half of a browser Realtime app: it serves the page and mints ephemeral keys.

The page never holds the API key: ``POST /session`` asks the Realtime API (here: mockrealtime) for
a short-lived key with the session's configuration and hands the page that key and the WebSocket URL.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from openai import AsyncOpenAI

PAGE = Path(__file__).with_name("index.html")
SESSION = {"type": "realtime", "model": "gpt-realtime",
           "instructions": "You are an email assistant. Use the tools to answer questions about the user's inbox."}


def make_backend(api_base_url: str, realtime_url: str, api_key: str) -> web.Application:
    """``api_base_url``: the REST base (``https://api.openai.com/v1``); ``realtime_url``: the WebSocket."""
    openai = AsyncOpenAI(api_key=api_key, base_url=api_base_url)

    async def session(request: web.Request) -> web.Response:
        secret = await openai.realtime.client_secrets.create(session=SESSION)  # type: ignore[arg-type]
        return web.json_response({"key": secret.value, "url": realtime_url + "?model=gpt-realtime"})

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def close_client(app: web.Application) -> None:
        await openai.close()

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_post("/session", session)
    app.on_cleanup.append(close_client)
    return app
