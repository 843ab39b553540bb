"""The Docker image, built and run with a real engine, driven from outside as a user would.

Needs a Docker engine. Where ``docker info`` fails and ``../shared/tools/local-docker.sh`` exists
(our machines: no engine by default, no registry), the module starts one with ``local-docker.sh up``
and stops it again afterwards. Where no engine can start, the tests skip and say why, unless
``MOCKREALTIME_REQUIRE_DOCKER=1`` (CI) makes that a failure. ``MOCKREALTIME_SKIP_DOCKER=1`` skips
them on purpose.

The image is built from the repository's own Dockerfile, unchanged; ``--network=host`` only lets
pip reach the package index from the build on an engine without NAT. The container publishes its
port on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import re
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from openai import AsyncOpenAI

from mockrealtime.config import ServerConfig
from mockrealtime.core.events import Direction
from mockrealtime.core.checks import cassette_paths
from mockrealtime.core.library import CassetteLibrary

from seed_tools import FLAT_TOOL
from replay_compare import assert_same_replay

ROOT = Path(__file__).resolve().parent.parent
LOCAL_DOCKER = Path(os.environ.get("MOCKREALTIME_LOCAL_DOCKER", ROOT.parent / "shared" / "tools" / "local-docker.sh"))
IMAGE = "mockrealtime:test"
ADMIN_TOKEN = "docker-test-admin-token"
LOCK = Path(tempfile.gettempdir()) / "mockrealtime-docker-tests.lock"
TIMEOUT_S = 20
HEALTHY_WITHIN_S = 60
BUNDLED = CassetteLibrary()



def _run(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=check)


def _engine_up() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return _run("docker", "info", timeout=30, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("MOCKREALTIME_REQUIRE_DOCKER") == "1":
        pytest.fail(f"MOCKREALTIME_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def _exclusive(timeout_s: float) -> Iterator[None]:
    """One run of this module at a time on a machine: a run that started the engine stops it at the
    end (``local-docker.sh stop`` removes every container), which would kill a concurrent run's."""
    with open(LOCK, "a") as f:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    _unavailable(f"another run of the Docker tests held {LOCK} for {timeout_s:g} s")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    """A running Docker engine; one this module started is stopped again at the end."""
    if os.environ.get("MOCKREALTIME_SKIP_DOCKER") == "1":
        pytest.skip("MOCKREALTIME_SKIP_DOCKER=1")
    with _exclusive(timeout_s=900):
        yield from _engine()


def _engine() -> Iterator[None]:
    started = False
    if not _engine_up():
        if not LOCAL_DOCKER.is_file():
            _unavailable(f"no Docker engine answers `docker info`, and there is no {LOCAL_DOCKER} to start one")
        try:
            up = _run("bash", str(LOCAL_DOCKER), "up", timeout=900, check=False)
        except subprocess.TimeoutExpired:
            up = None
        started = True
        if up is None or up.returncode != 0 or not _engine_up():
            detail = "timed out" if up is None else f"exit {up.returncode}: {(up.stderr or up.stdout).strip()[-800:]}"
            _run("bash", str(LOCAL_DOCKER), "stop", timeout=120, check=False)
            _unavailable(f"no Docker engine, and `local-docker.sh up` could not start one ({detail})")
    try:
        yield
    finally:
        if started:
            _run("bash", str(LOCAL_DOCKER), "stop", timeout=180, check=False)


