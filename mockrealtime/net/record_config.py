"""Record mode's configuration: where to relay, where to write, what to redact; checked early.

The output folder is checked when the recorder starts (:func:`check_writable`), so a recorder
that could not save refuses to start instead of losing its first session.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from yarl import URL

from mockrealtime.core.redaction import Redactor
from mockrealtime.errors import ConfigError

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
_ENV_PREFIX = "MOCKREALTIME_"


@dataclasses.dataclass(frozen=True)
class RecordConfig:
    #: ws:// or wss:// URL of the Realtime API. With a path, every connection goes to that path;
    #: with none (``wss://myresource.openai.azure.com``), the client's own path passes through.
    upstream: str
    #: The cassette to write (``NAME.yaml``); several connections become its sessions, in order.
    output: str
    #: When set, the recorder authenticates upstream with this key instead of the client's
    #: credentials (as ``api-key`` if the client sent one, else ``Authorization: Bearer``), and the
    #: recording is scanned for it. None: the client's own credentials pass through.
    api_key: str | None = None
    #: Extra JSON paths to blank in every event (``session.instructions``), or in one event type
    #: (``conversation.item.create:item.content[*].text``).
    redact_paths: tuple[str, ...] = ()
    #: Extra regexes; every match in any string of any event becomes ``<redacted>``.
    redact_patterns: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    #: Time allowed for the upstream TCP/TLS connection and WebSocket upgrade.
    connect_timeout_s: float = 30.0
    #: Time allowed for each side to answer a close frame.
    close_timeout_s: float = 5.0
    #: Seconds between checkpoints of open sessions: at most this much is lost to a crash.
    checkpoint_s: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "redact_paths", tuple(self.redact_paths))
        object.__setattr__(self, "redact_patterns", tuple(self.redact_patterns))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RecordConfig:
        """Defaults, then ``MOCKREALTIME_UPSTREAM`` / ``_OUTPUT`` / ``_HOST`` / ``_PORT`` /
        ``_CHECKPOINT_S``, then ``overrides`` that are not None (flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {"upstream": OPENAI_REALTIME_URL}
        kinds: dict[str, Any] = {"port": int, "checkpoint_s": float}
        for name in ("upstream", "output", "host", "port", "checkpoint_s"):
            raw = environ.get(_ENV_PREFIX + name.upper())
            if raw:
                kind = kinds.get(name, str)
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise ConfigError(f"{_ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "output" not in values:
            raise ConfigError("record mode needs an output cassette (--output PATH)")
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        url = URL(self.upstream)
        if url.scheme not in ("ws", "wss") or not url.host:
            raise ConfigError(f"the upstream must be a ws:// or wss:// URL, not {_url_label(self.upstream)!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range")
        if not self.output.endswith((".yaml", ".yml")):
            raise ConfigError(f"the output cassette must be a .yaml file, not {self.output!r}")
        if not self.checkpoint_s > 0:
            raise ConfigError(f"the checkpoint interval must be a positive number of seconds, not {self.checkpoint_s!r}")
        Redactor(self.redact_paths, self.redact_patterns)  # raises ConfigError for a bad rule


def _url_label(url: str) -> str:
    """A URL as it may be logged: no query string, no userinfo."""
    u = URL(url)
    try:
        return str(u.with_query(None).with_fragment(None).with_user(None).with_password(None))
    except (ValueError, TypeError):
        return "(unparsable URL)"


def check_writable(output: str) -> None:
    """Refuse (ConfigError) an output the recorder could not save to: found out at start, not
    after the first session is lost."""
    directory = os.path.dirname(os.path.abspath(output))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".mockrealtime-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"cannot write the output cassette {output!r}: {exc.strerror or exc} ({directory})") from None
    if os.path.isdir(output):
        raise ConfigError(f"cannot write the output cassette {output!r}: it is a directory")
