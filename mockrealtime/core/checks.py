"""``mockrealtime validate``: check cassettes beyond what loading checks.

Loading already enforces the format (the JSON Schema, packed runs that add up, audio sidecars that
exist and hold the bytes a run names). On top of that this module checks the *protocol* a cassette
records, per session, and returns findings instead of raising:

* **event types**: every type is one its sender may send in the cassette's dialect; a beta name in
  a GA cassette (``response.audio.delta``) or a GA name in a beta one is an error that names the
  right one (:mod:`mockrealtime.protocol.catalog`);
* **session shapes**: a GA ``session`` without its ``type``, or with beta fields, and the reverse;
* **client events** against the API's schemas (:class:`~mockrealtime.protocol.ClientEventValidator`):
  an invalid one is fine when the recording shows the API's ``error`` answering it, a warning
  otherwise (the real API would have answered with an error the recording does not show);
* **references**: ``response_id`` / ``item_id`` of server events name a response or item the
  session announces; a client's ``call_id``, truncate/delete/retrieve ``item_id`` and cancel
  ``response_id`` name something that exists, unless the recording shows the error answering it;
  an ``error.event_id`` names a client event of the session; ``previous_item_id`` names an item;
* **streams**: deltas join to what their ``.done`` event carries (text, transcript, arguments);
* **hangs** (:mod:`mockrealtime.core.flow_checks`): a response never done, a function call never
  finished, a client cue naming an id the server shows only later, sidecar audio in another format
  than the session's;
* **secrets**: keys left anywhere in the file, comments included
  (:func:`mockrealtime.core.redaction.find_secrets`), and handshake credentials not redacted.

Sans-IO apart from reading the files named: no aiohttp, no asyncio.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from typing import Any

from mockrealtime.core import cassette as _cassette
from mockrealtime.core import flow_checks
from mockrealtime.core.cassette import Cassette, RecordedEvent
from mockrealtime.errors import CassetteFormatError
from mockrealtime.core.events import AUDIO_APPEND, AUDIO_DELTA_TYPES, BETA, GA, Direction
from mockrealtime.protocol import ClientEventValidator
from mockrealtime.protocol.catalog import GA_LEGACY_SERVER, classify
from mockrealtime.core.redaction import CREDENTIAL_HEADERS, KEY_SUBPROTOCOL, REDACTED, SAFE_QUERY, find_secrets

ERROR = "error"
WARNING = "warning"

#: Session fields only one dialect has (protocol.md §2.3).
_BETA_SESSION_FIELDS = frozenset(
    {"modalities", "input_audio_format", "output_audio_format", "voice", "input_audio_transcription",
     "input_audio_noise_reduction", "turn_detection", "max_response_output_tokens", "temperature"}
)
_GA_SESSION_FIELDS = frozenset({"type", "output_modalities", "audio", "max_output_tokens"})

#: delta type -> (done type, field of the done event holding the whole)
_STREAMS = {
    "response.output_text.delta": ("response.output_text.done", "text"),
    "response.text.delta": ("response.text.done", "text"),
    "response.output_audio_transcript.delta": ("response.output_audio_transcript.done", "transcript"),
    "response.audio_transcript.delta": ("response.audio_transcript.done", "transcript"),
    "response.function_call_arguments.delta": ("response.function_call_arguments.done", "arguments"),
}
_DONE_OF = {done: (delta, field) for delta, (done, field) in _STREAMS.items()}

#: Client events whose ``item_id`` must name an existing item.
_CLIENT_ITEM_REFS = frozenset({"conversation.item.truncate", "conversation.item.delete", "conversation.item.retrieve"})
#: Server events whose ``item_id`` announces an item rather than referring to one.
_ITEM_ANNOUNCERS = frozenset(
    {"input_audio_buffer.committed", "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
     "input_audio_buffer.timeout_triggered"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    severity: str  # "error" | "warning"
    code: str  # unknown_event_type | wrong_dialect | session_shape | invalid_client_event | broken_reference | stream_mismatch | secret | format | structure | unfinished_response | unfinished_call | impossible_cue | audio_format
    where: str  # "session 0, event 12 (812.5 ms, server)", a JSON path, or "handshake"
    message: str

    def __str__(self) -> str:
        return f"{self.severity:<7} {self.where}: {self.code}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class Report:
    """The findings for one cassette file."""

    path: str
    findings: list[Finding]
    cassette: Cassette | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def ok(self, strict: bool = False) -> bool:
        return not self.errors and not (strict and self.warnings)

    def summary(self) -> str:
        c = self.cassette
        what = ""
        if c is not None:
            n_events = sum(len(s.events) for s in c.sessions)
            what = f" ({c.dialect}, {len(c.sessions)} session{'s' if len(c.sessions) != 1 else ''}, {n_events} events)"
        if not self.findings:
            return f"{self.path}: ok{what}"
        counts = []
        for label, items in (("error", self.errors), ("warning", self.warnings)):
            if items:
                counts.append(f"{len(items)} {label}{'s' if len(items) != 1 else ''}")
        return f"{self.path}: {', '.join(counts)}{what}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok(),
            "dialect": self.cassette.dialect if self.cassette else None,
            "findings": [f.to_dict() for f in self.findings],
        }


# -- entry points -------------------------------------------------------------------------------


def cassette_paths(paths: Iterable[str]) -> list[str]:
    """The cassette files named: files as given, directories expanded to their ``*.yaml``/``*.yml``."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            out.extend(
                os.path.join(path, f) for f in sorted(os.listdir(path))
                if f.endswith((".yaml", ".yml")) and not f.startswith(".")
            )
        else:
            out.append(path)
    return out


