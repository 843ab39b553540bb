"""The admin API under ``/__admin/`` (WireMock's convention), for tests that drive mockrealtime from
outside its process: a container, another language, another machine.

JSON in, JSON out. Everything it shows lives in :class:`mockrealtime.net.server.MockState`; this module
only reads it, except for the cassette queue (``chosen``), the settings marked ``admin`` in
:mod:`mockrealtime.config` (``PATCH /__admin/config``) and ``reset``.

::

    GET    /__admin/                      what is here
    GET    /__admin/config                the server's configuration, keys redacted
    PATCH  /__admin/config                {"on_divergence": "close"}: change it for the connections that follow
    GET    /__admin/cassettes             the cassettes served, the default, the queue
    GET    /__admin/cassettes/next        the queue of cassettes chosen for the next connections
    POST   /__admin/cassettes/next        {"cassette": NAME, "connections": N | null}: add to it
    DELETE /__admin/cassettes/next        empty it
    GET    /__admin/connections           one summary per connection (the last ``keep_finished`` finished ones)
    GET    /__admin/connections/{id}      one connection: journal, divergences, unplayed
    GET    /__admin/connections/{id}/timeline.html   the same as a page, above the recording it replays
    GET    /__admin/journal               client events of every connection (filters in the query)
    GET|POST /__admin/journal/wait        long-poll until the journal holds `count` matching events
    GET    /__admin/divergences           every divergence, with its connection
    GET    /__admin/unplayed              what each connection's recording still holds
    POST   /__admin/reset                 forget connections and journals, rewind sessions, empty the queue,
                                          restore the configuration the server started with

Waiting is a long-poll: the handler sleeps on a future that the WebSocket loop resolves when a
journal grows or a connection closes (``MockState.journal_changed``), re-checks, and answers 200
when the condition holds or 408 when ``timeout_s`` runs out, with what it found either way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from mockrealtime.config import ADMIN_KEYS, parse_bool
from mockrealtime.core.redaction import mask_tree
from mockrealtime.errors import CassetteError, ConfigError
from mockrealtime.net.state import STATE, ConnectionReport, MockState, release_memory

PREFIX = "/__admin"
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 300.0


class AdminRequestError(Exception):
    """A bad admin request: answered with ``status`` and a JSON error."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request", **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra

    def response(self) -> web.Response:
        return _respond({"error": {"code": self.code, "message": str(self), **self.extra}}, status=self.status)


def _respond(body: Any, status: int = 200, **kwargs: Any) -> web.Response:
    """A JSON answer after the secret scan record mode uses: the journal shows what clients said
    (a key pasted into instructions included), so every string is masked on the way out."""
    return web.json_response(mask_tree(body), status=status, **kwargs)


def _handler(fn: Callable[[web.Request, MockState], Any]) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request, request.app[STATE])
        except AdminRequestError as exc:
            return exc.response()

    handle.__name__ = fn.__name__
    return handle


# -- parameters -------------------------------------------------------------------------------