@pytest.fixture(scope="module")
def image(engine: None) -> str:
    started = time.monotonic()
    build = _run("docker", "build", "--network=host", "-t", IMAGE, str(ROOT), timeout=900, check=False)
    if build.returncode != 0:
        pytest.fail(f"docker build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}", pytrace=False)
    print(f"docker build: {time.monotonic() - started:.1f} s")  # shown with -s / in CI logs
    return IMAGE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Container:
    def __init__(self, image: str, *extra: str) -> None:
        self.name = f"mockrealtime-test-{os.getpid()}-{_free_port()}"
        self.port = _free_port()
        _run("docker", "run", "-d", "--name", self.name, "-p", f"127.0.0.1:{self.port}:8080", *extra, image, timeout=120)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def inspect(self) -> dict[str, Any]:
        return json.loads(_run("docker", "inspect", self.name).stdout)[0]

    def logs(self) -> str:
        out = _run("docker", "logs", self.name, check=False)
        return out.stdout + out.stderr

    def wait_healthy(self) -> float:
        """Seconds until Docker's own health check said healthy (the image's HEALTHCHECK)."""
        started = time.monotonic()
        while time.monotonic() - started < HEALTHY_WITHIN_S:
            state = self.inspect()["State"]
            if not state["Running"]:
                pytest.fail(f"the container exited ({state.get('ExitCode')}):\n{self.logs()}", pytrace=False)
            if state.get("Health", {}).get("Status") == "healthy":
                return time.monotonic() - started
            time.sleep(0.25)
        pytest.fail(f"not healthy after {HEALTHY_WITHIN_S} s:\n{self.logs()}", pytrace=False)

    def remove(self) -> None:
        _run("docker", "rm", "-f", self.name, check=False)


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[Container]:
    c = Container(image, "-e", f"MOCKREALTIME_ADMIN_TOKEN={ADMIN_TOKEN}")  # the admin API beyond loopback needs one
    try:
        print(f"healthy after {c.wait_healthy():.1f} s")
        yield c
    finally:
        c.remove()


@pytest.fixture
async def admin(container: Container):
    async with aiohttp.ClientSession(base_url=container.http_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:

        async def call(method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
            async with http.request(method, "/__admin" + path, json=body) as resp:
                return resp.status, await resp.json()

        assert (await call("POST", "/reset"))[0] == 200
        yield call


async def recv_until(conn, type_: str) -> list[dict[str, Any]]:
    out = []
    while True:
        out.append(json.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT_S)))
        if out[-1]["type"] == type_:
            return out


# -- the image ------------------------------------------------------------------------------------


def test_the_image_runs_as_a_non_root_user_and_publishes_on_loopback_only(container):
    info = container.inspect()
    config = info["Config"]
    assert config["User"] == "10001"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "MOCKREALTIME_HOST=0.0.0.0" in config["Env"] and "MOCKREALTIME_CASSETTES=/cassettes" in config["Env"]
    assert "/cassettes" in config["Volumes"]
    (binding,) = info["HostConfig"]["PortBindings"]["8080/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    assert _run("docker", "exec", container.name, "id", "-u").stdout.strip() == "10001"


async def test_healthz_lists_the_bundled_cassettes(container):
    async with aiohttp.ClientSession() as http, http.get(container.http_url + "/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json()) == {"status": "ok", "cassettes": BUNDLED.names()}


def test_validate_and_show_run_in_the_image(image):
    validated = _run("docker", "run", "--rm", "--network=none", image, "validate", "/cassettes")
    assert validated.stdout.strip().endswith(f"{len(cassette_paths([BUNDLED.source]))} cassettes, all ok")
    shown = _run("docker", "run", "--rm", "--network=none", image, "show", "function_call")
    assert 'calls list_emails({"numEmails": 1})' in shown.stdout


# -- a real client against the container ----------------------------------------------------------------


async def test_the_openai_sdk_completes_the_tool_round_trip_against_the_container(container, admin):
    """The agent's base URL names no cassette: the test picks it through the admin API."""
    assert (await admin("POST", "/cassettes/next", {"cassette": "function_call", "connections": 1}))[0] == 200
    wait = asyncio.create_task(admin("POST", "/journal/wait", {"type": "response.create", "count": 2, "timeout_s": TIMEOUT_S}))
    client = AsyncOpenAI(api_key="sk-test-not-a-key", websocket_base_url=container.ws_url + "/v1")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = (await recv_until(conn, "session.created"))[-1]
        await conn.session.update(session={"type": "realtime", "tools": [FLAT_TOOL], "instructions": "You are an email assistant."})
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How many emails do I have?"}]}
        )
        await conn.response.create()
        first = await recv_until(conn, "response.done")
        call = first[-1]["response"]["output"][0]
        (done,) = [e for e in first if e["type"] == "response.function_call_arguments.done"]
        assert (call["type"], call["name"], json.loads(done["arguments"])) == ("function_call", "list_emails", {"numEmails": 1})
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call["call_id"], "output": json.dumps({"total": 3})}
        )
        await conn.response.create()
        follow_up = await recv_until(conn, "response.done")
    assert follow_up[-1]["response"]["status"] == "completed"
    assert [e for e in follow_up if e["type"] == "response.output_audio.delta"]
    recorded = BUNDLED.resolve("function_call", "ga").sessions[0].events[0].event
    # the recorded session, with this connection's fresh-id tag after the prefix (sess_MR0x...)
    prefix, _, rest = recorded["session"]["id"].partition("_")
    assert re.fullmatch(re.escape(prefix) + r"_MR\d+x" + re.escape(rest), created["session"]["id"])

    status, waited = await wait
    assert status == 200 and [e["connection"] for e in waited["entries"]] == [0, 0]
    status, _ = await admin("GET", "/journal/wait?connection=0&closed=true&timeout_s=10")
    assert status == 200
    status, report = await admin("GET", "/connections/0")
    assert (report["cassette"], report["dialect"], report["divergences"], report["unplayed"]) == ("function_call", "ga", [], [])
    assert [e["event"]["type"] for e in report["journal"]] == [
        "session.update", "conversation.item.create", "response.create", "conversation.item.create", "response.create",
    ]


