"""The matching rules (README "Matching"), unit by unit: what counts, what is shown, what is ignored.

Every assertion compares whole ``FieldDiff`` values, so a changed path, value, placeholder or flag
shows; written so that mutation testing (tools/mutation.sh) finds nothing left untested here.
"""

from __future__ import annotations

import pytest

from mockrealtime.core.matching import DEFAULT_RULES, FieldDiff, Matcher, extract, parse_path
from mockrealtime.errors import ConfigError

DEFAULT = Matcher.build()


def item(**fields):
    return {"type": "conversation.item.create", "event_id": "evt_1", "item": {"type": "function_call_output", **fields}}


# -- paths -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("session.tool_choice", ("session", "tool_choice")),
        ("session.tools[*].name", ("session", "tools", "*", "name")),
        ("item.content[0].type", ("item", "content", 0, "type")),
        ("a[12]", ("a", 12)),
        ("[3]", (3,)),
    ],
)
def test_a_path_parses_into_keys_indexes_and_stars(path, parts):
    assert parse_path(path) == parts


@pytest.mark.parametrize("path", ["", "a b[", "a.", "a[x]", "a[-1]", "a]b"])
def test_a_bad_path_is_refused_and_named(path):
    with pytest.raises(ConfigError, match=rf"^bad matching path {path!r}$".replace("[", r"\[").replace("]", r"\]")):
        parse_path(path)


def test_extract_follows_keys_and_indexes():
    event = {"a": [{"b": 5}, {"b": 6}], "c": {"0": 1}}
    assert extract(event, ("a", 1, "b")) == 6
    assert extract(event, ("a", 0)) == {"b": 5}


@pytest.mark.parametrize("parts", [("a", 2), ("a", 3), ("c", 0), ("z",), ("a", 0, "x"), ("c", "*")])
def test_extract_gives_the_absent_marker_for_what_is_not_there(parts):
    shown = DEFAULT.differences({"type": "t"}, {"type": "t"})  # nothing to compare: the marker itself
    assert shown == []
    value = extract({"a": [{"b": 5}, {"b": 6}], "c": {"0": 1}}, parts)
    assert value is extract({}, ("anything",))  # the one sentinel
    assert value is not None


def test_a_star_compares_strings_as_a_sorted_list_and_other_values_as_canonical_json():
    assert extract({"t": [{"n": "b"}, {"n": "a"}, {"x": 1}]}, ("t", "*", "n")) == ["a", "b"]
    assert extract({"t": [{"y": 2, "x": 1}, 3]}, ("t", "*")) == ["3", '{"x": 1, "y": 2}']
    assert extract({"t": "not a list"}, ("t", "*")) is extract({}, ("missing",))


