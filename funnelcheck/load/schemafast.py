"""A fast yes-or-maybe check of a document against one of our JSON Schemas.

`jsonschema` is thorough but slow to import (~0.2 s) and to run (~0.5 ms per small file); a
registry file is almost always valid. This module compiles the subset of draft 2020-12 that
the schemas in `schemas/` use into nested Python closures. The result is *sound for "valid"*:
`True` means jsonschema would find no error; `False` means "ask jsonschema", which then gives
the verdict and the messages. Any keyword outside the subset makes the whole schema compile
to "always ask", so a new schema feature can only cost speed, never correctness.

`pattern` keeps ECMA-262 meaning (`ecma_regex`): `$` is the end of the string, not "before a
final newline" as in Python, so "signup\n" is not an id. `schema` gives jsonschema the same rule.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable

Check = Callable[[Any], bool]

# RFC 3339 date-time, strict enough that every match is valid for any format checker.
_DATE_TIME = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?"
                        r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)")
_ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "$defs", "examples", "default"}


class _Unsupported(Exception):
    pass


def compile_schema(schema: dict) -> Check:
    """A predicate: True only when `schema` certainly accepts the instance."""
    try:
        return _compile(schema, schema)
    except _Unsupported:
        return lambda instance: False


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "number": _is_number,
    "integer": lambda x: _is_number(x) and (isinstance(x, int) or x.is_integer()),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
}


def _compile(schema, root: dict) -> Check:
    if schema is True or schema == {}:
        return lambda x: True
    if schema is False:
        return lambda x: False
    if not isinstance(schema, dict):
        raise _Unsupported()
    checks: list[Check] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        maker = _KEYWORDS.get(keyword)
        if maker is None:
            raise _Unsupported(keyword)
        checks.append(maker(value, schema, root))
    if len(checks) == 1:
        return checks[0]
    return lambda x: all(c(x) for c in checks)


def _type(value, schema, root) -> Check:
    names = value if isinstance(value, list) else [value]
    if any(n not in _TYPES for n in names):
        raise _Unsupported()
    tests = [_TYPES[n] for n in names]
    return lambda x: any(t(x) for t in tests)


def _ref(value, schema, root) -> Check:
    if not isinstance(value, str) or not value.startswith("#/"):
        raise _Unsupported()
    target: Any = root
    for part in value[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            raise _Unsupported()
        target = target[part]
    if target is root:
        raise _Unsupported()  # recursion: not used by our schemas
    return _compile(target, root)


def _properties(value, schema, root) -> Check:
    compiled = {name: _compile(sub, root) for name, sub in value.items()}

    def check(x) -> bool:
        if not isinstance(x, dict):
            return True
        for name, item in x.items():
            c = compiled.get(name)
            if c is not None and not c(item):
                return False
        return True
    return check


def _additional(value, schema, root) -> Check:
    known = set(schema.get("properties", {}))
    if "patternProperties" in schema:
        raise _Unsupported()
    if value is False:
        return lambda x: not isinstance(x, dict) or all(k in known for k in x)
    sub = _compile(value, root)
    return lambda x: not isinstance(x, dict) or all(sub(v) for k, v in x.items() if k not in known)


def _required(value, schema, root) -> Check:
    return lambda x: not isinstance(x, dict) or all(name in x for name in value)


def _property_names(value, schema, root) -> Check:
    sub = _compile(value, root)
    return lambda x: not isinstance(x, dict) or all(sub(k) for k in x)


def _dependent_required(value, schema, root) -> Check:
    return lambda x: not isinstance(x, dict) or all(
        all(other in x for other in needs) for name, needs in value.items() if name in x)


def _min_properties(value, schema, root) -> Check:
    return lambda x: not isinstance(x, dict) or len(x) >= value


def _max_properties(value, schema, root) -> Check:
    return lambda x: not isinstance(x, dict) or len(x) <= value


def _items(value, schema, root) -> Check:
    if not isinstance(value, dict):
        raise _Unsupported()
    sub = _compile(value, root)
    return lambda x: not isinstance(x, list) or all(sub(i) for i in x)


def _min_items(value, schema, root) -> Check:
    return lambda x: not isinstance(x, list) or len(x) >= value


def _unique_items(value, schema, root) -> Check:
    if not value:
        return lambda x: True
    # Only lists of strings are judged here; anything else is left to jsonschema.
    return lambda x: not isinstance(x, list) or (all(isinstance(i, str) for i in x) and len(set(x)) == len(x))


@lru_cache(maxsize=None)
def ecma_regex(pattern: str) -> re.Pattern:
    """`pattern` compiled with JSON Schema's (ECMA-262) meaning of `$`: the very end of the string."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        out.append(r"\Z" if c == "$" and not in_class else c)
        i += 1
    return re.compile("".join(out))


def _pattern(value, schema, root) -> Check:
    regex = ecma_regex(value)
    return lambda x: not isinstance(x, str) or regex.search(x) is not None


def _enum(value, schema, root) -> Check:
    if not all(isinstance(v, str) for v in value):
        raise _Unsupported()
    allowed = set(value)
    return lambda x: isinstance(x, str) and x in allowed


def _bound(test: Callable[[float, float], bool]):
    def maker(value, schema, root) -> Check:
        return lambda x: not _is_number(x) or test(x, value)
    return maker


def _format(value, schema, root) -> Check:
    if value != "date-time":
        raise _Unsupported()
    return lambda x: not isinstance(x, str) or _DATE_TIME.fullmatch(x) is not None


_KEYWORDS: dict[str, Callable[[Any, dict, dict], Check]] = {
    "type": _type,
    "$ref": _ref,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "propertyNames": _property_names,
    "dependentRequired": _dependent_required,
    "minProperties": _min_properties,
    "maxProperties": _max_properties,
    "items": _items,
    "minItems": _min_items,
    "uniqueItems": _unique_items,
    "pattern": _pattern,
    "enum": _enum,
    "minimum": _bound(lambda x, v: x >= v),
    "maximum": _bound(lambda x, v: x <= v),
    "exclusiveMinimum": _bound(lambda x, v: x > v),
    "exclusiveMaximum": _bound(lambda x, v: x < v),
    "format": _format,
}
