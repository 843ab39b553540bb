"""Does a live client event match the one the recording expects next?

Matching is event-aware: the ``type`` always has to agree, and then only the fields that change what
the server does next (tool names, item type and role, ``call_id``, ``tool_choice`` ...). Ids the
client generates, ``event_id``, key order and audio bytes never count.

Rules are JSON paths: ``session.tools[*].name`` (``[*]`` takes every element and compares them as a
set), ``item.content[0].type`` (one element), ``session.tool_choice``. A rule set maps event types to
paths; a cassette's ``matching:`` block and a per-call override replace entries of the defaults.
Modes: ``default`` (the paths), ``type`` (the type alone), ``exact`` (every field but the ignored ones).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mockrealtime.errors import ConfigError

MODES = ("default", "type", "exact")

DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    "session.update": ("session.type", "session.tools[*].name", "session.tool_choice"),
    "transcription_session.update": (),
    "conversation.item.create": (
        "item.type",
        "item.role",
        "item.call_id",
        "item.name",
        "item.content[*].type",
    ),
    "response.create": (
        "response.conversation",
        "response.tool_choice",
        "response.tools[*].name",
    ),
    "conversation.item.truncate": ("content_index",),
}

#: What an absent field means: a client that leaves out ``tool_choice`` gets "auto", so a
#: recording that spelled it out still matches.
DEFAULT_VALUES: dict[str, Any] = {
    "session.tool_choice": "auto",
    "response.tool_choice": "auto",
    "response.conversation": "auto",
}

#: Never compared, never shown as a difference: generated per run, or audio.
DEFAULT_IGNORE: tuple[str, ...] = (
    "event_id",
    "item.id",
    "previous_item_id",
    "item_id",
    "response_id",
    "audio",
    "item.content[*].audio",
    "response.metadata",
)

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")
_MISSING = object()


def parse_path(path: str) -> tuple[str | int, ...]:
    """The one JSON-path grammar (matching rules, journal queries, redaction rules):
    ``a.b[*].c`` -> ("a", "b", "*", "c"); ``[3]`` becomes the int 3; a leading ``$.`` is allowed.
    Raises :class:`ConfigError` for anything else (``a..b``, ``a.``, ``a]``)."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    parts: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        dotted = m.start() == pos + 1 and pos > 0 and text[pos] == "." and m.group(1) is not None
        if (m.start() != pos and not dotted) or (m.start() == pos > 0 and m.group(1) is not None):
            raise ConfigError(f"bad matching path {path!r}")
        pos = m.end()
        if m.group(1) is not None:
            parts.append(m.group(1))
        else:
            parts.append("*" if m.group(2) == "*" else int(m.group(2)))
    if not parts or pos != len(text):  # nothing, or something left over ("a[", "a.")
        raise ConfigError(f"bad matching path {path!r}")
    return tuple(parts)


def extract(event: Any, parts: Sequence[str | int]) -> Any:
    """The value at a parsed path; ``[*]`` gives a sorted list; missing pieces give a sentinel."""
    value = event
    for i, part in enumerate(parts):
        if part == "*":
            if not isinstance(value, list):
                return _MISSING
            rest = parts[i + 1 :]
            found = [v for v in (extract(v, rest) for v in value) if v is not _MISSING]
            if all(isinstance(v, str) for v in found):
                return sorted(found)  # the usual case (names, types): no serialising
            return sorted(json.dumps(v, sort_keys=True) for v in found)
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return _MISSING
            value = value[part]
        else:
            if not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
    return value


def _same_but_event_id(expected: dict[str, Any], received: dict[str, Any]) -> bool:
    """The two events are equal but for their ``event_id`` (which the client chooses per send)."""
    if "event_id" not in expected and "event_id" not in received:
        return expected == received
    if len(expected) - ("event_id" in expected) != len(received) - ("event_id" in received):
        return False
    get = expected.get
    for key, value in received.items():
        if key != "event_id" and get(key, _MISSING) != value:
            return False
    return True


def _show(value: Any) -> Any:
    return "<absent>" if value is _MISSING else value


@dataclasses.dataclass(frozen=True, slots=True)
class FieldDiff:
    path: str
    expected: Any
    received: Any
    matched_on: bool  # the difference is on a path the rules compare (it caused the mismatch)


#: Matchers built, by their layers as JSON (oldest first): a server builds one per connection.
_BUILT: dict[str, Matcher] = {}
_BUILT_LIMIT = 64


