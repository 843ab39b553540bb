"""The one configuration model and its precedence rule, the journal queries and the cassette
conventions (no pytester)."""

from __future__ import annotations

import pytest

from mockrealtime.config import (
    ADMIN_KEYS, CONFIG_KEYS, CONNECTION_KEYS, MARKER_KEYS, RECORD_MODES, RecordMode, ServerConfig, env_values, resolve,
)
from mockrealtime.core.journal import Journal, SentEvent
from mockrealtime.errors import CassetteError, ConfigError
from mockrealtime.testing.modes import MODES, Case
from mockrealtime.testing.runner import BackgroundServer
from mockrealtime.testing.storage import close_names, default_cassette_name, locate_cassette

# -- precedence: flags/options > marker > realtime_config > MOCKREALTIME_* environment > default -------


@pytest.mark.parametrize(
    ("options", "marker", "fixture", "environ", "expected"),
    [
        ({}, {}, {}, {}, "none"),
        ({}, {}, {}, {"MOCKREALTIME_RECORD_MODE": "all"}, "all"),
        ({}, {}, {"record_mode": "once"}, {"MOCKREALTIME_RECORD_MODE": "all"}, "once"),
        ({}, {"record_mode": "all"}, {"record_mode": "once"}, {}, "all"),
        ({"record_mode": "rewrite"}, {"record_mode": "all"}, {"record_mode": "once"}, {}, "rewrite"),
        ({"record_mode": "new_episodes"}, {}, {}, {}, "new_episodes"),
    ],
    ids=["default", "environment", "config-over-environment", "marker-over-config", "option-over-marker", "option-alone"],
)
def test_record_mode_precedence(options, marker, fixture, environ, expected):
    mode = resolve(options=options, marker=marker, fixture=fixture, environ=environ).record_mode
    assert mode is RecordMode(expected) and mode == expected


@pytest.mark.parametrize(
    ("marker", "fixture", "environ", "expected"),
    [
        ({}, {}, {}, 0.0),
        ({}, {}, {"MOCKREALTIME_PACE": "0.5"}, 0.5),
        ({}, {"pace": 1}, {"MOCKREALTIME_PACE": "0.5"}, 1.0),
        ({"pace": 2}, {"pace": 1}, {"MOCKREALTIME_PACE": "0.5"}, 2.0),
        ({"pace": None}, {"pace": 1}, {}, 1.0),  # None means "not given", at every level
        ({}, {}, {"MOCKREALTIME_PACE": ""}, 0.0),  # so does an empty variable
    ],
    ids=["default", "environment", "config-over-environment", "marker-over-all", "none-is-unset", "empty-is-unset"],
)
def test_pace_precedence(marker, fixture, environ, expected):
    assert resolve(marker=marker, fixture=fixture, environ=environ).pace == expected


def test_each_setting_is_taken_from_the_first_level_that_gives_it():
    config = resolve(
        options={"upstream": "ws://127.0.0.1:9/v1/realtime"},
        marker={"cassette": "hello", "strict": True},
        fixture={"strict": False, "allow_unplayed": True, "match": "type", "upstream": "wss://elsewhere/v1/realtime"},
        environ={"MOCKREALTIME_MATCH_MODE": "exact", "MOCKREALTIME_PACE": "1"},
    )
    assert config == ServerConfig(
        cassette="hello", strict=True, allow_unplayed=True, match="type", pace=1.0, upstream="ws://127.0.0.1:9/v1/realtime"
    )


def test_flags_win_over_the_environment_and_may_set_any_setting():
    environ = {"MOCKREALTIME_PORT": "9000", "MOCKREALTIME_HOST": "0.0.0.0", "MOCKREALTIME_VALIDATE": "false"}
    config = ServerConfig.from_env(environ, port=0, output="out.yaml")
    assert (config.port, config.host, config.validate, config.output) == (0, "0.0.0.0", False, "out.yaml")
    with pytest.raises(ConfigError, match="unknown setting"):
        ServerConfig.from_env({}, colour="blue")