async def test_a_client_in_any_language_needs_only_websocket_and_http(container, admin):
    """Replays hello's recorded client events over a bare WebSocket and checks the admin API's view."""
    cassette = BUNDLED.resolve("hello", "beta")
    events = cassette.sessions[0].events
    expected = [e.event for e in events if e.direction is Direction.SERVER]
    received: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            container.ws_url + "/c/hello/v1/realtime?model=gpt-4o-realtime-preview", headers={"OpenAI-Beta": "realtime=v1"}
        ) as ws:
            for ev in events:
                if ev.direction is Direction.CLIENT:
                    await ws.send_str(json.dumps(ev.event))
            while len(received) < len(expected):
                received.append(json.loads((await ws.receive(timeout=TIMEOUT_S)).data))
        assert_same_replay(received, expected)  # the recording's model output, with this connection's fresh ids
    _, waited = await admin("GET", "/journal/wait?cassette=hello&closed=true&timeout_s=10")
    assert waited["count"] == sum(e.direction is Direction.CLIENT for e in events)
    _, summary = await admin("GET", "/connections")
    assert [(c["cassette"], c["dialect"], c["counts"]["divergences"], c["counts"]["unplayed"]) for c in summary["connections"]] == [
        ("hello", "beta", 0, 0)
    ]


async def test_a_divergence_is_visible_from_outside(container, admin):
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(container.ws_url + "/c/function_call/v1/realtime?model=gpt-realtime") as ws:
            assert json.loads((await ws.receive(timeout=TIMEOUT_S)).data)["type"] == "session.created"
            await ws.send_json({"type": "response.create", "event_id": "evt_too_early"})
            error = json.loads((await ws.receive(timeout=TIMEOUT_S)).data)
    assert error["error"]["code"] == "cassette_mismatch" and error["error"]["event_id"] == "evt_too_early"
    await admin("GET", "/journal/wait?closed=true&timeout_s=10")
    _, body = await admin("GET", "/divergences")
    # the trigger came before the state the recorded model saw: the report names those fields
    assert [(d["expected"]["type"], d["received"]["type"]) for d in body["divergences"]] == [("response.create", "response.create")]
    assert [x["path"] for x in body["divergences"][0]["differences"]] == ["session.tools[*].name", "conversation.items[*] (type:role)"]


# -- the user's own cassettes ------------------------------------------------------------------------------


