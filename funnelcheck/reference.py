"""The reference notation (docs/formats.md): `e.signup.visited(pricing).context(channel='google').p.mean`.

Parsed with the Lark grammar in grammar/reference.lark; a Transformer turns the tree into a
`Reference` at once, so nothing else ever sees a parse tree. `format_reference` prints the canonical
form: visited before context, nodes and keys sorted, values single-quoted, no spaces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from funnelcheck.findings import FunnelcheckError
from funnelcheck.resources import resource_dir


@dataclass(frozen=True)
class Reference:
    edge: str
    visited: tuple[str, ...] = ()  # sorted, unique
    context: tuple[tuple[str, str], ...] = ()  # sorted by key
    field: str = "mean"

    @classmethod
    def make(cls, edge: str, visited=(), context=None, field: str = "mean") -> "Reference":
        """Build a canonical reference from any iterable of nodes and any mapping of contexts."""
        pairs = context.items() if isinstance(context, dict) else (context or ())
        return cls(edge, tuple(sorted(set(visited))), tuple(sorted(pairs)), field)

    @property
    def context_dict(self) -> dict[str, str]:
        return dict(self.context)

    def __str__(self) -> str:
        return format_reference(self)


class ReferenceError(FunnelcheckError):
    """A reference that does not parse: `column N: expected ...`."""

    def __init__(self, column: int, message: str, text: str = ""):
        self.column = column
        self.text = text
        super().__init__(f"column {column}: {message}")


def format_reference(ref: Reference) -> str:
    out = f"e.{ref.edge}"
    if ref.visited:
        out += f".visited({','.join(ref.visited)})"
    if ref.context:
        out += ".context(" + ",".join(f"{k}='{v}'" for k, v in ref.context) + ")"
    return f"{out}.p.{ref.field}"


@lru_cache(maxsize=1)
def _parser():
    from lark import Lark

    grammar = (resource_dir("grammar") / "reference.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True)


def parse_reference(text: str) -> Reference:
    """Parse one reference; raises ReferenceError with the column and what was expected."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

    text = text.strip()
    try:
        tree = _parser().parse(text)
    except UnexpectedToken as exc:
        column = exc.column if exc.token.type != "$END" else len(text) + 1
        raise ReferenceError(column, f"expected {_expected(text, column, exc.expected)}", text) from None
    except UnexpectedCharacters as exc:
        raise ReferenceError(exc.column, f"expected {_expected(text, exc.column, exc.allowed)}", text) from None
    except UnexpectedEOF as exc:
        raise ReferenceError(len(text) + 1, f"expected {_expected(text, len(text) + 1, exc.expected)}", text) from None
    try:
        return _transformer()(text).transform(tree)
    except VisitError as exc:  # Lark wraps what a callback raises
        raise exc.orig_exc from None


@lru_cache(maxsize=1)
def _transformer():
    """The Transformer class (built on first use: Lark is imported only when a reference is parsed)."""
    from lark import Token, Transformer, v_args

    class ToReference(Transformer):
        """Tree → Reference, bottom up; a part given twice is an error at its column."""

        def __init__(self, text: str):
            super().__init__()
            self.text = text

        @v_args(inline=True)
        def start(self, edge: Token, *rest) -> Reference:
            *qualifiers, field = rest
            parts: dict[str, object] = {}
            for column, kind, value in qualifiers:  # in the order written, so the first error is reported
                if kind in parts:
                    raise ReferenceError(column, f"{kind}(...) may be given only once", self.text)
                parts[kind] = value if kind == "visited" else self._context(value)
            return Reference.make(str(edge), parts.get("visited", ()), parts.get("context", {}), str(field))

        @v_args(meta=True, inline=True)
        def visited(self, meta, nodes: tuple[str, ...]) -> tuple:
            return meta.column, "visited", nodes

        @v_args(meta=True, inline=True)
        def context(self, meta, pairs: list[tuple[Token, str]]) -> tuple:
            return meta.column, "context", pairs

        def node_list(self, items) -> tuple[str, ...]:
            return tuple(str(t) for t in items if t.type == "ID")

        def pair_list(self, items) -> list[tuple[Token, str]]:
            return [item for item in items if isinstance(item, tuple)]

        def _context(self, pairs: list[tuple[Token, str]]) -> dict[str, str]:
            context: dict[str, str] = {}
            for key, value in pairs:
                if str(key) in context:
                    raise ReferenceError(key.column, f"context key '{key}' is given twice", self.text)
                context[str(key)] = value
            return context

        @v_args(inline=True)
        def pair(self, key: Token, _sep: Token, value: Token) -> tuple[Token, str]:
            return key, str(value).strip("'\"")

    return ToReference


_TERMINAL_WORDS = {
    "SEP": "'=' or ':'", "FIELD": "'mean' or 'stdev'", "COMMA": "','", "RPAR": "')'", "LPAR": "'('",
    "DOT": "'.'", "VISITED": "'visited'", "CONTEXT": "'context'", "P": "'p'", "E": "'e'",
    "$END": "the end of the reference",
}


def _expected(text: str, column: int, expected) -> str:
    """Say in words what the grammar wanted at `column`."""
    names = set(expected)
    if names & {"SQ_STRING", "DQ_STRING"}:
        return "a context value"
    if "ID" in names:
        prefix = text[: column - 1]
        opened = max(prefix.rfind("visited("), prefix.rfind("context("))
        closed = prefix.rfind(")")
        if opened > closed:
            return "a node id" if prefix[opened:].startswith("visited") else "a context key"
        return "an edge id"
    words = sorted(_TERMINAL_WORDS.get(n, n.lower()) for n in names)
    if names == {"VISITED", "CONTEXT", "P"}:
        return "'visited(', 'context(' or 'p'"
    return " or ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " or " + words[-1]


_LOOKS_LIKE = re.compile(r"e\.[a-z0-9][a-z0-9_-]*(\.(visited|context)\([^)]*\))*\.p\.(mean|stdev)")


def looks_like_reference(text: str) -> bool:
    """A cheap test used by the format fixer before it tries to parse a string."""
    return bool(_LOOKS_LIKE.fullmatch(text.strip()))
