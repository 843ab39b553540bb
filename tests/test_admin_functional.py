"""The admin API over real HTTP while real clients (the openai SDK, a bare WebSocket) replay."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
from typing import Any

import aiohttp
import pytest
import yaml
from replay_compare import untag
from openai import AsyncOpenAI

from mockrealtime.core.library import CassetteLibrary, bundled_cassette_dir

from seed_tools import FLAT_TOOL

TIMEOUT_S = 10
#: A long-poll's own timeout, far beyond TIMEOUT_S: a wait that answers within TIMEOUT_S was woken up,
#: it did not run into its deadline (where it would re-check and answer 200 all the same).
LONG_POLL_S = 30
BUNDLED = CassetteLibrary()



def recorded_session_id(name: str, dialect: str = "ga") -> str:
    first = BUNDLED.resolve(name, dialect).sessions[0].events[0].event
    assert first["type"] == "session.created"
    return first["session"]["id"]


@pytest.fixture
async def admin(server):
    async with aiohttp.ClientSession(base_url=server.http_url) as http:

        async def call(method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, dict[str, Any]]:
            async with http.request(method, "/__admin" + path, json=body, **kwargs) as resp:
                assert resp.content_type == "application/json"
                return resp.status, await resp.json()

        yield call


async def first_event(server, base_url: str, **headers: str) -> dict[str, Any]:
    client = AsyncOpenAI(api_key="sk-test-not-a-key", websocket_base_url=base_url)
    async with client.realtime.connect(model="gpt-realtime", extra_headers=headers) as conn:
        return json.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S))


async def recv_until(conn, type_: str) -> list[dict[str, Any]]:
    out = []
    while True:
        out.append(json.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S)))
        if out[-1]["type"] == type_:
            return out


async def tool_round_trip(server) -> str:
    """What an agent does with the function_call cassette; returns the call_id it answered."""
    client = AsyncOpenAI(api_key="sk-test-not-a-key", websocket_base_url=server.base_url())
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await recv_until(conn, "session.created")
        await conn.session.update(session={"type": "realtime", "tools": [FLAT_TOOL], "instructions": "x"})
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How many emails?"}]}
        )
        await conn.response.create()
        done = (await recv_until(conn, "response.done"))[-1]
        call = done["response"]["output"][0]
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call["call_id"], "output": json.dumps({"total": 3})}
        )
        await conn.response.create()
        follow_up = (await recv_until(conn, "response.done"))[-1]
        assert follow_up["response"]["status"] == "completed"
        return call["call_id"]


# -- cassettes and the queue ----------------------------------------------------------------------


async def test_cassettes_lists_every_bundled_cassette_with_its_dialects_and_the_default(admin):
    status, body = await admin("GET", "/cassettes")
    assert status == 200
    assert [c["name"] for c in body["cassettes"]] == BUNDLED.names()
    by_name = {c["name"]: c for c in body["cassettes"]}
    assert by_name["function_call"]["dialects"] == ["beta", "ga"]
    assert by_name["function_call"]["description"].startswith("A complete tool round trip")
    assert (body["default"], body["next"]) == ("hello", [])


async def test_a_chosen_cassette_serves_that_many_connections_then_the_default(server, admin):
    status, body = await admin("POST", "/cassettes/next", {"cassette": "function_call", "connections": 2})
    assert (status, body["next"]) == (200, [{"cassette": "function_call", "connections": 2}])
    sessions = [untag((await first_event(server, server.base_url()))["session"]["id"]) for _ in range(3)]
    assert sessions == [recorded_session_id("function_call")] * 2 + [recorded_session_id("hello")]
    assert (await admin("GET", "/cassettes/next"))[1]["next"] == []


async def test_a_connection_that_names_its_cassette_keeps_it_and_leaves_the_queue_alone(server, admin):
    await admin("POST", "/cassettes/next", {"cassette": "function_call", "connections": 1})
    by_path = await first_event(server, server.base_url("hello"))
    by_header = await first_event(server, server.base_url(), **{"X-Mockrealtime-Cassette": "hello"})
    assert untag(by_path["session"]["id"]) == untag(by_header["session"]["id"]) == recorded_session_id("hello")
    assert by_path["session"]["id"] != by_header["session"]["id"]  # two connections, fresh ids each
    assert (await admin("GET", "/cassettes/next"))[1]["next"] == [{"cassette": "function_call", "connections": 1}]


async def test_a_choice_without_a_count_holds_until_reset(server, admin):
    await admin("POST", "/cassettes/next", {"cassette": "function_call"})
    for _ in range(3):
        assert untag((await first_event(server, server.base_url()))["session"]["id"]) == recorded_session_id("function_call")
    assert (await admin("POST", "/reset"))[0] == 200
    assert untag((await first_event(server, server.base_url()))["session"]["id"]) == recorded_session_id("hello")


async def test_choices_queue_up_in_order_and_delete_empties_the_queue(server, admin):
    await admin("POST", "/cassettes/next", {"cassette": "function_call", "connections": 1})
    await admin("POST", "/cassettes/next", {"cassette": "missing_call_id", "connections": 1})
    assert untag((await first_event(server, server.base_url()))["session"]["id"]) == recorded_session_id("function_call")
    assert (await admin("DELETE", "/cassettes/next"))[1]["next"] == []
    assert untag((await first_event(server, server.base_url()))["session"]["id"]) == recorded_session_id("hello")


async def test_a_plain_get_or_a_missing_dialect_does_not_use_up_a_choice(server, admin):
    await admin("POST", "/cassettes/next", {"cassette": "function_call", "connections": 1})
    async with aiohttp.ClientSession() as http, http.get(server.http_url + "/v1/realtime") as resp:
        assert resp.status == 426
    assert (await admin("GET", "/cassettes/next"))[1]["next"] == [{"cassette": "function_call", "connections": 1}]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"cassette": "no_such_cassette"}, 404, "cassette_not_found"),
        ({"cassette": "hello", "connections": 0}, 400, "invalid_request"),
        ({"cassette": "hello", "connections": "two"}, 400, "invalid_request"),
        ({"connections": 1}, 400, "invalid_request"),
        ([1, 2], 400, "invalid_request"),
    ],
)
async def test_a_bad_choice_is_refused_with_a_json_error(admin, body, status, code):
    got_status, got = await admin("POST", "/cassettes/next", body)
    assert (got_status, got["error"]["code"]) == (status, code)
    assert (await admin("GET", "/cassettes/next"))[1]["next"] == []


async def test_a_body_that_is_not_json_is_a_400(server):
    async with aiohttp.ClientSession() as http:
        async with http.post(server.http_url + "/__admin/cassettes/next", data=b"{nope") as resp:
            assert resp.status == 400
            assert "not JSON" in (await resp.json())["error"]["message"]


async def test_unknown_admin_paths_answer_json_with_the_list_of_endpoints(admin):
    status, body = await admin("GET", "/nope")
    assert status == 404
    assert {"method": "POST", "path": "/__admin/reset"} in [
        {k: e[k] for k in ("method", "path")} for e in body["error"]["endpoints"]
    ]
    assert (await admin("GET", ""))[1]["endpoints"] == body["error"]["endpoints"]


# -- journal, wait-for, divergences, unplayed -------------------------------------------------------


async def test_wait_for_returns_as_soon_as_the_sdk_client_sends_the_tool_output(server, admin):
    """The journal long-poll runs beside a real client doing the tool round trip."""
    await admin("POST", "/cassettes/next", {"cassette": "function_call", "connections": 1})
    wait = asyncio.create_task(
        admin("POST", "/journal/wait", {"type": "conversation.item.create", "count": 2, "timeout_s": LONG_POLL_S})
    )
    call_id = await tool_round_trip(server)
    status, body = await asyncio.wait_for(wait, TIMEOUT_S)  # woken by the journal growing
    assert status == 200
    assert body["count"] == 2
    output = body["entries"][1]
    assert (output["connection"], output["outcome"]) == (0, "matched")
    assert output["event"]["item"] == {"type": "function_call_output", "call_id": call_id, "output": '{"total": 3}'}

    status, body = await asyncio.wait_for(admin("GET", f"/journal/wait?connection=0&closed=true&timeout_s={LONG_POLL_S}"), TIMEOUT_S)
    assert status == 200
    status, report = await admin("GET", "/connections/0")
    assert (report["cassette"], report["open"], report["divergences"], report["unplayed"]) == ("function_call", False, [], [])
    assert [e["event"]["type"] for e in report["journal"]] == [
        "session.update", "conversation.item.create", "response.create", "conversation.item.create", "response.create",
    ]
    assert server.state.journal_waiters == set()


async def send_off_script(server, cassette: str) -> None:
    """A bare client that sends, on a cassette that expects session.update first, a response.create
    (a divergence) and an event the API does not know (rejected), then leaves."""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url + f"/c/{cassette}/v1/realtime?model=gpt-realtime") as ws:
            assert json.loads((await ws.receive(timeout=TIMEOUT_S)).data)["type"] == "session.created"
            for event in ({"type": "response.create"}, {"type": "no.such.event"}):
                await ws.send_json(event)
                assert json.loads((await ws.receive(timeout=TIMEOUT_S)).data)["type"] == "error"


async def journal(admin, query: str) -> list[tuple[int, str, str]]:
    status, body = await admin("GET", "/journal" + query)
    assert status == 200 and body["count"] == len(body["entries"])
    return [(e["connection"], e["type"], e["outcome"]) for e in body["entries"]]


async def test_journal_filters_by_type_outcome_connection_and_cassette(server, admin):
    """Two connections to two cassettes with different event types and outcomes: each filter, left
    out, would let through entries the test can see."""
    await admin("POST", "/cassettes/next", {"cassette": "function_call", "connections": 1})
    await tool_round_trip(server)
    await send_off_script(server, "hello")
    await asyncio.wait_for(admin("GET", f"/journal/wait?closed=true&count=7&timeout_s={LONG_POLL_S}"), TIMEOUT_S)
    first = [
        (0, "session.update", "matched"), (0, "conversation.item.create", "matched"), (0, "response.create", "matched"),
        (0, "conversation.item.create", "matched"), (0, "response.create", "matched"),
    ]
    second = [(1, "response.create", "diverged"), (1, "no.such.event", "rejected")]
    assert await journal(admin, "") == first + second
    assert await journal(admin, "?connection=1") == second
    assert await journal(admin, "?connection=0") == first
    assert await journal(admin, "?cassette=hello") == second
    assert await journal(admin, "?cassette=function_call") == first
    assert await journal(admin, "?outcome=diverged") == second[:1]
    assert await journal(admin, "?outcome=matched") == first
    assert await journal(admin, "?outcome=diverged,rejected") == second
    assert await journal(admin, "?type=response.create") == [first[2], first[4], second[0]]
    assert await journal(admin, "?connection=1&type=response.create") == second[:1]
    assert await journal(admin, "?connection=0&outcome=diverged") == []
    _, both = await admin("GET", "/journal", params=[("type", "session.update"), ("type", "no.such.event")])
    assert [(e["connection"], e["type"]) for e in both["entries"]] == [(0, "session.update"), (1, "no.such.event")]
    assert await journal(admin, "?type=session.update,no.such.event") == [first[0], second[1]]
    _, summary = await admin("GET", "/connections")
    assert [(c["id"], c["cassette"], c["open"]) for c in summary["connections"]] == [(0, "function_call", False), (1, "hello", False)]
    assert summary["connections"][0]["counts"] == {"journal": 5, "divergences": 0, "unplayed": 0}
    assert summary["connections"][1]["counts"]["journal"] == 2


async def test_wait_for_times_out_with_408_and_what_it_found(admin):
    status, body = await admin("GET", "/journal/wait?type=response.cancel&timeout_s=0.2")
    assert status == 408
    assert body["count"] == 0 and body["entries"] == []
    assert body["error"]["code"] == "timeout"
    assert body["waited_s"] >= 0.2


@pytest.mark.parametrize("query", ["timeout_s=-1", "timeout_s=1e9", "timeout_s=soon", "count=x", "closed=maybe"])
async def test_wait_for_refuses_bad_parameters(admin, query):
    status, body = await admin("GET", "/journal/wait?" + query)
    assert (status, body["error"]["code"]) == (400, "invalid_request")


async def test_divergences_and_unplayed_from_a_bare_websocket_client(server, admin):
    """What a client in any language sees: plain WebSocket frames and plain HTTP JSON."""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url + "/c/function_call/v1/realtime?model=gpt-realtime") as ws:
            assert json.loads((await ws.receive()).data)["type"] == "session.created"
            await ws.send_json({"type": "response.create", "event_id": "evt_early"})
            error = json.loads((await ws.receive(timeout=TIMEOUT_S)).data)
            assert (error["type"], error["error"]["event_id"]) == ("error", "evt_early")
            status, body = await admin("GET", "/unplayed")
            assert body["unplayed"][0]["open"] is True
            assert body["unplayed"][0]["events"][0] == {"event_index": 3, "direction": "client", "type": "response.create"}
    _, body = await admin("GET", "/journal/wait?closed=true&timeout_s=5")
    _, diverged = await admin("GET", "/divergences")
    assert diverged["count"] == 1
    (d,) = diverged["divergences"]
    assert (d["connection"], d["expected"]["type"], d["received"]["type"]) == (0, "response.create", "response.create")
    assert "expected 'response.create'" in d["summary"] and "session.tools[*].name" in d["summary"]
    _, unplayed = await admin("GET", "/unplayed?connection=0")
    assert unplayed["unplayed"][0]["open"] is False
    assert {"direction": "client", "type": "response.create", "event_index": 3} in unplayed["unplayed"][0]["events"]


@pytest.fixture
def two_sessions(tmp_path) -> str:
    """A directory with ``twice``: hello's session recorded twice, the second with its own session id."""
    with open(BUNDLED.resolve("hello", "ga").path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    again = copy.deepcopy(doc["sessions"][0])
    again["events"][0]["server"]["session"]["id"] = "sess_the_second_one"
    doc["sessions"].append(again)
    for file in {e["audio"]["file"] for e in again["events"] if "audio" in e}:
        shutil.copy(os.path.join(bundled_cassette_dir(), file), tmp_path / file)
    (tmp_path / "twice.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(tmp_path)


async def test_reset_forgets_connections_and_rewinds_sessions(start_server, two_sessions):
    server = await start_server(cassettes=two_sessions, default_cassette="twice")
    async with aiohttp.ClientSession(base_url=server.http_url) as http:
        async def admin(method: str, path: str) -> tuple[int, dict[str, Any]]:
            async with http.request(method, "/__admin" + path) as resp:
                return resp.status, await resp.json()

        first, second = recorded_session_id("hello"), "sess_the_second_one"
        assert untag((await first_event(server, server.base_url()))["session"]["id"]) == first
        assert len((await admin("GET", "/connections"))[1]["connections"]) == 1
        assert (await admin("POST", "/reset"))[1] == {"status": "ok"}
        assert (await admin("GET", "/connections"))[1]["connections"] == []
        assert (await admin("GET", "/connections/0"))[0] == 404
        # rewound: the next connection replays the first session again, not the second
        assert [untag((await first_event(server, server.base_url()))["session"]["id"]) for _ in range(2)] == [first, second]


async def test_a_wait_for_closed_wakes_when_the_connection_closes(server, admin):
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url + "/c/hello/v1/realtime?model=gpt-realtime") as ws:
            assert json.loads((await ws.receive(timeout=TIMEOUT_S)).data)["type"] == "session.created"
            wait = asyncio.create_task(admin("GET", f"/journal/wait?closed=true&count=0&timeout_s={LONG_POLL_S}"))
            await waiter_registered(server)
    status, body = await asyncio.wait_for(wait, TIMEOUT_S)  # woken by the close
    assert (status, body["count"]) == (200, 0)


async def waiter_registered(server, other_than: set[asyncio.Future[None]] = frozenset()) -> asyncio.Future[None]:
    """The future a long-poll sleeps on, once it sleeps (it registers on the same loop)."""
    for _ in range(10_000):
        fresh = server.state.journal_waiters - other_than
        if fresh:
            return next(iter(fresh))
        await asyncio.sleep(0.001)
    raise AssertionError("the long-poll never started waiting")


async def test_reset_wakes_a_wait_that_then_keeps_waiting(server, admin):
    wait = asyncio.create_task(admin("GET", f"/journal/wait?type=response.create&timeout_s={LONG_POLL_S}"))
    asleep = await waiter_registered(server)
    await admin("POST", "/reset")
    assert asleep.done() and not asleep.cancelled(), "reset did not wake the long-poll"
    await waiter_registered(server, other_than={asleep})  # it re-checked and went back to sleep
    assert not wait.done()
    # it answers when what it waits for arrives, after the reset
    await admin("POST", "/cassettes/next", {"cassette": "function_call", "connections": 1})
    await tool_round_trip(server)
    status, body = await asyncio.wait_for(wait, TIMEOUT_S)
    assert (status, [e["type"] for e in body["entries"]]) == (200, ["response.create"])


@pytest.mark.parametrize("body", ['{"cassette": "hello", "connections": 1e999}', "[" * 5000, '{"cassette": "hello", "connections": "x"}'])
async def test_a_hostile_admin_body_gets_a_400_never_a_traceback(server, caplog, body):
    async with aiohttp.ClientSession() as http, http.post(server.http_url + "/__admin/cassettes/next", data=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_request"
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


# -- configuration --------------------------------------------------------------------------------


async def test_the_configuration_is_shown_as_resolved_with_keys_redacted(start_server):
    server = await start_server(pace=0.5, match="type", api_key="sk-admin-test-key-0123456789", strict=True)
    async with aiohttp.ClientSession(base_url=server.http_url) as http, http.get("/__admin/config") as resp:
        assert resp.status == 200
        shown = (await resp.json())["config"]
    assert (shown["pace"], shown["match"], shown["strict"], shown["record_mode"]) == (0.5, "type", True, "none")
    assert shown["api_key"] == "<redacted>" and shown["upstream_api_key"] is None
    assert "sk-admin-test-key" not in json.dumps(shown)


async def closed(server, count: int) -> None:
    """Wait until ``count`` connections have closed on the server (the close reaches it after the client's)."""
    for _ in range(10_000):
        if sum(not r.open for r in server.state.connections) + server.state.forgotten >= count:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the connections did not close")


async def test_a_long_running_server_keeps_a_bounded_summary_of_finished_connections(start_server):
    server = await start_server(keep_finished=2)
    for _ in range(4):
        await first_event(server, server.base_url("hello"))
    await closed(server, 4)
    async with aiohttp.ClientSession(base_url=server.http_url) as http:
        async with http.get("/__admin/connections") as resp:
            summary = await resp.json()
        async with http.get("/__admin/connections/0") as resp:
            assert resp.status == 404
        async with http.get("/__admin/connections/3") as resp:
            detail = await resp.json()
    assert ([c["id"] for c in summary["connections"]], summary["forgotten"]) == ([2, 3], 2)
    assert (detail["open"], detail["journal"], detail["unplayed"][0]["type"]) == (False, [], "response.create")
    # what stays is a summary: no socket, no replay state
    report = server.state.connections[-1]
    assert report.socket is None and not hasattr(report.engine, "plan") and not hasattr(report.engine, "model")


async def test_a_running_tests_finished_connections_are_not_forgotten(start_server):
    server = await start_server(keep_finished=1)
    server.state.library.register("mine", [BUNDLED.resolve("hello", "ga").path])
    server.state.routes["mine"] = server.state.config  # a test's route, registered while it runs
    await first_event(server, server.base_url("hello"))
    await closed(server, 1)
    for n in range(3):
        await first_event(server, f"{server.ws_url}/c/mine/v1")
        await closed(server, 2 + n)
    assert ([r.route for r in server.state.connections], server.state.forgotten) == (["mine"] * 3, 1)