def test_the_environment_gives_every_setting_in_its_own_type():
    environ = {
        "MOCKREALTIME_STRICT": "yes", "MOCKREALTIME_MAX_SESSION_S": "90", "MOCKREALTIME_MAX_FRAME_BYTES": "1024",
        "MOCKREALTIME_RECORD_MODE": "once", "MOCKREALTIME_MATCH_MODE": "type",
        "MOCKREALTIME_REDACT_PATTERNS": '["a,b", "c"]', "MOCKREALTIME_REDACT_PATHS": "session.instructions",
        "OTHER": "ignored",
    }
    assert env_values(environ) == {
        "strict": True, "max_session_s": 90.0, "max_frame_bytes": 1024, "record_mode": RecordMode.ONCE,
        "match": "type", "redact_patterns": ("a,b", "c"), "redact_paths": ("session.instructions",),
    }


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MOCKREALTIME_PORT": "eighty"}, "MOCKREALTIME_PORT='eighty' is not a valid int"),
        ({"MOCKREALTIME_STRICT": "maybe"}, "MOCKREALTIME_STRICT='maybe' is not a valid bool"),
        ({"MOCKREALTIME_RECORD_MODE": "sometimes"}, "MOCKREALTIME_RECORD_MODE='sometimes' is not a valid RecordMode"),
        ({"MOCKREALTIME_PACE": "-1"}, "MOCKREALTIME_* environment: pace=-1.0 is not a number of 0 or more"),
        ({"MOCKREALTIME_MATCH_MODE": "fuzzy"}, "MOCKREALTIME_* environment: match='fuzzy' is not one of default, type, exact"),
        ({"MOCKREALTIME_UPSTREAM": "https://api.openai.com/v1/realtime"}, "the upstream must be a ws:// or wss:// URL"),
        ({"MOCKREALTIME_PORT": "70000"}, "port 70000 is out of range"),
    ],
)
def test_a_bad_environment_fails_naming_the_variable(environ, message):
    with pytest.raises(ConfigError) as excinfo:
        resolve(environ=environ)
    assert message in str(excinfo.value)


def test_a_connection_overrides_only_the_settings_that_allow_it():
    server = ServerConfig(strict=False, api_key="sk-server", pace=1.0)
    assert CONNECTION_KEYS == ("strict", "api_key", "max_session_s", "beta_retired", "on_divergence")
    assert ADMIN_KEYS == ("on_divergence",)  # PATCH /__admin/config
    config = server.for_connection({"X-Mockrealtime-Strict": "true", "X-Mockrealtime-Pace": "0"},
                                   {"mockrealtime_max_session_s": "30", "mockrealtime_pace": "3"})
    assert (config.strict, config.max_session_s, config.api_key, config.pace) == (True, 30.0, "sk-server", 1.0)
    assert server.for_connection({}, {}) is server
    with pytest.raises(ConfigError, match="bad value for max_session_s: 'soon'"):
        server.for_connection({}, {"mockrealtime_max_session_s": "soon"})
    with pytest.raises(ConfigError, match="max_session_s must be positive"):
        server.for_connection({"X-Mockrealtime-Max-Session-S": "0"}, {})


def test_keys_never_show_in_the_configuration_repr():
    config = ServerConfig(api_key="sk-server-secret", upstream_api_key="sk-upstream-secret")
    assert "secret" not in repr(config)


