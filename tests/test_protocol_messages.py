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
