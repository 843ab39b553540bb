"""What the real server tracks about a session, and how it answers events that need no model.

Theory of operation
-------------------
``SessionModel`` watches every server event as it goes out (the ``OBSERVERS`` table) and the live
client's audio (``observe_client_audio``), and keeps what the Realtime server keeps: the effective session,
the conversation's items in order, the function ``call_id``s, the active response and its partial
output, the input audio buffered since the last commit, and the audio sent per assistant item.

From that state it answers the events the real server answers without a model (``answer``):
``session.update``, ``conversation.item.create/retrieve/delete/truncate``,
``input_audio_buffer.clear/commit``, ``response.cancel``, and the rule violations of
``response.create``. It returns the events to send (answers or ``error`` events), or None when only
a recording can answer (a ``response.create`` that may start a response).

``cancel`` builds what the server sends when a response is cut short: the ``.done`` events of the
parts and items still open, then ``response.done`` with ``status: cancelled``.

``rebuild`` gives the client events that bring a fresh session to this one's state without a model
call (``new_episodes`` going live mid-session): ``session.update`` with the effective session, then
a ``conversation.item.create`` per item, in order, with the same ids.

Error texts are those of protocol.md §3.2. Where that catalogue marks a message unverified, the
message below keeps the family's shape and says so in a comment.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.protocol.conversation import ItemKinds, track
from mockrealtime.protocol.rebuild import rebuild_events
from mockrealtime.protocol.dialect import dialect as _dialect

MIN_COMMIT_MS = 100.0
#: Fields of a session the server reports but a ``session.update`` may not set.

# Fields of a session that are replaced whole by session.update, not merged key by key.
_LEAF_OBJECTS = frozenset({"format", "turn_detection", "transcription", "noise_reduction", "tool_choice",
                           "tracing", "prompt", "input_audio_transcription", "input_audio_noise_reduction",
                           "reasoning", "truncation"})


def merge_session(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``session.update`` semantics: only the fields present change; nested settings merge."""
    out = dict(current)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in _LEAF_OBJECTS:
            out[key] = merge_session(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _error(code: str | None, message: str, param: str | None, client_event: dict[str, Any]) -> dict[str, Any]:
    event_id = client_event.get("event_id")
    return {"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": message,
                                       "param": param, "event_id": event_id if isinstance(event_id, str) else None}}


def _ms(value: float) -> str:
    return f"{value:.2f}ms"  # the commit error shows hundredths: "buffer only has 50.00ms of audio"


def _whole_ms(value: float) -> str:
    return f"{value:.0f}ms"  # the truncate error shows whole milliseconds: "Audio content of 3700ms is ..."


class _Part:
    __slots__ = ("kind", "pieces", "done")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "audio" | "text"
        self.pieces: list[str] = []  # joined only if the response is cut short
        self.done = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class _Output:
    """An item of the active response, as far as the client has seen it."""

    __slots__ = ("index", "item", "parts", "arguments", "done")

    def __init__(self, index: int, item: dict[str, Any]) -> None:
        self.index = index
        self.item = item
        self.parts: dict[int, _Part] = {}
        self.arguments = ""
        self.done = False


