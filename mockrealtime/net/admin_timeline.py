"""What the admin API's timeline page reads from a connection: the one place that knows the journal's shape.

The page itself is drawn by :mod:`mockrealtime.core.timeline_html`; this adapter hands it only what it
needs of each journal entry (time, event type, outcome, the recorded event it matched) and the
divergences' summaries, so that a change in how the engine keeps its journal changes this function
and nothing else.
"""

from __future__ import annotations

from mockrealtime.core.redaction import mask_secrets
from mockrealtime.core.timeline_html import LiveConnection, LiveEntry, render_connection
from mockrealtime.net.state import ConnectionReport


def live_connection(report: ConnectionReport) -> LiveConnection:
    engine = report.engine
    summaries = iter([d.summary for d in engine.divergences])  # one per "diverged" entry, in order
    entries = []
    for entry in engine.journal:
        event = entry.event if isinstance(entry.event, dict) else {}
        note = next(summaries, "") if entry.outcome == "diverged" else ""
        # what clients said, keys masked as everywhere else in the admin API
        entries.append(LiveEntry(entry.at_ms, mask_secrets(str(event.get("type"))), entry.outcome, entry.event_index, mask_secrets(note)))
    ahead = frozenset(e["event_index"] for e in engine.unplayed() if e.get("event_index") is not None)
    state = "open" if report.open else f"closed (code {report.close_code})"
    facts = (
        ("cassette", report.cassette), ("session", str(report.session)), ("dialect", report.dialect),
        ("path", mask_secrets(report.path)), ("state", state), ("client events", str(len(entries))),
        ("divergences", str(len(engine.divergences))),
    )
    return LiveConnection(f"connection {report.id}: {engine.cassette.name}", facts, tuple(entries), ahead)


def timeline_page(report: ConnectionReport) -> str:
    """The connection as a page: what its client sent above the recording it replays."""
    return render_connection(report.engine.cassette, report.session, live_connection(report))
