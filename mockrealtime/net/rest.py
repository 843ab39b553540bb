"""The REST companions: the endpoints that mint ephemeral keys, served beside the WebSocket.

``POST /v1/realtime/client_secrets`` (GA), ``/v1/realtime/sessions`` and
``/v1/realtime/transcription_sessions`` (beta), under the same prefixes as the WebSocket (``/c/<name>/``
for a named cassette, ``/openai/`` for Azure). Every decision is made by
:mod:`mockrealtime.core.ephemeral`; this module reads the request and remembers the key minted.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from mockrealtime.core.ephemeral import ENDPOINTS, answer, auth_error, error, recorded_for
from mockrealtime.core.policy import presented_key
from mockrealtime.errors import CassetteError, ConfigError
from mockrealtime.net.state import STATE

CASSETTE_HEADER = "X-Mockrealtime-Cassette"
_ENDPOINT = "{endpoint:" + "|".join(ENDPOINTS) + "}"
PATHS = tuple(
    prefix + "/realtime/" + _ENDPOINT
    for prefix in ("/v1", "/openai/v1", "/c/{name}/v1", "/c/{name}")
)


async def mint(request: web.Request) -> web.Response:
    state = request.app[STATE]
    endpoint = request.match_info["endpoint"]
    dialect = ENDPOINTS[endpoint][0]
    name = request.match_info.get("name") or request.headers.get(CASSETTE_HEADER) or state.chosen.peek()
    route = state.routes.get(name) if name else None
    try:
        settings = (route or state.config).for_connection(request.headers, request.query)
    except ConfigError as exc:
        return _json(error(400, str(exc), "bad_setting"))
    presented = presented_key(request.headers, request.query, ())
    refused = auth_error(settings.api_key, presented)
    if refused is not None:
        return _json(refused)
    recorded = None
    try:
        # in a thread, as the WebSocket does: a first load parses the file
        cassette = await asyncio.get_running_loop().run_in_executor(None, state.library.resolve, name, dialect)
    except CassetteError:
        cassette = None  # no recording to answer from: the request alone decides
    if cassette is not None and cassette.rest:
        key = (cassette.label, endpoint)
        nth = state.rest_calls.get(key, 0)
        recorded = recorded_for(cassette.rest, endpoint, nth)
        if recorded is not None:
            state.rest_calls[key] = nth + 1
    result = answer(endpoint, await request.read(), now_s=time.time(), api_key=presented, recorded=recorded)
    if result.minted is not None:
        state.keys.add(result.minted)
    return _json(result)


def _json(result: object) -> web.Response:
    return web.json_response(result.body, status=result.status)  # type: ignore[attr-defined]


def add_rest_routes(app: web.Application) -> None:
    for path in PATHS:
        app.router.add_post(path, mint)
