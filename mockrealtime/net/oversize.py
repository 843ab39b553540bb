"""The frame size limit, enforced by aiohttp's WebSocket reader before a payload is buffered.

aiohttp checks a frame's declared length against ``max_msg_size`` as soon as the header arrives and
fails the connection with 1009 (message too big) without reading the payload. A reader that has
given up mid-frame cannot skip to the next one, so the session cannot stay open; what we add is
the ``error`` event a Realtime client expects, sent just before aiohttp's close frame, so the
client sees why. (What the real API does with a frame over its 15 MiB limit is unverified.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, web

TOO_BIG_CODE = "message_too_large"


def too_big_message(limit: int) -> str:
    return (
        f"mockrealtime: a client message exceeds the {limit}-byte limit (--max-frame-bytes, "
        "MOCKREALTIME_MAX_FRAME_BYTES); the connection closes with 1009"
    )


class RealtimeSocket(web.WebSocketResponse):
    """A WebSocketResponse that sends one last frame (the ``error`` event) before a 1009 close."""

    def __init__(self, *, max_frame_bytes: int, **kwargs: Any) -> None:
        # aiohttp refuses a payload of max_msg_size bytes or more; the limit itself is allowed
        super().__init__(max_msg_size=max_frame_bytes + 1, **kwargs)
        #: Returns the JSON text of the error event; set by the pump once the session exists.
        self.on_too_big: Callable[[], str] | None = None

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        hook, self.on_too_big = self.on_too_big, None
        if code == WSCloseCode.MESSAGE_TOO_BIG and hook is not None and not self.closed:
            try:
                await self.send_str(hook())
            except ConnectionError:
                pass  # the client is gone already; the close below finds out
            message = message or b"invalid_request_error." + TOO_BIG_CODE.encode()
        return await super().close(code=code, message=message, drain=drain)
