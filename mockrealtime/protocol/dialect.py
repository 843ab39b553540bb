"""What differs between the Realtime API's dialects (GA and beta), behind one interface.

The session model and the engine ask a ``Dialect`` for event names, item shapes and where a setting
lives in the session; a later provider dialect is one more instance here, not edits across the engine.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    #: ``object`` on conversation items: beta items carry "realtime.item", GA items none.
    item_object: str | None
    #: The server events echoing a created item, in order.
    item_echo_types: tuple[str, ...]
    #: Session field holding the output modalities.
    modalities_key: str

    def voice(self, session: dict[str, Any]) -> Any:
        if self.name == "ga":
            return ((session.get("audio") or {}).get("output") or {}).get("voice")
        return session.get("voice")

    def turn_detection(self, session: dict[str, Any]) -> Any:
        if self.name == "ga":
            return ((session.get("audio") or {}).get("input") or {}).get("turn_detection", {})
        return session.get("turn_detection", {})

    def item_echo(self, item: dict[str, Any], previous: str | None) -> list[dict[str, Any]]:
        """What the server sends when an item joins the conversation. ``item`` is the caller's to
        give (a dict made for this echo): it gets this dialect's ``object`` field, and the events
        share it (each is encoded as it is queued, and the model stores it as the item)."""
        if self.item_object is not None:
            item["object"] = self.item_object
        else:
            item.pop("object", None)
        return [{"type": t, "previous_item_id": previous, "item": item} for t in self.item_echo_types]


GA = Dialect(
    name="ga",
    item_object=None,
    item_echo_types=("conversation.item.added", "conversation.item.done"),
    modalities_key="output_modalities",
)

BETA = Dialect(
    name="beta",
    item_object="realtime.item",
    item_echo_types=("conversation.item.created",),
    modalities_key="modalities",
)

DIALECTS: dict[str, Dialect] = {"ga": GA, "beta": BETA}


def dialect(name: str) -> Dialect:
    return DIALECTS[name]