@pytest.mark.parametrize(
    ("layer", "values", "message"),
    [
        ("marker", {"casette": "x"}, "marker @pytest.mark.realtime: unknown argument(s) casette (did you mean cassette?); valid: " + ", ".join(MARKER_KEYS)),
        ("fixture", {"cassette": "x"}, "realtime_config fixture: unknown argument(s) cassette; valid: " + ", ".join(CONFIG_KEYS)),
        ("options", {"pace": 1}, "command-line option: unknown argument(s) pace"),
        ("marker", {"record_mode": "sometimes"}, "record_mode='sometimes' is not one of " + ", ".join(RECORD_MODES)),
        ("marker", {"pace": -1}, "pace=-1 is not a number of 0 or more"),
        ("marker", {"pace": True}, "pace=True is not a number"),
        ("marker", {"dialect": "GA"}, "dialect='GA' is not 'ga' or 'beta'"),
        ("marker", {"match": "fuzzy"}, "match='fuzzy' is not one of default, type, exact"),
        ("marker", {"match": {"mode": "exact", "skip": []}}, "unknown matching option(s) ['skip']"),
        ("marker", {"allow_unplayed": "yes"}, "allow_unplayed='yes' is not True or False"),
        ("fixture", {"redact_paths": "session.instructions"}, "redact_paths='session.instructions' is not a list of strings"),
    ],
)
def test_bad_settings_fail_with_the_valid_ones(layer, values, message):
    with pytest.raises(ConfigError) as excinfo:
        resolve(**{layer: values}, environ={})
    assert message in str(excinfo.value)


def test_matching_as_a_mode_or_a_rule_set():
    assert resolve(marker={"match": "type"}, environ={}).matching == {"mode": "type"}
    rules = {"rules": {"session.update": ["session.type"]}}
    assert resolve(marker={"match": rules}, environ={}).matching == rules
    assert resolve(environ={}).matching is None


# -- cassette location --------------------------------------------------------------------------


def test_default_cassette_name_follows_pytest_recording():
    assert default_cassette_name("test_call") == "test_call"
    assert default_cassette_name("test_call", "TestAgent") == "TestAgent.test_call"
    assert default_cassette_name("test_x[a/b:c]") == "test_x[a-b-c]"
    long = default_cassette_name("test_" + "x" * 300)
    assert len(long) < 200 and long.startswith("test_xxx")


def test_location_by_convention(tmp_path):
    d = tmp_path / "cassettes" / "test_mod"
    loc = locate_cassette(None, None, cassette_dir=str(d), default_name="test_x")
    assert (loc.path, loc.files, loc.exists) == (str(d / "test_x.yaml"), (), False)
    assert locate_cassette(None, "beta", cassette_dir=str(d), default_name="test_x").path == str(d / "test_x.beta.yaml")
    d.mkdir(parents=True)
    (d / "test_x.yaml").write_text("")
    (d / "test_x.beta.yaml").write_text("")
    loc = locate_cassette(None, None, cassette_dir=str(d), default_name="test_x")
    assert loc.files == (str(d / "test_x.yaml"), str(d / "test_x.beta.yaml"))


def test_location_by_name_falls_back_to_the_bundled_cassettes(tmp_path):
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    (bundled / "hello.yaml").write_text("")
    d = tmp_path / "cassettes"
    loc = locate_cassette("hello", None, cassette_dir=str(d), default_name="t", bundled_dir=str(bundled))
    assert (loc.files, loc.bundled, loc.path) == ((str(bundled / "hello.yaml"),), True, str(d / "hello.yaml"))
    d.mkdir()
    (d / "hello.yaml").write_text("")  # the test's own directory wins
    loc = locate_cassette("hello", None, cassette_dir=str(d), default_name="t", bundled_dir=str(bundled))
    assert (loc.files, loc.bundled) == ((str(d / "hello.yaml"),), False)


def test_location_by_path_is_relative_to_the_cassette_dir(tmp_path):
    d = tmp_path / "cassettes" / "test_mod"
    loc = locate_cassette("../shared/greeting.yaml", None, cassette_dir=str(d), default_name="t")
    assert loc.path == str(tmp_path / "cassettes" / "shared" / "greeting.yaml")
    absolute = str(tmp_path / "elsewhere.beta.yaml")
    assert locate_cassette(absolute, None, cassette_dir=str(d), default_name="t").path == absolute


# -- journal ------------------------------------------------------------------------------------------

SENT = [
    {"type": "session.update", "session": {"type": "realtime", "tools": [{"type": "function", "name": "list_emails"}]}},
    {"type": "input_audio_buffer.append", "audio_bytes": 960},
    {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}},
    {"type": "response.create"},
    {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"}},
    {"type": "input_audio_buffer.append", "audio_bytes": 480},
]
JOURNAL = Journal([SentEvent(0, i * 10.0, e, "matched") for i, e in enumerate(SENT)])


