"""The one configuration model, built alike by the CLI, the pytest plugin and the Docker image (and
shown by the admin API, ``GET /__admin/config``), and the one rule that says where each setting
comes from.

Precedence, for every setting: flags (the CLI's flags, the pytest plugin's ``--realtime-*``
options, a caller's keyword arguments) > the ``@pytest.mark.realtime(...)`` marker > the
``realtime_config`` fixture > the ``MOCKREALTIME_*`` environment > the default (:func:`resolve`).
On top of that, a connection may override the settings marked ``connection`` with a header
``X-Mockrealtime-<Setting>`` or a query parameter ``mockrealtime_<setting>``
(:meth:`ServerConfig.for_connection`), and the admin API may change those marked ``admin`` on the
running server for the connections that follow (:meth:`ServerConfig.with_admin`).

Not every setting exists at every level: a field's ``layers`` metadata names the layers besides
the environment and flags that may set it (:func:`setting`). A plain field (``name: type =
default``) is a server setting: flags and ``MOCKREALTIME_<NAME>`` only. Adding a setting is a field
here, its CLI flag in :mod:`mockrealtime.cli`, and nothing else.

Sans-IO: plain mappings in, a frozen :class:`ServerConfig` out.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import ipaddress
import json
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from mockrealtime.core.matching import MODES, Matcher
from mockrealtime.core.redaction import Redactor
from mockrealtime.errors import ConfigError

ENV_PREFIX = "MOCKREALTIME_"
HEADER_PREFIX = "X-Mockrealtime-"
QUERY_PREFIX = "mockrealtime_"
OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"

#: Layers besides flags and the environment that may set a field (its ``layers`` metadata).
MARKER = "marker"  # @pytest.mark.realtime(...)
FIXTURE = "fixture"  # the realtime_config fixture
OPTION = "option"  # the pytest plugin's --realtime-* options
CONNECTION = "connection"  # a connection's X-Mockrealtime-* header or mockrealtime_* query parameter
ADMIN = "admin"  # PATCH /__admin/config: the running server's value, for the connections that follow


class RecordMode(str, enum.Enum):
    """pytest-recording's record modes; ``none`` by default so that CI never goes live by accident."""

    NONE = "none"  # replay; never go live
    ONCE = "once"  # replay the cassette if it exists, else record it
    NEW_EPISODES = "new_episodes"  # replay, and record what the cassette does not hold
    ALL = "all"  # record every test, replacing its cassette
    REWRITE = "rewrite"  # delete the cassette, then record it

    def __str__(self) -> str:
        return self.value


RECORD_MODES = tuple(m.value for m in RecordMode)