@dataclasses.dataclass(frozen=True)
class Matcher:
    """Compiled matching rules; cheap to share."""

    mode: str = "default"
    rules: Mapping[str, tuple[tuple[str, tuple[str | int, ...]], ...]] = dataclasses.field(default_factory=dict)
    ignore: tuple[tuple[str | int, ...], ...] = ()

    @classmethod
    def build(
        cls,
        *layers: Mapping[str, Any] | None,
    ) -> Matcher:
        """Defaults, then each layer (cassette ``matching:`` block, per-call override) on top.

        Built once per distinct set of layers and shared (every connection asks for one)."""
        try:
            key = json.dumps(layers, sort_keys=True) if any(layers) else ""
        except (TypeError, ValueError):
            return cls._build(*layers)
        found = _BUILT.get(key)
        if found is None:
            found = cls._build(*layers)
            if len(_BUILT) >= _BUILT_LIMIT:
                _BUILT.pop(next(iter(_BUILT)))
            _BUILT[key] = found
        return found

    @classmethod
    def _build(cls, *layers: Mapping[str, Any] | None) -> Matcher:
        mode = "default"
        rules: dict[str, tuple[str, ...]] = dict(DEFAULT_RULES)
        ignore = list(DEFAULT_IGNORE)
        for layer in layers:
            if not layer:
                continue
            unknown = set(layer) - {"mode", "rules", "ignore"}
            if unknown:
                raise ConfigError(f"unknown matching option(s) {sorted(unknown)}; valid: mode, rules, ignore")
            if "mode" in layer:
                if layer["mode"] not in MODES:
                    raise ConfigError(f"matching mode {layer['mode']!r} is not one of {', '.join(MODES)}")
                mode = layer["mode"]
            for etype, paths in (layer.get("rules") or {}).items():
                rules[etype] = tuple(paths)
            ignore.extend(layer.get("ignore") or ())
        compiled = {t: tuple((p, parse_path(p)) for p in paths) for t, paths in rules.items()}
        return cls(mode, compiled, tuple(parse_path(p) for p in dict.fromkeys(ignore)))

    def differences(self, expected: dict[str, Any], received: dict[str, Any]) -> list[FieldDiff]:
        """Why ``received`` does not match ``expected``; an empty list means it matches."""
        if expected.get("type") != received.get("type"):
            return [FieldDiff("type", expected.get("type"), received.get("type"), True)]
        if self.mode == "type" or _same_but_event_id(expected, received):
            return []  # equal events differ on no path, whatever the rules (the usual case: one C compare)
        if self.mode == "exact":
            return self.all_differences(expected, received)
        out = []
        for path, parts in self.rules.get(expected["type"], ()):
            a, b = extract(expected, parts), extract(received, parts)
            default = DEFAULT_VALUES.get(path, _MISSING)
            if a is _MISSING:
                a = default
            if b is _MISSING:
                b = default
            if a != b:
                out.append(FieldDiff(path, _show(a), _show(b), True))
        return out

    def all_differences(self, expected: Any, received: Any) -> list[FieldDiff]:
        """Every differing leaf, ignored paths left out; for near-miss reports."""
        compared = {path for path, _ in self.rules.get(expected.get("type", ""), ())}
        out = []
        for path, parts, a, b in _walk_diff(expected, received, ()):
            if self._ignored(parts):
                continue
            hit = self.mode == "exact" or path in compared or _generic(parts) in compared
            out.append(FieldDiff(path, _show(a), _show(b), hit))
        return out

    def _ignored(self, parts: tuple[str | int, ...]) -> bool:
        for pattern in self.ignore:
            if len(pattern) <= len(parts) and all(
                p == "*" and isinstance(q, int) or p == q for p, q in zip(pattern, parts, strict=False)
            ):
                return True
        return False


def _generic(parts: tuple[str | int, ...]) -> str:
    return _format(tuple("*" if isinstance(p, int) else p for p in parts))


def _format(parts: Sequence[str | int]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p == "*":
            out += "[*]"
        else:
            out += ("." if out else "") + p
    return out


def _walk_diff(a: Any, b: Any, parts: tuple[str | int, ...]) -> Iterator[tuple[str, tuple[str | int, ...], Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            yield from _walk_diff(a.get(key, _MISSING), b.get(key, _MISSING), (*parts, key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _walk_diff(x, y, (*parts, i))
    elif a != b:
        yield _format(parts), parts, a, b
