"""Failure reports a test author can act on: what the client did, what the recording holds, what to do.

Sans-IO and free of pytest: plain data in (divergences, unplayed remainders, the cassette), text
out. The pytest plugin raises the text as a :class:`~mockrealtime.errors.DivergenceError`; anything
else that replays cassettes in tests can do the same.

A report names the cassette file, the connection, the recorded session and event index; shows the
expected and the received event with the differing fields marked (``!`` for the fields the
matching rules compare, which caused the mismatch) and a diff of the two events; the closest
recorded event; and ends with the exact command line flag or marker argument that re-records the
cassette or relaxes matching.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import shlex
from collections.abc import Sequence
from typing import Any

from mockrealtime.core.cassette import Cassette
from mockrealtime.core.events import AUDIO_APPEND, Direction
from mockrealtime.core.matching import DEFAULT_RULES, FieldDiff, Matcher
from mockrealtime.core.engine import Divergence

#: How many unplayed events are listed before "... and N more".
UNPLAYED_SHOWN = 8
#: Strings in shown events are cut to this length.
STRING_CUT = 120


@dataclasses.dataclass(frozen=True)
class ConnectionOutcome:
    """What one connection of a test did, as far as a report needs it."""

    connection: int
    session: int
    dialect: str
    open: bool
    close_code: int | None
    divergences: tuple[Divergence, ...]
    unplayed: tuple[dict[str, Any], ...]
    last_matched: int | None = None  # index of the last recorded client event the client matched
    #: Client events that did not match the next recorded one but were answered from the session
    #: state (lenient mode): (recorded event index, recorded event, received event, differences).
    near_misses: tuple[tuple[int, dict[str, Any], dict[str, Any], tuple[FieldDiff, ...]], ...] = ()


@dataclasses.dataclass(frozen=True)
class Context:
    """Where the failure is and how the test is configured, for the "what to do" lines."""

    cassette_path: str
    nodeid: str | None = None
    match: Any = None  # the test's matching option as given (a mode, or a dict), None if none
    record_mode: str = "none"
    #: Other sessions of the cassette that no connection played (the client connected fewer times).
    unplayed_sessions: tuple[int, ...] = ()
    connected: bool = True


def display_path(path: str, start: str | None = None) -> str:
    """A path relative to the working directory when it lies under it."""
    try:
        rel = os.path.relpath(path, start or os.getcwd())
    except ValueError:  # another drive
        return path
    return path if rel.startswith("..") else rel


def rerecord_command(nodeid: str | None, mode: str = "rewrite") -> str:
    target = f" {shlex.quote(nodeid)}" if nodeid else ""
    return f"pytest --realtime-record-mode={mode}{target}"


# -- divergences ------------------------------------------------------------------------------


def divergence_report(
    outcomes: Sequence[ConnectionOutcome], context: Context, cassette: Cassette | None, matcher: Matcher | None
) -> str | None:
    """The report for every divergence of a test's connections, or None if there was none."""
    found = [(o, d) for o in outcomes for d in o.divergences]
    if not found:
        return None
    n = len(found)
    lines = [
        f"mockrealtime: the client departed from the cassette ({n} divergence{'s' if n > 1 else ''})",
        f"cassette: {display_path(context.cassette_path)}",
    ]
    firsts = []
    for outcome in outcomes:
        if not outcome.divergences:
            continue
        first, *rest = outcome.divergences
        firsts.append(first)
        lines.append("")
        lines.extend(_divergence_lines(outcome, first, cassette, matcher))
        if rest:
            lines.append("  after it (the replay waits for the expected event, so these follow from the first):")
            for div in rest[:5]:
                still = (f"still expecting {div.expected.get('type')} (event {div.event_index})" if div.expected is not None
                         else "the recording has no more client events")
                later = f"; it matches event {div.closest_index} further on" if div.closest_index is not None else ""
                lines.append(f"    received {div.received.get('type')}: {still}{later}")
            if len(rest) > 5:
                lines.append(f"    ... and {len(rest) - 5} more")
        if outcome.unplayed:
            lines.append(f"  {len(outcome.unplayed)} recorded event(s) were left unplayed")
    lines.append("")
    lines.append("What to do:")
    lines.extend(f"  * {fix}" for fix in _divergence_fixes(firsts, context, matcher))
    return "\n".join(lines)