def setting(default: Any, *layers: str, env: str | None = None, secret: bool = False) -> Any:
    """A field that more layers than flags and the environment may set; ``env`` renames its
    variable; a ``secret`` is left out of the repr (so of logs) and of :meth:`ServerConfig.to_dict`.
    A plain ``dataclasses.field(repr=False)`` is a secret too."""
    metadata: dict[str, Any] = {"layers": frozenset(layers)}
    if env is not None:
        metadata["env"] = env
    return dataclasses.field(default=default, metadata=metadata, repr=not secret)


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    # -- serving ---------------------------------------------------------------------------------
    #: Interface to bind; loopback unless asked (the container sets 0.0.0.0).
    host: str = "127.0.0.1"
    port: int = 8080
    #: A cassette file or a directory of them; None serves the bundled cassettes.
    cassettes: str | None = None
    #: Name of the cassette a connection gets when it names none.
    default_cassette: str | None = None
    #: A test's cassette: a name (looked up in the cassette directory, then among the bundled ones)
    #: or a path (relative to the cassette directory); None: the test's own, ``<test name>.yaml``.
    cassette: str | None = setting(None, MARKER)
    #: Which dialect variant to serve or record: "ga", "beta", or None for whichever the client speaks.
    dialect: str | None = setting(None, MARKER, FIXTURE)
    #: 0 = as fast as possible, 1 = recorded timing, anything between or above scales it.
    pace: float = setting(0.0, MARKER, FIXTURE)
    #: Check client events against the Realtime API's schemas and answer bad ones with its errors.
    validate: bool = True
    #: Largest client frame, enforced by the WebSocket reader before buffering: a larger one gets
    #: an error event, then close 1009 (the API allows appends of 15 MiB).
    max_frame_bytes: int = 16 * 1024 * 1024
    #: Matching: a mode ("default", "type", "exact") or {"mode", "rules", "ignore"} (README, Matching).
    match: str | Mapping[str, Any] | None = setting(None, MARKER, FIXTURE, env="MATCH_MODE")
    #: Every client event must be in the recording (lenient: housekeeping is answered from state).
    strict: bool = setting(False, MARKER, FIXTURE, CONNECTION)
    #: Require this API key; a wrong one gets invalid_api_key and close 3000, as the real API does.
    api_key: str | None = setting(None, CONNECTION, secret=True)
    #: End sessions after this many seconds with session_expired (the real API: 60 minutes).
    max_session_s: float | None = setting(None, CONNECTION)
    #: Refuse beta connections with beta_api_shape_disabled, as the API has since 2026.
    beta_retired: bool = setting(False, CONNECTION)
    #: Serve the admin API under /__admin. None (the default): on loopback, or beyond it when a
    #: token is set; True beyond loopback without a token refuses to start.
    admin: bool | None = None
    #: Require ``Authorization: Bearer <token>`` on the admin API; required beyond loopback.
    admin_token: str | None = setting(None, secret=True)
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
    on_divergence: str = setting("error", MARKER, FIXTURE, CONNECTION, ADMIN)
    #: Seconds the server waits, with nothing due, for a client event the recording needs before it
    #: reports a stall (an error event, a journal entry and a failing test). 0 turns it off.
    stall_timeout_s: float = 10.0
    #: Finished connections the admin API keeps (older: ``forgotten``); MiB of frames kept for replays.
    keep_finished: int = 1000
    frame_cache_mb: int = 256

    # -- a test (the pytest plugin) ---------------------------------------------------------------
    #: Do not fail the test when the client leaves recorded events unplayed.
    allow_unplayed: bool = setting(False, MARKER, FIXTURE)

    # -- recording -------------------------------------------------------------------------------
    record_mode: RecordMode = setting(RecordMode.NONE, MARKER, FIXTURE, OPTION)
    #: Save the cassette recorded by a test that failed (not saved by default).
    record_failed: bool = setting(False, FIXTURE, OPTION)
    #: ws:// or wss:// URL of the live Realtime API. With a path, every connection goes to that path;
    #: with none (``wss://myresource.openai.azure.com``), the client's own path passes through.
    upstream: str = setting(OPENAI_REALTIME_URL, FIXTURE, OPTION)
    #: ``mockrealtime record``: the cassette to write (``NAME.yaml``); connections become its sessions.
    output: str | None = None
    #: When set, recording authenticates upstream with this key instead of the client's credentials
    #: (as ``api-key`` if the client sent one, else ``Authorization: Bearer``), and the recording is
    #: scanned for it. None: the client's own credentials pass through.
    upstream_api_key: str | None = setting(None, secret=True)
    #: More JSON paths (``session.instructions``, or ``TYPE:path`` for one event type) and regular
    #: expressions to redact when recording (the defaults always apply).
    redact_paths: tuple[str, ...] = setting((), FIXTURE)
    redact_patterns: tuple[str, ...] = setting((), FIXTURE)
    #: Time allowed for the upstream TCP/TLS connection and WebSocket upgrade.
    connect_timeout_s: float = 30.0
    #: Time allowed for each side to answer a close frame when recording.
    close_timeout_s: float = 5.0
    #: ``mockrealtime record``: seconds between checkpoints of open sessions (at most this much is
    #: lost to a crash).
    checkpoint_s: float = 2.0

    # -- derived ---------------------------------------------------------------------------------

    @property
    def matching(self) -> dict[str, Any] | None:
        """The matching override as ``Matcher.build`` takes it."""
        if self.match is None:
            return None
        if isinstance(self.match, str):
            return {"mode": self.match}
        return dict(self.match)

    @property
    def recording(self) -> bool:
        return self.record_mode is not RecordMode.NONE

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON shows them; a secret (a field left out of the repr) that is set shows
        as ``"<redacted>"``."""
        out: dict[str, Any] = {}
        for field in _FIELDS:
            value = getattr(self, field.name)
            if not field.repr and value is not None:
                value = "<redacted>"
            elif isinstance(value, RecordMode):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[field.name] = value
        return out

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **flags: Any) -> ServerConfig:
        """Defaults, then ``MOCKREALTIME_<FIELD>`` variables, then ``flags`` that are not None."""
        return resolve(flags=flags, environ=environ)

    def for_connection(self, headers: Mapping[str, str], query: Mapping[str, str]) -> ServerConfig:
        """This configuration, overridden by a connection's headers or query parameters (the
        settings marked ``connection``); a bad value raises :class:`ConfigError`."""
        values = {}
        for field in _FIELDS:
            if CONNECTION not in _layers(field):
                continue
            raw = headers.get(HEADER_PREFIX + field.name.replace("_", "-").title())
            if raw is None:
                raw = query.get(QUERY_PREFIX + field.name)
            if raw is not None:
                try:
                    values[field.name] = _parse(field, raw)
                except ValueError:
                    raise ConfigError(f"bad value for {field.name}: {raw!r}") from None
        if not values:
            return self
        config = dataclasses.replace(self, **values)
        config.check()
        return config

    def with_admin(self, values: Mapping[str, Any]) -> ServerConfig:
        """This configuration with the settings the admin API changes at run time (``PATCH
        /__admin/config``: the settings marked ``admin``); unknown keys or bad values raise
        :class:`ConfigError` and change nothing."""
        unknown = sorted(set(values) - set(ADMIN_KEYS))
        if unknown or not values:
            what = f"cannot change {', '.join(unknown)}" if unknown else "nothing to change"
            raise ConfigError(f"admin API: {what}; settable at run time: {', '.join(ADMIN_KEYS)}")
        config = dataclasses.replace(self, **{k: _check("admin API", _BY_NAME[k], v) for k, v in values.items()})
        config.check()
        return config

    def check(self) -> None:
        """Relations the field types cannot say; raises :class:`ConfigError`."""
        if self.pace < 0:
            raise ConfigError(f"pace must be 0 or more, not {self.pace}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range")
        if isinstance(self.match, str) and self.match not in MODES:
            raise ConfigError(f"match mode {self.match!r} is not one of {', '.join(MODES)}")
        if isinstance(self.match, Mapping):
            Matcher.build(self.match)  # raises ConfigError for a bad rule set
        if self.max_session_s is not None and self.max_session_s <= 0:
            raise ConfigError("max_session_s must be positive")
        if self.on_divergence not in ("error", "close"):
            raise ConfigError(f"on_divergence {self.on_divergence!r} is not one of error, close")
        for name in ("keep_finished", "frame_cache_mb", "stall_timeout_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more" + (" (0: off)" if name == "stall_timeout_s" else ""))
        if self.max_frame_bytes <= 0:
            raise ConfigError("max_frame_bytes must be positive")
        if self.keyfile and not self.certfile:
            raise ConfigError("a TLS keyfile needs its certfile")
        url = urllib.parse.urlsplit(self.upstream)
        if url.scheme not in ("ws", "wss") or not url.hostname:
            raise ConfigError(f"the upstream must be a ws:// or wss:// URL, not {url_label(self.upstream)!r}")
        if self.output is not None and not self.output.endswith((".yaml", ".yml")):
            raise ConfigError(f"the output cassette must be a .yaml file, not {self.output!r}")
        if not self.checkpoint_s > 0:
            raise ConfigError(f"the checkpoint interval must be a positive number of seconds, not {self.checkpoint_s!r}")
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


_FIELDS = dataclasses.fields(ServerConfig)
FIELD_NAMES = tuple(f.name for f in _FIELDS)


def _layers(field: dataclasses.Field[Any]) -> frozenset[str]:
    return field.metadata.get("layers", frozenset())


def keys_of(layer: str) -> tuple[str, ...]:
    """The settings a layer may set, in field order."""
    return tuple(f.name for f in _FIELDS if layer in _layers(f))


def env_name(field: dataclasses.Field[Any]) -> str:
    return ENV_PREFIX + field.metadata.get("env", field.name.upper())


#: What ``@pytest.mark.realtime(...)`` accepts (the cassette may also be its one positional argument).
MARKER_KEYS = keys_of(MARKER)
#: What the ``realtime_config`` fixture may return.
CONFIG_KEYS = keys_of(FIXTURE)
#: What has a ``--realtime-*`` command-line option.
OPTION_KEYS = keys_of(OPTION)
#: What a connection may override with a header or query parameter.
CONNECTION_KEYS = keys_of(CONNECTION)
#: What the admin API may change on a running server (``PATCH /__admin/config``).
ADMIN_KEYS = keys_of(ADMIN)


def env_values(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings the environment gives (``MOCKREALTIME_<FIELD>``, empty means unset), parsed."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in _FIELDS:
        name = env_name(field)
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[field.name] = _parse(field, raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a valid {_kind(field)}") from None
    return values


def resolve(
    *,
    flags: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    marker: Mapping[str, Any] | None = None,
    fixture: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Each setting from the first layer that gives it (not None): flags, options, marker, fixture,
    environment; the default otherwise.

    ``flags`` may set any field (the CLI, a caller); ``options`` (the pytest plugin's
    ``--realtime-*``), ``marker`` and ``fixture`` only their own keys. ``environ`` is the process
    environment unless given. Unknown keys and bad values raise :class:`ConfigError` naming the
    layer and, for a layer that takes a few keys, the valid ones.
    """
    layers: tuple[tuple[str, Mapping[str, Any], tuple[str, ...] | None], ...] = (
        ("flags", flags or {}, None),
        ("command-line option", options or {}, OPTION_KEYS),
        ("marker @pytest.mark.realtime", marker or {}, MARKER_KEYS),
        ("realtime_config fixture", fixture or {}, CONFIG_KEYS),
    )
    values: dict[str, Any] = {}
    for source, layer, valid in layers:
        unknown = sorted(set(layer) - set(valid if valid is not None else FIELD_NAMES))
        if unknown:
            if valid is None:
                raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
            close = [c for u in unknown for c in difflib.get_close_matches(u, valid, n=1)]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{source}: unknown argument(s) {', '.join(unknown)}{hint}; valid: {', '.join(valid)}")
        for key, value in layer.items():
            if value is not None and key not in values:
                # a caller's or the CLI's values are only converted: check() says what is out of range
                values[key] = _convert(_BY_NAME[key], value) if valid is None else _check(source, _BY_NAME[key], value)
    for key, value in env_values(environ).items():
        if key not in values:
            values[key] = _check("MOCKREALTIME_* environment", _BY_NAME[key], value)
    config = ServerConfig(**values)
    config.check()
    return config


