"""A session's settings, a response's options, how a session ended: in a few words, as ``show`` says them.

``session.update`` and ``response.create`` carry many settings; a timeline line names the ones that
shape a conversation (model, voice, formats, VAD, instructions, tools) and lists the rest by key.
"""

from __future__ import annotations

import json
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.cassette import Session


def short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(text: str) -> str:
    return json.dumps(" ".join(text.split()), ensure_ascii=False)


def format_name(fmt: _audio.AudioFormat | None) -> str:
    return {"pcm16": "pcm16 24 kHz", "g711_ulaw": "G.711 u-law", "g711_alaw": "G.711 A-law"}.get(fmt.name, fmt.name) if fmt else "?"


def session_summary(session: dict[str, Any], *, full: bool = False) -> str:
    """The settings that shape a conversation: model, voice, formats, VAD, instructions, tools."""
    out = []
    if full and session.get("model"):
        out.append(str(session["model"]))
    audio = session["audio"] if isinstance(session.get("audio"), dict) else {}
    modalities = session.get("output_modalities", session.get("modalities"))
    if isinstance(modalities, list) and not full:
        out.append(f"output {'+'.join(map(str, modalities))}")
    voice = session.get("voice") or (audio.get("output") or {}).get("voice")
    if voice:
        out.append(f"voice {voice}")
    fin, fout = _audio.session_formats(session)
    if fin or fout:
        out.append(f"audio in {format_name(fin)}, out {format_name(fout)}" if fin != fout else f"audio {format_name(fin)}")
    td_present = "turn_detection" in session or "turn_detection" in (audio.get("input") or {})
    td = session.get("turn_detection", (audio.get("input") or {}).get("turn_detection"))
    if td_present:
        out.append(f"turn detection {td.get('type')}" if isinstance(td, dict) else "turn detection off")
    if isinstance(session.get("instructions"), str) and not full:
        out.append(f"instructions {quote(short(session['instructions'], 60))}")
    tools = session.get("tools")
    if isinstance(tools, list) and (tools or not full):
        names = [str(t.get("name") or (t.get("function") or {}).get("name") or t.get("type")) for t in tools if isinstance(t, dict)]
        out.append(f"tools [{', '.join(names)}]")
    if "tool_choice" in session and not full:
        choice = session["tool_choice"]
        out.append(f"tool_choice {json.dumps(choice) if not isinstance(choice, str) else choice}")
    if not full:
        if session.get("model"):
            out.append(f"model {session['model']}")
        others = sorted(set(session) - _SUMMARISED)
        if others:
            out.append("also " + ", ".join(others))
    return ", ".join(out)


_SUMMARISED = frozenset({"type", "object", "id", "model", "output_modalities", "modalities", "voice", "audio", "input_audio_format", "output_audio_format",
                         "turn_detection", "instructions", "tools", "tool_choice"})


def response_summary(response: dict[str, Any]) -> str:
    out = []
    if "tool_choice" in response:
        choice = response["tool_choice"]
        out.append(f"tool_choice {json.dumps(choice) if not isinstance(choice, str) else choice}")
    if response.get("conversation") == "none":
        out.append("out of band")
    if isinstance(response.get("instructions"), str):
        out.append(f"instructions {quote(short(response['instructions'], 60))}")
    return ", ".join(out)


def how_it_ended(session: Session) -> str:
    """"closed by client, code 1000" and the like; empty when the recording does not say."""
    close = session.close
    if close is None:
        return ""
    ended = f"closed by {close.by}" + (f", code {close.code}" if close.code is not None else "")
    return ended + (f" {close.reason!r}" if close.reason else "") + (f" ({close.error})" if close.error else "")
