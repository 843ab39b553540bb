"""Fidelity oracle: check wire events against the official ``openai`` package's models.

The mock's promise is that what it sends looks like the real Realtime API to real clients. The
strictest real client is openai-agents: it validates every server event with a pydantic
``TypeAdapter`` over the openai package's GA ``RealtimeServerEvent`` union, discriminated on
``type``, and turns anything that fails into an error event. This module applies the same test
offline, for both dialects:

* GA:   ``openai.types.realtime.RealtimeServerEvent``, and additionally the adapter openai-agents
        itself uses (``agents.realtime.openai_realtime.get_server_event_type_adapter``), so a
        change in either package shows up here.
* beta: ``openai.types.beta.realtime.RealtimeServerEvent``.

Both unions carry the SDK's own ``PropertyInfo(discriminator="type")`` marker, which pydantic does
not read; wrapping them in ``Field(discriminator="type")`` (as openai-agents does) makes an unknown
or missing ``type`` one clear error instead of one error per union member. Unknown extra fields
are accepted, exactly as in the clients.

Client events are checked too (``client_event_errors``), against the SDK's ``*Param`` TypedDicts
with extra keys forbidden: those describe what the SDK lets an application send, so an extra key
is the kind of mistake the real server answers with ``unknown_parameter``.

Nested unions inside the models (conversation items, session shapes, tools) are not
discriminated, so pydantic reports a failure once per member. ``_prune`` keeps only the member
that matched best, which leaves the one error that matters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

__all__ = [
    "DIALECTS",
    "assert_valid_client_event",
    "assert_valid_server_event",
    "client_event_errors",
    "server_event_errors",
]

Dialect = Literal["ga", "beta"]
DIALECTS: tuple[Dialect, ...] = ("ga", "beta")

# A union member's name in a pydantic error location: a class name such as
# ``RealtimeConversationItemUserMessage``. Tagged-union steps use the tag value instead
# (``response.done``), which is lowercase, so they are never mistaken for a member.
_MEMBER_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
# A member whose own ``type`` or ``role`` literal did not match is the wrong member, however few
# other errors it has.
_DISCRIMINATING_FIELDS = frozenset({"type", "role"})
_WRONG_MEMBER_PENALTY = 1000


@functools.cache
def _server_adapter(dialect: Dialect) -> TypeAdapter[Any]:
    if dialect == "ga":
        from openai.types.realtime import RealtimeServerEvent
    elif dialect == "beta":
        from openai.types.beta.realtime import RealtimeServerEvent
    else:  # pragma: no cover - guarded by _check_dialect
        raise AssertionError(dialect)
    return TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])


@functools.cache
def _agents_adapter() -> TypeAdapter[Any]:
    from agents.realtime.openai_realtime import get_server_event_type_adapter

    return get_server_event_type_adapter()


@functools.cache
def _client_adapter(dialect: Dialect) -> TypeAdapter[Any]:
    if dialect == "ga":
        from openai.types.realtime.realtime_client_event_param import RealtimeClientEventParam
    elif dialect == "beta":
        from openai.types.beta.realtime.realtime_client_event_param import (
            RealtimeClientEventParam,
        )
    else:  # pragma: no cover - guarded by _check_dialect
        raise AssertionError(dialect)
    # The TypedDicts carry no config of their own, so ``extra="forbid"`` reaches nested ones too.
    return TypeAdapter(
        Annotated[RealtimeClientEventParam, Field(discriminator="type")],
        config=ConfigDict(extra="forbid"),
    )


def _check_dialect(dialect: str) -> Dialect:
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
    return dialect  # type: ignore[return-value]


def server_event_errors(event: Mapping[str, Any], dialect: str) -> list[str]:
    """Return readable reasons why ``event`` is not a valid server event; empty when valid.

    ``dialect`` is ``"ga"`` or ``"beta"``. GA events are checked against both the openai
    package's union and the adapter openai-agents enforces; an error both report is listed once.
    """
    dialect = _check_dialect(dialect)
    errors = _validate(_server_adapter(dialect), event, label=None)
    if dialect == "ga":
        seen = set(errors)
        for message in _validate(_agents_adapter(), event, label=None):
            if message not in seen:
                errors.append(f"[openai-agents] {message}")
    return errors


def client_event_errors(event: Mapping[str, Any], dialect: str) -> list[str]:
    """Return readable reasons why ``event`` is not a client event the openai SDK would send.

    Checked against the SDK's ``RealtimeClientEventParam`` TypedDicts for the dialect, with
    unknown keys rejected.
    """
    dialect = _check_dialect(dialect)
    return _validate(_client_adapter(dialect), event, label=None, materialize=True)


def assert_valid_server_event(event: Mapping[str, Any], dialect: str) -> None:
    """Raise ``AssertionError`` listing every problem if ``event`` is not a valid server event."""
    errors = server_event_errors(event, dialect)
    if errors:
        raise AssertionError(_describe(event, dialect, "server", errors))


def assert_valid_client_event(event: Mapping[str, Any], dialect: str) -> None:
    """Raise ``AssertionError`` listing every problem if ``event`` is not a valid client event."""
    errors = client_event_errors(event, dialect)
    if errors:
        raise AssertionError(_describe(event, dialect, "client", errors))


def _describe(event: Mapping[str, Any], dialect: str, direction: str, errors: list[str]) -> str:
    kind = event.get("type") if isinstance(event, Mapping) else None
    lines = [f"invalid {dialect} {direction} event {kind!r}:"]
    lines += [f"  - {e}" for e in errors]
    return "\n".join(lines)


# -- validation and error formatting -----------------------------------------------------------


def _validate(
    adapter: TypeAdapter[Any],
    event: Mapping[str, Any],
    *,
    label: str | None,
    materialize: bool = False,
) -> list[str]:
    if not isinstance(event, Mapping):
        return [f"event must be a JSON object, not {type(event).__name__}"]
    try:
        validated = adapter.validate_python(event)
    except ValidationError as exc:
        return [_format(err) for err in _prune(exc.errors(include_url=False))]
    if not materialize:
        return []
    # ``Iterable[...]`` fields in the SDK's TypedDicts validate lazily: the items are only
    # checked when the iterator is consumed. Consume them here so item errors are not missed.
    errors: list[str] = []
    for path, iterator in _lazy_iterators(validated, (str(event.get("type")),)):
        try:
            for _ in iterator:
                pass
        except ValidationError as exc:
            for err in _prune(exc.errors(include_url=False)):
                errors.append(_format({**err, "loc": path + tuple(err["loc"])}))
    return errors


def _lazy_iterators(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if type(value).__name__ == "ValidatorIterator":
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _lazy_iterators(item, path + (key,))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _lazy_iterators(item, path + (index,))


def _prune(errors: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Keep, at every non-discriminated union, only the errors of the best-matching member."""
    return _prune_at(list(errors), 0)


