"""The Realtime protocol itself, free of I/O: client-event schemas (GA and beta) and their errors."""

from mockrealtime.protocol.validation import (
    CLIENT_EVENT_TYPES,
    ClientEventValidator,
    ProtocolError,
    parse_client_frame,
)

__all__ = ["CLIENT_EVENT_TYPES", "ClientEventValidator", "ProtocolError", "parse_client_frame"]