# -- the default rules, row by row ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "received", "diffs"),
    [
        # session.update: type, tool names as a set, tool_choice ("auto" when left out)
        ({"type": "session.update", "session": {"type": "realtime"}}, {"type": "session.update", "session": {"type": "transcription"}},
         [FieldDiff("session.type", "realtime", "transcription", True)]),
        ({"type": "session.update", "session": {"tools": [{"name": "a"}, {"name": "b"}]}},
         {"type": "session.update", "session": {"tools": [{"name": "b"}, {"name": "a"}], "instructions": "other"}}, []),
        ({"type": "session.update", "session": {"tools": [{"name": "a"}]}}, {"type": "session.update", "session": {"tools": [{"name": "c"}]}},
         [FieldDiff("session.tools[*].name", ["a"], ["c"], True)]),
        ({"type": "session.update", "session": {"tool_choice": "auto"}}, {"type": "session.update", "session": {}}, []),
        ({"type": "session.update", "session": {"tool_choice": "required"}}, {"type": "session.update", "session": {}},
         [FieldDiff("session.tool_choice", "required", "auto", True)]),
        ({"type": "session.update", "session": {}}, {"type": "session.update", "session": {"tool_choice": "none"}},
         [FieldDiff("session.tool_choice", "auto", "none", True)]),
        # conversation.item.create: item type, role, call_id, name, content types
        (item(call_id="call_1"), item(call_id="call_2"), [FieldDiff("item.call_id", "call_1", "call_2", True)]),
        (item(call_id="call_1"), item(), [FieldDiff("item.call_id", "call_1", "<absent>", True)]),
        (item(), item(call_id="call_1"), [FieldDiff("item.call_id", "<absent>", "call_1", True)]),
        (item(call_id="c", output="a", id="item_1"), item(call_id="c", output="b", id="item_2"), []),
        ({"type": "conversation.item.create", "item": {"type": "message", "role": "user"}},
         {"type": "conversation.item.create", "item": {"type": "message", "role": "system"}}, [FieldDiff("item.role", "user", "system", True)]),
        ({"type": "conversation.item.create", "item": {"type": "function_call", "name": "a"}},
         {"type": "conversation.item.create", "item": {"type": "function_call", "name": "b"}}, [FieldDiff("item.name", "a", "b", True)]),
        ({"type": "conversation.item.create", "item": {"type": "message", "content": [{"type": "input_text"}]}},
         {"type": "conversation.item.create", "item": {"type": "message", "content": [{"type": "input_audio"}]}},
         [FieldDiff("item.content[*].type", ["input_text"], ["input_audio"], True)]),
        # response.create: conversation and tool_choice default to "auto", tool names
        ({"type": "response.create", "response": {"conversation": "none"}}, {"type": "response.create"},
         [FieldDiff("response.conversation", "none", "auto", True)]),
        ({"type": "response.create", "response": {"tool_choice": "auto", "conversation": "auto"}}, {"type": "response.create"}, []),
        ({"type": "response.create", "response": {"tools": [{"name": "x"}]}}, {"type": "response.create", "response": {"tools": []}},
         [FieldDiff("response.tools[*].name", ["x"], [], True)]),
        # conversation.item.truncate: content_index only
        ({"type": "conversation.item.truncate", "content_index": 0, "audio_end_ms": 1}, {"type": "conversation.item.truncate", "content_index": 1, "audio_end_ms": 2},
         [FieldDiff("content_index", 0, 1, True)]),
        # the type always
        ({"type": "response.create"}, {"type": "response.cancel"}, [FieldDiff("type", "response.create", "response.cancel", True)]),
        # an event without rules matches on its type
        ({"type": "input_audio_buffer.commit", "x": 1}, {"type": "input_audio_buffer.commit", "x": 2}, []),
    ],
)
def test_the_default_rules(expected, received, diffs):
    assert DEFAULT.differences(expected, received) == diffs


def test_the_rules_cover_the_readme_table():
    assert set(DEFAULT_RULES) == {
        "session.update", "transcription_session.update", "conversation.item.create", "response.create", "conversation.item.truncate",
    }


# -- modes and layers ----------------------------------------------------------------------------------


def test_type_mode_compares_the_type_alone():
    matcher = Matcher.build({"mode": "type"})
    assert matcher.mode == "type"
    assert matcher.differences(item(call_id="a"), item(call_id="b")) == []
    assert matcher.differences({"type": "a"}, {"type": "b"}) == [FieldDiff("type", "a", "b", True)]


def test_exact_mode_compares_every_field_but_the_ignored_ones():
    matcher = Matcher.build({"mode": "exact"})
    assert matcher.differences(item(call_id="c", output="a"), item(call_id="c", output="b")) == [FieldDiff("item.output", "a", "b", True)]
    assert matcher.differences(item(call_id="c", id="item_1"), {**item(call_id="c", id="item_2"), "event_id": "evt_2"}) == []


def test_the_default_mode_is_default_and_layers_stack():
    assert Matcher.build().mode == "default"
    assert Matcher.build({"mode": "exact"}, None, {}, {"mode": "type"}).mode == "type"
    matcher = Matcher.build({"rules": {"response.create": ["response.instructions"]}}, {"ignore": ["item.output"], "mode": "exact"})
    assert [p for p, _ in matcher.rules["response.create"]] == ["response.instructions"]
    assert matcher.differences(item(call_id="c", output="a"), item(call_id="c", output="b")) == []


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"mode": "fuzzy"}, "matching mode 'fuzzy' is not one of default, type, exact"),
        ({"mood": "exact", "rulez": {}}, "unknown matching option(s) ['mood', 'rulez']; valid: mode, rules, ignore"),
    ],
)
def test_a_bad_layer_is_refused_with_what_is_valid(layer, message):
    with pytest.raises(ConfigError) as caught:
        Matcher.build(layer)
    assert str(caught.value) == message


# -- near-miss reports ---------------------------------------------------------------------------------


def test_all_differences_flags_what_the_rules_compare_and_leaves_out_the_ignored():
    expected = {"type": "session.update", "event_id": "a", "session": {"tools": [{"name": "x", "description": "d"}], "instructions": "i"}}
    received = {"type": "session.update", "event_id": "b", "session": {"tools": [{"name": "y", "description": "d"}], "voice": "v"}}
    assert DEFAULT.all_differences(expected, received) == [
        FieldDiff("session.tools[0].name", "x", "y", True),  # compared as session.tools[*].name
        FieldDiff("session.instructions", "i", "<absent>", False),
        FieldDiff("session.voice", "<absent>", "v", False),
    ]


