"""wss:// for clients that insist on TLS: `serve --tls`, your own certificate, the fixture's wss_url.

Every test drives the openai Python SDK over TLS with an ``ssl.SSLContext`` that trusts only the
CA mockrealtime printed (or the one the test made): a certificate error fails the handshake.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys

import pytest
import trustme
from openai import AsyncOpenAI

from mockrealtime.cli import main
from mockrealtime.net.tls import IDENTITIES, throwaway_tls


async def _round_trip(base: str, ctx: ssl.SSLContext) -> list[str]:
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=base)
    seen = []
    async with client.realtime.connect(model="gpt-realtime", websocket_connection_options={"ssl": ctx}) as conn:
        seen.append((await conn.recv()).type)
        # the modalities the recording's model saw: the replay matches response.create on that state
        await conn.session.update(session={"type": "realtime"})
        await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "Hello!"}]})
        await conn.response.create()
        async for event in conn:
            seen.append(event.type)
            if event.type in ("response.done", "error"):  # an error ends the round trip: never a hang
                break
    return seen


def _serve(*argv: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "mockrealtime", "serve", "--port", "0", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    text = ""
    while "named cassette" not in text:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            proc.kill()
            raise AssertionError(f"serve exited: {text}{proc.stderr.read()}")  # type: ignore[union-attr]
        text += line
    return proc, text


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


async def test_serve_tls_prints_the_ca_and_each_ecosystems_recipe_and_serves_wss():
    proc, text = _serve("--tls")
    try:
        base = re.search(r"endpoint:\s+(wss://127\.0\.0\.1:\d+)/v1/realtime", text)
        ca = re.search(r"trust the CA in (\S+ca\.pem)", text)
        assert base and ca, text
        assert f"NODE_EXTRA_CA_CERTS={ca.group(1)}" in text
        assert f"SSL_CERT_FILE={ca.group(1)}" in text
        assert 'websocket_connection_options={"ssl": ctx}' in text and "http_client=" in text
        seen = await _round_trip(base.group(1) + "/v1", ssl.create_default_context(cafile=ca.group(1)))
        assert seen[0] == "session.created" and seen[-1] == "response.done"
        assert "error" not in seen
    finally:
        _stop(proc)


async def test_a_client_that_does_not_trust_the_ca_is_refused_at_the_tls_handshake():
    proc, text = _serve("--tls")
    try:
        base = re.search(r"endpoint:\s+(wss://127\.0\.0\.1:\d+)/v1/realtime", text).group(1)  # type: ignore[union-attr]
        with pytest.raises(ssl.SSLCertVerificationError):
            await _round_trip(base + "/v1", ssl.create_default_context())
    finally:
        _stop(proc)


async def test_serve_with_your_own_certificate(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    proc, text = _serve("--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"),
                        "--host", "localhost")
    try:
        assert f"TLS: {tmp_path / 'cert.pem'}" in text
        base = re.search(r"endpoint:\s+(wss://localhost:\d+)/v1/realtime", text).group(1)  # type: ignore[union-attr]
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        seen = await _round_trip(base + "/v1", ctx)
        assert seen[-1] == "response.done"
    finally:
        _stop(proc)


def test_a_bad_certificate_stops_serve_with_a_message(tmp_path, capsys):
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    assert main(["serve", "--port", "0", "--certfile", str(tmp_path / "cert.pem")]) == 1
    assert f"cannot load the TLS certificate {tmp_path / 'cert.pem'}" in capsys.readouterr().err


def test_the_throwaway_certificate_names_every_loopback_address(tmp_path):
    tls = throwaway_tls(str(tmp_path))
    assert tls.ca_file == str(tmp_path / "ca.pem") and (tmp_path / "server.pem").is_file()
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes().split(b"-----END PRIVATE KEY-----")[-1].strip())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    found = {str(v) for v in names.get_values_for_type(x509.IPAddress)} | set(names.get_values_for_type(x509.DNSName))
    assert found == set(IDENTITIES)


@pytest.mark.realtime("hello")
async def test_the_fixture_serves_the_tests_cassette_over_wss(realtime_mock):
    assert realtime_mock.wss_url.startswith("wss://127.0.0.1:") and realtime_mock.wss_url.endswith("/v1/realtime")
    ctx = ssl.create_default_context(cafile=realtime_mock.ca_file)
    seen = await _round_trip(realtime_mock.wss_base_url, ctx)
    assert seen[-1] == "response.done"
    assert [e["type"] for e in realtime_mock.journal][:3] == ["session.update", "conversation.item.create", "response.create"]