class Filter:
    """Which journal entries a request asks for: by connection, cassette, event type and outcome."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.connection = _opt_int(params, "connection")
        self.cassette = _opt_str(params, "cassette")
        self.types = _str_set(params, "type")
        self.outcomes = _str_set(params, "outcome")

    def connections(self, state: MockState) -> list[ConnectionReport]:
        return [
            r for r in state.connections
            if (self.connection is None or r.id == self.connection)
            and (self.cassette is None or self.cassette in (r.engine.cassette.name, r.cassette))
        ]

    def entries(self, state: MockState) -> Iterator[dict[str, Any]]:
        for report in self.connections(state):
            for index, entry in enumerate(report.engine.journal):
                event = entry.event if isinstance(entry.event, dict) else {}
                etype = event.get("type")
                if self.types is not None and etype not in self.types:
                    continue
                if self.outcomes is not None and entry.outcome not in self.outcomes:
                    continue
                yield {
                    "connection": report.id,
                    "index": index,
                    "at_ms": round(entry.at_ms, 3),
                    "type": etype,
                    "outcome": entry.outcome,
                    "event_index": entry.event_index,
                    "event": event,
                }


def _params(request: web.Request, body: dict[str, Any] | None) -> dict[str, Any]:
    """Query parameters (a repeated key gives a list), overlaid by a JSON body's fields."""
    params: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        params[key] = values if len(values) > 1 else values[0]
    if body:
        params.update(body)
    return params


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise AdminRequestError(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise AdminRequestError("the body is not JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise AdminRequestError("the body must be a JSON object")
    return body


def _opt_int(params: dict[str, Any], key: str) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise AdminRequestError(f"{key} must be an integer, not {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e999 parses as infinity
        raise AdminRequestError(f"{key} must be an integer, not {value!r}") from None


def _opt_str(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AdminRequestError(f"{key} must be a string, not {value!r}")
    return value


def _str_set(params: dict[str, Any], key: str) -> frozenset[str] | None:
    """A string, a comma-separated string, or a list of strings; None when absent."""
    value = params.get(key)
    if value is None or value == "" or value == []:
        return None
    items = value if isinstance(value, list) else [value]
    out: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise AdminRequestError(f"{key} must be a string or a list of strings, not {value!r}")
        out.update(part.strip() for part in item.split(",") if part.strip())
    return frozenset(out)


def _opt_bool(params: dict[str, Any], key: str) -> bool:
    value = params.get(key, False)
    if isinstance(value, bool):
        return value
    if value == "":
        return False
    if isinstance(value, str):
        try:
            return parse_bool(value)
        except ValueError:
            pass
    raise AdminRequestError(f"{key} must be true or false, not {value!r}")


def _timeout_s(params: dict[str, Any]) -> float:
    value = params.get("timeout_s", DEFAULT_TIMEOUT_S)
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise AdminRequestError(f"timeout_s must be a number of seconds, not {value!r}") from None
    if not 0 <= timeout <= MAX_TIMEOUT_S:
        raise AdminRequestError(f"timeout_s must be between 0 and {MAX_TIMEOUT_S:g}, not {timeout:g}")
    return timeout


def _report(state: MockState, connection_id: str) -> ConnectionReport:
    for report in state.connections:
        if str(report.id) == connection_id:
            return report
    raise AdminRequestError(
        f"no connection {connection_id}", status=404, code="connection_not_found",
        connections=[r.id for r in state.connections],
    )


def _summary(report: ConnectionReport) -> dict[str, Any]:
    engine = report.engine
    return {
        "id": report.id,
        "cassette": engine.cassette.name,
        "file": report.cassette,
        "session": report.session,
        "dialect": report.dialect,
        "path": report.path,
        "open": report.open,
        "close_code": report.close_code,
        "counts": {
            "journal": len(engine.journal),
            "divergences": len(engine.divergences),
            "unplayed": len(engine.unplayed()),
        },
    }


def _detail(report: ConnectionReport) -> dict[str, Any]:
    out = report.to_dict()
    out["cassette"] = report.engine.cassette.name
    out["file"] = report.cassette
    out["unplayed"] = report.engine.unplayed()  # while open: what the recording still holds ahead
    return out


def _queue(state: MockState) -> dict[str, Any]:
    return {"next": state.chosen.to_list(), "default": state.library.default_name}


# -- handlers ---------------------------------------------------------------------------------


async def index(request: web.Request, state: MockState) -> web.Response:
    return _respond({"endpoints": ENDPOINTS})


async def config(request: web.Request, state: MockState) -> web.Response:
    return web.json_response({"config": state.config.to_dict()})


async def config_patch(request: web.Request, state: MockState) -> web.Response:
    try:
        state.config = state.config.with_admin(await _body(request))
    except ConfigError as exc:
        raise AdminRequestError(str(exc), code="bad_setting", settable=list(ADMIN_KEYS)) from None
    return web.json_response({"config": state.config.to_dict()})


async def cassettes(request: web.Request, state: MockState) -> web.Response:
    # in a thread: listing loads every cassette that changed, and no load may hold up the server
    listed = await asyncio.get_running_loop().run_in_executor(None, _list_cassettes, state)
    return _respond({"source": state.library.source, "cassettes": listed, **_queue(state)})


def _list_cassettes(state: MockState) -> list[dict[str, Any]]:
    try:
        state.library.refresh()
    except CassetteError as exc:
        raise AdminRequestError(str(exc), status=500, code="cassette_error") from None
    listed = []
    for entry in state.library.available():
        name, dialects = entry["name"], entry["dialects"]
        item: dict[str, Any] = {"name": name, "dialects": dialects}
        try:
            c = state.library.resolve(name, dialects[0])
            item["description"] = c.description.split("\n\n")[0].replace("\n", " ")
            item["sessions"] = len(c.sessions)
        except CassetteError as exc:
            item["error"] = str(exc)
        listed.append(item)
    return listed


async def next_get(request: web.Request, state: MockState) -> web.Response:
    return _respond(_queue(state))


async def next_post(request: web.Request, state: MockState) -> web.Response:
    params = _params(request, await _body(request))
    name = _opt_str(params, "cassette")
    if name is None:
        raise AdminRequestError('say which: {"cassette": "<name>", "connections": <n, or null for every connection until reset>}')
    connections = _opt_int(params, "connections")
    if name not in state.library.names():
        await asyncio.get_running_loop().run_in_executor(None, state.library.refresh)
        if name not in state.library.names():
            raise AdminRequestError(
                f"no cassette named {name!r}", status=404, code="cassette_not_found", available=state.library.names()
            )
    try:
        state.chosen.add(name, connections)
    except ValueError as exc:
        raise AdminRequestError(str(exc)) from None
    return _respond(_queue(state))


async def next_delete(request: web.Request, state: MockState) -> web.Response:
    state.chosen.clear()
    return _respond(_queue(state))


async def connections(request: web.Request, state: MockState) -> web.Response:
    return _respond({"connections": [_summary(r) for r in state.connections], "forgotten": state.forgotten})


async def connection(request: web.Request, state: MockState) -> web.Response:
    return _respond(_detail(_report(state, request.match_info["id"])))


async def connection_timeline(request: web.Request, state: MockState) -> web.Response:
    from mockrealtime.net.admin_timeline import timeline_page  # imported when asked: not on every start-up

    return web.Response(text=timeline_page(_report(state, request.match_info["id"])), content_type="text/html")


async def journal(request: web.Request, state: MockState) -> web.Response:
    selected = Filter(_params(request, None))
    entries = list(selected.entries(state))
    return _respond({"entries": entries, "count": len(entries)})


async def journal_wait(request: web.Request, state: MockState) -> web.Response:
    """Answer when at least ``count`` journal entries match (and, with ``closed``, the connections
    matched are closed); 408 after ``timeout_s`` with what was there."""
    params = _params(request, await _body(request) if request.method == "POST" else None)
    selected = Filter(params)
    count = _opt_int(params, "count")
    count = 1 if count is None else count
    closed = _opt_bool(params, "closed")
    timeout_s = _timeout_s(params)
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout_s

    def check() -> tuple[bool, list[dict[str, Any]]]:
        entries = list(selected.entries(state))
        done = len(entries) >= count
        if closed:
            matched = selected.connections(state)
            done = done and bool(matched) and not any(r.open for r in matched)
        return done, entries

    done, entries = check()
    while not done:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        waiter: asyncio.Future[None] = loop.create_future()
        state.journal_waiters.add(waiter)
        try:
            await asyncio.wait({waiter}, timeout=remaining)
        finally:
            state.journal_waiters.discard(waiter)
            waiter.cancel()
        done, entries = check()
    body: dict[str, Any] = {"entries": entries, "count": len(entries), "waited_s": round(loop.time() - started, 3)}
    if done:
        return _respond(body)
    open_ = [r.id for r in selected.connections(state) if r.open]
    body["error"] = {
        "code": "timeout",
        "message": f"after {timeout_s:g} s: {len(entries)} of {count} matching journal entries"
        + (f"; connection(s) {open_} still open" if closed and open_ else "")
        + ("; no connection matches" if not selected.connections(state) else ""),
    }
    return _respond(body, status=408)


async def divergences(request: web.Request, state: MockState) -> web.Response:
    selected = Filter(_params(request, None))
    out = [
        {"connection": r.id, **d.to_dict()}
        for r in selected.connections(state)
        for d in r.engine.divergences
    ]
    return _respond({"divergences": out, "count": len(out)})


async def unplayed(request: web.Request, state: MockState) -> web.Response:
    selected = Filter(_params(request, None))
    out = [
        {"connection": r.id, "cassette": r.engine.cassette.name, "open": r.open, "events": r.engine.unplayed()}
        for r in selected.connections(state)
    ]
    return _respond({"unplayed": out})


async def reset(request: web.Request, state: MockState) -> web.Response:
    state.reset()
    release_memory()
    return _respond({"status": "ok"})


async def not_found(request: web.Request, state: MockState) -> web.Response:
    raise AdminRequestError(
        f"no admin endpoint {request.method} {request.path}", status=404, code="not_found", endpoints=ENDPOINTS
    )


ROUTES: list[tuple[str, str, Callable[[web.Request, MockState], Any], str]] = [
    ("GET", "", index, "this list"),
    ("GET", "/", index, "this list"),
    ("GET", "/config", config, "the server's configuration (flags > MOCKREALTIME_* > defaults; keys redacted)"),
    ("PATCH", "/config", config_patch, '{"on_divergence": "error" | "close"}: for the connections that follow, until reset'),
    ("GET", "/cassettes", cassettes, "the cassettes served, the default and the queue"),
    ("GET", "/cassettes/next", next_get, "the cassettes chosen for the next connections that name none"),
    ("POST", "/cassettes/next", next_post, '{"cassette": NAME, "connections": N | null (until reset)}'),
    ("DELETE", "/cassettes/next", next_delete, "empty the queue"),
    ("GET", "/connections", connections, "a summary of each connection"),
    ("GET", "/connections/{id}", connection, "one connection: journal, divergences, unplayed"),
    ("GET", "/connections/{id}/timeline.html", connection_timeline, "one connection as a page, above the recording it replays"),
    ("GET", "/journal", journal, "client events; filters: connection, cassette, type, outcome"),
    ("GET", "/journal/wait", journal_wait, "the journal filters plus count, closed, timeout_s; 408 on timeout"),
    ("POST", "/journal/wait", journal_wait, "the same with a JSON body"),
    ("GET", "/divergences", divergences, "divergences; filters: connection, cassette"),
    ("GET", "/unplayed", unplayed, "what each recording still holds; filters: connection, cassette"),
    ("POST", "/reset", reset, "forget connections and journals, rewind sessions, empty the queue, restore the configuration"),
]

ENDPOINTS = [
    {"method": method, "path": PREFIX + path, "does": does} for method, path, _, does in ROUTES if path != "/"
]


def add_admin_routes(app: web.Application) -> None:
    """Mount the admin API under ``/__admin`` on a mockrealtime app (one made by ``make_app``)."""
    for method, path, fn, _ in ROUTES:
        app.router.add_route(method, PREFIX + path, _handler(fn))
    app.router.add_route("*", PREFIX + "/{tail:.*}", _handler(not_found))