def test_all_differences_shows_none_apart_from_absent_and_lists_of_other_lengths_whole():
    assert DEFAULT.all_differences({"type": "x", "k": None}, {"type": "x"}) == [FieldDiff("k", None, "<absent>", False)]
    assert DEFAULT.all_differences({"type": "x"}, {"type": "x", "k": None}) == [FieldDiff("k", "<absent>", None, False)]
    assert DEFAULT.all_differences({"type": "x", "l": [1, 2]}, {"type": "x", "l": [1]}) == [FieldDiff("l", [1, 2], [1], False)]
    assert DEFAULT.all_differences({"type": "x", "l": [1]}, {"type": "x", "l": "1"}) == [FieldDiff("l", [1], "1", False)]
    assert DEFAULT.all_differences({"type": "x", "l": [1, 2]}, {"type": "x", "l": [1, 3]}) == [FieldDiff("l[1]", 2, 3, False)]


def test_exact_mode_flags_every_difference():
    matcher = Matcher.build({"mode": "exact"})
    assert matcher.all_differences({"type": "x", "a": 1}, {"type": "x", "a": 2}) == [FieldDiff("a", 1, 2, True)]


def test_ignored_paths_cover_everything_below_them_and_stars_take_indexes_only():
    matcher = Matcher.build({"ignore": ["meta", "list[*].secret"]})
    expected = {"type": "x", "event_id": "1", "meta": {"a": 1}, "list": [{"secret": 1, "kept": 1}], "obj": {"k": {"secret": 1}}}
    received = {"type": "x", "event_id": "2", "meta": {"a": 2}, "list": [{"secret": 2, "kept": 2}], "obj": {"k": {"secret": 2}}}
    assert matcher.all_differences(expected, received) == [
        FieldDiff("list[0].kept", 1, 2, False),
        FieldDiff("obj.k.secret", 1, 2, False),  # "k" is a key, not an index: [*] does not take it
    ]
    audio = {"type": "conversation.item.create", "item": {"type": "message", "content": [{"type": "input_audio", "audio": "AAAA"}]}}
    other = {"type": "conversation.item.create", "item": {"type": "message", "content": [{"type": "input_audio", "audio": "BBBB"}]}}
    assert DEFAULT.all_differences(audio, other) == []
    # [*] takes indexes, not keys
    starred = Matcher.build({"ignore": ["obj[*].secret"]})
    assert starred.all_differences({"type": "x", "obj": {"k": {"secret": 1}}}, {"type": "x", "obj": {"k": {"secret": 2}}}) == [
        FieldDiff("obj.k.secret", 1, 2, False)
    ]
    # a pattern longer than the path does not apply to it
    assert Matcher.build({"ignore": ["a.b.c"]}).all_differences({"type": "x", "a": {"b": 1}}, {"type": "x", "a": {"b": 2}}) == [
        FieldDiff("a.b", 1, 2, False)
    ]


@pytest.mark.parametrize("mode", ["default", "exact", "type"])
def test_events_equal_but_for_their_event_id_match_in_every_mode(mode):
    """The hot path's shortcut: the same event sent again with another event_id matches."""
    matcher = Matcher.build({"mode": mode})
    recorded = {"type": "conversation.item.create", "event_id": "evt_rec",
                "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}
    assert matcher.differences(recorded, {**recorded, "event_id": "evt_live"}) == []
    assert matcher.differences(recorded, {k: v for k, v in recorded.items() if k != "event_id"}) == []


def test_an_event_that_differs_beside_its_event_id_still_reports_the_field():
    """The shortcut never hides a difference: one changed role is named with both values."""
    matcher = Matcher.build(None)
    recorded = {"type": "conversation.item.create", "event_id": "evt_rec",
                "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}
    live = {"type": "conversation.item.create", "event_id": "evt_rec",
            "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "hi"}]}}
    diffs = matcher.differences(recorded, live)
    assert [(d.path, d.expected, d.received) for d in diffs] == [("item.role", "user", "system")]


def test_matchers_are_built_once_per_set_of_layers_and_shared():
    # a server asks for one per connection: each build kept ~4 KB alive per finished connection
    assert Matcher.build(None, None) is Matcher.build(None, {})
    custom = {"mode": "type"}
    assert Matcher.build({"rules": {"x": ["a"]}}, custom) is Matcher.build({"rules": {"x": ["a"]}}, dict(custom))
    assert Matcher.build(None, custom).mode == "type" and Matcher.build(None, None).mode == "default"
