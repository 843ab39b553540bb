"""What new_episodes' live leg needs: client events that rebuild a session model's state upstream.

Sans-IO: a session model in, client events out.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockrealtime.protocol.session import SessionModel

#: Session fields only the server sets: a client's session.update must not carry them.
_SERVER_ONLY = frozenset({"id", "object", "expires_at", "client_secret"})


def rebuild_events(model: SessionModel) -> list[dict[str, Any]]:
    """Client events that bring a fresh session to this state: the effective session, then the
    conversation's items with their ids (function calls and outputs with their ``call_id``;
    audio as its transcript, since audio cannot be put back). Items of other kinds are left out."""
    session = {k: copy.deepcopy(v) for k, v in model.session.items() if k not in _SERVER_ONLY and v is not None}
    events: list[dict[str, Any]] = [{"type": "session.update", "session": session}] if session else []
    for item_id in model.item_order():
        item = _recreated(model, model.item_data[item_id])
        if item is not None:
            events.append({"type": "conversation.item.create", "item": item})
    return events


def _recreated(model: SessionModel, item: dict[str, Any]) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "function_call":
        return {"id": item["id"], "type": kind, "call_id": item.get("call_id"), "name": item.get("name"),
                "arguments": item.get("arguments") or ""}
    if kind == "function_call_output":
        return {"id": item["id"], "type": kind, "call_id": item.get("call_id"), "output": item.get("output") or ""}
    if kind != "message":
        return None
    role = item.get("role")
    content = []
    for part in item.get("content") or []:
        ptype = part.get("type")
        if ptype in ("input_text", "text", "output_text"):
            text = part.get("text") or ""
        elif ptype in ("input_audio", "audio", "output_audio"):
            text = part.get("transcript") or model.transcripts.get(item["id"]) or ""
        else:
            continue
        if role == "assistant":
            content.append({"type": "output_text" if model.dialect == "ga" else "text", "text": text})
        else:
            content.append({"type": "input_text", "text": text})
    return {"id": item["id"], "type": "message", "role": role, "content": content} if content else None
