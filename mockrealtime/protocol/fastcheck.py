"""A JSON Schema *validity* check compiled to plain Python closures, for the hot path.

jsonschema costs 5-10 us per schema node it visits, so a valid ``conversation.item.create`` took
~100 us even with tagged unions dispatched. Almost every client event is valid, so the validator
first asks this compiled predicate (a few microseconds) and runs jsonschema only to explain a
failure. The predicate covers exactly the keywords the shipped client-event schemas use and refuses
to compile any other, so a schema change cannot silently make the two disagree
(tests/test_fastcheck.py compares them on valid and broken events).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"$comment", "title", "$id", "$schema", "description", "default", "examples"})


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": _is_number,
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer()),
}


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return a == b


def _always(x: Any) -> bool:
    return True


_OBJECT_KEYWORDS = frozenset({"type", "required", "properties", "additionalProperties"})


def _object_check(schema: dict[str, Any]) -> Check:
    """``type: object`` with its required keys and its properties, as one closure that walks the
    instance's keys (a handful) rather than the schema's properties (dozens for a session)."""
    required = tuple(schema.get("required") or ())
    compiled = {k: compile_schema(v) for k, v in (schema.get("properties") or {}).items()}
    props: dict[str, Check | None] = {k: (None if f is _always else f) for k, f in compiled.items()}
    extra = schema.get("additionalProperties", True)
    closed = extra is False
    f_extra = None if extra is True or closed else compile_schema(extra)
    if f_extra is _always:
        f_extra = None
    missing = object()  # an unknown key: looked up once

    def check_object(x: Any) -> bool:
        if not isinstance(x, dict):
            return False
        for k in required:
            if k not in x:
                return False
        get = props.get
        for k, v in x.items():
            f = get(k, missing)
            if f is missing:
                if closed or (f_extra is not None and not f_extra(v)):
                    return False
            elif f is not None and not f(v):  # type: ignore[operator]
                return False
        return True

    return check_object


def _array_check(f_item: Check) -> Check:
    def check_array(x: Any) -> bool:
        if not isinstance(x, list):
            return False
        for v in x:
            if not f_item(v):
                return False
        return True

    return check_array


def compile_schema(schema: Any) -> Check:
    """A predicate that is True exactly when ``schema`` accepts the instance."""
    if schema is True or schema == {}:
        return _always
    if schema is False:
        return lambda x: False
    if not isinstance(schema, dict):
        raise TypeError(f"not a schema: {schema!r}")
    checks: list[Check] = []
    unknown = set(schema) - _ANNOTATIONS - {
        "type", "enum", "const", "required", "properties", "additionalProperties", "items",
        "allOf", "if", "then", "else", "not", "minimum", "maximum", "x-dispatch",
        "pattern", "minLength", "minItems", "minProperties", "maxProperties",
    }
    if unknown:
        raise NotImplementedError(f"fastcheck does not know the keyword(s) {sorted(unknown)}")
    if schema.get("type") == "object":
        # the common node, fused into one closure: type, required, properties, additionalProperties
        checks.append(_object_check(schema))
        schema = {k: v for k, v in schema.items() if k not in _OBJECT_KEYWORDS}
    if schema.get("type") == "string" and all(isinstance(v, str) for v in schema.get("enum", (1,))):
        schema = {k: v for k, v in schema.items() if k != "type"}  # the enum's own check is a string check
    if schema.get("type") == "array" and "items" in schema:
        checks.append(_array_check(compile_schema(schema["items"])))
        schema = {k: v for k, v in schema.items() if k not in ("type", "items")}
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        preds = [_TYPES[k] for k in kinds]
        alternatives = tuple(preds)
        checks.append(preds[0] if len(preds) == 1 else (lambda x: any(f(x) for f in alternatives)))
    if "enum" in schema:
        values = schema["enum"]
        if all(isinstance(v, str) for v in values):
            allowed = frozenset(values)
            checks.append(lambda x: isinstance(x, str) and x in allowed)
        else:
            checks.append(lambda x: any(_equal(x, v) for v in values))
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda x: _equal(x, const))
    if "required" in schema:
        req = tuple(schema["required"])
        checks.append(lambda x: not isinstance(x, dict) or all(k in x for k in req))
    props = {k: compile_schema(v) for k, v in (schema.get("properties") or {}).items()}
    if props:
        items = tuple(props.items())

        def check_props(x: Any) -> bool:
            if isinstance(x, dict):
                for k, f in items:
                    if k in x and not f(x[k]):
                        return False
            return True

        checks.append(check_props)
    extra = schema.get("additionalProperties", True)
    if extra is not True:
        known = frozenset(props)
        if extra is False:
            checks.append(lambda x: not isinstance(x, dict) or known.issuperset(x))
        else:
            f_extra = compile_schema(extra)
            checks.append(lambda x: not isinstance(x, dict) or all(f_extra(v) for k, v in x.items() if k not in known))
    if "items" in schema:
        f_item = compile_schema(schema["items"])
        def check_items(x: Any) -> bool:
            if isinstance(x, list):
                for v in x:
                    if not f_item(v):
                        return False
            return True

        checks.append(check_items)
    for sub in schema.get("allOf") or ():
        checks.append(compile_schema(sub))
    if "if" in schema:
        f_if = compile_schema(schema["if"])
        f_then = compile_schema(schema.get("then", True))
        f_else = compile_schema(schema.get("else", True))
        checks.append(lambda x: f_then(x) if f_if(x) else f_else(x))
    if "not" in schema:
        f_not = compile_schema(schema["not"])
        checks.append(lambda x: not f_not(x))
    if "minimum" in schema:
        minimum = schema["minimum"]
        checks.append(lambda x: not _is_number(x) or x >= minimum)
    if "maximum" in schema:
        maximum = schema["maximum"]
        checks.append(lambda x: not _is_number(x) or x <= maximum)
    if "pattern" in schema:
        search = re.compile(schema["pattern"]).search
        checks.append(lambda x: not isinstance(x, str) or search(x) is not None)
    if "minLength" in schema:
        # JSON Schema counts code points, as len() does
        min_length = schema["minLength"]
        checks.append(lambda x: not isinstance(x, str) or len(x) >= min_length)
    if "minItems" in schema:
        min_items = schema["minItems"]
        checks.append(lambda x: not isinstance(x, list) or len(x) >= min_items)
    if "minProperties" in schema:
        min_props = schema["minProperties"]
        checks.append(lambda x: not isinstance(x, dict) or len(x) >= min_props)
    if "maxProperties" in schema:
        max_props = schema["maxProperties"]
        checks.append(lambda x: not isinstance(x, dict) or len(x) <= max_props)
    if "x-dispatch" in schema:
        prop = schema["x-dispatch"]["property"]
        cases = {k: compile_schema(v) for k, v in schema["x-dispatch"]["cases"].items()}

        def dispatch(x: Any) -> bool:
            if isinstance(x, dict):
                value = x.get(prop)
                if isinstance(value, (str, int, bool)) and not (isinstance(value, bool) and value not in cases):
                    f = cases.get(value)
                    if f is not None:
                        return f(x)
            return True

        checks.append(dispatch)
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    all_checks = tuple(checks)

    def check_all(x: Any) -> bool:
        for c in all_checks:  # a plain loop: a generator in all() costs more than the checks
            if not c(x):
                return False
        return True

    return check_all