_BY_NAME = {f.name: f for f in _FIELDS}


def parse_bool(raw: str) -> bool:
    """A boolean as people write one in an environment variable, header or query string."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def url_label(url: str) -> str:
    """A URL as it may be logged: no query string, no userinfo."""
    try:
        u = urllib.parse.urlsplit(url)
        host = u.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if u.port is not None:
            host += f":{u.port}"
    except ValueError:
        return "(unparsable URL)"
    return urllib.parse.urlunsplit((u.scheme, host, u.path, "", ""))


def _kind(field: dataclasses.Field[Any]) -> str:
    return str(field.type).split()[0].split("[")[0]


def _parse(field: dataclasses.Field[Any], raw: str) -> Any:
    """A value written as text (environment, header, query) as the field holds it; ValueError if bad."""
    kind = _kind(field)
    if kind == "bool":
        return parse_bool(raw)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "RecordMode":
        return RecordMode(raw.strip())
    if kind == "tuple":  # a JSON list, or one value
        if raw.lstrip().startswith("["):
            value = json.loads(raw)
            if not isinstance(value, list):
                raise ValueError(raw)
            return tuple(value)
        return (raw,)
    if field.name == "match" and raw.lstrip().startswith("{"):
        return json.loads(raw)
    return raw


def _convert(field: dataclasses.Field[Any], value: Any) -> Any:
    """A flag's value in the field's own type (a record mode's name, a list as a tuple)."""
    kind = _kind(field)
    if kind == "RecordMode" and not isinstance(value, RecordMode):
        try:
            return RecordMode(value)
        except ValueError:
            raise ConfigError(f"record mode {value!r} is not one of {', '.join(RECORD_MODES)}") from None
    if kind == "tuple" and not isinstance(value, tuple):
        return tuple(value)
    return value


def _check(source: str, field: dataclasses.Field[Any], value: Any) -> Any:
    """A value given in Python (flags, marker, fixture) or parsed from text, checked against its field."""
    key, kind = field.name, _kind(field)

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {key}={value!r} is not {expected}")

    if key == "dialect":
        if value not in ("ga", "beta"):
            raise bad("'ga' or 'beta'")
    elif key == "match":
        expected = f"one of {', '.join(MODES)} or a dict of mode, rules, ignore"
        if isinstance(value, str):
            if value not in MODES:
                raise bad(expected)
        elif isinstance(value, Mapping):
            try:
                Matcher.build(value)
            except ConfigError as exc:
                raise ConfigError(f"{source}: match: {exc}") from None
        else:
            raise bad(expected)
    elif kind == "RecordMode":
        try:
            value = RecordMode(value)
        except ValueError:
            raise bad(f"one of {', '.join(RECORD_MODES)}") from None
    elif kind == "bool":
        if not isinstance(value, bool):
            raise bad("True or False")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad("a number of 0 or more")
        value = float(value)
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
    elif kind == "tuple":
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        value = tuple(value)
    elif kind == "str":
        if not isinstance(value, str) or not value:
            raise bad("a non-empty string")
    if key in ("redact_paths", "redact_patterns"):
        _check_redaction(source, key, value)
    return value


def _check_redaction(source: str, key: str, value: tuple[str, ...]) -> None:
    try:
        Redactor(value if key == "redact_paths" else (), value if key == "redact_patterns" else ())
    except ConfigError as exc:
        raise ConfigError(f"{source}: {key}: {exc}") from None


__all__ = [
    "ADMIN_KEYS", "CONFIG_KEYS", "CONNECTION_KEYS", "MARKER_KEYS", "OPTION_KEYS", "RECORD_MODES", "RecordMode",
    "ServerConfig", "env_values", "parse_bool", "resolve", "setting", "url_label",
]
