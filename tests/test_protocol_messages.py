"""The wording of the API errors the validator builds (protocol/validation.py), piece by piece:
each helper's exact output, so a changed word, bound or list style shows."""

from __future__ import annotations

import pytest

from mockrealtime.protocol.validation import _invalid_type, _kind, _out_of_range, _quote_list, _render, _scalar


@pytest.mark.parametrize(
    ("value", "kind"),
    [(None, "null"), (True, "a boolean"), (False, "a boolean"), (3, "an integer"), (0.5, "a decimal"),
     ("x", "a string"), ([], "an array"), ({}, "an object")],
)
def test_what_a_value_is_called(value, kind):
    assert _kind(value) == kind


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ("object", "Invalid type for 'session.tools[0]': expected an object, but got a string instead."),
        (["string", "null"], "Invalid type for 'session.tools[0]': expected a string, but got a string instead."),
        (["null"], "Invalid type for 'session.tools[0]': expected null, but got a string instead."),
        (["integer", "number"], "Invalid type for 'session.tools[0]': expected one of an integer or a decimal, but got a string instead."),
        (["string", "array", "boolean", "null"],
         "Invalid type for 'session.tools[0]': expected one of a string, an array or a boolean, but got a string instead."),
    ],
)
def test_an_invalid_type_names_what_was_expected_and_what_came(expected, message):
    error = _invalid_type(("session", "tools", 0), expected, "x")
    assert (error.code, error.message, error.param) == ("invalid_type", message, "session.tools[0]")


@pytest.mark.parametrize(
    ("keyword", "schema", "code", "message"),
    [
        ("minimum", {"type": "integer"}, "integer_below_min_value",
         "Invalid 'audio.rate': integer below minimum value. Expected a value >= 24000, but got 16000 instead."),
        ("maximum", {"type": "integer"}, "integer_above_max_value",
         "Invalid 'audio.rate': integer above maximum value. Expected a value <= 24000, but got 16000 instead."),
        ("minimum", {"type": "number"}, "decimal_below_min_value",
         "Invalid 'audio.rate': decimal below minimum value. Expected a value >= 24000, but got 16000 instead."),
        ("maximum", {}, "decimal_above_max_value",
         "Invalid 'audio.rate': decimal above maximum value. Expected a value <= 24000, but got 16000 instead."),
    ],
)
def test_an_out_of_range_number_says_which_bound(keyword, schema, code, message):
    error = _out_of_range(("audio", "rate"), keyword, 24000, 16000, schema)
    assert (error.code, error.message, error.param) == (code, message, "audio.rate")


def test_lists_params_and_scalars_as_the_api_writes_them():
    assert _quote_list(["a"]) == "'a'"
    assert _quote_list(["a", 1]) == "'a' and '1'"
    assert _quote_list(["a", "b", True]) == "'a', 'b', and 'true'"
    assert _render(("session", "tools", 0, "name")) == "session.tools[0].name"
    assert _render((0, "x")) == "[0].x"
    assert _render(()) == ""
    assert (_scalar("text"), _scalar(1.5), _scalar(None), _scalar([1])) == ("text", "1.5", "null", "[1]")


# -- which error is reported when there are several (the module's invariants) --------------------------


def first(event):
    from mockrealtime.protocol import ClientEventValidator

    error = ClientEventValidator("ga").validate(event)
    return None if error is None else (error.code, error.param)


def test_at_one_depth_an_unknown_parameter_goes_before_an_invalid_type_sent_earlier():
    assert first({"type": "session.update", "session": {"type": "realtime", "tools": "x", "bogus": 1}}) == ("unknown_parameter", "session.bogus")
    # of two of a kind, the field sent first
    assert first({"type": "session.update", "session": {"type": "realtime", "tools": "x", "instructions": 3}}) == ("invalid_type", "session.tools")
    assert first({"type": "session.update", "session": {"type": "realtime", "instructions": 3, "tools": "x"}}) == ("invalid_type", "session.instructions")


def test_of_several_missing_parameters_the_first_the_schema_requires_is_reported():
    assert first({"type": "conversation.item.create", "item": {"type": "function_call_output"}}) == ("missing_required_parameter", "item.call_id")
    assert first({"type": "conversation.item.truncate"}) == ("missing_required_parameter", "audio_end_ms")
    assert first({"type": "conversation.item.truncate", "audio_end_ms": 1}) == ("missing_required_parameter", "content_index")


def translated(schema, instance):
    from jsonschema import Draft202012Validator

    from mockrealtime.protocol.validation import _translate

    (error,) = Draft202012Validator(schema).iter_errors(instance)
    return [(path, e.code, e.message, e.param) for path, e in _translate(error)]


def test_violations_of_any_schema_keyword_translate_to_api_errors():
    assert translated({"type": "object", "additionalProperties": False}, {"x": 1}) == [
        (("x",), "unknown_parameter", "Unknown parameter: 'x'.", "x")]
    assert translated({"properties": {"mode": {"const": "abc"}}}, {"mode": "b"}) == [
        (("mode",), "invalid_value", "Invalid value: 'b'. Supported values are: 'abc'.", "mode")]
    assert translated({"properties": {"name": {"minLength": 3}}}, {"name": "ab"}) == [
        (("name",), "invalid_value", "Invalid value for 'name'.", "name")]


def test_a_recursive_def_reached_through_a_list_is_inlined_only_so_deep():
    from mockrealtime.protocol.validation import _specialise

    defs = {"Node": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}}
    node, depth = _specialise({"$ref": "#/$defs/Node"}, defs), 0
    while "anyOf" in node:
        node, depth = node["anyOf"][0], depth + 1
    assert node == {"$ref": "#/$defs/Node"} and depth > 1


def test_ties_go_to_the_order_required_lists_and_the_parent_sent_first():
    from jsonschema import Draft202012Validator

    from mockrealtime.protocol.validation import _first_error

    def pick(schema, instance):
        error = _first_error(Draft202012Validator(schema).iter_errors(instance), instance)
        return error.param

    assert pick({"required": ["zeta", "alpha"]}, {}) == "zeta"
    nested = {"properties": {"a": {"required": ["x"]}, "b": {"required": ["x"]}}}
    assert pick(nested, {"b": {}, "a": {}}) == "b.x"
    assert pick(nested, {"a": {}, "b": {}}) == "a.x"
