"""The compiled validity check agrees with jsonschema, on real frames and on thousands of broken ones."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mockrealtime.protocol.fastcheck import compile_schema
from mockrealtime.protocol.validation import _compiled, _fast_checks

from test_protocol_validation import CATALOGUE, GOOD_FRAMES

ODD_VALUES = [None, True, 0, 1.5, -3, "", "x", [], {}, [1], {"type": "x"}]


def mutations(event: Any) -> Iterator[Any]:
    """The event with one node deleted, replaced by an odd value, or given an unknown key."""

    def walk(node: Any, path: tuple) -> Iterator[tuple]:
        yield path
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, (*path, i))

    for path in list(walk(event, ())):
        if not path:
            continue
        for value in [*ODD_VALUES, "__delete__", "__extra__"]:
            copy_ = copy.deepcopy(event)
            parent = copy_
            for p in path[:-1]:
                parent = parent[p]
            if value == "__delete__":
                del parent[path[-1]]
            elif value == "__extra__":
                target = parent[path[-1]]
                if not isinstance(target, dict):
                    continue
                target["surprise"] = 1
            else:
                parent[path[-1]] = value
            yield copy_


CORPUS = [(d, e) for d, events in GOOD_FRAMES.items() for e in events] + [
    (p.values[0], p.values[1]) for p in CATALOGUE if isinstance(p.values[1], dict)
]


@pytest.mark.parametrize(("dialect", "event"), CORPUS)
def test_fast_check_agrees_with_jsonschema_on_the_frame_and_its_mutations(dialect, event):
    validators, fast = _compiled(dialect), _fast_checks(dialect)
    checked = 0
    for candidate in [event, *mutations(event)]:
        etype = candidate.get("type") if isinstance(candidate, dict) else None
        if not isinstance(etype, str):
            continue
        if etype not in validators:
            continue
        expected = not any(True for _ in validators[etype].iter_errors(candidate))
        assert fast[etype](candidate) is expected, candidate
        checked += 1
    assert checked >= 1 or event.get("type") not in validators


def test_unknown_keywords_refuse_to_compile():
    with pytest.raises(NotImplementedError, match="uniqueItems"):
        compile_schema({"type": "array", "uniqueItems": True})


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": "integer"}, 2.0, True),
        ({"enum": [1]}, 1, True),
        ({"const": False}, False, 0),
        ({"type": ["string", "null"]}, None, 1),
    ],
)
def test_json_types_are_not_pythons(schema, good, bad):
    check = compile_schema(schema)
    assert check(good) and not check(bad)


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"pattern": "^[0-9 ]*$"}, "1 2", "1 x"),
        ({"minLength": 1}, "a", ""),
        ({"minItems": 1}, [0], []),
        ({"minProperties": 2}, {"a": 1, "b": 2}, {"a": 1}),
        ({"maxProperties": 1}, {"a": 1}, {"a": 1, "b": 2}),
    ],
)
def test_the_keywords_of_the_cassette_schema_agree_with_jsonschema(schema, good, bad):
    check = compile_schema(schema)
    validator = Draft202012Validator(schema)
    assert check(good) and validator.is_valid(good)
    assert not check(bad) and not validator.is_valid(bad)
    assert check(42) and validator.is_valid(42)  # each applies to its own JSON type only


_OBJECT = {"type": "object", "required": ["a"], "properties": {"a": {"type": "string", "enum": ["x", "y"]},
                                                               "b": {"type": "array", "items": {"type": "integer"}}}}


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        (_OBJECT, {"a": "x", "b": [1, 2]}, {"b": [1]}),  # a required key missing
        (_OBJECT, {"a": "y"}, {"a": "z"}),  # a string outside the enum
        (_OBJECT, {"a": "x", "b": []}, {"a": "x", "b": [1, "2"]}),  # an array item of the wrong type
        (_OBJECT, {"a": "x"}, ["a"]),  # not an object
        ({**_OBJECT, "additionalProperties": False}, {"a": "x", "b": [3]}, {"a": "x", "c": 1}),  # closed
        ({**_OBJECT, "additionalProperties": {"type": "boolean"}}, {"a": "x", "c": True}, {"a": "x", "c": 1}),
        ({"type": "array", "items": {"type": "string"}}, ["a"], "a"),  # not an array
        ({"type": "string", "enum": ["x"]}, "x", 1),
    ],
)
def test_fused_object_array_and_enum_checks_agree_with_jsonschema(schema, good, bad):
    """The hot-path closures that fuse type with properties, items or enum accept and refuse as
    jsonschema does."""
    check = compile_schema(schema)
    validator = Draft202012Validator(schema)
    assert check(good) and validator.is_valid(good)
    assert not check(bad) and not validator.is_valid(bad)