def _divergence_lines(
    outcome: ConnectionOutcome, div: Divergence, cassette: Cassette | None, matcher: Matcher | None
) -> list[str]:
    received = div.received
    got = received.get("type")
    head = f"connection {outcome.connection} (session {div.session}, {outcome.dialect})"
    if div.expected is None:
        lines = [
            f"{head}: the recording has no more client events, the client sent {got!r}",
            "  received:",
        ]
        lines.extend("    " + line for line in _pretty(received).splitlines())
        return lines
    want = div.expected.get("type")
    lines = [f"{head}, recorded event {div.event_index}:", f"  expected: {want}", f"  received: {got}"]
    if want == got:
        compared = _compared(div, matcher)
        others = [
            d for d in div.differences
            if not d.matched_on and d.path != "type" and not any(c.path.startswith((d.path + "[", d.path + ".")) for c in compared)
        ]
        if compared:
            lines.append("  compared by the matching rules, these fields made it a mismatch:")
            lines.extend(_field_line(d, "!") for d in compared[:12])
        if others:
            lines.append("  other differing fields (not compared):")
            lines.extend(_field_line(d, " ") for d in others[:12])
            if len(others) > 12:
                lines.append(f"    ... and {len(others) - 12} more")
        lines.append("  expected event (-) against received event (+):")
        lines.extend("    " + line for line in _event_diff(div.expected, received))
    else:
        lines.append("  expected event:")
        lines.extend("    " + line for line in _pretty(div.expected).splitlines())
        lines.append("  received event:")
        lines.extend("    " + line for line in _pretty(received).splitlines())
    closest = _closest(div, cassette, matcher)
    if closest:
        lines.append(f"  closest recorded event: {closest}")
    return lines


def _compared(div: Divergence, matcher: Matcher | None) -> list[FieldDiff]:
    """The differences the matching rules saw (rule paths such as ``session.tools[*].name``)."""
    if div.expected is None:
        return []
    if matcher is not None:
        return [d for d in matcher.differences(div.expected, div.received) if d.path != "type"]
    return [d for d in div.differences if d.matched_on and d.path != "type"]


def _field_line(d: FieldDiff, mark: str) -> str:
    return f"  {mark} {d.path}: expected {_brief(d.expected)}, received {_brief(d.received)}"


def _closest(div: Divergence, cassette: Cassette | None, matcher: Matcher | None) -> str | None:
    """The recorded client event most like the received one, with what still differs."""
    if div.closest_index is not None:
        skipped = ""
        if cassette is not None and div.event_index is not None:
            events = cassette.sessions[div.session].events
            between = [
                events[i].type
                for i in range(div.event_index, div.closest_index)
                if events[i].direction is Direction.CLIENT and events[i].type != AUDIO_APPEND
            ]
            if between:
                skipped = f"; the client skipped {', '.join(between)}"
        return f"event {div.closest_index} matches it exactly, further on in session {div.session}{skipped}"
    if cassette is None or matcher is None:
        return None
    received = div.received
    best: tuple[tuple[int, int, int], int, list[FieldDiff]] | None = None
    for index, ev in enumerate(cassette.sessions[div.session].events):
        if ev.direction is not Direction.CLIENT or ev.type != received.get("type") or ev.type == AUDIO_APPEND:
            continue
        compared = matcher.differences(ev.event, received)
        every = matcher.all_differences(ev.event, received)
        distance = abs(index - div.event_index) if div.event_index is not None else index
        key = (len(compared), len(every), distance)
        if best is None or key < best[0]:
            best = (key, index, compared or every)
    if best is None:
        return f"none: session {div.session} has no {received.get('type')!r} event"
    _, index, diffs = best
    where = "the expected one" if index == div.event_index else f"in session {div.session}"
    if not diffs:
        return f"event {index} ({where}) matches except for fields the rules ignore"
    paths = ", ".join(d.path for d in diffs[:4]) + (" ..." if len(diffs) > 4 else "")
    return f"event {index} {received.get('type')} ({where}), differing in {paths}"


def _divergence_fixes(divs: Sequence[Divergence], context: Context, matcher: Matcher | None) -> list[str]:
    fixes = [
        f"if the client is right and the recording is stale, re-record it: {rerecord_command(context.nodeid)}",
    ]
    if context.record_mode != "new_episodes":
        fixes.append(
            "or keep what matches and record only the rest of the session live: "
            + rerecord_command(context.nodeid, "new_episodes")
        )
    relaxed = _relaxed_match([(d.expected, d.received) for d in divs], context, matcher)
    if relaxed is not None:
        fixes.append(f"if these fields do not matter to the test, stop comparing them: @pytest.mark.realtime(match={relaxed})")
    if any(d.expected is not None and d.expected.get("type") != d.received.get("type") for d in divs):
        fixes.append("a client event of another type than the recording's cannot be relaxed away: fix the client or re-record")
    return fixes


def _relaxed_match(
    pairs: Sequence[tuple[dict[str, Any] | None, dict[str, Any]]], context: Context, matcher: Matcher | None
) -> str | None:
    """The ``match=`` marker argument under which these (expected, received) pairs would have matched."""
    if not pairs or matcher is None or any(e is None or e.get("type") != r.get("type") for e, r in pairs):
        return None
    compared = [(r["type"], matcher.differences(e, r)) for e, r in pairs]  # type: ignore[arg-type]
    if matcher.mode == "exact":
        ignore = {d.path for _, diffs in compared for d in diffs if d.path != "type"}
        base: dict[str, Any] = dict(context.match) if isinstance(context.match, dict) else {"mode": "exact"}
        base["ignore"] = sorted(set(base.get("ignore") or ()) | ignore)
        return _py(base)
    rules: dict[str, list[str]] = {}
    for etype, diffs in compared:
        current = rules.get(etype)
        if current is None:
            current = [path for path, _ in matcher.rules.get(etype, ())] or list(DEFAULT_RULES.get(etype, ()))
        dropped = {d.path for d in diffs}
        rules[etype] = [p for p in current if p not in dropped]
    base = dict(context.match) if isinstance(context.match, dict) else ({"mode": context.match} if context.match else {})
    base["rules"] = {**(base.get("rules") or {}), **rules}
    return _py(base)


