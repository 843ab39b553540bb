"""The server configuration: defaults, MOCKREALTIME_* variables, explicit values, and the checks."""

from __future__ import annotations

import pytest

from mockrealtime.config import ServerConfig, parse_bool
from mockrealtime.errors import ConfigError


def test_the_environment_sets_each_kind_of_field_and_explicit_values_win():
    config = ServerConfig.from_env(
        {"MOCKREALTIME_PORT": "9000", "MOCKREALTIME_PACE": "1.5", "MOCKREALTIME_STRICT": "yes", "MOCKREALTIME_VALIDATE": "off",
         "MOCKREALTIME_CASSETTES": "/c", "MOCKREALTIME_MAX_SESSION_S": "30", "MOCKREALTIME_HOST": "", "OTHER": "x"},
        cassettes="/explicit", pace=None,
    )
    assert (config.port, config.pace, config.strict, config.validate) == (9000, 1.5, True, False)
    assert (config.cassettes, config.max_session_s, config.host) == ("/explicit", 30.0, "127.0.0.1")


def test_without_an_environment_the_defaults_hold(monkeypatch):
    monkeypatch.setenv("MOCKREALTIME_PORT", "9001")
    assert ServerConfig.from_env().port == 9001
    assert ServerConfig.from_env({}) == ServerConfig()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MOCKREALTIME_PORT": "eighty"}, "MOCKREALTIME_PORT='eighty' is not a valid int"),
        ({"MOCKREALTIME_PACE": "fast"}, "MOCKREALTIME_PACE='fast' is not a valid float"),
        ({"MOCKREALTIME_STRICT": "maybe"}, "MOCKREALTIME_STRICT='maybe' is not a valid bool"),
        ({"MOCKREALTIME_MAX_SESSION_S": "soon"}, "MOCKREALTIME_MAX_SESSION_S='soon' is not a valid float"),
    ],
)
def test_a_bad_variable_names_itself(env, message):
    with pytest.raises(ConfigError) as caught:
        ServerConfig.from_env(env)
    assert str(caught.value) == message


def test_an_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match=r"^unknown setting\(s\): colour, speed$"):
        ServerConfig.from_env({}, speed=2, colour="red")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pace": -0.5}, "pace must be 0 or more, not -0.5"),
        ({"port": 65536}, "port 65536 is out of range"),
        ({"port": -1}, "port -1 is out of range"),
        ({"match": "fuzzy"}, "match mode 'fuzzy' is not one of default, type, exact"),
        ({"max_session_s": 0}, "max_session_s must be positive"),
        ({"max_frame_bytes": 0}, "max_frame_bytes must be positive"),
    ],
)
def test_values_out_of_range_are_refused(fields, message):
    with pytest.raises(ConfigError) as caught:
        ServerConfig.from_env({}, **fields)
    assert str(caught.value) == message


@pytest.mark.parametrize("fields", [{"pace": 0}, {"port": 0}, {"port": 65535}, {"match": "exact"}, {"max_session_s": 0.1}, {"max_frame_bytes": 1}])
def test_values_at_the_edges_are_accepted(fields):
    ServerConfig.from_env({}, **fields).check()


@pytest.mark.parametrize(("raw", "value"), [("1", True), (" TRUE ", True), ("yes", True), ("On", True), ("0", False), ("false", False), ("NO", False), ("off", False)])
def test_booleans_as_people_write_them(raw, value):
    assert parse_bool(raw) is value


@pytest.mark.parametrize("raw", ["", "2", "y", "enabled"])
def test_anything_else_is_not_a_boolean(raw):
    with pytest.raises(ValueError):
        parse_bool(raw)
