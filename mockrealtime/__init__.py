"""mockrealtime: a stand-in for the OpenAI Realtime API that replays recorded sessions."""

from __future__ import annotations

__version__ = "0.1.0"

from mockrealtime.core.cassette import Cassette, RecordedEvent, Session, load
from mockrealtime.core.cassette_writer import save
from mockrealtime.config import ServerConfig
from mockrealtime.errors import (
    CassetteError,
    CassetteFormatError,
    CassetteNotFoundError,
    ConfigError,
    DivergenceError,
    MockRealtimeError,
)
from mockrealtime.core.events import Direction

__all__ = [
    "Cassette",
    "CassetteError",
    "CassetteFormatError",
    "CassetteNotFoundError",
    "ConfigError",
    "Direction",
    "DivergenceError",
    "MockRealtimeError",
    "RecordedEvent",
    "ServerConfig",
    "Session",
    "__version__",
    "load",
    "save",
]
