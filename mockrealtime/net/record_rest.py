"""Record mode's REST leg: relay the calls that mint ephemeral keys, and record them redacted.

A browser app's backend calls ``POST /v1/realtime/client_secrets`` (or the beta ``sessions`` /
``transcription_sessions``) before its page connects. Pointed at the recorder, the call goes to the
upstream's HTTP side (``wss://host/v1/realtime`` -> ``https://host/v1/realtime/client_secrets``;
an upstream without a path keeps the client's path), the answer goes back unchanged, and the
:class:`~mockrealtime.core.recording.Recorder` keeps both with the minted key redacted: the cassette
gets a ``rest:`` entry the replaying server answers from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from yarl import URL

from mockrealtime.core.ephemeral import ENDPOINTS

if TYPE_CHECKING:
    from mockrealtime.net.record_state import RecorderState

log = logging.getLogger("mockrealtime.record")

_ENDPOINT = "{endpoint:" + "|".join(ENDPOINTS) + "}"
PATHS = ("/{prefix:.*}/realtime/" + _ENDPOINT, "/realtime/" + _ENDPOINT)


def rest_upstream(state: RecorderState, request: web.Request) -> URL:
    upstream = state.upstream.url
    scheme = "https" if upstream.scheme == "wss" else "http"
    if state.upstream.fixed_path:
        path = upstream.path.rstrip("/") + "/" + request.match_info["endpoint"]
    else:
        path = request.rel_url.raw_path
    return upstream.with_scheme(scheme).with_path(path, encoded=True).with_query(request.query)


def make_handler(get_state: Callable[[web.Request], RecorderState]) -> Callable[[web.Request], object]:
    async def relay_rest(request: web.Request) -> web.Response:
        state = get_state(request)
        assert state.http is not None
        endpoint = request.match_info["endpoint"]
        body = await request.read()
        url = rest_upstream(state, request)
        try:
            async with state.http.post(url, data=body, headers=state.upstream.forward_headers(request.headers)) as response:
                status, answer = response.status, await response.read()
                content_type = response.headers.get("Content-Type", "application/json")
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            detail = state.describe(exc)
            log.warning("= %s: cannot reach the upstream %s: %s", request.path, state.upstream_label, detail)
            return web.json_response(
                {"error": {"type": "server_error", "code": "upstream_unreachable",
                           "message": f"mockrealtime record: cannot reach the upstream {state.upstream_label}: {detail}"}},
                status=502,
            )
        state.recorder.rest_exchange(endpoint, request.path, list(request.headers.items()), body, status, answer)
        # saved with the next part of a session in its dialect (a call alone makes no cassette)
        log.info("= %s %s -> %d (recorded, key redacted)", request.method, request.path, status)
        return web.Response(status=status, body=answer, headers={"Content-Type": content_type})

    return relay_rest


def add_rest_relay(app: web.Application, get_state: Callable[[web.Request], RecorderState]) -> None:
    handler = make_handler(get_state)
    for path in PATHS:
        app.router.add_post(path, handler)  # type: ignore[arg-type]
