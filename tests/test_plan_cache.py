"""The frames a process keeps to replay cassettes stay within one budget (core/plan.py)."""

from __future__ import annotations

import base64
import collections
import dataclasses
import gc
import os

from mockrealtime.core import plan
from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session
from mockrealtime.core.engine import ReplaySession


def long_answer(deltas: int) -> Cassette:
    chunk = base64.b64encode(os.urandom(4800)).decode()  # 100 ms of pcm16: 6.4 KB of text per frame
    events = [RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "event_0", "session": {"type": "realtime"}}),
              RecordedEvent.make("client", 1, {"type": "response.create"})]
    for n in range(1, deltas + 1):
        events.append(RecordedEvent.make("server", 1 + n, {"type": "response.output_audio.delta", "event_id": f"event_{n}",
                                                           "response_id": "resp_1", "item_id": "item_1", "output_index": 0,
                                                           "content_index": 0, "delta": chunk}))
    events.append(RecordedEvent.make("server", 2 + deltas, {"type": "response.done", "event_id": "event_done",
                                                           "response": {"id": "resp_1", "status": "completed", "output": []}}))
    return Cassette(name="long", dialect="ga", sessions=[Session(events, Close("client", 1000, ""))])


def replay(cassette: Cassette) -> list[bytes]:
    engine = ReplaySession(cassette, as_bytes=True)  # as the server: the plan is warmed
    engine.start(0)
    engine.feed('{"type":"response.create"}', 1)
    return engine.pop_due(1e12)


def test_frames_beyond_the_budget_are_not_kept_and_go_out_the_same(monkeypatch):
    # a cache of its own: a full process-wide cache would evict (and free) other tests' plans midway
    monkeypatch.setattr(plan, "_CACHE", collections.OrderedDict())
    gc.collect()
    budget = 100_000
    before = plan.frame_cache_used()
    monkeypatch.setattr(plan, "FRAME_CACHE_BYTES", before + budget)
    bounded = long_answer(200)  # 1.3 MB of frames
    sent = replay(bounded)
    compiled = plan.plan_for(bounded, 0)
    assert plan.frame_cache_used() - before <= budget and compiled.cached_bytes <= budget
    assert 0 < len(compiled.frames) < 200
    monkeypatch.setattr(plan, "FRAME_CACHE_BYTES", 2**62)
    assert sent == replay(dataclasses.replace(bounded))  # a new plan, every frame kept: the same bytes


def test_a_dropped_plan_gives_its_bytes_back(monkeypatch):
    monkeypatch.setattr(plan, "_CACHE", collections.OrderedDict())  # as above: nothing else is freed meanwhile
    gc.collect()  # nor by the collection below: plans other tests left in reference cycles go now
    before = plan.frame_cache_used()
    cassette = long_answer(20)
    replay(cassette)
    assert plan.frame_cache_used() > before
    plan._CACHE.pop(id(cassette))
    gc.collect()
    assert plan.frame_cache_used() == before


async def test_a_cassette_is_planned_in_the_loader_thread_never_on_the_loop(start_server, monkeypatch):
    # planning and serialising a long call takes seconds: on the loop, every connection would wait
    import asyncio
    import collections
    import threading

    import aiohttp

    threads = []
    compile_plan = plan.compile_plan

    def recording(*args):
        threads.append(threading.current_thread())
        return compile_plan(*args)

    monkeypatch.setattr(plan, "_CACHE", collections.OrderedDict())
    monkeypatch.setattr(plan, "compile_plan", recording)
    server = await start_server()
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url + "/c/hello/v1/realtime") as ws:
        assert (await asyncio.wait_for(ws.receive(), 10)).json()["type"] == "session.created"
    assert threads and threading.main_thread() not in threads
