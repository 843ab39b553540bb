"""The static event catalogue against the official openai package's unions (the drift check)."""

from __future__ import annotations

import typing

import pytest

from mockrealtime.core.events import BETA, GA, Direction
from mockrealtime.protocol.catalog import GA_LEGACY_SERVER, RENAMED_SERVER, classify, event_types


def _type_literals(union: object) -> set[str]:
    """Every ``type`` literal of the members of an SDK union (pydantic models or TypedDicts)."""
    found: set[str] = set()

    def walk(t: object) -> None:
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            walk(typing.get_args(t)[0])
            return
        if origin is typing.Union:
            for arg in typing.get_args(t):
                walk(arg)
            return
        if hasattr(t, "model_fields"):
            annotation = t.model_fields["type"].annotation  # type: ignore[attr-defined]
        else:
            annotation = typing.get_type_hints(t, include_extras=True)["type"]
        while typing.get_origin(annotation) in (typing.Annotated, typing.Required, typing.NotRequired):
            annotation = typing.get_args(annotation)[0]
        found.update(typing.get_args(annotation))

    walk(union)
    return found


def _sdk_union(direction: str, dialect: str) -> object:
    if (direction, dialect) == ("server", GA):
        from openai.types.realtime import RealtimeServerEvent as union
    elif (direction, dialect) == ("server", BETA):
        from openai.types.beta.realtime import RealtimeServerEvent as union
    elif (direction, dialect) == ("client", GA):
        from openai.types.realtime.realtime_client_event_param import RealtimeClientEventParam as union
    else:
        from openai.types.beta.realtime.realtime_client_event_param import RealtimeClientEventParam as union
    return union


@pytest.mark.parametrize("dialect", [GA, BETA])
@pytest.mark.parametrize("direction", ["server", "client"])
def test_the_catalogue_names_exactly_the_events_of_the_openai_unions(direction, dialect):
    assert event_types(direction, dialect) == _type_literals(_sdk_union(direction, dialect))


def test_every_rename_goes_from_a_beta_only_name_to_a_ga_only_name():
    for beta, ga in RENAMED_SERVER.items():
        assert beta in event_types("server", BETA) - event_types("server", GA)
        assert ga in event_types("server", GA) - event_types("server", BETA)
    assert GA_LEGACY_SERVER <= event_types("server", GA)


@pytest.mark.parametrize(
    ("direction", "etype", "dialect", "expected"),
    [
        ("server", "response.output_audio.delta", GA, ("ok", None)),
        ("server", "response.audio.delta", GA, ("other_dialect", "response.output_audio.delta")),
        ("server", "response.output_text.done", BETA, ("other_dialect", "response.text.done")),
        ("server", "conversation.item.added", BETA, ("other_dialect", "conversation.item.created")),
        ("server", "mcp_list_tools.completed", BETA, ("other_dialect", None)),
        ("client", "transcription_session.update", GA, ("other_dialect", "session.update with session.type 'transcription'")),
        ("client", "response.output_audio.delta", GA, ("unknown", None)),
        ("server", "scooby.dooby.doo", BETA, ("unknown", None)),
    ],
)
def test_classify(direction, etype, dialect, expected):
    assert classify(Direction(direction), etype, dialect) == expected
