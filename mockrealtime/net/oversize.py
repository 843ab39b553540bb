"""The last word before aiohttp fails a connection: the frame size limit, and text that is not UTF-8.

aiohttp checks a frame's declared length against ``max_msg_size`` as soon as the header arrives and
fails the connection with 1009 (message too big) without reading the payload; a text frame that is
not valid UTF-8 fails it with 1007, as RFC 6455 requires. A reader that has given up cannot go on,
so the session cannot stay open; what we add is the ``error`` event a Realtime client expects,
sent just before aiohttp's close frame, so the client sees why. (What the real API does with a
frame over its 15 MiB limit, or with bad UTF-8, is unverified.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, web

from mockrealtime.protocol import ProtocolError

TOO_BIG_CODE = "message_too_large"


def failure_error(code: int, max_frame_bytes: int) -> ProtocolError | None:
    """The error event for a connection aiohttp fails with ``code``, or None for other closes."""
    if code == WSCloseCode.MESSAGE_TOO_BIG:
        return ProtocolError(
            TOO_BIG_CODE,
            f"mockrealtime: a client message exceeds the {max_frame_bytes}-byte limit (--max-frame-bytes, "
            "MOCKREALTIME_MAX_FRAME_BYTES); the connection closes with 1009",
            None,
        )
    if code == WSCloseCode.INVALID_TEXT:
        # invalid_json as for any frame that does not parse; the close follows from RFC 6455
        return ProtocolError(
            "invalid_json", "Invalid event: failed to parse JSON value. The text frame is not valid UTF-8.", None
        )
    return None


class RealtimeSocket(web.WebSocketResponse):
    """A WebSocketResponse that sends one last frame (the ``error`` event) before aiohttp fails the
    connection with 1009 or 1007."""

    def __init__(self, *, max_frame_bytes: int, **kwargs: Any) -> None:
        # aiohttp refuses a payload of max_msg_size bytes or more; the limit itself is allowed
        super().__init__(max_msg_size=max_frame_bytes + 1, **kwargs)
        self.max_frame_bytes = max_frame_bytes
        #: Turns a ProtocolError into the JSON text of the error event; set once the session exists.
        self.render_error: Callable[[ProtocolError], str] | None = None

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        render, self.render_error = self.render_error, None
        error = failure_error(code, self.max_frame_bytes) if render is not None and not self.closed else None
        if error is not None and render is not None:
            try:
                await self.send_str(render(error))
            except ConnectionError:
                pass  # the client is gone already; the close below finds out
            message = message or f"{error.type}.{error.code}".encode()
        return await super().close(code=code, message=message, drain=drain)
