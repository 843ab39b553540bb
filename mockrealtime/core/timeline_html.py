"""``mockrealtime show --html``: a cassette as one self-contained page to look at and listen to.

The page draws what :mod:`mockrealtime.core.timeline` reads from a session (its lines and audio
tracks), so the text view and the page never disagree about the conversation:

* a time axis per session with lanes for the user (microphone stretches, what server VAD heard,
  what was typed or transcribed), the assistant (speech for as long as it plays, text, tool calls),
  the tool outputs, and marks for VAD positions, errors and cancellations;
* the lines below it, each with the full tool arguments, outputs and error bodies;
* one audio player per side and track (the user's microphone, the assistant's speech), embedded as
  WAV ``data:`` URIs (G.711 expanded to 16-bit PCM so that browsers play it); a block or a line with
  audio plays its own stretch of the track.

The admin API shows the same page for a live connection (:func:`render_connection`): what the
client sent, with divergences marked, above the recording it replays, where the events not yet
played are dimmed. Everything taken from a cassette or a client is escaped; the inline script
reads only attributes this module writes. Sans-IO: no aiohttp, no asyncio; the CSS and script are
package files inlined into the page.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from html import escape
from importlib import resources

from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import Cassette, RecordedEvent
from mockrealtime.core.events import AUDIO_APPEND
from mockrealtime.core.summaries import format_name, how_it_ended
from mockrealtime.core.timeline import Clip, Line, Track, session_view

#: Lanes of the time axis, top to bottom: who did it (tool calls and their outputs share one).
LANES = ("user", "assistant", "tool", "client", "server")
_PX_PER_S = 120
_MIN_AXIS_PX = 960


@dataclasses.dataclass(frozen=True, slots=True)
class LiveEntry:
    """One client event a live connection sent, as far as the page needs it."""

    at_ms: float  # since the connection opened
    type: str
    outcome: str  # matched | audio | answered | diverged | rejected
    event_index: int | None = None  # the recorded event it matched
    note: str = ""  # a divergence's summary


@dataclasses.dataclass(frozen=True, slots=True)
class LiveConnection:
    """What the admin API knows of one connection, for :func:`render_connection`."""

    title: str
    facts: tuple[tuple[str, str], ...]
    entries: tuple[LiveEntry, ...]
    ahead: frozenset[int] = frozenset()  # recorded events not played yet, by index


def _asset(name: str) -> str:
    return resources.files("mockrealtime.core").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def _page(title: str, body: list[str]) -> str:
    script = _asset("timeline.js")
    # Escaping keeps cassette text out of the markup; the policy is the second wall: only the page's
    # own script (by its hash) runs, and nothing is fetched (audio comes from data: URIs).
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = f"default-src 'none'; style-src 'unsafe-inline'; media-src data:; script-src 'sha256-{digest}'"
    return "\n".join([
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>", f"<style>{_asset('timeline.css')}</style>", "</head>", "<body>",
        *body, f"<script>{script}</script>", "</body>", "</html>", "",
    ])


def _secs(ms: float) -> str:
    return f"{ms / 1000:.3f} s"


def _pretty(text: str) -> str:
    """JSON shown indented, anything else as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


# -- audio --------------------------------------------------------------------------------------


def _payload(ev: RecordedEvent) -> bytes:
    """An audio event's bytes: read from its sidecar, or decoded from the event when inline."""
    if ev.audio is not None:
        return ev.audio.read()
    return base64.b64decode(ev.fields.get("audio" if ev.type == AUDIO_APPEND else "delta") or "")


def track_wav(track: Track) -> bytes:
    """A track's audio as a WAV file a browser plays (16-bit PCM)."""
    data = b"".join(_payload(ev) for ev in track.events)
    fmt, pcm = _audio.to_pcm16(track.format, data)
    return _audio.wav_bytes(fmt, pcm)


def _players(sid: str, tracks: list[Track]) -> list[str]:
    if not tracks:
        return ['<p class="noaudio">no audio in this session</p>']
    out = ['<div class="players">']
    for n, track in enumerate(tracks):
        label = "user microphone" if track.who == "user" else "assistant speech"
        uri = "data:audio/wav;base64," + base64.b64encode(track_wav(track)).decode("ascii")
        out.append(
            f'<figure class="track {track.who}"><figcaption>{label} · {track.ms / 1000:.2f} s · '
            f'{escape(format_name(track.format))}</figcaption>'
            f'<audio id="{sid}-t{n}" controls preload="metadata" src="{uri}"></audio></figure>'
        )
    out.append("</div>")
    return out


# -- one session --------------------------------------------------------------------------------


def _lane(line: Line) -> str:
    if "call" in line.kind.split() or line.who == "tool":
        return "tool"
    return "user" if line.who == "vad" else line.who


