"""One configuration object, built alike by the CLI, the pytest fixture and the Docker image.

Precedence: explicit values (flags, fixture arguments) > ``MOCKREALTIME_*`` environment > defaults.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from typing import Any

from mockrealtime.errors import ConfigError

ENV_PREFIX = "MOCKREALTIME_"


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    #: Interface to bind; loopback unless asked (the container sets 0.0.0.0).
    host: str = "127.0.0.1"
    port: int = 8080
    #: A cassette file or a directory of them; None serves the bundled cassettes.
    cassettes: str | None = None
    #: Name of the cassette a connection gets when it names none.
    default_cassette: str | None = None
    #: 0 = as fast as possible, 1 = recorded timing, anything between or above scales it.
    pace: float = 0.0
    #: Check client events against the Realtime API's schemas and answer bad ones with its errors.
    validate: bool = True
    #: Largest client frame, enforced by the WebSocket reader before buffering: a larger one gets
    #: an error event, then close 1009 (the API allows appends of 15 MiB).
    max_frame_bytes: int = 16 * 1024 * 1024
    #: Matching mode for every connection: default, type or exact (cassettes may refine rules).
    match_mode: str | None = None
    #: Every client event must be in the recording (lenient: housekeeping is answered from state).
    strict: bool = False
    #: Require this API key; a wrong one gets invalid_api_key and close 3000, as the real API does.
    api_key: str | None = dataclasses.field(default=None, repr=False)
    #: End sessions after this many seconds with session_expired (the real API: 60 minutes).
    max_session_s: float | None = None
    #: Refuse beta connections with beta_api_shape_disabled, as the API has since 2026.
    beta_retired: bool = False
    #: Serve the admin API under /__admin. None (the default): on loopback, or beyond it when a
    #: token is set; True beyond loopback without a token refuses to start.
    admin: bool | None = None
    #: Require ``Authorization: Bearer <token>`` on the admin API; required beyond loopback.
    admin_token: str | None = dataclasses.field(default=None, repr=False)
    #: Browser origins allowed beyond loopback pages, comma-separated (``*``: any), for the
    #: WebSocket and the admin API. Clients that send no Origin (SDKs, curl) are not affected.
    allowed_origins: str | None = None
    #: Serve wss:// (and https://) with a throwaway CA made for loopback (needs the ``tls`` extra).
    tls: bool = False
    #: Serve wss:// with your own certificate (PEM; the key in it or in ``keyfile``).
    certfile: str | None = None
    keyfile: str | None = None
    #: Where ``tls`` writes its CA (``ca.pem``) for clients to trust; None: a fresh temporary directory.
    tls_dir: str | None = None
    #: What a divergence does: "error" (an error event, the session goes on) or "close" (the error,
    #: then close 4000: a client that answers errors with retries cannot storm).
    on_divergence: str = "error"
    #: Seconds the server waits, with nothing due, for a client event the recording needs before it
    #: reports a stall (an error event, a journal entry and a failing test). 0 turns it off.
    stall_timeout_s: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Defaults, then ``MOCKREALTIME_<FIELD>`` variables, then ``overrides`` that are not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None and raw != "":
                values[field.name] = _coerce(field.name, field.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if self.pace < 0:
            raise ConfigError(f"pace must be 0 or more, not {self.pace}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range")
        if self.match_mode not in (None, "default", "type", "exact"):
            raise ConfigError(f"match mode {self.match_mode!r} is not one of default, type, exact")
        if self.max_session_s is not None and self.max_session_s <= 0:
            raise ConfigError("max_session_s must be positive")
        if self.on_divergence not in ("error", "close"):
            raise ConfigError(f"on_divergence {self.on_divergence!r} is not one of error, close")
        if self.stall_timeout_s < 0:
            raise ConfigError("stall_timeout_s must be 0 (off) or more")
        if self.max_frame_bytes <= 0:
            raise ConfigError("max_frame_bytes must be positive")
        if self.keyfile and not self.certfile:
            raise ConfigError("a TLS keyfile needs its certfile")
        if self.admin is True and not self.admin_token and not is_loopback(self.host):
            raise ConfigError(
                f"the admin API would be open to anyone who can reach {self.host}:{self.port}. Set a token "
                "(--admin-token SECRET, or MOCKREALTIME_ADMIN_TOKEN=SECRET; in Docker: "
                "docker run -e MOCKREALTIME_ADMIN_TOKEN=SECRET ...) and send it as 'Authorization: Bearer SECRET', "
                "or leave it off (--no-admin, MOCKREALTIME_ADMIN=false)"
            )

    @property
    def admin_enabled(self) -> bool:
        """Whether /__admin is served: never beyond loopback without a token."""
        if self.admin is not None:
            return self.admin
        return bool(self.admin_token) or is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def parse_bool(raw: str) -> bool:
    """A boolean as people write one in an environment variable, header or query string."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _coerce(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind.startswith("bool"):
            return parse_bool(raw)
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.split()[0]}") from None
    return raw
