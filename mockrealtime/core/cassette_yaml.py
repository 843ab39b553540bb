"""Cassette YAML as plain data: a safe, fast loader with alias expansion capped, and the documents
of a cassette file (the recorder appends one per session part).

Only :mod:`mockrealtime.core.cassette` and the secret scan use this; see there for the format.
"""

from __future__ import annotations

from typing import Any

import yaml

from mockrealtime.errors import CassetteFormatError

__all__ = ["DOCUMENT_END", "MAX_ALIAS_NODES", "CassetteLoader", "complete_documents", "parse_documents"]

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


#: Nodes that aliases may add to a document, in all: enough for a shared tool list repeated in
#: every session.update, far too few for a "billion laughs" (see :class:`CassetteLoader`).
MAX_ALIAS_NODES = 100_000

_TAG = "tag:yaml.org,2002:"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {v: True for v in ("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")}
_BOOLS.update({v: False for v in ("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")})
#: plain scalars seen before and the tag they resolved to (keys, event types, ids repeat a lot)
_RESOLVED: dict[str, str] = {}


class CassetteLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """YAML as plain JSON-like data (mappings, sequences, strings, numbers, booleans, null), fast,
    with alias expansion capped.

    Aliases are how a few hundred bytes of YAML expand into gigabytes once something walks the
    data (a "billion laughs"). Older writers emitted them for repeated values, so they are not
    refused outright: each alias met while the document is built adds the node count of what it
    stands for, and past :data:`MAX_ALIAS_NODES` the document is refused, before anything walks it.
    A tag other than the plain data ones is refused (``!!python/...``, ``!!binary``, ``!!set``);
    a date stays the string it is written as (JSON has no dates).

    The parser is libyaml's where available; the data are built by one tight walk over its nodes
    instead of PyYAML's general constructor, which made up most of the load time of a long call.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0] and len(value) <= 64:
            tag = _RESOLVED.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_RESOLVED) < 50_000:
                    _RESOLVED[value] = tag
            return tag
        return super().resolve(kind, value, implicit)

    def construct_document(self, node: yaml.Node) -> Any:
        return _Builder().build(node)


class _Builder:
    __slots__ = ("done", "building", "sizes", "alias_nodes")

    def __init__(self) -> None:
        self.done: dict[int, Any] = {}
        self.building: set[int] = set()
        self.sizes: dict[int, int] = {}
        self.alias_nodes = 0

    def build(self, node: yaml.Node) -> Any:
        cls = node.__class__
        tag = node.tag
        if cls is yaml.ScalarNode:
            if tag == _TAG + "str":
                return node.value
            return self.scalar(node, tag)  # type: ignore[arg-type]
        key = id(node)
        if key in self.done or key in self.building:
            return self.alias(node, key)
        self.building.add(key)
        build = self.build
        scalar, string = yaml.ScalarNode, _TAG + "str"
        # strings inline (most of the nodes): a call per node was a fifth of a long call's load
        if cls is yaml.MappingNode and tag == _TAG + "map":
            out: Any = {}
            for k, v in node.value:
                if k.__class__ is scalar and k.tag == string:
                    name = k.value
                else:
                    name = build(k)
                    if isinstance(name, (dict, list)) or k.tag == _TAG + "merge":
                        raise _refuse("a mapping key must be a plain value (merge keys are not supported)", k)
                out[name] = v.value if v.__class__ is scalar and v.tag == string else build(v)
        elif cls is yaml.SequenceNode and tag == _TAG + "seq":
            out = [v.value if v.__class__ is scalar and v.tag == string else build(v) for v in node.value]
        else:
            raise _refuse(f"the tag {tag} is not plain data", node)
        self.building.discard(key)
        self.done[key] = out
        return out

    def alias(self, node: yaml.Node, key: int) -> Any:
        if key in self.building:
            raise _refuse("an alias refers to a node that contains it", node)
        self.alias_nodes += _node_count(node, self.sizes)
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise _refuse(f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes", node)
        return self.done[key]

    @staticmethod
    def scalar(node: yaml.ScalarNode, tag: str) -> Any:
        value = node.value
        kind = tag[len(_TAG):] if tag.startswith(_TAG) else tag
        if kind == "int":
            return int(value) if value.isdigit() else yaml.constructor.SafeConstructor.construct_yaml_int(_SAFE, node)
        if kind == "float":
            try:
                return float(value)
            except ValueError:
                return yaml.constructor.SafeConstructor.construct_yaml_float(_SAFE, node)
        if kind == "null" and value in _NULLS:
            return None
        if kind == "bool" and value in _BOOLS:
            return _BOOLS[value]
        if kind == "timestamp":
            return value
        raise _refuse(f"the tag {tag} is not plain data", node)


_SAFE = yaml.constructor.SafeConstructor()


def _refuse(problem: str, node: yaml.Node) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def _node_count(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes under ``node`` with aliases expanded, counted in time linear in the distinct nodes."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if isinstance(node, yaml.MappingNode):
        n = 1 + sum(_node_count(k, sizes) + _node_count(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_node_count(v, sizes) for v in node.value)
    else:
        n = 1
    sizes[id(node)] = n
    return n


#: The line that ends each document the recorder appends (see :func:`complete_documents`).
DOCUMENT_END = "...\n"


def complete_documents(text: str) -> str:
    """``text`` up to the end of its last complete document.

    The recorder appends a cassette's sessions as further YAML documents, each closed by a ``...``
    line, so a document after the last such line is a write that was cut short (the process was
    killed mid-append): it is left out, and the recorder cuts it off before appending again.
    """
    end = text.rfind("\n" + DOCUMENT_END)
    if end == -1:
        return text
    end += 1 + len(DOCUMENT_END)
    return text if not text[end:].strip() else text[:end]


def parse_documents(text: str, path: str) -> list[Any]:
    """The YAML documents of a cassette file (plain data, no aliases); CassetteFormatError if not YAML."""
    try:
        return list(yaml.load_all(complete_documents(text), Loader=CassetteLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CassetteFormatError(path, "$", f"not valid YAML{where}: {exc}") from None
    except RecursionError:
        raise CassetteFormatError(path, "$", "nested too deeply") from None
