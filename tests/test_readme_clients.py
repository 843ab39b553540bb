"""Every snippet of the README's "TLS, ephemeral keys, Node and browsers" section is part of a file
that a test runs: tests/examples/*.py, tests/js/roundtrip.mjs or the browser app."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = [*(ROOT / "tests" / "examples").glob("*.py"), ROOT / "tests" / "js" / "roundtrip.mjs",
           ROOT / "tests" / "examples" / "browser" / "index.html", ROOT / "tests" / "examples" / "browser" / "backend.py"]


def section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## TLS, ephemeral keys, Node and browsers\n")
    return readme[start:readme.index("\n## ", start + 1)]


def test_every_snippet_of_the_clients_section_is_in_a_tested_file():
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", section(), flags=re.DOTALL | re.MULTILINE)
    assert [language for language, _ in blocks] == ["python", "js", "js"]
    texts = {path.name: path.read_text() for path in SOURCES}
    for _, block in blocks:
        lines = [line.strip() for line in block.strip("\n").splitlines()]
        found = [name for name, text in texts.items() if all(line in text for line in lines)
                 and block.strip("\n").splitlines()[0].strip() in text]
        assert found, f"this README snippet is in no tested file:\n{block}"


def test_the_section_names_every_recipe_the_server_prints():
    from mockrealtime.net.tls import client_recipes

    text = section()
    for needle in ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "websocket_connection_options", "http_client"):
        assert needle in text
        assert any(needle in line for line in client_recipes("/tmp/ca.pem", "wss://127.0.0.1:1"))