# -- unplayed ---------------------------------------------------------------------------------


def unplayed_report(outcomes: Sequence[ConnectionOutcome], context: Context, matcher: Matcher | None = None) -> str | None:
    """The report for recorded events no connection played, or None if everything was played."""
    left = [o for o in outcomes if o.unplayed]
    if not left and not context.unplayed_sessions and context.connected:
        return None
    lines = ["mockrealtime: the client left part of the cassette unplayed", f"cassette: {display_path(context.cassette_path)}"]
    if not context.connected:
        lines.append("")
        lines.append("no client connected to this test's endpoint: nothing of the cassette was played")
        lines.append("  point the client at realtime_mock.websocket_base_url (the openai SDK), realtime_mock.ws_url or")
        lines.append("  realtime_mock.http_url; a client given another URL reaches another cassette or the real API")
    for o in left:
        lines.append("")
        state = "still open" if o.open else f"closed with code {o.close_code}"
        first = o.unplayed[0].get("event_index")
        start = f", from recorded event {first}" if first is not None else ""
        lines.append(
            f"connection {o.connection} (session {o.session}, {o.dialect}) {state} with "
            f"{len(o.unplayed)} recorded event(s) unplayed{start}:"
        )
        for item in o.unplayed[:UNPLAYED_SHOWN]:
            index = item.get("event_index")
            where = f"event {index}" if index is not None else "queued"
            extra = f" (until {item['until_audio_ms']:.0f} ms of audio)" if "until_audio_ms" in item else ""
            lines.append(f"    {item['direction']:<6} {item['type']:<48} {where}{extra}")
        if len(o.unplayed) > UNPLAYED_SHOWN:
            lines.append(f"    ... and {len(o.unplayed) - UNPLAYED_SHOWN} more")
        if o.last_matched is not None:
            lines.append(f"  the last recorded client event the client matched: event {o.last_matched}")
        nxt = next((i for i in o.unplayed if i["direction"] == "client"), None)
        if nxt is not None and not o.near_misses:
            lines.append(f"  the recording's client sent {nxt['type']} next; this client did not")
        for index, expected, received, diffs in o.near_misses[:2]:
            lines.append(
                f"  the client sent a {received.get('type')} that differs from the recorded event {index}, so it was"
            )
            lines.append("  answered from the session state (lenient mode) instead of releasing the recording:")
            lines.extend("  " + _field_line(d, "!") for d in diffs[:8])
            lines.append("    expected event (-) against received event (+):")
            lines.extend("      " + line for line in _event_diff(expected, received))
    if context.unplayed_sessions and context.connected:
        lines.append("")
        sessions = ", ".join(str(s) for s in context.unplayed_sessions)
        lines.append(f"session(s) {sessions} of the cassette were never played: the recording has more connections than the client made")
    lines.append("")
    lines.append("What to do:")
    near = [(e, r) for o in left for _, e, r, _ in o.near_misses]
    if near:
        lines.append("  * to fail at the first event that departs from the recording: @pytest.mark.realtime(strict=True)")
        relaxed = _relaxed_match(near, context, matcher)
        if relaxed is not None:
            lines.append(f"  * if these fields do not matter to the test, stop comparing them: @pytest.mark.realtime(match={relaxed})")
    lines.append("  * if the client is meant to stop early, allow it: @pytest.mark.realtime(allow_unplayed=True)")
    lines.append(f"  * if the recording holds more than the client now does, re-record it: {rerecord_command(context.nodeid)}")
    return "\n".join(lines)


# -- helpers ----------------------------------------------------------------------------------


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > STRING_CUT:
        return value[: STRING_CUT - 3] + "..."
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


def _pretty(event: Any) -> str:
    return json.dumps(_cut(event), indent=2, ensure_ascii=False)


def _event_diff(expected: dict[str, Any], received: dict[str, Any]) -> list[str]:
    a, b = _pretty(expected).splitlines(), _pretty(received).splitlines()
    diff = list(difflib.unified_diff(a, b, lineterm="", n=2))[2:]  # without the ---/+++ header
    return diff or ["(no difference outside the ignored fields)"]


def _brief(value: Any) -> str:
    if value == "<absent>":
        return "<absent>"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        try:  # a [*] path: the matcher compares the elements as sorted JSON texts
            value = [json.loads(v) for v in value]
        except ValueError:
            pass
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _py(value: Any) -> str:
    """A Python literal for a marker argument (JSON-like values only)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return repr(value)