def test_journal_types_leave_audio_out_unless_asked():
    assert JOURNAL.types() == ["session.update", "conversation.item.create", "response.create", "conversation.item.create"]
    assert JOURNAL.types(audio=True).count("input_audio_buffer.append") == 2
    assert JOURNAL.audio_bytes() == 1440


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (("conversation.item.create",), {}, [2, 4]),
        (("conversation.item.create",), {"item__type": "function_call_output"}, [4]),
        (("conversation.item.create", {"item.call_id": "call_1"}), {}, [4]),
        (("session.update", {"session.tools[*].name": "list_emails"}), {}, [0]),
        (("session.update", {"session.tools[0].name": "other"}), {}, []),
        ((None, {"item.content[*].text": "hi"}), {}, [2]),
        (("conversation.item.create",), {"item__role": lambda role: role in ("user", "system")}, [2]),
    ],
)
def test_journal_where(args, kwargs, expected):
    assert JOURNAL.where(*args, **kwargs) == [SENT[i] for i in expected]


def test_journal_first_names_what_was_sent_when_nothing_matches():
    assert JOURNAL.first("response.create") == {"type": "response.create"}
    with pytest.raises(AssertionError, match="the client sent no conversation.item.truncate; it sent: session.update, "):
        JOURNAL.first("conversation.item.truncate")


def test_journal_is_a_sequence_of_events():
    assert JOURNAL[0]["type"] == "session.update"
    assert len(JOURNAL) == 6 and list(JOURNAL) == SENT and JOURNAL[-2:] == SENT[-2:]
    assert JOURNAL.of_type("response.create", "session.update") == [SENT[0], SENT[3]]


def test_a_cassette_name_typo_names_the_close_cassettes(tmp_path):
    (tmp_path / "greeting.yaml").write_text("")
    (tmp_path / "greeting.beta.yaml").write_text("")
    assert close_names(str(tmp_path / "greting.yaml")) == ["greeting"]
    assert close_names(str(tmp_path / "funtion_call.yaml"))[0] == "function_call"  # bundled
    assert close_names(str(tmp_path / "test_something_else.yaml")) == []


# -- record modes: what each runs a test on -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "exists", "run"),
    [
        ("none", True, "replay"), ("once", True, "replay"), ("once", False, "record"),
        ("new_episodes", True, "episodes"), ("new_episodes", False, "record"),
        ("all", True, "record"), ("all", False, "record"), ("rewrite", True, "record"), ("rewrite", False, "record"),
    ],
)
def test_each_record_mode_chooses_the_run_by_whether_the_cassette_exists(tmp_path, mode, exists, run):
    if exists:
        (tmp_path / "t.yaml").write_text("")
        (tmp_path / "t.s0.server.pcm16.wav").write_bytes(b"")
        (tmp_path / "other.s0.server.pcm16.wav").write_bytes(b"")
    location = locate_cassette(None, None, cassette_dir=str(tmp_path), default_name="t")
    config = ServerConfig(record_mode=RecordMode(mode))
    assert MODES[config.record_mode].run_for(Case(BackgroundServer(), config, location, "t1")).kind == run
    if mode == "rewrite":  # the cassette and its audio are gone before recording starts; others' audio stays
        assert sorted(p.name for p in tmp_path.iterdir()) == (["other.s0.server.pcm16.wav"] if exists else [])


def test_record_mode_none_never_goes_live_and_says_how_to_record(tmp_path):
    location = locate_cassette(None, None, cassette_dir=str(tmp_path), default_name="t")
    with pytest.raises(CassetteError, match="record mode 'none' never goes live.\nRecord it: pytest --realtime-record-mode=once t.py::t"):
        MODES[RecordMode.NONE].run_for(Case(BackgroundServer(), ServerConfig(), location, "t1", "t.py::t"))
