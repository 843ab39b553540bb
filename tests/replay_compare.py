"""Compare what the mock sent with the recording, modulo fresh ids and state-made answers.

Each connection shows every recorded id with its own tag after the prefix (``item_MR0xCDX...``):
``untag`` takes it out again, so model output compares field for field with the recording. The
answers to housekeeping (``session.updated``, item echoes, ...) are made from the live session
model; they are compared as a set of (type, the fields that identify them), not in recorded order.
"""

from __future__ import annotations

import re
from typing import Any

from mockrealtime.core.events import ID_KEYS
from mockrealtime.core.plan import ANSWERS

_TAG = re.compile(r"^([A-Za-z]+_)(?:MR\d+x)+")
#: Fields of a state-made answer that the recording and the live model must agree on.
_ANSWER_KEYS = ("type",)


def untag(value: Any, top: bool = True) -> Any:
    """The event (or one id) with every connection tag taken out of its ids."""
    if isinstance(value, str):
        return _TAG.sub(r"\1", value)
    if isinstance(value, dict):
        return {k: (_TAG.sub(r"\1", v) if isinstance(v, str) and (k in ID_KEYS or (top and k == "event_id"))
                    else untag(v, False) if k != "error" else v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v, False) for v in value]
    return value


def is_state_made(event: dict[str, Any], recorded_client_item_ids: set[str] | None = None) -> bool:
    """An answer to housekeeping (made from the session model, not from the recording)."""
    etype = event.get("type")
    if etype not in ANSWERS:
        return False
    if etype in ("conversation.item.added", "conversation.item.done", "conversation.item.created"):
        item = event.get("item") or {}
        # echoes of client items; output items of a response come from the recording
        return item.get("role") != "assistant" and item.get("type") not in ("function_call",) and not (
            item.get("type") == "message" and any(c.get("type") == "input_audio" for c in item.get("content") or [])
            and event.get("previous_item_id") is not None and False)
    return True


def split(events: list[dict[str, Any]], errors_apart: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(model output in order, untagged; state-made answers). ``errors_apart``: errors count as
    answers (a client that sends a rejected event twice gets the error twice)."""
    model, answers = [], []
    for event in events:
        apart = is_state_made(event) or (errors_apart and event.get("type") == "error")
        (answers if apart else model).append(untag(event))
    return model, answers


def assert_same_replay(received: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> None:
    """Model output identical and in order (ids untagged); state-made answers of the same kinds."""
    got_model, got_answers = split(received)
    want_model, want_answers = split(recorded)
    assert [e["type"] for e in got_model] == [e["type"] for e in want_model]
    for got, want in zip(got_model, want_model, strict=False):
        assert got == want, (got.get("type"), got, want)
    assert sorted(e["type"] for e in got_answers) == sorted(e["type"] for e in want_answers)


class IdBook:
    """What a client learns: the live id behind each recorded one, from the events it received."""

    def __init__(self) -> None:
        self.live: dict[str, str] = {}

    def learn(self, event: Any) -> None:
        if isinstance(event, dict):
            for k, v in event.items():
                if isinstance(v, str) and k in ID_KEYS:
                    self.live[_TAG.sub(r"\1", v)] = v
                elif isinstance(v, (dict, list)):
                    self.learn(v)
        elif isinstance(event, list):
            for v in event:
                self.learn(v)

    def send(self, event: Any) -> Any:
        """A recorded client event with the ids it names replaced by the live ones."""
        if isinstance(event, dict):
            return {k: (self.live.get(v, v) if isinstance(v, str) and k in ID_KEYS and k != "id" else self.send(v))
                    for k, v in event.items()}
        if isinstance(event, list):
            return [self.send(v) for v in event]
        return event


def recorded_ids(events: list[dict[str, Any]]) -> set[str]:
    """Every id the recorded server events carry."""
    book = IdBook()
    book.learn(events)
    return set(book.live)


def needs(event: Any, ids: set[str], book: IdBook) -> bool:
    """Whether ``event`` names a recorded id the client has not yet seen live."""
    if isinstance(event, dict):
        return any((isinstance(v, str) and k in ID_KEYS and k != "id" and v in ids and v not in book.live)
                   or (isinstance(v, (dict, list)) and needs(v, ids, book)) for k, v in event.items())
    if isinstance(event, list):
        return any(needs(v, ids, book) for v in event)
    return False