def _prune_at(errors: list[Mapping[str, Any]], depth: int) -> list[Mapping[str, Any]]:
    here = [e for e in errors if len(e["loc"]) <= depth]
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for err in errors:
        if len(err["loc"]) > depth:
            groups.setdefault(err["loc"][depth], []).append(err)
    members = [k for k in groups if isinstance(k, str) and _MEMBER_NAME.match(k)]
    if len(members) > 1 and len(members) == len(groups):
        best: list[Mapping[str, Any]] | None = None
        best_score = 0
        for member in members:
            resolved = _prune_at(groups[member], depth + 1)
            score = len(resolved) + _WRONG_MEMBER_PENALTY * any(
                err["type"] == "literal_error"
                and len(err["loc"]) == depth + 2
                and err["loc"][-1] in _DISCRIMINATING_FIELDS
                for err in resolved
            )
            if best is None or score < best_score:
                best, best_score = resolved, score
        return here + (best or [])
    pruned = list(here)
    for group in groups.values():
        pruned += _prune_at(group, depth + 1)
    return pruned


def _format(err: Mapping[str, Any]) -> str:
    # The stock messages for these two list every tag of the union: too long to read.
    if err["type"] == "union_tag_invalid":
        return f"unknown event type {err.get('ctx', {}).get('tag')!r}"
    if err["type"] == "union_tag_not_found":
        return "missing event 'type'"
    loc = list(err["loc"])
    head = str(loc.pop(0)) if loc else "<event>"
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    where = f"{head}: {path}" if path else head
    message = err["msg"]
    if err["type"] in {"literal_error", "string_type", "int_type", "extra_forbidden"}:
        message += f" (got {_short(err.get('input'))})"
    return f"{where}: {message}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