class SessionModel:
    def __init__(self, dialect: str, tag: str = "") -> None:
        self.dialect = dialect
        self.d = _dialect(dialect)
        self.tag = tag  # makes the ids this model invents distinct per connection
        self.session: dict[str, Any] = {}
        # The conversation as a linked list: insert after any item and delete in O(1).
        self.item_data: dict[str, dict[str, Any]] = {}
        self.kinds: ItemKinds | None = ItemKinds()  # kept while items are appended (state_of reads it)
        self._next: dict[str | None, str | None] = {None: None}  # None is the head sentinel
        self._prev: dict[str, str | None] = {}
        self.last_item: str | None = None
        self.call_ids: set[str] = set()
        self.audio_ms: dict[str, float] = {}  # assistant item id -> audio sent
        self.transcripts: dict[str, str] = {}  # user audio item id -> its input transcription
        self.assistant_audio = False
        self.buffer_ms = 0.0
        self.response: dict[str, Any] | None = None  # the active response as response.created had it
        self.outputs: dict[str, _Output] = {}
        self._serial = 0
        self.input_format = self.output_format = _audio.PCM16

    # -- derived settings ------------------------------------------------------------------------

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        td = self.d.turn_detection(self.session)
        return td if isinstance(td, dict) else None

    @property
    def interrupt_response(self) -> bool:
        td = self.turn_detection
        return td is not None and td.get("interrupt_response", True) is not False

    @property
    def active_response_id(self) -> str | None:
        return self.response.get("id") if self.response else None

    def new_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}_MR{self.tag}{self._serial:015d}"

    def item_order(self) -> list[str]:
        """Item ids in conversation order."""
        out = []
        node = self._next[None]
        while node is not None:
            out.append(node)
            node = self._next[node]
        return out

    def _link(self, item_id: str, after: str | None) -> None:
        nxt = self._next[after]
        self._next[after] = item_id
        self._next[item_id] = nxt
        self._prev[item_id] = after
        if nxt is not None:
            self._prev[nxt] = item_id
        else:
            self.last_item = item_id

    def _unlink(self, item_id: str) -> None:
        before, nxt = self._prev.pop(item_id), self._next.pop(item_id)
        self._next[before] = nxt
        if nxt is not None:
            self._prev[nxt] = before
        else:
            self.last_item = before

    # -- observing ---------------------------------------------------------------------------------

    def observe_client_audio(self, n_bytes: int) -> float:
        ms = self.input_format.duration_ms(n_bytes)
        self.buffer_ms += ms
        return ms

    def _on_session(self, ev: Any) -> None:
        session = ev.get("session")
        if isinstance(session, dict):
            self._set_session(copy.deepcopy(session))

    def _set_session(self, session: dict[str, Any]) -> None:
        self.session = session
        fmt_in, fmt_out = _audio.session_formats(session)
        self.input_format, self.output_format = fmt_in or _audio.PCM16, fmt_out or _audio.PCM16

    def _on_item(self, ev: Any) -> None:
        item = ev.get("item")
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return
        item_id = item["id"]
        if item_id not in self.item_data:
            previous = ev.get("previous_item_id")
            if isinstance(previous, str) and previous in self.item_data:
                self._link(item_id, previous)
            elif previous == "root":
                self._link(item_id, None)
            else:
                self._link(item_id, self.last_item)
        self.kinds = track(self.kinds, self.item_data.get(item_id), item, self.last_item == item_id)
        self.item_data[item_id] = item
        if item.get("type") == "function_call" and isinstance(item.get("call_id"), str):
            self.call_ids.add(item["call_id"])

    def _on_deleted(self, ev: Any) -> None:
        item_id = ev.get("item_id")
        if isinstance(item_id, str) and item_id in self.item_data:
            self._unlink(item_id)
            del self.item_data[item_id]
            self.kinds = None

    def _on_truncated(self, ev: Any) -> None:
        item_id = ev.get("item_id")
        if item_id in self.audio_ms and isinstance(ev.get("audio_end_ms"), (int, float)):
            self.audio_ms[item_id] = float(ev.get("audio_end_ms"))

    def _on_buffer_reset(self, ev: Any) -> None:
        self.buffer_ms = 0.0

    def _on_response_created(self, ev: Any) -> None:
        response = ev.get("response")
        if isinstance(response, dict):
            self.response = copy.deepcopy(response)
            self.outputs = {}

    def _on_response_done(self, ev: Any) -> None:
        response = ev.get("response") or {}
        if self.response is not None and response.get("id") in (self.response.get("id"), None):
            self.response = None
            self.outputs = {}

    def _on_output_added(self, ev: Any) -> None:
        item = ev.get("item")
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            self.outputs[item["id"]] = _Output(ev.get("output_index") or 0, copy.deepcopy(item))
            if item.get("type") == "function_call" and isinstance(item.get("call_id"), str):
                self.call_ids.add(item["call_id"])

    def _on_output_done(self, ev: Any) -> None:
        item: dict[str, Any] = ev.get("item") or {}
        if item.get("id") in self.item_data:  # beta created it in progress; this is how it ended
            self.kinds = track(self.kinds, self.item_data[item["id"]], item, False)
            self.item_data[item["id"]] = copy.deepcopy(item)
        out = self.outputs.get(str(item.get("id")))
        if out is not None:
            out.done = True
            out.item = copy.deepcopy(item)

    def _on_part_added(self, ev: Any) -> None:
        out = self.outputs.get(ev.get("item_id"))
        if out is not None:
            part = ev.get("part") or {}
            out.parts[ev.get("content_index") or 0] = _Part("audio" if part.get("type") == "audio" else "text")

    def _on_part_done(self, ev: Any) -> None:
        out = self.outputs.get(ev.get("item_id"))
        if out is not None and (ev.get("content_index") or 0) in out.parts:
            out.parts[ev.get("content_index") or 0].done = True

    def _on_text_delta(self, ev: Any) -> None:
        self.text_delta(ev.get("item_id"), ev.get("content_index") or 0, ev.get("delta") or "")

    def text_delta(self, item_id: Any, content_index: int, delta: str) -> None:
        self.text_deltas(item_id, content_index, (delta,))

    def text_deltas(self, item_id: Any, content_index: int, deltas: Iterable[str]) -> None:
        """Text (or transcript) deltas of one content part, in order."""
        out = self.outputs.get(item_id)
        if out is not None:
            part = out.parts.get(content_index)
            if part is None:
                part = out.parts[content_index] = _Part("text")
            part.pieces.extend(deltas)

    def _on_audio_delta(self, ev: Any) -> None:
        n = ev.audio_bytes if hasattr(ev, "audio_bytes") else _audio.b64_decoded_len(ev.get("delta") or "")
        self.audio_delta(ev.get("item_id"), n)

    def audio_delta(self, item_id: Any, n_bytes: int) -> None:
        self.audio_ms[item_id] = self.audio_ms.get(item_id, 0.0) + self.output_format.duration_ms(n_bytes)
        self.assistant_audio = True

    def _on_transcription(self, ev: Any) -> None:
        if isinstance(ev.get("item_id"), str):
            self.transcripts[ev.get("item_id")] = ev.get("transcript") or ""

    def _on_arguments_delta(self, ev: Any) -> None:
        self.arguments_delta(ev.get("item_id"), ev.get("delta") or "")

    def arguments_delta(self, item_id: Any, delta: str) -> None:
        out = self.outputs.get(item_id)
        if out is not None:
            out.arguments += delta  # arguments are short: a few hundred bytes

    # -- rebuilding ---------------------------------------------------------------------------------

    def rebuild(self) -> list[dict[str, Any]]:
        """Client events that bring a fresh session to this state (:func:`~.rebuild.rebuild_events`)."""
        return rebuild_events(self)

    # -- answering ---------------------------------------------------------------------------------

    def answer(self, event: dict[str, Any], item_id: str | None = None) -> list[dict[str, Any]] | None:
        """The events the real server sends for ``event`` from state alone; None if it needs a model.

        ``item_id`` names the item a create or commit makes when the client gives none (the engine
        passes the id the recording shows, so later recorded events that name it agree).
        """
        handler = _ANSWERERS.get(event.get("type", ""))
        if handler is None:
            return None
        if handler in _TAKES_ID:
            return handler(self, event, item_id)
        return handler(self, event)

    def _answer_session_update(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        update = dict(_obj(event.get("session")))
        if self.assistant_audio and self.d.voice(update) not in (None, self.d.voice(self.session)):
            return [_error("cannot_update_voice", "Cannot update a conversation's voice if assistant audio is present.",
                           None, event)]
        update.pop("model", None)  # the model cannot change after start; clients resend it, unchanged
        self._set_session(merge_session(self.session, update))
        return [{"type": "session.updated", "session": copy.deepcopy(self.session)}]

    def _answer_item_create(self, event: dict[str, Any], item_id: str | None = None) -> list[dict[str, Any]]:
        item = _obj(event.get("item"))  # a parsed client event: the server owns it, nothing else changes it
        previous = event.get("previous_item_id")
        if previous is not None and previous != "root" and _key(previous) not in self.item_data:
            # Unverified message (protocol.md §3.2 "Not found"): same family as the truncate error.
            return [_error("invalid_value", f"Previous item with id '{previous}' does not exist.", "previous_item_id", event)]
        if item.get("type") == "function_call_output" and _key(item.get("call_id")) not in self.call_ids:
            # protocol.md §3.2: one live report of this message; code and param not captured.
            return [_error("invalid_value", f"Tool call ID '{item.get('call_id')}' not found in conversation.",
                           "item.call_id", event)]
        item_id = item.get("id") if isinstance(item.get("id"), str) else (item_id or self.new_id("item"))
        item = {"id": item_id, **item}  # the id first, as the API shows it; a copy the echo owns
        item["id"] = item_id
        item.setdefault("status", "completed")
        if previous is None:
            previous = self.last_item
        elif previous == "root":
            previous = None
        return self.d.item_echo(item, previous)

    def _answer_retrieve(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        item_id = _key(event.get("item_id"))
        if item_id not in self.item_data:
            # Unverified message (protocol.md §3.2 "Not found").
            return [_error("item_retrieve_invalid_item_id", f"Error retrieving item: the item with id '{item_id}' does not exist.", "item_id", event)]
        return [{"type": "conversation.item.retrieved", "item": copy.deepcopy(self.item_data[item_id])}]

    def _answer_delete(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        item_id = _key(event.get("item_id"))
        if item_id not in self.item_data:
            # Unverified message (protocol.md §3.2 "Not found").
            return [_error("item_delete_invalid_item_id", f"Error deleting item: the item with id '{item_id}' does not exist.", "item_id", event)]
        return [{"type": "conversation.item.deleted", "item_id": item_id}]

    def _answer_truncate(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        item_id = _key(event.get("item_id"))
        item = self.item_data.get(item_id) or (self.outputs[item_id].item if item_id in self.outputs else None)
        if item is None:
            # Code from many clients; message unverified (two client fakes use this wording).
            return [_error("item_truncate_invalid_item_id", f"Error truncating item: the item with id '{item_id}' does not exist.", "item_id", event)]
        sent = self.audio_ms.get(item_id)
        if item.get("role") != "assistant" or not sent:
            return [_error("unsupported_content_type", "Only model output audio messages can be truncated", None, event)]
        end = event.get("audio_end_ms")
        if isinstance(end, (int, float)) and end > sent + 1e-6:
            return [_error("invalid_value", f"Audio content of {_whole_ms(sent)} is already shorter than {_whole_ms(float(end))}", "audio_end_ms", event)]
        return [{"type": "conversation.item.truncated", "item_id": item_id, "content_index": event.get("content_index", 0),
                 "audio_end_ms": end}]

    def _answer_clear(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"type": "input_audio_buffer.cleared"}]

    def _answer_commit(self, event: dict[str, Any], item_id: str | None = None) -> list[dict[str, Any]]:
        if self.buffer_ms < MIN_COMMIT_MS:
            return [_error(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {_ms(self.buffer_ms)} of audio.",
                None, event)]
        item_id = item_id or self.new_id("item")
        previous = self.last_item
        item = {"id": item_id, "type": "message", "status": "completed", "role": "user",
                "content": [{"type": "input_audio", "transcript": None}]}
        return [{"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item_id},
                *self.d.item_echo(item, previous)]

    def _answer_cancel(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        wanted = event.get("response_id")
        if self.response is None or (wanted is not None and wanted != self.active_response_id):
            return [_error("response_cancel_not_active", "Cancellation failed: no active response found", None, event)]
        return self.cancel("client_cancelled")

    def _answer_response_create(self, event: dict[str, Any]) -> list[dict[str, Any]] | None:
        conversation = _obj(event.get("response")).get("conversation", "auto")
        if self.response is not None and conversation != "none":
            rid = self.active_response_id
            return [_error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {rid}. Wait until the response is finished before creating a new one.",
                None, event)]
        return None  # a new response needs the model: only a recording can answer it

    # -- cancellation ------------------------------------------------------------------------------

    def cancel(self, reason: str) -> list[dict[str, Any]]:
        """The events that end the active response early, as the real server sends them."""
        if self.response is None:
            return []
        rid = self.response.get("id")
        ga = self.dialect == "ga"
        out_events: list[dict[str, Any]] = []
        finished = []
        for item_id, out in sorted(self.outputs.items(), key=lambda kv: kv[1].index):
            item = out.item
            if not out.done:
                base = {"response_id": rid, "item_id": item_id, "output_index": out.index}
                if item.get("type") == "function_call":
                    done = {"type": "response.function_call_arguments.done", **base, "call_id": item.get("call_id"),
                            "arguments": out.arguments}
                    if ga:
                        done["name"] = item.get("name")
                    out_events.append(done)
                    item = {**item, "arguments": out.arguments}
                content = []
                for index, part in sorted(out.parts.items()):
                    ids = {**base, "content_index": index}
                    if part.kind == "audio":
                        if not part.done:
                            out_events.append({"type": "response.output_audio.done" if ga else "response.audio.done", **ids})
                            out_events.append({"type": "response.output_audio_transcript.done" if ga else "response.audio_transcript.done",
                                               **ids, "transcript": part.text})
                            out_events.append({"type": "response.content_part.done", **ids, "part": {"type": "audio", "transcript": part.text}})
                        content.append({"type": "output_audio" if ga else "audio", "transcript": part.text})
                    else:
                        if not part.done:
                            out_events.append({"type": "response.output_text.done" if ga else "response.text.done", **ids, "text": part.text})
                            out_events.append({"type": "response.content_part.done", **ids, "part": {"type": "text", "text": part.text}})
                        content.append({"type": "output_text" if ga else "text", "text": part.text})
                if item.get("type") == "message":
                    item = {**item, "content": content}
                item = {**item, "status": "incomplete"}
                out_events.append({"type": "response.output_item.done", "response_id": rid, "output_index": out.index, "item": item})
                if ga:
                    out_events.append({"type": "conversation.item.done", "previous_item_id": None, "item": item})
            finished.append(item)
        response = {**self.response, "status": "cancelled", "status_details": {"type": "cancelled", "reason": reason},
                    "output": finished}
        out_events.append({"type": "response.done", "response": response})
        return out_events


OBSERVERS = {
    "session.created": SessionModel._on_session,
    "session.updated": SessionModel._on_session,
    "conversation.item.created": SessionModel._on_item,
    "conversation.item.added": SessionModel._on_item,
    "conversation.item.done": SessionModel._on_item,
    "conversation.item.deleted": SessionModel._on_deleted,
    "conversation.item.truncated": SessionModel._on_truncated,
    "input_audio_buffer.committed": SessionModel._on_buffer_reset,
    "input_audio_buffer.cleared": SessionModel._on_buffer_reset,
    "response.created": SessionModel._on_response_created,
    "response.done": SessionModel._on_response_done,
    "response.output_item.added": SessionModel._on_output_added,
    "response.output_item.done": SessionModel._on_output_done,
    "response.content_part.added": SessionModel._on_part_added,
    "response.content_part.done": SessionModel._on_part_done,
    "response.output_audio_transcript.delta": SessionModel._on_text_delta,
    "response.audio_transcript.delta": SessionModel._on_text_delta,
    "response.output_text.delta": SessionModel._on_text_delta,
    "response.text.delta": SessionModel._on_text_delta,
    "response.output_audio.delta": SessionModel._on_audio_delta,
    "response.audio.delta": SessionModel._on_audio_delta,
    "response.function_call_arguments.delta": SessionModel._on_arguments_delta,
    "conversation.item.input_audio_transcription.completed": SessionModel._on_transcription,
}

def _key(value: Any) -> Any:
    """An id as a dict key: anything but a string (validation off) is shown as sent but found nowhere."""
    return value if isinstance(value, str) else repr(value)


def _obj(value: Any) -> dict[str, Any]:
    """A field that should hold an object; anything else (validation off) counts as empty."""
    return value if isinstance(value, dict) else {}


_TAKES_ID = frozenset({SessionModel._answer_item_create, SessionModel._answer_commit})

_ANSWERERS = {
    "session.update": SessionModel._answer_session_update,
    "conversation.item.create": SessionModel._answer_item_create,
    "conversation.item.retrieve": SessionModel._answer_retrieve,
    "conversation.item.delete": SessionModel._answer_delete,
    "conversation.item.truncate": SessionModel._answer_truncate,
    "input_audio_buffer.clear": SessionModel._answer_clear,
    "input_audio_buffer.commit": SessionModel._answer_commit,
    "response.cancel": SessionModel._answer_cancel,
    "response.create": SessionModel._answer_response_create,
}
