"""``show --html`` pages in headless Chromium: the elements a person debugging a call looks for are
there, the cassette's text stays text, and every audio player loads its audio (G.711 included).

Screenshots are kept in ``test-artifacts/`` (git-ignored) at the top of the checkout.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from mockrealtime.cli import main
from mockrealtime.core.library import CassetteLibrary
from mockrealtime.core.timeline import session_view

from chromium import chromium_page, chromium_path
from timeline_fixture import HOSTILE, everything_cassette

ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "test-artifacts"
BUNDLED = CassetteLibrary()

#: What the page shows, read in the browser. Each audio element's duration once its metadata is
#: loaded (or the media error code if it cannot be decoded).
READ_PAGE = """(async () => {
  const audios = Array.from(document.querySelectorAll("audio"));
  const durations = await Promise.all(audios.map((a) => new Promise((ok) => {
    const done = () => ok(a.error ? "error " + a.error.code : a.duration);
    if (a.readyState >= 1 || a.error) return done();
    a.addEventListener("loadedmetadata", done);
    a.addEventListener("error", done);
  })));
  const texts = (sel) => Array.from(document.querySelectorAll(sel)).map((e) => e.textContent.trim());
  return {
    title: document.title, durations, ids: audios.map((a) => a.id),
    rows: document.querySelectorAll("table.rows tbody tr").length,
    user: texts("tr.user.said .text"), assistant: texts("tr.assistant.speech .text"),
    arguments: texts("tr.assistant.call details pre"), outputs: texts("tr.tool.output details pre"),
    cancels: texts("tr.cancel .text"), errors: texts("tr.error .text"), vad: texts(".vadline span"),
    heard: document.querySelectorAll(".blk.heard").length, blocks: document.querySelectorAll(".blk[data-clip]").length,
    scripts: document.querySelectorAll("script").length, images: document.querySelectorAll("img").length,
    policy: document.querySelector('meta[http-equiv="Content-Security-Policy"]').content,
  };
})()"""

#: Click the play button of the second microphone stretch (the track holds more after it): the track
#: seeks to it, the line is marked while it plays, and playback pauses where the stretch ends.
PLAY_CLIP = """(async () => {
  const button = document.querySelectorAll("tr.user.mic button.play")[1];
  const [id, startMs, endMs] = button.dataset.clip.split(" ");
  const audio = document.getElementById(id);
  const row = button.closest("tr");
  const playing = new Promise((ok) => audio.addEventListener("playing", ok, { once: true }));
  button.click();
  await playing;
  const seen = { start: Number(startMs) / 1000, end: Number(endMs) / 1000, at: audio.currentTime,
                 marked: row.classList.contains("playing") };
  await new Promise((ok) => audio.addEventListener("pause", ok, { once: true }));
  return { ...seen, stopped: audio.currentTime, unmarked: !row.classList.contains("playing"), total: audio.duration };
})()"""


def test_chromium_is_there_in_ci():
    """In CI (.ci/run installs it) a missing browser fails here instead of skipping the tests below."""
    assert chromium_path()


async def test_the_page_in_headless_chromium_shows_the_call_and_plays_its_g711_audio(tmp_path, capsys):
    cassette = everything_cassette(str(tmp_path))
    out = tmp_path / "everything.html"
    assert main(["show", "--html", str(cassette.path), "-o", str(out)]) == 0
    lines, tracks = session_view(cassette.sessions[0].events)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "timeline-everything.png"
    async with chromium_page() as page:
        await page.goto(out.as_uri())
        seen = await page.evaluate(READ_PAGE)
        await page.screenshot(str(shot))
        played = await page.evaluate(PLAY_CLIP)
    with capsys.disabled():
        print(f"\nscreenshot of the timeline page: {shot}")
    assert seen["title"] == "everything · mockrealtime timeline"
    assert seen["rows"] == len(lines)
    assert seen["user"] == [f"(transcribed) {json.dumps(HOSTILE)}"]
    assert seen["assistant"] == ['[speech 1.50 s] "It is eighteen degrees in"  (cut short)', '[speech 0.80 s] "Anything else?"  (cut short)']
    assert seen["arguments"] == ['{\n  "city": "Paris & <Lyon>"\n}']
    assert seen["outputs"] == ['{\n  "temperature_c": 18,\n  "note": "</pre><b>bold</b>"\n}']
    assert seen["cancels"] == ["response cancelled (turn_detected)", "response.cancel", "response cancelled (client_cancelled)", "response.cancel"]
    assert seen["errors"] == ["error invalid_request_error/response_cancel_not_active: Cancellation failed: no active response found"]
    assert seen["vad"] == ["▼ speech", "▲ end", "▼ speech"] and seen["heard"] == 1
    assert (seen["scripts"], seen["images"]) == (1, 0)  # the transcript's markup stayed text
    assert seen["policy"].startswith("default-src 'none'")  # and would not run if it were not
    assert seen["ids"] == ["s0-t0", "s0-t1"]
    for duration, track in zip(seen["durations"], tracks, strict=True):  # u-law, decoded by the browser as PCM
        assert isinstance(duration, (int, float)), duration
        assert duration == pytest.approx(track.ms / 1000, abs=0.01)
    assert played["marked"] and played["at"] >= played["start"]
    assert played["end"] <= played["stopped"] < played["total"] and played["unmarked"]  # stopped at its end


async def test_every_bundled_cassette_page_loads_its_audio_in_chromium(tmp_path):
    cases = [(entry["name"], dialect) for entry in BUNDLED.available() for dialect in entry["dialects"]]
    async with chromium_page() as page:
        for name, dialect in cases:
            out = tmp_path / f"{name}.{dialect}.html"
            assert main(["show", "--html", name, "--dialect", dialect, "-o", str(out)]) == 0
            _, tracks = session_view(BUNDLED.resolve(name, dialect).sessions[0].events)
            await page.goto(out.as_uri())
            seen = await page.evaluate(READ_PAGE)
            assert seen["scripts"] == 1, name
            assert len(seen["durations"]) == len(tracks), name
            for duration, track in zip(seen["durations"], tracks, strict=True):
                assert isinstance(duration, (int, float)), (name, duration)
                assert duration == pytest.approx(track.ms / 1000, abs=0.01), name
            if name == "turn_detected" and dialect == "ga":
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(str(ARTIFACTS / "timeline-turn_detected.png"))
        # the page's policy is a second wall behind escaping: a script that slipped in would not run
        tampered = tmp_path / "tampered.html"
        tampered.write_text(out.read_text().replace("</body>", '<script>document.title = "pwned"</script></body>'))
        await page.goto(tampered.as_uri())
        assert await page.evaluate("document.title") == f"{name} · mockrealtime timeline"
