"""protocol/frames.py: the direct scan of an object frame decodes what ``JSONDecoder.decode`` decodes and
refuses what it refuses, with the same error (the text an ``invalid_json`` error carries)."""

from __future__ import annotations

import json

from hypothesis import example, given, strategies as st

from mockrealtime.protocol import frames

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


def outcome(decode, text):
    try:
        return "ok", decode(text)
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


@given(st.dictionaries(st.text(max_size=6), JSON, max_size=4), st.sampled_from(["", " ", "\n", "}", "x", ",{}", "{"]),
       st.sampled_from(["", " ", "{", "["]))
@example({"a": 1}, "}", "")  # an extra closing brace: the scan stops early, decode names the extra data
def test_the_direct_scan_agrees_with_decode_on_objects_with_anything_around_them(value, after, before):
    text = before + json.dumps(value) + after
    assert outcome(frames._decode, text) == outcome(frames._DECODER.decode, text)


@given(st.text(max_size=40).map(lambda t: "{" + t + "}"))
@example('{"a": NaN}')
@example('{"a": 1e999}')
@example('{"a": "\\ud800"}')
def test_the_direct_scan_agrees_with_decode_on_any_text_between_braces(text):
    assert outcome(frames._decode, text) == outcome(frames._DECODER.decode, text)
