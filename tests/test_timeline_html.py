"""``mockrealtime show --html`` and the admin API's timeline page: what the page holds, that every
bundled cassette renders, that cassette text cannot become markup, and that G.711 becomes PCM."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import warnings
import wave

import aiohttp
import pytest

from mockrealtime.cli import main
from mockrealtime.core import audio
from mockrealtime.core.cassette import Cassette, load
from mockrealtime.core.cassette_writer import save
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.core.timeline import session_view
from mockrealtime.core.timeline_html import render_cassette

from timeline_fixture import ARGUMENTS, HOSTILE, everything_cassette, everything_session

BUNDLED = CassetteLibrary()
CASES = [(entry["name"], dialect) for entry in BUNDLED.available() for dialect in entry["dialects"]]
DATA_URI = re.compile(r'<audio id="([^"]+)" controls preload="metadata" src="data:audio/wav;base64,([^"]+)"')


def audio_elements(page: str) -> dict[str, tuple[int, int, bytes]]:
    """The page's players: id -> (sample rate, bytes per sample, samples), read by the wave module."""
    out = {}
    for m in DATA_URI.finditer(page):
        with wave.open(io.BytesIO(base64.b64decode(m.group(2)))) as w:  # PCM only: wave refuses the rest
            assert w.getnchannels() == 1
            out[m.group(1)] = (w.getframerate(), w.getsampwidth(), w.readframes(w.getnframes()))
    return out