def validate_file(path: str) -> Report:
    """Load ``path`` (format errors become findings) and check what it records."""
    try:
        cassette = _cassette.load(path)
    except CassetteFormatError as exc:
        return Report(path, [Finding(ERROR, "format", exc.json_path, exc.message)])
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:  # pragma: no cover - it was just loaded
        return Report(path, [Finding(ERROR, "format", "$", f"cannot read: {exc.strerror}")])
    return Report(path, validate_cassette(cassette, text), cassette)


def validate_cassette(cassette: Cassette, text: str | None = None) -> list[Finding]:
    """Every finding for a loaded cassette; ``text`` (the file) is scanned for secrets too."""
    findings: list[Finding] = []
    findings += _check_handshake(cassette)
    if text is not None:
        findings += [Finding(ERROR, "secret", where, f"{what} left in the file") for where, what in find_secrets(text)]
    else:
        findings += [Finding(ERROR, "secret", where, f"{what} left in the cassette") for where, what in find_secrets(cassette)]
    validator = ClientEventValidator(cassette.dialect)
    for s_index, session in enumerate(cassette.sessions):
        findings += _SessionCheck(cassette, s_index, session.events, validator).run()
    return findings


# -- the handshake ------------------------------------------------------------------------------


def _check_handshake(cassette: Cassette) -> Iterator[Finding]:
    hs = cassette.handshake
    for name, value in (hs.headers or {}).items():
        if name.lower() in CREDENTIAL_HEADERS and value != REDACTED:
            yield Finding(ERROR, "secret", f"$.handshake.headers.{name}", f"the {name} header is recorded; it must be {REDACTED!r}")
    for name, value in (hs.query or {}).items():
        if name.lower() not in SAFE_QUERY and value != REDACTED:
            yield Finding(WARNING, "secret", f"$.handshake.query.{name}", f"query parameter {name!r} is kept verbatim; only {', '.join(sorted(SAFE_QUERY))} are known to be harmless")
    for i, protocol in enumerate(hs.subprotocols or []):
        if protocol.startswith(KEY_SUBPROTOCOL) and protocol != KEY_SUBPROTOCOL + REDACTED:
            yield Finding(ERROR, "secret", f"$.handshake.subprotocols[{i}]", "the API key subprotocol is recorded with its key")


# -- one session --------------------------------------------------------------------------------


def _collect_ids(node: Any, items: set[str], calls: set[str], responses: set[str]) -> None:
    """Ids a server event announces: items (anything under ``item``/``output``), call ids, responses."""
    if isinstance(node, dict):
        if isinstance(node.get("id"), str):
            obj = node.get("object")
            if obj == "realtime.response":
                responses.add(node["id"])
            elif obj != "realtime.session" and not str(node["id"]).startswith(("sess_", "conv_")):
                items.add(node["id"])
        if node.get("type") in ("function_call", "mcp_call") and isinstance(node.get("call_id"), str):
            calls.add(node["call_id"])
        for key in ("item", "response", "output"):
            if key in node:
                _collect_ids(node[key], items, calls, responses)
    elif isinstance(node, list):
        for value in node:
            _collect_ids(value, items, calls, responses)


