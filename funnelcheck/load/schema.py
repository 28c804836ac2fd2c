"""JSON Schema checks of each file kind. jsonschema is imported only when a file needs checking."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from funnelcheck.findings import Finding
from funnelcheck.resources import resource_dir
from funnelcheck.yamlload import Doc

KINDS = ("contexts", "parameter", "graph", "config")


def schema_path(kind: str):
    return resource_dir("schemas") / f"{kind}.schema.json"


@lru_cache(maxsize=None)
def _schema(kind: str) -> dict:
    return json.loads(schema_path(kind).read_text())


@lru_cache(maxsize=None)
def _certainly_valid(kind: str):
    """A fast predicate that is True only for documents jsonschema accepts (see schemafast)."""
    from funnelcheck.load.schemafast import compile_schema

    return compile_schema(_schema(kind))


@lru_cache(maxsize=None)
def _validator(kind: str):
    import jsonschema

    schema = _schema(kind)
    base = jsonschema.validators.validator_for(schema)
    cls = jsonschema.validators.extend(base, {"pattern": _ecma_pattern})
    return cls(schema, format_checker=base.FORMAT_CHECKER)


def _ecma_pattern(validator, pattern: str, instance, schema):
    """jsonschema's `pattern`, with `$` meaning the end of the string (as JSON Schema says)."""
    from jsonschema.exceptions import ValidationError

    from funnelcheck.load.schemafast import ecma_regex

    if validator.is_type(instance, "string") and ecma_regex(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def schemas_fingerprint() -> str:
    """Changes whenever any schema changes, so cached results are not reused across them."""
    h = hashlib.blake2b(digest_size=8)
    for kind in KINDS:
        h.update(schema_path(kind).read_bytes())
    return h.hexdigest()


def check(kind: str, doc: Doc) -> list[Finding]:
    """Every schema violation of one document, each at the node at fault."""
    if _certainly_valid(kind)(doc.data):
        return []  # the common case, without importing or running jsonschema
    out = []
    for err in sorted(_validator(kind).iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        parts = tuple(err.absolute_path)
        out.append(doc.finding(parts, "schema", _message(err, parts)))
    return out


def _message(err, parts: tuple) -> str:
    where = ".".join(str(p) for p in parts) if parts else "the document"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}"
    if err.validator == "pattern":
        return f"{where}: {err.instance!r} is not a valid id (lower-case letters, digits, '-' and '_')" \
            if "a-z0-9" in err.validator_value else f"{where}: {err.instance!r} does not match {err.validator_value}"
    if err.validator == "type":
        return f"{where}: expected {_article(err.validator_value)}, got {_kind_of(err.instance)}"
    return f"{where}: {err.message}"


def _article(t) -> str:
    if isinstance(t, list):
        return " or ".join(_article(x) for x in t)
    return {"object": "a mapping", "array": "a list", "string": "a string", "number": "a number",
            "integer": "an integer", "boolean": "true or false"}.get(t, t)


def _kind_of(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if value is None:
        return "nothing (null)"
    return f"{value!r}"
