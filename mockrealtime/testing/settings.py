"""Per-test settings of the pytest plugin, and the one rule that says where each comes from.

Precedence, for every setting: the command-line option (``--realtime-*``, when given) wins over
the ``@pytest.mark.realtime(...)`` marker, which wins over the ``realtime_config`` fixture, which
wins over the ``MOCKREALTIME_*`` environment, which wins over the built-in default. Not every
setting exists at every level (:data:`MARKER_KEYS`, :data:`CONFIG_KEYS`, :data:`OPTION_KEYS`).

Pytest-free, so the rule is tested as a plain function.
"""

from __future__ import annotations

import difflib

import dataclasses
from collections.abc import Mapping
from typing import Any

from mockrealtime.errors import ConfigError
from mockrealtime.core.matching import MODES, Matcher

RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
DEFAULT_UPSTREAM = "wss://api.openai.com/v1/realtime"


@dataclasses.dataclass(frozen=True)
class Settings:
    #: Cassette name (looked up in the cassette directory, then among the bundled ones) or path
    #: (relative to the cassette directory); None: the test's own, ``<test name>.yaml``.
    cassette: str | None = None
    #: Which dialect variant to serve or record: "ga", "beta", or None for whichever the client speaks.
    dialect: str | None = None
    #: 0 = as fast as possible, 1 = recorded timing.
    pace: float = 0.0
    #: Matching: a mode ("default", "type", "exact") or {"mode", "rules", "ignore"} (see README, Matching).
    match: str | Mapping[str, Any] | None = None
    #: Every client event must be in the recording (lenient: housekeeping is answered from state).
    strict: bool = False
    #: Do not fail the test when the client leaves recorded events unplayed.
    allow_unplayed: bool = False
    #: none | once | new_episodes | all | rewrite (pytest-recording's names).
    record_mode: str = "none"
    #: The live endpoint a recording mode talks to.
    upstream: str = DEFAULT_UPSTREAM
    #: Save the cassette recorded by a test that failed (not saved by default).
    record_failed: bool = False
    #: More JSON paths and regular expressions to redact when recording (the defaults always apply).
    redact_paths: tuple[str, ...] = ()
    redact_patterns: tuple[str, ...] = ()

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
        return self.record_mode != "none"


FIELDS = tuple(f.name for f in dataclasses.fields(Settings))
#: What ``@pytest.mark.realtime(...)`` accepts (the cassette may also be its one positional argument).
MARKER_KEYS = ("cassette", "dialect", "pace", "match", "strict", "allow_unplayed", "record_mode")
#: What the ``realtime_config`` fixture may return.
CONFIG_KEYS = tuple(k for k in FIELDS if k != "cassette")
#: What has a ``--realtime-*`` command-line option.
OPTION_KEYS = ("record_mode", "upstream", "record_failed")
#: What the ``MOCKREALTIME_*`` environment (the server's configuration) provides.
ENVIRONMENT_KEYS = ("pace", "match", "strict")


def resolve_settings(
    *,
    options: Mapping[str, Any] | None = None,
    marker: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> Settings:
    """Each setting from the first layer that gives it (not None): option, marker, config, environment.

    ``options`` holds the command-line options that were given, ``marker`` the merged
    ``realtime`` marker arguments, ``config`` what the ``realtime_config`` fixture returned,
    ``environment`` the server configuration's values (``MOCKREALTIME_*``). Unknown keys and bad
    values raise :class:`ConfigError` naming the layer and the valid keys.
    """
    layers = (
        ("command-line option", options or {}, OPTION_KEYS),
        ("marker @pytest.mark.realtime", marker or {}, MARKER_KEYS),
        ("realtime_config fixture", config or {}, CONFIG_KEYS),
        ("MOCKREALTIME_* environment", environment or {}, ENVIRONMENT_KEYS),
    )
    values: dict[str, Any] = {}
    for source, layer, valid in layers:
        unknown = sorted(set(layer) - set(valid))
        if unknown:
            close = [c for u in unknown for c in difflib.get_close_matches(u, valid, n=1)]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                f"{source}: unknown argument(s) {', '.join(unknown)}{hint}; valid: {', '.join(valid)}"
            )
        for key, value in layer.items():
            if value is not None and key not in values:
                values[key] = _check(source, key, value)
    return Settings(**values)


def _check(source: str, key: str, value: Any) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {key}={value!r} is not {expected}")

    if key in ("cassette", "upstream"):
        if not isinstance(value, str) or not value:
            raise bad("a non-empty string")
    elif key == "dialect":
        if value not in ("ga", "beta"):
            raise bad("'ga' or 'beta'")
    elif key == "pace":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad("a number of 0 or more")
        value = float(value)
    elif key == "match":
        if isinstance(value, str):
            if value not in MODES:
                raise bad(f"one of {', '.join(MODES)} or a dict of mode, rules, ignore")
        elif isinstance(value, Mapping):
            try:
                Matcher.build(value)
            except ConfigError as exc:
                raise ConfigError(f"{source}: match: {exc}") from None
        else:
            raise bad(f"one of {', '.join(MODES)} or a dict of mode, rules, ignore")
    elif key in ("strict", "allow_unplayed", "record_failed"):
        if not isinstance(value, bool):
            raise bad("True or False")
    elif key == "record_mode":
        if value not in RECORD_MODES:
            raise bad(f"one of {', '.join(RECORD_MODES)}")
    elif key in ("redact_paths", "redact_patterns"):
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        value = tuple(value)
    return value
