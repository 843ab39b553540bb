"""protocol/jsontext.py: the encoder built once writes exactly what json.dumps writes."""

from __future__ import annotations

import json

from hypothesis import given, strategies as st

from mockrealtime.protocol import jsontext

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def test_the_c_encoder_is_the_one_in_use_on_cpython():
    assert jsontext.compact is not jsontext._dumps


@given(JSON)
def test_compact_is_json_dumps_with_compact_separators_and_utf8(value):
    assert jsontext.compact(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_compact_refuses_what_json_dumps_refuses():
    for bad in ({"a": object()}, {(1, 2): 1}):
        try:
            json.dumps(bad)
        except TypeError:
            pass
        try:
            jsontext.compact(bad)
        except TypeError:
            continue
        raise AssertionError(f"{bad!r} was encoded")
