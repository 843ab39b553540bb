"""The compile-time specialisation of the shipped client-event schemas (protocol/validation.py):
refs into ``_defs`` inlined, tagged ``allOf`` unions turned into one ``x-dispatch``. It only makes
validation faster, so validation results cannot show when it stops happening: these tests look at
the specialised schema itself."""

from __future__ import annotations

import pytest

from mockrealtime.protocol.validation import _MAX_INLINE_DEPTH, _specialise, _tag_of

DEFS = {"Text": {"type": "string"}, "Pair": {"type": "array", "items": {"$ref": "#/$defs/Text"}}}


def branch(prop: str, value, then, **cond):
    return {"if": {"properties": {prop: {"const": value}}, "required": [prop], **cond}, "then": then}


def test_a_lone_ref_into_the_defs_is_inlined_recursively():
    assert _specialise({"$ref": "#/$defs/Pair"}, DEFS) == {"type": "array", "items": {"type": "string"}}
    assert _specialise([{"$ref": "#/$defs/Text"}, 3, "x"], DEFS) == [{"type": "string"}, 3, "x"]
    assert _specialise({"properties": {"a": {"$ref": "#/$defs/Text"}}}, DEFS) == {"properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(
    "node",
    [
        {"$ref": "#/$defs/Text", "description": "a ref with company stays"},
        {"$ref": "#/$defs/Unknown"},
        {"$ref": "other.json#/properties/x"},
        {"$ref": 5},
    ],
)
def test_other_refs_stay_as_they_are(node):
    assert _specialise(node, DEFS) == node


def test_the_defs_block_itself_is_dropped():
    assert _specialise({"type": "object", "$defs": DEFS}, DEFS) == {"type": "object"}


def test_a_recursive_def_is_inlined_only_so_deep():
    defs = {"Node": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}
    node, depth = _specialise({"$ref": "#/$defs/Node"}, defs), 0
    while "items" in node:
        node, depth = node["items"], depth + 1
    assert (node, depth) == ({"$ref": "#/$defs/Node"}, _MAX_INLINE_DEPTH)


def test_a_tagged_union_becomes_one_dispatch_on_its_tag():
    schema = {"allOf": [
        branch("type", "message", {"required": ["role"]}),
        {"required": ["type"]},
        branch("type", "function_call", {"required": ["name"]}, type="object"),
        branch("role", "user", {"required": ["content"]}),  # another property: stays a plain branch
    ]}
    assert _specialise(schema, DEFS) == {"allOf": [
        {"required": ["type"]},
        branch("role", "user", {"required": ["content"]}),
        {"x-dispatch": {"property": "type", "cases": {"message": {"required": ["role"]}, "function_call": {"required": ["name"]}}}},
    ]}


def test_an_allof_without_tags_is_left_alone():
    schema = {"allOf": [{"required": ["a"]}, {"if": {"required": ["b"]}, "then": {}}]}
    assert _specialise(schema, DEFS) == schema


@pytest.mark.parametrize(
    ("node", "tag"),
    [
        (branch("type", "message", {}), ("type", "message")),
        (branch("n", 3, {}), ("n", 3)),
        (branch("on", True, {}), ("on", True)),
        (branch("type", "x", {}, type="object"), ("type", "x")),
        ("not a dict", None),
        ({"if": {}, "then": {}, "else": {}}, None),
        ({"if": "x", "then": {}}, None),
        ({"if": {"properties": {"a": {"const": 1}, "b": {"const": 2}}, "required": ["a"]}, "then": {}}, None),
        ({"if": {"properties": "x", "required": ["a"]}, "then": {}}, None),
        ({"if": {"properties": {"a": {"const": 1}}}, "then": {}}, None),  # not required: absent would match
        (branch("a", 1, {}, minProperties=1), None),
        (branch("a", 1, {}, type="array"), None),
        ({"if": {"properties": {"a": {"const": 1}}, "required": ["a", "b"]}, "then": {}}, None),
        ({"if": {"properties": {"a": {"const": 1, "type": "integer"}}, "required": ["a"]}, "then": {}}, None),
        ({"if": {"properties": {"a": "x"}, "required": ["a"]}, "then": {}}, None),
        (branch("a", 1.5, {}), None),
        (branch("a", None, {}), None),
        (branch("a", [1], {}), None),
    ],
)
def test_what_counts_as_a_tagged_branch(node, tag):
    assert _tag_of(node) == tag
