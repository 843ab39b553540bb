"""``new_episodes`` for sessions: replay what the cassette holds, go live for what it does not.

Theory of operation
-------------------
For a test in record mode ``new_episodes`` whose cassette exists, the client talks to a relay of
its own (on the fixture's server loop) instead of the replay route. Connection *n* in a dialect:

* **within the recorded sessions** (``n`` < the number of sessions): relayed to the replay route,
  where it gets recorded session ``n`` as usual. Every server frame is watched. When the replay
  answers a client event with ``cassette_mismatch`` (the client departed from the recording), that
  answer is held back and the connection is *handed over*: the replay connection is closed, a live
  one is opened upstream, the live session is brought to the state the client believes in, and the
  diverging client event and everything after it go live.
* **beyond the recorded sessions**: relayed live from the start.

Bringing a live session to the client's state (nothing of it reaches the client or the cassette):
the client's own ``session.update`` events are sent again, in order, then every conversation item
the client was shown (``conversation.item.added``/``created``, completed by ``.done`` events and
input transcriptions), in order and with the same ids: user and system messages as they were,
function calls and their outputs with their ``call_id``, the assistant's spoken answers as text
(their transcripts; audio cannot be put back). Each waits for the server's acknowledgement.
Not carried over: microphone audio appended but not yet committed at the divergence, and a
response still streaming at that moment (at pace 0 a replayed response is complete by then).

Recording: what the client sent and what it was shown, from connect to close, with this run's
timing. When the test passes (or ``record_failed``), the cassette is saved: a handed-over session
replaces recorded session ``n`` (it holds the matching prefix and the live remainder), sessions
recorded beyond the cassette are appended; checked for secrets like every recording.

To tell which replay connection was handed over, the relay connects to ``/c/<token>/ep<n>/...``,
and stamps client events that carry no ``event_id`` with one of its own so the mismatch names the
event exactly; the stamp is taken out again of anything the client sees or the cassette keeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from mockrealtime.core import cassette as _cassette
from mockrealtime.core.cassette import Cassette
from mockrealtime.core.events import BETA, GA
from mockrealtime.core.journal import Journal, SentEvent
from mockrealtime.core.recording import Recorder, SessionRecording, negotiate_dialect
from mockrealtime.core.redaction import TRANSPORT_HEADERS, Redactor, save_checked
from mockrealtime.core.engine import MISMATCH_CODE, strip_audio

if TYPE_CHECKING:
    from mockrealtime.testing.modes import Case as RealtimeMock

log = logging.getLogger("mockrealtime.testing.episodes")

ACK_TIMEOUT_S = 15.0
_STAMP = "mrep_"
_HOP_HEADERS = frozenset({"x-mockrealtime-cassette"}) | TRANSPORT_HEADERS


class HandOverError(Exception):
    """The live session could not be brought to the client's state."""


# -- what the client was shown ------------------------------------------------------------------------


