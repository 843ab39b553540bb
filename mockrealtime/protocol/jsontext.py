"""Compact JSON text for the wire, with the standard library's C encoder built once.

``json.dumps(event, separators=..., ensure_ascii=False)`` builds a ``JSONEncoder`` and a C encoder
on every call: for a small server event that was half of the call. :func:`compact` keeps one C
encoder and gives the same text (a test compares them); where the C encoder is not there (another
Python), it is ``json.dumps`` itself. Parsed JSON has no reference cycles, so the encoder keeps no
markers to detect them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any

SEPARATORS = (",", ":")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=SEPARATORS, ensure_ascii=False)


def _c_encoder() -> Callable[[Any], str] | None:
    make = getattr(_encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        # the arguments JSONEncoder.iterencode passes (CPython 3.11 to 3.13): markers, default,
        # string encoder, indent, key and item separators, sort_keys, skipkeys, allow_nan
        encode = make(None, json.JSONEncoder().default, _encoder.encode_basestring, None, ":", ",", False, False, True)
        join = "".join

        def compact(value: Any) -> str:
            return join(encode(value, 0))

        if compact({"a": [1, 2.5, None, True, "é\n"]}) != _dumps({"a": [1, 2.5, None, True, "é\n"]}):
            return None
        return compact
    except (TypeError, ValueError):
        return None


#: Compact JSON, non-ASCII as itself (UTF-8 on the wire): the text of ``json.dumps`` with those options.
compact: Callable[[Any], str] = _c_encoder() or _dumps