class _SessionCheck:
    def __init__(self, cassette: Cassette, s_index: int, events: list[RecordedEvent], validator: ClientEventValidator) -> None:
        self.cassette = cassette
        self.dialect = cassette.dialect
        self.s_index = s_index
        self.events = events
        self.validator = validator
        self.findings: list[Finding] = []
        #: (direction, type) -> [index of its finding, how many events have it]
        self._type_problems: dict[tuple[str, str], list[int]] = {}
        #: errors without an event_id already paired with the client event they answer
        self._claimed: set[int] = set()

    def where(self, index: int, ev: RecordedEvent) -> str:
        return f"session {self.s_index}, event {index} ({ev.offset_ms:g} ms, {ev.direction.value} {ev.type})"

    def add(self, severity: str, code: str, index: int, ev: RecordedEvent, message: str) -> None:
        self.findings.append(Finding(severity, code, self.where(index, ev), message))

    def run(self) -> list[Finding]:
        self._announced()
        self._check_structure()
        for index, ev in enumerate(self.events):
            self._check_type(index, ev)
            if ev.direction is Direction.SERVER:
                self._check_server(index, ev)
            elif ev.type != AUDIO_APPEND:  # an append's length is all that matters
                self._check_client(index, ev, ev.event)
        self._check_streams()
        self._summarise_type_problems()
        for check in (flow_checks.unfinished, flow_checks.impossible_cues, flow_checks.audio_formats):
            for severity, code, index, message in check(self.events):
                self.add(severity, code, index, self.events[index], message)
        return self.findings

    # ids announced anywhere in the session (VAD announces a user item before it exists)
    def _announced(self) -> None:
        self.items: set[str] = set()
        self.calls: set[str] = set()
        self.responses: set[str] = set()
        self.client_event_ids: set[str] = set()
        for ev in self.events:
            if ev.direction is Direction.CLIENT:
                if isinstance(ev.get("event_id"), str):
                    self.client_event_ids.add(ev.get("event_id"))
                if ev.type == "conversation.item.create":
                    _collect_ids({"item": ev.event.get("item")}, self.items, self.calls, self.responses)
                continue
            if ev.type in AUDIO_DELTA_TYPES:
                continue  # refers to items, announces none; building it would read the sidecar
            event = ev.event
            _collect_ids(event, self.items, self.calls, self.responses)
            if ev.type in _ITEM_ANNOUNCERS and isinstance(event.get("item_id"), str):
                self.items.add(event["item_id"])
            if ev.type.startswith("response.function_call_arguments.") and isinstance(event.get("call_id"), str):
                self.calls.add(event["call_id"])

    def _check_structure(self) -> None:
        servers = [(i, ev) for i, ev in enumerate(self.events) if ev.direction is Direction.SERVER]
        if not servers:
            self.findings.append(Finding(WARNING, "structure", f"session {self.s_index}", "the server sends nothing"))
        elif servers[0][1].type != "session.created":
            i, ev = servers[0]
            self.add(WARNING, "structure", i, ev, "the server's first event is not session.created")

    # -- types ------------------------------------------------------------------------------------

    def _check_type(self, index: int, ev: RecordedEvent) -> None:
        verdict, right_name = classify(ev.direction, ev.type, self.dialect)
        if verdict == "ok":
            if self.dialect == GA and ev.direction is Direction.SERVER and ev.type in GA_LEGACY_SERVER:
                self._type_problem(index, ev, WARNING, "wrong_dialect",
                                   f"{ev.type!r} is a beta-era event; the GA server answers with conversation.item.added and conversation.item.done")
            return
        other = BETA if self.dialect == GA else GA
        if verdict == "other_dialect":
            hint = f"; the {self.dialect} name is {right_name!r}" if right_name and " " not in right_name else (f"; {self.dialect} uses {right_name}" if right_name else f"; it does not exist in {self.dialect}")
            self._type_problem(index, ev, ERROR, "wrong_dialect", f"{ev.type!r} is a {other} event in a {self.dialect} cassette{hint}")
        else:
            self._type_problem(index, ev, ERROR, "unknown_event_type", f"{ev.type!r} is not a {ev.direction.value} event of the Realtime API")

    def _type_problem(self, index: int, ev: RecordedEvent, severity: str, code: str, message: str) -> None:
        """One finding per type and session, however many events have it (a run may hold hundreds)."""
        seen = self._type_problems.get((ev.direction.value, ev.type))
        if seen is not None:
            seen[1] += 1
            return
        self._type_problems[(ev.direction.value, ev.type)] = [len(self.findings), 1]
        self.add(severity, code, index, ev, message)

    def _summarise_type_problems(self) -> None:
        for position, n in self._type_problems.values():
            if n > 1:
                f = self.findings[position]
                self.findings[position] = dataclasses.replace(f, message=f"{f.message} ({n} events, the first shown)")

    # -- client events ------------------------------------------------------------------------------

    def _answered_by_error(self, index: int, event: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded ``error`` answering the client event at ``index``, if any: one naming its
        event_id; for an event without one, the first error naming no event that no earlier event
        claimed, before the client sends an event of the same type again (a client pipelines:
        ``response.create`` often follows the item before the error arrives)."""
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        for later in range(index + 1, len(self.events)):
            ev = self.events[later]
            if ev.direction is Direction.CLIENT:
                if event_id is None and ev.type == self.events[index].type:
                    return None
                continue
            if ev.type != "error":
                continue
            named = (ev.event.get("error") or {}).get("event_id")
            if event_id is not None and named == event_id:
                return ev.event
            if event_id is None and named is None and later not in self._claimed:
                self._claimed.add(later)
                return ev.event
        return None

    def _check_client(self, index: int, ev: RecordedEvent, event: dict[str, Any]) -> None:
        problem = self.validator.validate(event)
        answered = None
        if problem is not None:
            answered = self._answered_by_error(index, event)
            if answered is None:
                self.add(WARNING, "invalid_client_event", index, ev,
                         f"the real API answers it with {problem.code}: {problem.message} (param {problem.param}), and the recording shows no error")
        etype = ev.type
        refs: list[tuple[str, str, set[str]]] = []
        item: dict[str, Any] = event["item"] if isinstance(event.get("item"), dict) else {}
        if etype == "conversation.item.create" and item.get("type") == "function_call_output" and isinstance(item.get("call_id"), str):
            refs.append(("call_id", item["call_id"], self.calls))
        if etype in _CLIENT_ITEM_REFS and isinstance(event.get("item_id"), str):
            refs.append(("item_id", event["item_id"], self.items))
        if etype == "response.cancel" and isinstance(event.get("response_id"), str):
            refs.append(("response_id", event["response_id"], self.responses))
        previous = event.get("previous_item_id")
        if isinstance(previous, str) and previous != "root":
            refs.append(("previous_item_id", previous, self.items))
        for field, value, known in refs:
            if value in known:
                continue
            if answered is None:
                answered = self._answered_by_error(index, event)
            if answered is None:
                self.add(ERROR, "broken_reference", index, ev, f"{field} {value!r} names nothing in this session, and the recording shows no error answering it")

    # -- server events ------------------------------------------------------------------------------

    def _check_server(self, index: int, ev: RecordedEvent) -> None:
        etype = ev.type
        if etype in ("session.created", "session.updated"):
            self._check_session_shape(index, ev, ev.event.get("session"))
        if etype == "error":
            named = (ev.event.get("error") or {}).get("event_id")
            if isinstance(named, str) and named not in self.client_event_ids:
                self.add(WARNING, "broken_reference", index, ev, f"error.event_id {named!r} names no client event of this session")
            return
        event = ev  # .get() reads top-level fields without building an audio delta
        response_id = event.get("response_id")
        if isinstance(response_id, str) and response_id not in self.responses:
            self.add(ERROR, "broken_reference", index, ev, f"response_id {response_id!r} names no response of this session (no response.created or response.done has it)")
        item_id = event.get("item_id")
        if isinstance(item_id, str) and etype not in _ITEM_ANNOUNCERS and item_id not in self.items:
            self.add(ERROR, "broken_reference", index, ev, f"item_id {item_id!r} names no item of this session")
        previous = event.get("previous_item_id")
        if isinstance(previous, str) and previous != "root" and previous not in self.items:
            self.add(WARNING, "broken_reference", index, ev, f"previous_item_id {previous!r} names no item of this session")

    def _check_session_shape(self, index: int, ev: RecordedEvent, session: Any) -> None:
        """The server's session object (a client's session.update goes through the schemas)."""
        if not isinstance(session, dict):
            return
        keys = set(session)
        if self.dialect == GA:
            wrong = sorted(keys & _BETA_SESSION_FIELDS)
            if wrong:
                self.add(ERROR, "session_shape", index, ev,
                         f"beta session field(s) {', '.join(wrong)} in a GA cassette (GA: output_modalities, audio.input/output, max_output_tokens)")
            if "type" not in keys:
                self.add(ERROR, "session_shape", index, ev, "a GA session carries type ('realtime' or 'transcription')")
        else:
            wrong = sorted(keys & _GA_SESSION_FIELDS)
            if wrong:
                self.add(ERROR, "session_shape", index, ev, f"GA session field(s) {', '.join(wrong)} in a beta cassette")

    # -- streams --------------------------------------------------------------------------------------

    def _check_streams(self) -> None:
        joined: dict[tuple[str, Any, Any, Any], list[str]] = {}
        for index, ev in enumerate(self.events):
            if ev.type in _STREAMS:
                e = ev.event
                key = (ev.type, e.get("response_id"), e.get("item_id"), e.get("content_index"))
                delta = e.get("delta")
                joined.setdefault(key, []).append(delta if isinstance(delta, str) else "")
            elif ev.type in _DONE_OF:
                delta_type, field = _DONE_OF[ev.type]
                e = ev.event
                key = (delta_type, e.get("response_id"), e.get("item_id"), e.get("content_index"))
                parts = joined.pop(key, None)
                whole = e.get(field)
                if parts is None or not isinstance(whole, str):
                    continue  # a .done without deltas is legal (an empty or cut-short stream)
                text = "".join(parts)
                if text != whole:
                    self.add(ERROR, "stream_mismatch", index, ev,
                             f"the deltas join to {_brief(text)} but {field} is {_brief(whole)}")


def _brief(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(shown)