class Conversation:
    """The conversation items a client was shown, in order, complete as far as the events tell."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.items: dict[str, dict[str, Any]] = {}
        self.transcripts: dict[str, str] = {}

    def observe(self, event: Mapping[str, Any]) -> None:
        etype = event.get("type")
        if etype in ("conversation.item.added", "conversation.item.created", "conversation.item.done",
                     "response.output_item.done"):
            item = event.get("item")
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                if item["id"] not in self.items:
                    self.order.append(item["id"])
                if etype != "conversation.item.added" or item["id"] not in self.items:
                    self.items[item["id"]] = item
        elif etype == "conversation.item.input_audio_transcription.completed":
            if isinstance(event.get("item_id"), str):
                self.transcripts[event["item_id"]] = event.get("transcript") or ""
        elif etype == "conversation.item.deleted":
            item_id = event.get("item_id")
            if item_id in self.items:
                self.order.remove(item_id)
                del self.items[item_id]

    def rebuild(self, dialect: str) -> list[dict[str, Any]]:
        """``conversation.item.create`` events that recreate the conversation on another session."""
        out = []
        for item_id in self.order:
            item = _recreated(self.items[item_id], self.transcripts.get(item_id), dialect)
            if item is not None:
                out.append({"type": "conversation.item.create", "item": item})
        return out


def _recreated(item: dict[str, Any], transcript: str | None, dialect: str) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "function_call":
        return {"id": item["id"], "type": "function_call", "call_id": item.get("call_id"), "name": item.get("name"),
                "arguments": item.get("arguments") or ""}
    if kind == "function_call_output":
        return {"id": item["id"], "type": "function_call_output", "call_id": item.get("call_id"), "output": item.get("output") or ""}
    if kind != "message":
        return None
    role = item.get("role")
    content = []
    for part in item.get("content") or []:
        ptype = part.get("type")
        if ptype in ("input_text", "text", "output_text"):
            text = part.get("text") or ""
        elif ptype in ("input_audio", "audio", "output_audio"):
            text = part.get("transcript") or transcript or ""  # the audio itself cannot be put back
        else:
            continue
        if role == "assistant":
            content.append({"type": "output_text" if dialect == GA else "text", "text": text})
        else:
            content.append({"type": "input_text", "text": text})
    if not content:
        return None
    return {"id": item["id"], "type": "message", "role": role, "content": content}


# -- one relayed connection ---------------------------------------------------------------------------


@dataclasses.dataclass
class _Link:
    number: int  # per dialect
    dialect: str
    session: int | None  # the recorded session it replays; None: live from the start
    rec: SessionRecording
    route_path: str | None = None
    handed_over: bool = False
    problem: str | None = None
    sent: list[tuple[float, dict[str, Any]]] = dataclasses.field(default_factory=list)  # (at_ms, event) as the client sent


class EpisodeRelay:
    """The relay for one test; see the module docstring."""

    def __init__(self, handle: RealtimeMock, files: list[str]) -> None:
        self.handle = handle
        self.server = handle.server
        settings = handle.config
        self.cassettes = {c.dialect: c for c in (_cassette.load(f) for f in files)}
        self.key = os.environ.get("OPENAI_API_KEY") or None
        self.upstream = URL(settings.upstream)
        self.recorder = Recorder("episodes", redactor=Redactor(settings.redact_paths, settings.redact_patterns))
        self.recorder.add_secret(self.key)
        self.links: list[_Link] = []
        self._counts: dict[str, int] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.base_url = ""

    # -- lifecycle (called from the test's thread) --------------------------------------------------

    def start(self) -> EpisodeRelay:
        self.base_url = self.server.run(self._start())
        return self

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.server.close_timeout_s)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=30))
        return f"ws://127.0.0.1:{self._runner.addresses[0][1]}"

    def handed_over(self) -> set[int]:
        """The replay connections (server report ids) whose rest went live: not judged by the replay."""
        paths = {link.route_path for link in self.links if link.handed_over and link.route_path}
        return set(self.server.call(lambda: {r.id for r in self.server.state.connections if r.path in paths}))

    def played_sessions(self) -> set[int]:
        return {link.session for link in list(self.links) if link.session is not None}

    def journal(self) -> Journal:
        def collect() -> list[SentEvent]:
            out: list[SentEvent] = []
            for i, link in enumerate(self.links):
                outcome = "live" if link.session is None else "relayed"
                out.extend(SentEvent(i, at, ev, "audio" if ev.get("type") == "input_audio_buffer.append" else outcome)
                           for at, ev in link.sent)
            return out

        return Journal(self.server.call(collect))

    def finish(self, save: bool) -> str | None:
        """Close every relayed connection; save what was recorded live. A failure report or None."""
        problems = self.server.run(self._stop())
        if problems:
            return "mockrealtime new_episodes: " + "\n".join(problems)
        if not save:
            return None
        try:
            return self._save()
        except Exception as exc:  # a secret left, or I/O: nothing is written
            return f"mockrealtime new_episodes: the recording was not saved: {exc}"

    async def _stop(self) -> list[str]:
        from mockrealtime.testing.runner import close_sockets

        await close_sockets(list(self._sockets), self.server.close_timeout_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()
        for link in self.links:
            if link.rec.open:
                link.rec.end("client", 1000, "")
        return [f"connection {i}: {link.problem}" for i, link in enumerate(self.links) if link.problem]

    def _save(self) -> str | None:
        recorded = [link for link in self.links if link.handed_over or link.session is None]
        if not recorded:
            return None
        location = self.handle.location
        tmpdir = tempfile.mkdtemp(prefix="mockrealtime-episodes-")
        try:
            for dialect in sorted({link.dialect for link in recorded}):
                base = self.cassettes.get(dialect)
                sessions = list(base.sessions) if base is not None else []
                notes = []
                for link in (lk for lk in self.links if lk.dialect == dialect):
                    if link.handed_over and link.session is not None:
                        sessions[link.session] = link.rec.to_session()
                        notes.append(f"session {link.session} continued live")
                    elif link.session is None:
                        sessions.append(link.rec.to_session())
                        notes.append(f"session {len(sessions) - 1} recorded live")
                if base is not None:
                    path = base.path or location.path
                    name, model, handshake, matching = base.name, base.model, base.handshake, dict(base.matching)
                    description = base.description
                else:
                    stem = location.path[: -len(".yaml")] if location.path.endswith(".yaml") else location.path
                    path = stem + (".beta.yaml" if dialect == BETA else ".yaml")
                    first = next(lk for lk in recorded if lk.dialect == dialect)
                    name, model, handshake, matching = _cassette.cassette_name(path), first.rec.model, first.rec.handshake, {}
                    description = ""
                stamp = f"new_episodes ({self.upstream.with_query(None)}): {', '.join(notes)}."
                description = (description.rstrip() + "\n" + stamp) if description else stamp
                cassette = Cassette(name=name, dialect=dialect, sessions=sessions, model=model, handshake=handshake,
                                    description=description, matching=matching)
                target_dir = os.path.join(tmpdir, dialect)
                os.makedirs(target_dir)
                save_checked(cassette, os.path.join(target_dir, os.path.basename(path)), self.recorder.known_secrets)
                from mockrealtime.testing.storage import install_recording

                install_recording(target_dir, os.path.dirname(path))
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return None

    # -- the relay (in the server's loop) -----------------------------------------------------------

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("realtime",), compress=False, max_msg_size=0)
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="mockrealtime new_episodes: this endpoint speaks WebSocket\n")
        assert self._http is not None
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        dialect = negotiate_dialect(list(request.headers.items()), offered)
        number = self._counts.get(dialect, 0)
        self._counts[dialect] = number + 1
        cassette = self.cassettes.get(dialect)
        session = number if cassette is not None and number < len(cassette.sessions) else None
        clock = asyncio.get_running_loop().time
        rec = self.recorder.open(clock() * 1000.0, path=request.path, query=list(request.query.items()),
                                 headers=list(request.headers.items()), subprotocols=offered)
        link = _Link(number, dialect, session, rec)
        self.links.append(link)
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS)
        try:
            if session is not None:
                link.route_path = f"/c/{self.handle.token}/ep{len(self.links)}/v1/realtime"
                url = URL(self.server.ws_url + link.route_path).with_query(request.query)
                target = await self._http.ws_connect(url, headers=headers, compress=0, max_msg_size=0)
            else:
                target = await self._connect_live(headers, request.query)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            link.problem = f"cannot connect to {'the replay' if session is not None else self._label}: {exc}"
            return web.json_response({"error": {"type": "server_error", "code": "upstream_unreachable", "message": link.problem}}, status=502)
        await ws.prepare(request)
        self._sockets.add(ws)
        pump = _Pump(self, link, ws, target, headers, request.query)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await pump.run()
        except HandOverError as exc:
            link.problem = str(exc)
            await ws.close(code=1011, message=b"mockrealtime new_episodes: hand-over failed")
        finally:
            self._sockets.discard(ws)
            if task is not None:
                self._tasks.discard(task)
            if link.rec.open:
                link.rec.end("client", ws.close_code or 1000, "")
        return ws

    @property
    def _label(self) -> str:
        return str(self.upstream.with_query(None))

    async def _connect_live(self, headers: CIMultiDict[str], query: Mapping[str, str]) -> aiohttp.ClientWebSocketResponse[bool]:
        assert self._http is not None
        live_headers = CIMultiDict(headers)
        if self.key:
            live_headers.popall("Authorization", None)
            live_headers["Authorization"] = f"Bearer {self.key}"
        url = self.upstream.with_query({**self.upstream.query, **query})
        return await self._http.ws_connect(url, headers=live_headers, compress=0, max_msg_size=0)


class _Pump:
    """Frames both ways for one link, and the hand-over when the replay reports a mismatch."""

    def __init__(self, relay: EpisodeRelay, link: _Link, client: web.WebSocketResponse,
                 target: aiohttp.ClientWebSocketResponse[bool], headers: CIMultiDict[str], query: Mapping[str, str]) -> None:
        self.relay, self.link, self.client, self.target = relay, link, client, target
        self.headers, self.query = headers, query
        self.live = link.session is None
        self.open = asyncio.Event()
        self.open.set()
        self.to_replay: list[tuple[str, str, dict[str, Any]]] = []  # (stamp, text as the client sent, event)
        self.stamps: dict[str, None] = {}
        self.conversation = Conversation()
        self.clock = asyncio.get_running_loop().time
        self.t0 = self.clock()

    async def run(self) -> None:
        tasks = [asyncio.ensure_future(self._from_client()), asyncio.ensure_future(self._from_target())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not self.target.closed:
                await self.target.close()
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]

    async def _from_client(self) -> None:
        async for msg in self.client:
            if msg.type is not WSMsgType.TEXT:
                break
            text = msg.data
            now = self.clock()
            self.link.rec.client_text(text, now * 1000.0)
            try:
                event = json.loads(text)
            except ValueError:
                event = None
            if isinstance(event, dict):
                self.link.sent.append(((now - self.t0) * 1000.0, strip_audio(event)))
            await self.open.wait()
            if self.live or not isinstance(event, dict):
                await self._send(text)
                continue
            stamp = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            if stamp is None:
                stamp = f"{_STAMP}{len(self.to_replay)}"
                self.stamps[stamp] = None
                stamped = json.dumps({**event, "event_id": stamp}, separators=(",", ":"), ensure_ascii=False)
            else:
                stamped = text
            self.to_replay.append((stamp, text, event))
            await self._send(stamped)
        if self.client.close_code is not None and not self.target.closed:
            await self.target.close(code=1000)

    async def _send(self, text: str) -> None:
        try:
            await self.target.send_str(text)
        except ConnectionError:
            pass  # the target is going (a hand-over in progress resends what it needs)

    async def _from_target(self) -> None:
        while True:
            msg = await self.target.receive()
            if msg.type is not WSMsgType.TEXT:
                if not self.client.closed:
                    await self.client.close(code=self.target.close_code or 1000)
                return
            text = msg.data
            event = _parse(text)
            if not self.live and event is not None:
                error = event.get("error") if event.get("type") == "error" else None
                if isinstance(error, dict) and error.get("code") == MISMATCH_CODE:
                    await self._hand_over(error.get("event_id"))
                    continue
                if isinstance(error, dict) and error.get("event_id") in self.stamps:
                    event = {**event, "error": {**error, "event_id": None}}
                    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            if event is not None:
                self.conversation.observe(event)
            self.link.rec.server_text(text, self.clock() * 1000.0)
            await self.client.send_str(text)

    async def _hand_over(self, diverged: str | None) -> None:
        self.open.clear()
        index = next((i for i, (stamp, _, _) in enumerate(self.to_replay) if stamp == diverged), len(self.to_replay) - 1)
        pending = [text for _, text, _ in self.to_replay[index:]]
        history = [event for _, _, event in self.to_replay[:index]]
        replay = self.target
        self.link.handed_over = True
        await replay.close(code=1000, message=b"handed over to the live API")
        try:
            live = await self.relay._connect_live(self.headers, self.query)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise HandOverError(f"cannot reach the live API {self.relay._label}: {exc}") from None
        self.target = live
        await self._rebuild(live, history)
        for text in pending:
            await live.send_str(text)
        self.live = True
        self.open.set()
        log.info("= connection %d handed over to %s after %d client events", self.link.number, self.relay._label, index)

    async def _rebuild(self, live: aiohttp.ClientWebSocketResponse[bool], history: list[dict[str, Any]]) -> None:
        """Bring the live session to the client's state; its answers go nowhere."""
        await self._expect(live, ("session.created",), "the live session to open")
        for event in history:
            if event.get("type") == "session.update":
                await live.send_json({k: v for k, v in event.items() if k != "event_id"})
                await self._expect(live, ("session.updated",), "session.update to be applied")
        ack = ("conversation.item.done",) if self.link.dialect == GA else ("conversation.item.created",)
        for create in self.conversation.rebuild(self.link.dialect):
            await live.send_json(create)
            await self._expect(live, ack, f"conversation item {create['item']['id']} to be recreated")

    async def _expect(self, live: aiohttp.ClientWebSocketResponse[bool], types: tuple[str, ...], what: str) -> None:
        async def wait() -> None:
            while True:
                msg = await live.receive()
                if msg.type is not WSMsgType.TEXT:
                    raise HandOverError(f"the live API closed while waiting for {what} ({msg.type.name} {msg.data!r})")
                event = _parse(msg.data) or {}
                if event.get("type") in types:
                    return
                if event.get("type") == "error":
                    raise HandOverError(f"the live API refused while waiting for {what}: {event.get('error')}")

        try:
            await asyncio.wait_for(wait(), ACK_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise HandOverError(f"no answer from the live API within {ACK_TIMEOUT_S:.0f} s waiting for {what}") from None


def _parse(text: str) -> dict[str, Any] | None:
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def start_episodes(handle: RealtimeMock, files: list[str]) -> EpisodeRelay:
    return EpisodeRelay(handle, files).start()


__all__ = ["Conversation", "EpisodeRelay", "HandOverError", "start_episodes"]