def test_a_directory_mounted_on_cassettes_replaces_the_bundled_ones(image, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    source = Path(BUNDLED.resolve("hello", "ga").path)
    shutil.copy(source, mine / "my_hello.yaml")
    for wav in source.parent.glob("hello.s*.wav"):
        shutil.copy(wav, mine / wav.name)
    for path in [mine, *mine.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the server runs as uid 10001
    c = Container(image, "-v", f"{mine}:/cassettes:ro", "-e", "MOCKREALTIME_DEFAULT_CASSETTE=my_hello")
    try:
        c.wait_healthy()
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(c.http_url + "/healthz", timeout=5) as resp:
            health = json.load(resp)
        assert health == {"status": "ok", "cassettes": ["my_hello"]}
        assert "(default: my_hello)" in c.logs()
    finally:
        c.remove()


async def test_without_a_token_the_admin_api_is_off_and_the_container_says_how(image):
    c = Container(image)
    try:
        c.wait_healthy()
        async with aiohttp.ClientSession() as http, http.get(c.http_url + "/__admin/connections") as resp:
            assert resp.status == 404
        assert "MOCKREALTIME_ADMIN_TOKEN=<a secret>" in c.logs()
    finally:
        c.remove()


async def test_the_admin_api_refuses_a_missing_token(container):
    async with aiohttp.ClientSession() as http, http.post(container.http_url + "/__admin/reset") as resp:
        assert resp.status == 401


# -- TLS: wss:// for the npm SDK and https pages ------------------------------------------------------------


async def _wss_session_created(port: int, ctx: Any, host: str = "127.0.0.1") -> str:
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=f"wss://{host}:{port}/v1")
    async with client.realtime.connect(model="gpt-realtime", websocket_connection_options={"ssl": ctx}) as conn:
        return (await conn.recv()).type


async def test_tls_writes_its_ca_to_the_certs_volume_and_serves_wss_and_rest(image, tmp_path):
    import ssl

    certs = tmp_path / "certs"
    certs.mkdir()
    certs.chmod(0o777)  # written by uid 10001
    c = Container(image, "-e", "MOCKREALTIME_TLS=1", "-v", f"{certs}:/certs")
    try:
        c.wait_healthy()  # the image's HEALTHCHECK asks over https
        assert "trust the CA in /certs/ca.pem" in c.logs()
        ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        assert await _wss_session_created(c.port, ctx) == "session.created"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"https://127.0.0.1:{c.port}/v1/realtime/client_secrets", json={"session": {"type": "realtime"}},
                                 ssl=ctx) as resp:
                assert resp.status == 200 and (await resp.json())["value"].startswith("ek_")
    finally:
        c.remove()


async def test_your_own_certificate_mounted_on_certs(image, tmp_path):
    import ssl

    import trustme

    certs = tmp_path / "mine"
    certs.mkdir()
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(certs / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(certs / "key.pem"))
    for path in [certs, *certs.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable by uid 10001
    c = Container(image, "-v", f"{certs}:/certs:ro", "-e", "MOCKREALTIME_CERTFILE=/certs/cert.pem",
                  "-e", "MOCKREALTIME_KEYFILE=/certs/key.pem")
    try:
        c.wait_healthy()
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        assert await _wss_session_created(c.port, ctx) == "session.created"
    finally:
        c.remove()


# -- the README's Docker section ----------------------------------------------------------------------------


def test_the_readme_run_line_and_compose_snippet_say_what_the_image_does():
    section = (ROOT / "README.md").read_text().split("\n## Docker\n", 1)[1].split("\n## ", 1)[0]
    assert "docker run --rm -p 127.0.0.1:8080:8080 mockrealtime" in section
    assert 'websocket_base_url="ws://127.0.0.1:8080/v1"' in section
    compose = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    realtime, agent = compose["services"]["realtime"], compose["services"]["agent"]
    assert realtime["volumes"] == ["./cassettes:/cassettes:ro"]
    fields = {f.name.upper() for f in dataclasses.fields(ServerConfig)}
    assert all(k.startswith("MOCKREALTIME_") and k[len("MOCKREALTIME_"):] in fields for k in realtime["environment"])
    assert agent["depends_on"] == {"realtime": {"condition": "service_healthy"}}
    assert agent["environment"]["OPENAI_BASE_URL"] == "http://realtime:8080/v1"
