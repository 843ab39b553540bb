"""The server's WebSocket: its last word before aiohttp fails a connection, and many frames in one write.

**The last word.** The frame size limit, and text that is not UTF-8:

aiohttp checks a frame's declared length against ``max_msg_size`` as soon as the header arrives and
fails the connection with 1009 (message too big) without reading the payload; a text frame that is
not valid UTF-8 fails it with 1007, as RFC 6455 requires. A reader that has given up cannot go on,
so the session cannot stay open; what we add is the ``error`` event a Realtime client expects,
sent just before aiohttp's close frame, so the client sees why. (What the real API does with a
frame over its 15 MiB limit, or with bad UTF-8, is unverified.)

**Many frames in one write.** aiohttp writes each frame with its own ``transport.write``, one system
call per frame: for a long answer at pace 0 that call was most of the server's time per frame.
:meth:`RealtimeSocket.send_texts` frames a chunk of text frames (RFC 6455 §5.2: a server's frames are
unmasked; ours are unfragmented and uncompressed) and writes them at once, then waits while the
client's socket is full, as aiohttp's writer does. It uses aiohttp's writer's transport and flow
control, which are not public API: where they are not as expected (another aiohttp, a compressed
connection) it sends frame by frame through the public ``send_frame``, and a test pins that the
fast path is taken with the aiohttp this project requires.
"""

from __future__ import annotations

import struct

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

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


_LEN16 = struct.Struct("!BBH").pack
_LEN64 = struct.Struct("!BBQ").pack
_FIN_TEXT = 0x81


def text_frames(payloads: Sequence[bytes]) -> bytes:
    """Unmasked, unfragmented text frames, one after another (RFC 6455 §5.2)."""
    parts: list[bytes] = []
    append = parts.append
    for payload in payloads:
        n = len(payload)
        append(bytes((_FIN_TEXT, n)) if n < 126 else _LEN16(_FIN_TEXT, 126, n) if n < 65536 else _LEN64(_FIN_TEXT, 127, n))
        append(payload)
    return b"".join(parts)


class RealtimeSocket(web.WebSocketResponse):
    """A WebSocketResponse that sends one last frame (the ``error`` event) before aiohttp fails the
    connection with 1009 or 1007, and writes many text frames at once (see the module docstring)."""

    def __init__(self, *, max_frame_bytes: int, **kwargs: Any) -> None:
        # aiohttp refuses a payload of max_msg_size bytes or more; the limit itself is allowed
        super().__init__(max_msg_size=max_frame_bytes + 1, **kwargs)
        self.max_frame_bytes = max_frame_bytes
        #: Turns a ProtocolError into the JSON text of the error event; set once the session exists.
        self.render_error: Callable[[ProtocolError], str] | None = None
        self._batches: bool | None = None

    @property
    def writes_in_batches(self) -> bool:
        """Whether :meth:`send_texts` writes a chunk at once (else frame by frame); found once the
        socket is prepared (its writer and compression do not change after)."""
        found = self._batches
        if found is None:
            writer = self._writer
            if writer is None:
                return False
            found = self._batches = (
                not self.compress and writer.use_mask is False and hasattr(writer, "transport") and hasattr(writer, "_closing")
                and hasattr(writer.protocol, "_drain_helper") and hasattr(writer.protocol, "writing_paused"))
        return found

    def _writer_closing(self) -> bool:
        """The writer's connection is closing (only where :attr:`writes_in_batches`)."""
        writer = self._writer
        return writer._closing or writer.transport.is_closing()  # type: ignore[union-attr]

    @property
    def takes_writes_now(self) -> bool:
        """Whether :meth:`write_texts` may write now: the fast path applies, the connection is not
        closing and the client's socket is not full."""
        return self.writes_in_batches and not self._writer_closing() and not self._writer.protocol.writing_paused  # type: ignore[union-attr]

    def write_texts(self, payloads: Sequence[bytes]) -> None:
        """Write ``payloads`` as text frames in one write, without waiting (where
        :attr:`takes_writes_now`: the caller keeps the flow control)."""
        self._writer.transport.write(text_frames(payloads))  # type: ignore[union-attr]

    async def send_texts(self, payloads: Sequence[bytes]) -> None:
        """Send UTF-8 ``payloads`` as text frames, in order: in one write where it can.

        Raises ConnectionError when the connection is closing, as ``send_frame`` does."""
        if not self.writes_in_batches:
            for payload in payloads:
                await self.send_frame(payload, WSMsgType.TEXT)
            return
        if self._writer_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        self.write_texts(payloads)
        protocol = self._writer.protocol  # type: ignore[union-attr]
        if protocol.writing_paused:  # the client's socket is full: wait, as aiohttp's writer does
            await protocol._drain_helper()

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