@pytest.mark.parametrize(("name", "dialect"), CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_show_html_renders_every_bundled_cassette_as_one_self_contained_page(name, dialect, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["show", "--html", name, "--dialect", dialect, "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    cassette = BUNDLED.resolve(name, dialect)
    lines, tracks = session_view(cassette.sessions[0].events)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert page.count('<section class="session"') == len(cassette.sessions)
    assert page.count('<tr id="s0-r') == len(lines)
    # nothing fetched from elsewhere: styles, script and audio are inline
    assert not re.search(r'(src|href)="(?!data:|#)', page) and "<link" not in page
    players = audio_elements(page)
    assert len(players) == len(tracks)
    for n, track in enumerate(tracks):
        rate, width, pcm = players[f"s0-t{n}"]
        assert (rate, width) == (track.format.rate_hz, 2)  # 16-bit PCM, which every browser plays
        assert len(pcm) == round(track.ms * rate / 1000) * 2


def test_the_page_shows_turns_tool_calls_vad_cancellations_errors_and_playable_g711(tmp_path):
    cassette = everything_cassette(str(tmp_path))
    page = render_cassette(cassette)
    assert '<a class="vadline vad speech_started"' in page and '<a class="vadline vad speech_stopped"' in page
    # what server VAD heard (input audio 0.18 s to 1.00 s), where the microphone sent it (0.38 s to 1.20 s
    # since connect, not where VAD reported it: 0.5 s and 1.3 s), and playable
    total = float(re.search(r'<span class="tick" style="left:([\d.]+)%">1 s</span>', page).group(1))  # % per second
    heard = re.search(r'<a class="blk heard" style="left:([\d.]+)%;width:([\d.]+)%"[^>]*data-clip="s0-t0 180.0 1000.0">', page)
    assert heard and float(heard.group(1)) == pytest.approx(0.38 * total, abs=0.01)
    assert float(heard.group(2)) == pytest.approx(0.82 * total, abs=0.01)
    assert 'class="row assistant call"' in page
    assert f"<pre>{html.escape(ARGUMENTS)}</pre>" not in page  # arguments are shown indented
    assert html.escape('{\n  "city": "Paris & <Lyon>"\n}') in page
    assert "response cancelled (turn_detected)" in page and "response cancelled (client_cancelled)" in page
    assert 'class="row server error"' in page and "Cancellation failed: no active response found" in page
    assert page.count('class="row assistant speech cut"') == 2
    players = audio_elements(page)
    assert sorted(players) == ["s0-t0", "s0-t1"]
    for rate, width, _ in players.values():  # u-law in the cassette, 16-bit PCM at 8 kHz on the page
        assert (rate, width) == (8000, 2)
    _, _, mic = players["s0-t0"]
    assert len(mic) == 2 * 8 * 2000  # the 2 s of microphone audio
    assert 'data-clip="s0-t0 0.0 320.0"' in page  # the first stretch plays its own 320 ms


def test_cassette_text_is_escaped_everywhere_it_appears(tmp_path):
    page = render_cassette(everything_cassette(str(tmp_path)))
    assert HOSTILE not in page and "<b>bold</b>" not in page and "<Lyon>" not in page
    assert html.escape(HOSTILE) in page  # the description, as text
    # the transcript as text, whole: in its line, its pin's label and its pin's tooltip
    assert page.count(html.escape(json.dumps(HOSTILE))) == 3
    assert page.count("<script>") == 1  # only the page's own script
    assert "onerror=alert" not in page.replace(html.escape("onerror=alert"), "")  # only escaped forms remain
    assert not re.search(r"<img\b", page)


def test_g711_expands_to_the_same_pcm_as_the_reference_decoder():
    every_byte = bytes(range(256))
    _, ulaw = audio.to_pcm16(audio.G711_ULAW, every_byte)
    _, alaw = audio.to_pcm16(audio.G711_ALAW, every_byte)

    def sample(data: bytes, byte: int) -> int:
        return int.from_bytes(data[2 * byte : 2 * byte + 2], "little", signed=True)

    # G.711 table values: u-law 0x00/0x80 are the extremes, 0xFF is zero; A-law 0xD5 is the smallest step
    assert [sample(ulaw, b) for b in (0x00, 0x80, 0xFF, 0x7F)] == [-32124, 32124, 0, 0]
    assert [sample(alaw, b) for b in (0xD5, 0x55, 0xAA, 0x2A)] == [8, -8, 32256, -32256]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop  # the standard library's decoder until Python 3.13
    except ImportError:
        return
    assert ulaw == audioop.ulaw2lin(every_byte, 2) and alaw == audioop.alaw2lin(every_byte, 2)


def test_pcm16_passes_through_unchanged():
    assert audio.to_pcm16(audio.PCM16, b"\x01\x02") == (audio.PCM16, b"\x01\x02")


def test_show_html_writes_name_html_here_by_default_and_to_stdout_with_dash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["show", "--html", "hello", "--dialect", "beta"]) == 0
    assert (tmp_path / "hello.beta.html").read_text().startswith("<!doctype html>")
    capsys.readouterr()
    assert main(["show", "--html", "hello", "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("<!doctype html>")


def test_output_without_html_is_refused(capsys):
    assert main(["show", "hello", "-o", "x.html"]) == 2
    assert "-o/--output goes with --html" in capsys.readouterr().err


def test_an_output_that_cannot_be_written_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["show", "--html", "hello", "-o", str(tmp_path / "missing" / "page.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mockrealtime show: cannot write ") and "No such file or directory" in err


def test_each_session_gets_its_own_section_players_and_anchors(tmp_path):
    save(Cassette(name="twice", dialect="ga", sessions=[everything_session(), everything_session()]), str(tmp_path / "twice.yaml"))
    page = render_cassette(load(str(tmp_path / "twice.yaml")))
    assert page.count('<section class="session"') == 2
    assert sorted(audio_elements(page)) == ["s0-t0", "s0-t1", "s1-t0", "s1-t1"]
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # every anchor and player id is unique on the page
    assert 'data-clip="s1-t0 ' in page and 'href="#s1-r1"' in page


def test_one_session_only(tmp_path):
    out = tmp_path / "one.html"
    assert main(["show", "--html", "hello", "--session", "0", "-o", str(out)]) == 0
    assert out.read_text().count('<section class="session"') == 1


# -- the admin API's page for a live connection ------------------------------------------------


async def test_admin_timeline_shows_what_the_client_sent_with_divergences_above_the_recording(start_server):
    server = await start_server(match="exact")
    hostile = "</td><script>alert(1)</script>"
    key = "sk-proj-" + "k3y" * 6  # pasted into the instructions: masked like the rest of the admin API
    recorded = [e.event for e in BUNDLED.resolve("function_call", "ga").sessions[0].events if e.direction.value == "client"]
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url + "/c/function_call/v1/realtime?model=gpt-realtime") as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "session.created"
            await ws.send_json(recorded[0])  # session.update and the user's message: matched
            await ws.send_json(recorded[1])
            await ws.send_json({"type": "response.create", "response": {"instructions": key + hostile}})  # diverges
            while (event := await ws.receive_json(timeout=10))["type"] != "error":
                pass
            assert event["error"]["code"] == "cassette_mismatch"
            async with http.get(server.http_url + "/__admin/connections") as resp:
                connection_id = (await resp.json())["connections"][-1]["id"]
            async with http.get(f"{server.http_url}/__admin/connections/{connection_id}/timeline.html") as resp:
                assert resp.status == 200 and resp.content_type == "text/html"
                page = await resp.text()
        async with http.get(server.http_url + "/__admin/connections/9999/timeline.html") as resp:
            assert resp.status == 404 and (await resp.json())["error"]["code"] == "connection_not_found"
    assert f"<h1>connection {connection_id}: function_call</h1>" in page
    assert '<div class="divergences"><h3>1 divergence</h3>' in page
    assert html.escape("expected 'response.create'") in page  # the divergence's summary, escaped
    assert html.escape(f'response: expected <absent>, received {{"instructions": "<redacted>{hostile}"}}') in page
    assert "k3yk3y" not in page
    assert re.search(r"<tr id=\"live-r2\" class=\"row client diverged\">", page) and len(re.findall(r"class=\"row \w+ matched\"", page)) == 2
    assert re.search(r"<a class=\"pin client error\"", page)  # on the live time axis too
    assert re.search(r'<a class="tag live" href="#rec-r\d+">recorded event 1</a>', page)
    assert page.count("matched live at") == 2  # on the recording's lines they matched
    assert re.search(r'class="row assistant call ahead"', page)  # what is still to play is dimmed
    assert hostile not in page and page.count("<script>") == 1
    assert audio_elements(page)  # the recording's audio plays here too


def test_the_page_plays_the_audio_the_sidecars_hold(tmp_path):
    """Track audio comes from the sidecars (the events hold references to it), byte for byte."""
    cassette = everything_cassette(str(tmp_path))
    appends = [ev for ev in cassette.sessions[0].events if ev.type == "input_audio_buffer.append"]
    assert appends and all(ev.audio is not None for ev in appends)
    _, _, mic = audio_elements(render_cassette(cassette))["s0-t0"]
    _, expanded = audio.to_pcm16(audio.G711_ULAW, b"".join(base64.b64decode(ev.event["audio"]) for ev in appends))
    assert mic == expanded


def test_a_truncated_answer_is_marked_where_the_user_stopped_hearing_it():
    """turn_detected: the client truncates the answer it was playing at the audio position the user heard."""
    cassette = BUNDLED.resolve("turn_detected", "ga")
    events = cassette.sessions[0].events
    heard_ms = next(e.event["audio_end_ms"] for e in events if e.type == "conversation.item.truncate")
    lines, _ = session_view(events)
    started_ms = next(line.at_ms for line in lines if line.kind == "speech cut")  # the answer cut short
    page = render_cassette(cassette)
    per_s = float(re.search(r'<span class="tick" style="left:([\d.]+)%">1 s</span>', page).group(1))
    (left,) = re.findall(r'<a class="cutmark" style="left:([\d.]+)%"', page)
    assert float(left) == pytest.approx((started_ms + heard_ms) / 1000 * per_s, abs=0.01)
    assert '<a class="pin client truncate"' in page