def _clip_attr(sid: str, line: Line) -> str:
    clip = line.clip
    if clip is None:
        return ""
    return f' data-clip="{sid}-t{clip.track} {clip.start_ms:.1f} {clip.end_ms:.1f}"'


def _extent_ms(lines: list[Line]) -> float:
    end = 0.0
    for line in lines:
        span = line.clip.end_ms - line.clip.start_ms if line.clip else 0.0
        end = max(end, line.at_ms + span)
    return max(end * 1.1 + 200, 1000.0)  # room for the last labels


def _wall_ms(clip: Clip | None, spans: list[Line]) -> float | None:
    """When a point of a track was sent (microphone) or played (speech): a stretch goes in real time."""
    for span in spans:
        if clip is not None and span.clip is not None and span.clip.track == clip.track and span.clip.start_ms <= clip.start_ms <= span.clip.end_ms:
            return span.at_ms + clip.start_ms - span.clip.start_ms
    return None


def _pos(ms: float, total_ms: float) -> str:
    return f"{100 * ms / total_ms:.3f}%"


def _axis(sid: str, lines: list[Line], total_ms: float) -> list[str]:
    width = max(_MIN_AXIS_PX, round(total_ms / 1000 * _PX_PER_S))
    step = next(s for s in (1, 2, 5, 10, 30, 60, 300, 600) if total_ms / 1000 / s <= 40)
    out = ['<div class="axis-wrap">', f'<div class="axis" style="width:{width}px">', '<div class="ruler">']
    for t in range(0, int(total_ms / 1000) + 1, step):
        out.append(f'<span class="tick" style="left:{_pos(t * 1000, total_ms)}">{t} s</span>')
    heard: Line | None = None  # server VAD heard speech from here
    mics = [line for line in lines if "mic" in line.kind.split()]
    spoken = [line for line in lines if "speech" in line.kind.split()]
    overlay: list[str] = []  # VAD marks, drawn across every lane
    blocks: dict[str, list[str]] = {lane: [] for lane in LANES}
    pins: dict[str, list[tuple[float, str, str]]] = {lane: [] for lane in LANES}  # (at, html before and after its label width)
    for n, line in enumerate(lines):
        kinds = line.kind.split()
        attrs = f'title="{escape(f"{_secs(line.at_ms)}  {line.who}: {line.text}", quote=True)}" href="#{sid}-r{n}"'
        left = _pos(line.at_ms, total_ms)
        if "vad" in kinds:
            label = "▼ speech" if "speech_started" in kinds else "▲ end" if "speech_stopped" in kinds else ""
            if label:
                overlay.append(f'<a class="vadline {line.kind}" style="left:{left}" {attrs}><span>{label}</span></a>')
            if "speech_started" in kinds:
                heard = line
            elif "speech_stopped" in kinds and heard is not None:
                # the speech where the microphone sent it; where that is unknown, where VAD reported it
                start, end = _wall_ms(heard.clip, mics), _wall_ms(line.clip, mics)
                start, end = (start, end) if start is not None and end is not None and start < end else (heard.at_ms, line.at_ms)
                title = f"user speech by server VAD: {heard.text}, {line.text}; reported at {_secs(heard.at_ms)} and {_secs(line.at_ms)}"
                clip = ""
                if heard.clip and line.clip and heard.clip.track == line.clip.track:
                    clip = f' data-clip="{sid}-t{line.clip.track} {heard.clip.start_ms:.1f} {line.clip.start_ms:.1f}"'
                blocks["user"].append(f'<a class="blk heard" style="left:{_pos(start, total_ms)};width:{_pos(end - start, total_ms)}" '
                                      f'title="{escape(title, quote=True)}" href="#{sid}-r{n}"{clip}>speech (server VAD)</a>')
                heard = None
        elif "truncate" in kinds:  # where the user stopped hearing the answer, on the answer itself
            cut = _wall_ms(line.clip, spoken)
            if cut is not None:
                blocks["assistant"].append(f'<a class="cutmark" style="left:{_pos(cut, total_ms)}" {attrs}>✂</a>')
            pins["client"].append((line.at_ms, f'<a class="pin client truncate" style="left:{left}" {attrs}><span style="max-width:',
                                   f'px">{escape(line.text)}</span></a>'))
        elif line.clip is not None:
            span = line.clip.end_ms - line.clip.start_ms
            blocks[_lane(line)].append(
                f'<a class="blk {line.kind}" style="left:{left};width:{_pos(span, total_ms)}" {attrs}{_clip_attr(sid, line)}>'
                f'{"" if "mic" in kinds else escape(line.text)}</a>')
        elif "settings" not in kinds:
            pins[_lane(line)].append((line.at_ms, f'<a class="pin {line.who} {line.kind}" style="left:{left}" {attrs}><span style="max-width:',
                                      f'px">{escape(line.text)}</span></a>'))
    out += ["</div>", f'<div class="overlay">{"".join(overlay)}</div>']
    for lane in LANES:
        if not blocks[lane] and not pins[lane] and lane not in ("user", "assistant"):
            continue
        marks = blocks[lane]
        placed = pins[lane]
        # a label runs up to the next pin of its lane (the whole text is in its tooltip and row); the
        # last one, near the end of the axis, runs leftwards instead, sharing the gap with the one before
        px = (width - 72) / total_ms
        ends = [p[0] for p in placed[1:]] + [total_ms]
        flip = bool(placed) and (total_ms - placed[-1][0]) * px < 170
        for k, (at, head, tail) in enumerate(placed):
            room = (ends[k] - at) * px - 10
            if flip and k == len(placed) - 2:
                room = room / 2
            elif flip and k == len(placed) - 1:
                before = placed[k - 1][0] if k else 0.0
                head, room = head.replace('class="pin ', 'class="pin flip ', 1), (at - before) * px / (2 if k else 1) - 10
            marks.append(f"{head}{max(12, min(420, round(room)))}{tail}")
        out.append(f'<div class="lane {lane}"><span class="lanename">{lane}</span>{"".join(marks)}</div>')
    out += ["</div>", "</div>"]
    return out


