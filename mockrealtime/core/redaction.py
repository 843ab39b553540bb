"""Keeping secrets out of cassettes and logs, and refusing to save when one slips through.

Theory of operation
-------------------
Redaction fails closed, in two layers:

1. **Scrubbing** (what the recorder does to everything it keeps). The handshake keeps a header, a
   query parameter or a subprotocol verbatim only when it is known to be harmless (``OpenAI-Beta``,
   ``model``, ``realtime`` ...); anything else keeps its name with the value ``<redacted>``
   (``Authorization``, ``api-key``, ``OpenAI-Organization``, ``openai-insecure-api-key.<key>``, an
   Azure ``api-key`` in the query). In events, every string under a key that names a credential
   (``client_secret``, ``authorization``, ``api_key`` ...) becomes ``<redacted>``, at any depth:
   that covers the ephemeral ``client_secret.value`` of session payloads and the ``authorization``
   of MCP tools. Configured rules come on top: JSON paths (``session.instructions``, or
   ``conversation.item.create:item.content[*].text`` for one event type) and regexes applied to
   every string.
2. **Scanning** (what a checked save does to the document about to be written, runs collapsed, so
   a key split over several deltas is seen whole). Anything that still looks like a key (``sk-…``,
   ``ek_…``, a bearer token, a JWT) or contains a value known to be a credential of this recording
   (the key the client or the recorder used) stops the save with :class:`SecretLeftError`, naming
   the JSON paths and never the values. Known values shorter than ``MIN_KNOWN_SECRET_LEN``
   characters are scrubbed from the handshake but not scanned for: "test" would match everywhere.

Audio payloads (base64 in ``input_audio_buffer.append`` and audio deltas) are neither scrubbed nor
scanned: standard base64 has no ``-`` or ``_``, so no ``sk-``/``ek_`` key can hide in it, and the
WAV sidecars hold raw samples.

No I/O here beyond :func:`save_checked` calling :func:`mockrealtime.core.cassette_writer.save`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import yaml

from mockrealtime.core import cassette as _cassette
from mockrealtime.core import cassette_writer as _writer
from mockrealtime.core.cassette import Cassette
from mockrealtime.errors import ConfigError, SecretLeftError
from mockrealtime.core.events import AUDIO_APPEND, AUDIO_DELTA_TYPES
from mockrealtime.core.matching import parse_path

REDACTED = "<redacted>"

#: Shorter known values are not scanned for (they would match ordinary text).
MIN_KNOWN_SECRET_LEN = 8

#: Handshake headers that are transport, not content: never recorded.
TRANSPORT_HEADERS = frozenset(
    {
        "host", "connection", "upgrade", "content-length", "transfer-encoding", "keep-alive", "te",
        "trailer", "accept-encoding", "sec-websocket-key", "sec-websocket-version",
        "sec-websocket-extensions", "sec-websocket-protocol", "sec-websocket-accept",
    }
)

#: Headers recorded verbatim; every other header is recorded as ``<redacted>``.
SAFE_HEADERS = frozenset({"openai-beta", "user-agent", "x-mockrealtime-cassette", "content-type", "accept"})
#: The openai SDKs' platform headers (``X-Stainless-Lang: python`` ...): what recorded it, nothing more.
SAFE_HEADER_PREFIXES = ("x-stainless-",)

#: Headers whose value is a credential (scanned for in the recording, on top of being redacted).
CREDENTIAL_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})

#: Query parameters recorded verbatim; any other one is recorded as ``<redacted>``.
SAFE_QUERY = frozenset({"model", "call_id", "intent", "api-version", "deployment"})

#: Subprotocols recorded verbatim; ``prefix.<value>`` ones keep their prefix only.
SAFE_SUBPROTOCOLS = frozenset({"realtime", "openai-beta.realtime-v1"})
KEY_SUBPROTOCOL = "openai-insecure-api-key."

#: Event keys (compared lowercased, ``-`` as ``_``) whose string values are credentials.
SECRET_KEYS = frozenset(
    {"client_secret", "authorization", "api_key", "x_api_key", "access_token", "refresh_token", "password"}
)

#: What "looks like a key": (pattern, what the finding says).
SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}"), "an OpenAI API key (sk-...)"),
    (re.compile(r"(?<![A-Za-z0-9])ek_[A-Za-z0-9_-]{16,}"), "an ephemeral client secret (ek_...)"),
    (re.compile(r"\b[Bb]earer\s+[A-Za-z0-9._~+/=-]{16,}"), "a bearer token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."), "a JSON Web Token"),
)

_KNOWN_WHAT = "a credential used in this recording"


# --------------------------------------------------------------------------------------------
# the handshake


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Request headers as a cassette or a log may show them: transport headers dropped, safe ones
    kept, every other value ``<redacted>`` (names keep their spelling)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        lower = name.lower()
        if lower in TRANSPORT_HEADERS:
            continue
        out[name] = value if lower in SAFE_HEADERS or lower.startswith(SAFE_HEADER_PREFIXES) else REDACTED
    return out


def redact_query(query: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = query.items() if isinstance(query, Mapping) else query
    return {k: (v if k.lower() in SAFE_QUERY else REDACTED) for k, v in items}


def redact_subprotocols(protocols: Iterable[str]) -> list[str]:
    out = []
    for p in protocols:
        if p in SAFE_SUBPROTOCOLS:
            out.append(p)
        elif "." in p:
            out.append(p.split(".", 1)[0] + "." + REDACTED)  # openai-insecure-api-key.<redacted>
        else:
            out.append(REDACTED)
    return out


def credentials(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    subprotocols: Iterable[str] = (),
    query: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> set[str]:
    """The credential values a handshake carries: what a recording must never contain."""
    found: set[str] = set()
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if name.lower() in CREDENTIAL_HEADERS:
            scheme, _, token = value.strip().partition(" ")
            found.add(token.strip() if token and scheme.lower() in ("bearer", "basic") else value.strip())
    for p in subprotocols:
        if p.startswith(KEY_SUBPROTOCOL):
            found.add(p[len(KEY_SUBPROTOCOL) :])
    q_items = query.items() if isinstance(query, Mapping) else query
    for k, v in q_items:
        if k.lower() not in SAFE_QUERY:
            found.add(v)
    return {v for v in found if v}


# --------------------------------------------------------------------------------------------
# events

def parse_rule_path(rule: str) -> tuple[str | None, tuple[str | int, ...]]:
    """``[EVENT_TYPE:]a.b[*].c`` -> (event type or None, ("a", "b", "*", "c")); the path in the one
    grammar of :func:`mockrealtime.core.matching.parse_path`.

    ``[*]`` and ``*`` take every element or key; ``[3]`` one element; a leading ``$.`` is allowed.
    """
    etype, sep, path = rule.rpartition(":")
    etype = etype.strip() if sep else ""
    try:
        parts = parse_path(path)
    except ConfigError:
        raise ConfigError(f"bad redact path {rule!r} (expected e.g. session.instructions or item.content[*].text)") from None
    return (etype or None), parts


def _is_secret_key(key: str) -> bool:
    return key.lower().replace("-", "_") in SECRET_KEYS


def _audio_field(event: Mapping[str, Any]) -> str | None:
    etype = event.get("type")
    if etype == AUDIO_APPEND:
        return "audio"
    if etype in AUDIO_DELTA_TYPES:
        return "delta"
    return None


class Redactor:
    """Scrubs events: credential keys always, plus the configured JSON paths and regexes."""

    def __init__(self, paths: Sequence[str] = (), patterns: Sequence[str] = ()) -> None:
        self.paths = [parse_rule_path(p) for p in paths]
        self.patterns: list[re.Pattern[str]] = []
        for p in patterns:
            try:
                self.patterns.append(re.compile(p))
            except re.error as exc:
                raise ConfigError(f"bad redact pattern {p!r}: {exc}") from None

    def scrub_text(self, text: str) -> str:
        for pattern in self.patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def scrub_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event with secrets replaced; the same object when nothing changed (never mutated)."""
        skip = _audio_field(event)
        out = self._walk(event, skip)
        etype = event.get("type")
        for rule_type, parts in self.paths:
            if rule_type is None or rule_type == etype:
                out = _redact_at(out, parts)
        return out

    def _walk(self, node: Any, skip: str | None = None) -> Any:
        if isinstance(node, str):
            return self.scrub_text(node) if self.patterns else node
        if isinstance(node, dict):
            changed = None
            for k, v in node.items():
                if k == skip:
                    continue
                new = _blank(v) if isinstance(k, str) and _is_secret_key(k) else self._walk(v)
                if new is not v:
                    if changed is None:
                        changed = dict(node)
                    changed[k] = new
            return node if changed is None else changed
        if isinstance(node, list):
            items = [self._walk(v) for v in node]
            return node if all(a is b for a, b in zip(items, node, strict=True)) else items
        return node


