"""Client-event validation: the error the real Realtime API would send back for a bad frame.

Theory of operation
-------------------
A text frame goes through ``parse_client_frame`` (JSON, must be an object) and then through
``ClientEventValidator.validate``, which picks the JSON Schema for the event's ``type`` (never the
whole union, so an error names one field instead of a dozen variants) and turns the schema
violations into the ``error`` event the real server sends: code, message and ``param`` path, with
the exact strings of protocol.md §3.2 where they are known.

One schema file per event type and dialect ships in ``schemas/<dialect>/`` next to a shared
``_defs.json``. They are read with ``importlib.resources`` (so an installed wheel works) and
compiled once per dialect per process.

Invariants:

* ``validate`` returns at most one error, and the same one for the same frame: when a frame breaks
  several rules, the shallowest parameter wins; at equal depth a missing required parameter beats an
  unknown one (the real API reports ``session.tool_choice.name`` missing for the nested
  ``{type, function:{name}}`` form, though ``function`` is unknown there too), then wrong types, then
  bad values; remaining ties go to the field sent first.
* The ``input_audio_buffer.append`` fast path only ever answers "valid"; anything it does not
  recognise goes through the schema, so both paths give the same result.
* Nothing here does I/O or imports asyncio/aiohttp.

A schema violation is excused when the recording holds that very event (``admit``: the recording
shows the real API's answer to it), but never a wrong JSON *type* (``"response": "x"``, a string
where the engine reads an object): those are refused even with schema checks turned off. What
comes before the schema (JSON parsing, the frames no engine should see) and after it (audio
payloads) lives in :mod:`mockrealtime.protocol.frames`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from importlib.resources import files
from typing import Any

from typing import TYPE_CHECKING

from mockrealtime.protocol.fastcheck import compile_schema
from mockrealtime.protocol.frames import ParamPath, ProtocolError, content_error, parse_client_frame
from mockrealtime.protocol.frames import kind_of as _kind
from mockrealtime.protocol.frames import render as _render

if TYPE_CHECKING:  # jsonschema is imported only to explain a failure: it costs start-up time
    from jsonschema import Draft202012Validator, ValidationError

__all__ = ["CLIENT_EVENT_TYPES", "ClientEventValidator", "ProtocolError", "parse_client_frame"]

# Order of the "Supported values are: ..." list for an unknown type. The GA order is the one a live
# capture showed (which also named the translation-only 'session.close' and
# 'session.input_audio_buffer.append', and left out 'output_audio_buffer.clear', a WebRTC/SIP-only
# event); the beta order puts 'transcription_session.update' second, as a beta-era report quotes.
_GA_ORDER = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
)
_ORDERED_TYPES: dict[str, tuple[str, ...]] = {
    "ga": _GA_ORDER,
    "beta": (_GA_ORDER[0], "transcription_session.update", *_GA_ORDER[1:]),
}

CLIENT_EVENT_TYPES: dict[str, frozenset[str]] = {
    dialect: frozenset(types) for dialect, types in _ORDERED_TYPES.items()
}


#: Accepted frame texts a validator remembers (:meth:`ClientEventValidator.admit_frame`).
ACCEPTED_LIMIT = 4096
ACCEPTED_MAX_CHARS = 2048


class ClientEventValidator:
    """checks client events of one dialect ("ga" or "beta") the way the real API does.

    ``schema=False`` (``--no-validate``) keeps only the checks that protect the server: a wrong
    JSON type anywhere in a known event, or a ``type`` that is not a string.
    """

    __slots__ = ("dialect", "schema", "_fast", "_accepted")

    def __init__(self, dialect: str, *, schema: bool = True) -> None:
        if dialect not in _ORDERED_TYPES:
            raise ValueError(f"unknown dialect {dialect!r}: expected 'ga' or 'beta'")
        self.dialect = dialect
        self.schema = schema
        self._fast = _fast_checks(dialect)
        self._accepted: dict[str, None] = {}  # texts of frames accepted, oldest first

    def admit_frame(self, text: str, event: dict[str, Any]) -> ProtocolError | None:
        """``admit`` for a frame parsed from ``text``, remembering the small frames it accepts.

        Whether a frame is valid depends on its text alone, and a test suite's client sends the same
        ``session.update``, item or ``response.create`` on every connection: a frame accepted before is
        accepted again without walking the schema. At most ``ACCEPTED_LIMIT`` texts of up to
        ``ACCEPTED_MAX_CHARS`` are kept (the oldest go first)."""
        accepted = self._accepted
        if text in accepted:
            return None
        error = self.validate(event) if self.schema else self.shape_error(event)
        if error is None and len(text) <= ACCEPTED_MAX_CHARS:
            if len(accepted) >= ACCEPTED_LIMIT:
                del accepted[next(iter(accepted))]
            accepted[text] = None
        return error

    def admit(self, event: dict[str, Any], recorded: Callable[[dict[str, Any]], bool]) -> ProtocolError | None:
        """the error to answer ``event`` with, or None to hand it to the replay engine.

        ``recorded(event)`` says whether the recording expects this very event next: then a schema
        violation is excused (the recording shows the real API's own answer), unless the event has a
        wrong JSON type somewhere, which is refused whatever the recording or the settings say.
        """
        error = self.validate(event) if self.schema else self.shape_error(event)
        if error is not None and not error.shape and recorded(event):
            return None
        return error

    def validate(self, event: dict[str, Any]) -> ProtocolError | None:
        """the error the real server would send for this event, or None when it is accepted."""
        if "type" not in event:
            return ProtocolError("invalid_event", "The 'type' field is missing.", None)
        event_type = event["type"]
        if not isinstance(event_type, str):
            # Unverified wording, following the API's invalid_type family.
            return _invalid_type(("type",), "string", event_type)
        if event_type == "input_audio_buffer.append" and _is_plain_append(event):
            return content_error(event)
        fast = self._fast.get(event_type)
        if fast is None:
            supported = _quote_list(_ORDERED_TYPES[self.dialect])
            return ProtocolError(
                "invalid_value", f"Invalid value: '{event_type}'. Supported values are: {supported}.", "type"
            )
        if fast(event):
            return content_error(event)  # valid: jsonschema runs only to explain a failure
        return _first_error(_compiled(self.dialect)[event_type].iter_errors(event), event)

    def shape_error(self, event: dict[str, Any]) -> ProtocolError | None:
        """only a wrong JSON type (what the engine could not read), or None."""
        event_type = event.get("type")
        if event_type is not None and not isinstance(event_type, str):
            return _invalid_type(("type",), "string", event_type)
        fast = self._fast.get(event_type)  # type: ignore[arg-type]
        if fast is None or fast(event):
            return None
        validator = _compiled(self.dialect)[event_type]  # type: ignore[index]
        return _first_error((e for e in validator.iter_errors(event) if e.validator == "type"), event)


_APPEND_KEYS = frozenset({"type", "audio", "event_id"})


def _is_plain_append(event: dict[str, Any]) -> bool:
    """the hot path (about 50 appends a second per connection): skip the schema when clearly valid."""
    return (
        isinstance(event.get("audio"), str)
        and isinstance(event.get("event_id", ""), str)
        and _APPEND_KEYS.issuperset(event)
    )


@cache
def _shipped(dialect: str) -> dict[str, Any]:
    """the shipped schema files of a dialect, by name; a missing one fails here, loudly."""
    folder = files("mockrealtime.protocol").joinpath("schemas").joinpath(dialect)
    schemas = {
        entry.name.removesuffix(".json"): json.loads(entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }
    missing = CLIENT_EVENT_TYPES[dialect] - schemas.keys()
    if missing:
        raise RuntimeError(f"no schema shipped for {dialect} client events: {sorted(missing)}")
    return schemas


@cache
def _specialised(dialect: str) -> dict[str, Any]:
    """one schema per event type, specialised (see below), built once."""
    schemas = _shipped(dialect)
    defs = schemas["_defs"].get("$defs", {})
    return {name: _specialise(schemas[name], defs) for name in _ORDERED_TYPES[dialect]}


@cache
def _compiled(dialect: str) -> dict[str, Draft202012Validator]:
    """one jsonschema validator per event type, built the first time a failure is explained."""
    from jsonschema import Draft202012Validator, validators
    from referencing import Registry, Resource

    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in _shipped(dialect).values()
    )
    fast_validator = validators.extend(Draft202012Validator, {"x-dispatch": _dispatch})
    return {name: fast_validator(schema, registry=registry) for name, schema in _specialised(dialect).items()}


@cache
def _fast_checks(dialect: str) -> dict[str, Callable[[Any], bool]]:
    return {name: compile_schema(schema) for name, schema in _specialised(dialect).items()}


# -- compile-time specialisation ---------------------------------------------------------------------
# The shipped files are plain JSON Schema. Validated as written, a conversation.item.create took
# ~330 us: every `$ref` went through the registry and every `if` of a tagged union ran and built a
# ValidationError for each branch it did not take. So, once per process, refs into _defs are
# inlined and each `allOf` of `{if: {properties: {P: {const: V}}}, then: S}` branches becomes one
# `x-dispatch` keyword that looks P up and validates S alone. Errors and their paths are unchanged.

_MAX_INLINE_DEPTH = 24


def _specialise(node: Any, defs: dict[str, Any], depth: int = 0) -> Any:
    if isinstance(node, list):
        return [_specialise(v, defs, depth) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and "#/$defs/" in ref and depth < _MAX_INLINE_DEPTH and len(node) == 1:
        target = defs.get(ref.rsplit("/", 1)[1])
        if target is not None:
            return _specialise(target, defs, depth + 1)
    out = {k: _specialise(v, defs, depth) for k, v in node.items() if k != "$defs"}
    if isinstance(out.get("allOf"), list):
        rest: list[Any] = []
        cases: dict[Any, Any] = {}
        for branch in out["allOf"]:
            tag = _tag_of(branch)
            if tag is None or (cases and tag[0] != next(iter(cases))[0]):
                rest.append(branch)
            else:
                cases[tag] = branch["then"]
        if cases:
            prop = next(iter(cases))[0]
            rest.append({"x-dispatch": {"property": prop, "cases": {v: s for (_, v), s in cases.items()}}})
            out["allOf"] = rest
    return out


def _tag_of(branch: Any) -> tuple[str, Any] | None:
    if not isinstance(branch, dict) or set(branch) != {"if", "then"}:
        return None
    cond = branch["if"]
    props = cond.get("properties") if isinstance(cond, dict) else None
    if not isinstance(props, dict) or len(props) != 1 or set(cond) - {"type", "required", "properties"}:
        return None
    (prop, spec), = props.items()
    if cond.get("required") != [prop] or cond.get("type", "object") != "object":
        return None
    if not isinstance(spec, dict) or set(spec) != {"const"} or not isinstance(spec["const"], (str, int, bool)):
        return None
    return prop, spec["const"]


def _dispatch(validator: Any, spec: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Iterable[ValidationError]:
    if isinstance(instance, dict):
        value = instance.get(spec["property"], _ABSENT)
        if isinstance(value, (str, int, bool)):
            branch = spec["cases"].get(value)
            if branch is not None:
                yield from validator.descend(instance, branch)


_ABSENT = object()


# -- schema violations to API errors ---------------------------------------------------------------

_KIND_RANK = {"missing_required_parameter": 0, "unknown_parameter": 1, "invalid_type": 2}
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    # "decimal" is what the API says for floats ("expected a decimal" in a captured
    # 'temperature' error); calling a got-float "a decimal" too is our guess.
    "number": "a decimal",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _first_error(errors: Iterable[ValidationError], event: dict[str, Any]) -> ProtocolError | None:
    """the one error to report out of all the schema violations (see the module invariants)."""
    best: tuple[tuple[Any, ...], ProtocolError] | None = None
    shape = False
    for error in errors:
        shape = shape or error.validator == "type"
        for path, found in _translate(error):
            if found.code == "missing_required_parameter":
                required: Any = error.validator_value  # the schema's list of required names
                order = _positions(event, path[:-1]) + (required.index(path[-1]),)
            else:
                order = _positions(event, path)
            rank = _KIND_RANK.get(found.code or "", 3)
            key = (len(path), rank, order, len(error.absolute_schema_path), found.message)
            if best is None or key < best[0]:
                best = key, found
    if best is None:
        return None
    return dataclasses.replace(best[1], shape=True) if shape and not best[1].shape else best[1]


def _translate(error: ValidationError) -> Iterable[tuple[ParamPath, ProtocolError]]:
    """API errors for one violation, each with the path it is about."""
    path: ParamPath = tuple(error.absolute_path)
    # jsonschema types these as unions with its Unset marker; a raised error always has them set
    instance: Any = error.instance
    value: Any = error.validator_value
    schema: Any = error.schema
    if error.validator == "required":
        for name in value:
            if name not in instance:
                param = _render((*path, name))
                yield (*path, name), ProtocolError(
                    "missing_required_parameter", f"Missing required parameter: '{param}'.", param
                )
    elif error.validator == "additionalProperties":
        known = schema.get("properties", {})
        for name in instance:
            if name not in known:
                param = _render((*path, name))
                yield (*path, name), ProtocolError(
                    "unknown_parameter", f"Unknown parameter: '{param}'.", param
                )
    elif error.validator == "type":
        yield path, _invalid_type(path, value, instance)
    elif error.validator in ("enum", "const"):
        allowed = value if error.validator == "enum" else [value]
        shown = [each for each in allowed if each is not None]
        yield path, ProtocolError(
            "invalid_value",
            f"Invalid value: '{_scalar(instance)}'. Supported values are: {_quote_list(shown)}.",
            _render(path),
        )
    elif error.validator in ("minimum", "maximum"):
        yield path, _out_of_range(path, error.validator, value, instance, schema)
    else:  # a keyword the shipped schemas do not use today; keep the report useful anyway
        yield path, ProtocolError("invalid_value", f"Invalid value for '{_render(path)}'.", _render(path))


def _invalid_type(path: ParamPath, expected: str | Sequence[str], instance: Any) -> ProtocolError:
    # Wording as in the API's other endpoints ("Invalid type for 'x': expected an object, but got a
    # string instead."); not yet seen from the Realtime API itself.
    if isinstance(expected, str):
        wanted = [expected]
    else:  # null is the "turn it off" value; naming the real alternatives is more helpful
        wanted = [each for each in expected if each != "null"] or ["null"]
    names = [_TYPE_NAMES[each] for each in wanted]
    described = names[0] if len(names) == 1 else "one of " + ", ".join(names[:-1]) + " or " + names[-1]
    param = _render(path)
    message = f"Invalid type for '{param}': expected {described}, but got {_kind(instance)} instead."
    return ProtocolError("invalid_type", message, param, shape=True)


def _out_of_range(
    path: ParamPath, keyword: str, bound: float, instance: float, schema: dict[str, Any]
) -> ProtocolError:
    # A live capture shows code integer_below_min_value ("Expected a value >= 24000") for a 16 kHz
    # rate; the rest of the sentence follows the API's usual form and is unverified here.
    kind = "integer" if schema.get("type") == "integer" else "decimal"
    if keyword == "minimum":
        code, relation, sign = f"{kind}_below_min_value", "below minimum", ">="
    else:
        code, relation, sign = f"{kind}_above_max_value", "above maximum", "<="
    param = _render(path)
    message = f"Invalid '{param}': {kind} {relation} value. "
    message += f"Expected a value {sign} {bound}, but got {instance} instead."
    return ProtocolError(code, message, param)


def _positions(event: Any, path: ParamPath) -> tuple[int, ...]:
    """where each step of path sits among its siblings, so ties go to the field sent first."""
    order = []
    node = event
    for part in path:
        order.append(part if isinstance(part, int) else list(node).index(part))
        node = node[part]
    return tuple(order)


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _quote_list(values: Sequence[Any]) -> str:
    """'a', 'b', and 'c' — the API's own list style, Oxford comma included."""
    quoted = [f"'{_scalar(each)}'" for each in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]