def _rows(sid: str, lines: list[Line], *, ahead: frozenset[int] = frozenset(),
          live_at: dict[int, float] | None = None) -> list[str]:
    out = ['<table class="rows">', "<thead><tr><th>time</th><th>who</th><th>what</th></tr></thead>", "<tbody>"]
    for n, line in enumerate(lines):
        classes = f"row {line.who} {line.kind}".strip()
        extra = []
        if line.index in ahead:
            classes += " ahead"
            extra.append('<span class="tag ahead">not played yet</span>')
        if live_at and line.index in live_at:
            extra.append(f'<span class="tag live">matched live at {_secs(live_at[line.index])}</span>')
        if line.clip is not None and line.clip.end_ms > line.clip.start_ms:
            span = (line.clip.end_ms - line.clip.start_ms) / 1000
            extra.append(f'<button class="play"{_clip_attr(sid, line)}>▶ {span:.2f} s</button>')
        what = f'<span class="text">{escape(line.text)}</span>{"".join(extra)}'
        if line.detail:
            label = {"call": "arguments", "output": "output", "error": "error"}.get(line.kind.split()[0], "details")
            what += f"<details><summary>{label}</summary><pre>{escape(_pretty(line.detail))}</pre></details>"
        out.append(f'<tr id="{sid}-r{n}" class="{escape(classes)}"><td class="t">{_secs(line.at_ms)}</td>'
                   f'<td class="who">{escape(line.who)}</td><td class="what">{what}</td></tr>')
    out += ["</tbody>", "</table>"]
    return out


def _session_section(cassette: Cassette, index: int, *, sid: str | None = None, heading: str | None = None,
                     ahead: frozenset[int] = frozenset(), live_at: dict[int, float] | None = None) -> list[str]:
    session = cassette.sessions[index]
    sid = sid or f"s{index}"
    lines, tracks = session_view(session.events)
    total = _extent_ms(lines)
    sub = " · ".join(x for x in (how_it_ended(session), f"{total / 1000:.2f} s", f"{len(lines)} lines") if x)
    return [
        f'<section class="session" id="{sid}">',
        f"<h2>{escape(heading or f'Session {index}')} <small>{escape(sub)}</small></h2>",
        *_players(sid, tracks), *_axis(sid, lines, total),
        *_rows(sid, lines, ahead=ahead, live_at=live_at), "</section>",
    ]


def _header(cassette: Cassette) -> list[str]:
    n = len(cassette.sessions)
    meta = f"{cassette.dialect} · model {cassette.model or '?'} · {n} session{'s' if n != 1 else ''}"
    out = ["<header>", f"<h1>{escape(cassette.name)}</h1>", f'<p class="meta">{escape(meta)}</p>']
    if cassette.path:
        out.append(f'<p class="meta path">{escape(cassette.path)}</p>')
    if cassette.description:
        about = " ".join(cassette.description.split("\n\n")[0].split())
        first, _, rest = about.partition(". ")
        if rest:
            out.append(f'<details class="desc"><summary>{escape(first)}.</summary><p>{escape(rest)}</p></details>')
        else:
            out.append(f'<p class="desc">{escape(first)}</p>')
    out.append('<p class="legend"><span class="key user">user</span><span class="key assistant">assistant</span>'
               '<span class="key tool">tool call / output</span><span class="key vad">server VAD</span>'
               '<span class="key cancel">cancelled / cut short</span><span class="key error">error</span></p>')
    out.append("</header>")
    return out


