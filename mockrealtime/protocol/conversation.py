"""The conversation's item kinds in order, kept as items come, so that matching a
``response.create`` on what the model would see (:func:`mockrealtime.core.plan.state_of`) does not
walk every item of a long conversation on every trigger.

The lists stay valid while items are only appended at the end (what clients do); an insert in the
middle, a delete or an item whose kind changes drops them (:func:`track` returns None), and the next
reader builds them again from the conversation once.
"""

from __future__ import annotations

from typing import Any


def kind_of(item: dict[str, Any]) -> str:
    """``type``, or ``type:role``: what a trigger is matched on for each item."""
    kind = str(item.get("type"))
    if item.get("role"):
        kind += ":" + str(item["role"])
    return kind


def _output_of(item: dict[str, Any]) -> Any:
    return item.get("call_id") if item.get("type") == "function_call_output" else _NONE


_NONE = object()


class ItemKinds:
    """Each item's kind, and the ``call_id`` of each function call output, in conversation order."""

    __slots__ = ("kinds", "outputs")

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.outputs: list[Any] = []

    def add(self, item: dict[str, Any]) -> None:
        self.kinds.append(kind_of(item))
        output = _output_of(item)
        if output is not _NONE:
            self.outputs.append(output)


def track(kinds: ItemKinds | None, old: dict[str, Any] | None, new: dict[str, Any], appended: bool) -> ItemKinds | None:
    """``new`` was stored (over ``old``, if it was there); ``appended``: as the last item."""
    if kinds is None:
        return None
    if old is None:
        if not appended:
            return None
        kinds.add(new)
        return kinds
    if kind_of(old) != kind_of(new) or _output_of(old) != _output_of(new):
        return None
    return kinds


def rebuilt(order: list[str], items: dict[str, dict[str, Any]]) -> ItemKinds:
    kinds = ItemKinds()
    for item_id in order:
        kinds.add(items.get(item_id) or {})
    return kinds
