"""The README's "The timeline as a page" snippets, run as written."""

from __future__ import annotations

import pathlib
import re
import shlex

import aiohttp

from mockrealtime.cli import main

README = pathlib.Path(__file__).resolve().parent.parent.parent / "README.md"


def snippets() -> list[str]:
    text = README.read_text()
    start = text.index("\n### The timeline as a page: `show --html`\n")
    section = text[start : text.index("\n## ", start)]
    return [line.split("#")[0].strip() for block in re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)
            for line in block.splitlines()]


def test_the_show_html_commands_write_the_pages_they_say(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    commands = [line for line in snippets() if line.startswith("mockrealtime show")]
    assert len(commands) == 2
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call.html", "turn_detected.html"]
    assert "wrote turn_detected.html" in capsys.readouterr().out


async def test_the_admin_timeline_url_serves_the_page(server, tmp_path):
    (curl,) = [line for line in snippets() if line.startswith("curl")]
    url = shlex.split(curl)[2].replace("localhost:8080", server.http_url.removeprefix("http://"))
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url + "/c/hello/v1/realtime?model=gpt-realtime") as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "session.created"
            async with http.get("http://" + url) as resp:
                assert resp.status == 200 and resp.content_type == "text/html"
                assert "<h1>connection 0: hello</h1>" in await resp.text()