def render_cassette(cassette: Cassette, sessions: list[int] | None = None) -> str:
    """The whole cassette (or the sessions listed) as one self-contained HTML page."""
    body = _header(cassette)
    for index in sessions if sessions is not None else range(len(cassette.sessions)):
        body += _session_section(cassette, index)
    return _page(f"{cassette.name} · mockrealtime timeline", body)


# -- a live connection --------------------------------------------------------------------------


def _live_lines(entries: tuple[LiveEntry, ...], recorded: dict[int, Line]) -> list[tuple[Line, LiveEntry | None]]:
    """The client's events as lines (appends folded into stretches), each with its journal entry."""
    out: list[tuple[Line, LiveEntry | None]] = []
    n = 0
    while n < len(entries):
        entry = entries[n]
        if entry.type == AUDIO_APPEND and entry.outcome == "audio":
            end = n
            while end + 1 < len(entries) and entries[end + 1].type == AUDIO_APPEND and entries[end + 1].outcome == "audio":
                end += 1
            text = f"microphone: {end - n + 1} chunk{'s' if end > n else ''}, until {_secs(entries[end].at_ms)}"
            out.append((Line(entry.at_ms, "user", text, "mic"), None))
            n = end + 1
            continue
        line = recorded.get(entry.event_index) if entry.event_index is not None else None
        who = line.who if line is not None and line.who in ("user", "tool") else "client"
        kind = "error" if entry.outcome in ("diverged", "rejected") else ""
        out.append((Line(entry.at_ms, who, entry.type, kind, -1 if entry.event_index is None else entry.event_index), entry))
        n += 1
    return out


def _live_rows(lines: list[tuple[Line, LiveEntry | None]], recorded: dict[int, Line], row_of: dict[int, int]) -> list[str]:
    out = ['<table class="rows live">', "<thead><tr><th>time</th><th>outcome</th><th>what the client sent</th></tr></thead>",
           "<tbody>"]
    for n, (line, entry) in enumerate(lines):
        outcome = entry.outcome if entry is not None else "audio"
        what = f'<span class="text">{escape(line.text)}</span>'
        if line.index in recorded:
            what += (f' <a class="tag live" href="#rec-r{row_of[line.index]}">recorded event {line.index}</a>'
                     f' <span class="recorded">{escape(recorded[line.index].text)}</span>')
        if entry is not None and entry.note:
            what += f'<div class="note">{escape(entry.note)}</div>'
        out.append(f'<tr id="live-r{n}" class="row {line.who} {escape(outcome)}"><td class="t">{_secs(line.at_ms)}</td>'
                   f'<td class="who">{escape(outcome)}</td><td class="what">{what}</td></tr>')
    out += ["</tbody>", "</table>"]
    return out


def render_connection(cassette: Cassette, session_index: int, live: LiveConnection) -> str:
    """A live connection: what its client sent (divergences marked) above the recording it replays."""
    lines, _ = session_view(cassette.sessions[session_index].events)
    recorded = {line.index: line for line in lines if line.index >= 0}
    row_of = {line.index: n for n, line in enumerate(lines)}
    live_at = {e.event_index: e.at_ms for e in live.entries if e.event_index is not None and e.outcome == "matched"}
    diverged = [e for e in live.entries if e.outcome == "diverged"]
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in live.facts)
    body = ["<header>", f"<h1>{escape(live.title)}</h1>", f'<dl class="facts">{facts}</dl>', "</header>",
            '<section class="session live" id="live">', "<h2>What the client sent <small>live, since connect</small></h2>"]
    if diverged:
        body.append(f'<div class="divergences"><h3>{len(diverged)} divergence{"s" if len(diverged) != 1 else ""}</h3><ol>')
        body += [f"<li><b>{_secs(e.at_ms)}</b> {escape(e.type)}: {escape(e.note)}</li>" for e in diverged]
        body.append("</ol></div>")
    else:
        body.append('<p class="ok">no divergence: every client event matched the recording or was answered</p>')
    lines_live = _live_lines(live.entries, recorded)
    body += _axis("live", [line for line, _ in lines_live], _extent_ms([line for line, _ in lines_live]))
    body += _live_rows(lines_live, recorded, row_of)
    body.append("</section>")
    body += _session_section(cassette, session_index, sid="rec", heading=f"The recording: {cassette.name}, session {session_index}",
                             ahead=live.ahead, live_at=live_at)
    return _page(f"{live.title} · mockrealtime timeline", body)