def _blank(node: Any) -> Any:
    """Every string under ``node`` replaced; numbers, booleans and the shape stay (clients parse it)."""
    if isinstance(node, str):
        return REDACTED
    if isinstance(node, dict):
        return {k: _blank(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_blank(v) for v in node]
    return node


def _redact_at(node: Any, parts: tuple[str | int, ...]) -> Any:
    """``node`` with what ``parts`` reaches blanked; ``node`` itself when the path reaches nothing."""
    if not parts:
        return _blank(node)
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        new = {k: _redact_at(node[k], rest) for k in keys}
        if all(new[k] is node[k] for k in keys):
            return node
        return {**node, **new}
    if isinstance(node, list):
        if head == "*":
            items = [_redact_at(v, rest) for v in node]
            return node if all(a is b for a, b in zip(items, node, strict=True)) else items
        if isinstance(head, int) and head < len(node):  # the path grammar has no negative index
            item = _redact_at(node[head], rest)
            return node if item is node[head] else [*node[:head], item, *node[head + 1 :]]
    return node


# --------------------------------------------------------------------------------------------
# scanning


def find_secrets(target: Cassette | str | Mapping[str, Any] | list[Any], known: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Where ``target`` still holds something that looks like a key: ``[(json path, what)]``.

    ``target`` is a cassette (scanned as the document it saves to, so paths point into the file),
    cassette text (YAML or JSON; raw text that does not parse is scanned whole, path ``$``), or an
    already parsed document or event.
    """
    needles = _needles(known)
    findings: list[tuple[str, str]] = []
    if isinstance(target, Cassette):
        doc, _ = _writer.to_document(target, target.name)
        if target.description:
            findings += [("(description)", what) for what in _scan(target.description, needles)]
        _scan_tree(doc, "$", needles, findings)
    elif isinstance(target, str):
        try:
            docs = list(yaml.load_all(target, Loader=_cassette.CassetteLoader))
            parsed: Any = docs[0] if len(docs) == 1 else docs  # several: a recorded cassette and its parts
        except (yaml.YAMLError, RecursionError):
            parsed = None
        if isinstance(parsed, (dict, list)):
            comments = "\n".join(line for line in target.splitlines() if line.lstrip().startswith("#"))
            findings += [("(comment)", what) for what in _scan(comments, needles)]
            _scan_tree(parsed, "$", needles, findings)
        else:
            findings += [("$", what) for what in _scan(target, needles)]
    else:
        _scan_tree(target, "$", needles, findings)
    return findings


def _needles(known: Iterable[str]) -> list[str]:
    return sorted({k for k in known if isinstance(k, str) and len(k) >= MIN_KNOWN_SECRET_LEN}, key=len, reverse=True)


def _scan(text: str, needles: list[str]) -> list[str]:
    found = [what for pattern, what in SECRET_PATTERNS if pattern.search(text)]
    if any(n in text for n in needles):
        found.append(_KNOWN_WHAT)
    return found


def _scan_tree(node: Any, path: str, needles: list[str], out: list[tuple[str, str]]) -> None:
    if isinstance(node, str):
        out.extend((path, what) for what in _scan(node, needles))
    elif isinstance(node, dict):
        skip = _audio_field(node)
        for k, v in node.items():
            if k == skip:
                continue
            key = str(k)
            out.extend((f"{path}.{key} (the key)", what) for what in _scan(key, needles))
            _scan_tree(v, f"{path}.{key}", needles, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _scan_tree(v, f"{path}[{i}]", needles, out)


_KEY_IN_PROTOCOL = re.compile(re.escape(KEY_SUBPROTOCOL) + r"[^'\"\s,\]]+")


def mask_secrets(text: str) -> str:
    """``text`` with whatever the scan would flag replaced by ``<redacted>``: for logs and the admin
    journal, which show what clients said but must not show their keys. A key offered as the
    ``openai-insecure-api-key.<key>`` subprotocol is masked whatever its length."""
    if KEY_SUBPROTOCOL in text:
        text = _KEY_IN_PROTOCOL.sub(KEY_SUBPROTOCOL + REDACTED, text)
    for pattern, _ in SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def mask_tree(node: Any) -> Any:
    """A JSON-like value with :func:`mask_secrets` applied to every string (audio payloads skipped)."""
    if isinstance(node, str):
        return mask_secrets(node)
    if isinstance(node, dict):
        skip = _audio_field(node)
        return {k: (v if k == skip else mask_tree(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [mask_tree(v) for v in node]
    return node


def secret_check(path: str, known: Iterable[str] = (), description: str = "") -> Callable[[dict[str, Any]], None]:
    """A check for a document about to be written to ``path`` (with ``description`` as its
    leading comment): raises :class:`SecretLeftError` if anything looks like a key."""
    needles = _needles(known)
    # with the description, scanned once: the recorder checks every part it appends
    described = [("(description)", what) for what in _scan(description, needles)] if description else []

    def check(doc: dict[str, Any]) -> None:
        findings = described + find_secrets(doc, needles)
        if findings:
            raise SecretLeftError(path, findings)

    return check


def save_checked(cassette: Cassette, path: str, known: Iterable[str] = ()) -> list[str]:
    """Save like :func:`mockrealtime.core.cassette_writer.save`, after scanning the document about to be
    written; raises :class:`SecretLeftError` (and writes nothing) if anything looks like a key."""
    return _writer.save(cassette, path, check=secret_check(path, known, cassette.description))
