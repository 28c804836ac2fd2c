"""YAML bytes → plain data, with the line and column of every node.

The read path uses PyYAML's libyaml composer: it is ~30x faster than a pure-Python
parser and gives node marks. Values are constructed here, not by PyYAML, so that
duplicate keys and non-finite numbers are findings and aliases cannot expand without bound.
Writes keep the file as written: the format fixer splices text (fixer.py); `update --write` and
`priors sync --write` go through ruamel.yaml round-trip (pipeline/yamlwrite.py).

Limits (docs/security.md), each a finding rather than a crash or a memory blow-up:
a file over MAX_FILE_BYTES is refused before it is parsed (parsing costs ~150 bytes of
memory per byte of a flow list); nesting deeper than MAX_DEPTH; more than MAX_ALIAS_NODES
values produced by alias expansions (a plain document of any node count is fine).
"""
from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

from funnelcheck.findings import ERROR, Finding, json_path

# PyYAML is imported on the first parse (`_init`): a run answered by the parse cache parses nothing.
yaml = _Loader = _scalars = None


def _init() -> None:
    global yaml, _Loader, _scalars
    import yaml as module

    _Loader = getattr(module, "CSafeLoader", module.SafeLoader)
    _scalars = module.constructor.SafeConstructor()
    yaml = module

MAX_FILE_BYTES = 1024 * 1024  # a 2,500-node graph is ~0.25 MB
MAX_DEPTH = 64  # registry files nest 6 levels deep
# Values produced by following aliases (every node under `*x`, each time it is used):
# past this a document is an alias bomb ("billion laughs").
MAX_ALIAS_NODES = 10_000

Path = tuple  # ('edges', 0, 'from')
Mark = tuple  # (line, column), both 1-based


class Doc(NamedTuple):
    """One parsed file: the data and where each value (and each mapping key) stands."""

    path: str
    data: Any
    marks: dict  # Path -> Mark of the value
    key_marks: dict  # Path -> Mark of the key that introduced the value

    def mark(self, parts: Path) -> Mark:
        """The mark of the value at `parts`, or of its nearest ancestor that has one."""
        parts = tuple(parts)
        while parts not in self.marks and parts:
            parts = parts[:-1]
        return self.marks.get(parts, (1, 1))

    def key_mark(self, parts: Path) -> Mark:
        parts = tuple(parts)
        return self.key_marks.get(parts) or self.mark(parts)

    def finding(self, parts: Path, code: str, message: str, severity: str = ERROR, key: bool = False) -> Finding:
        line, column = self.key_mark(parts) if key else self.mark(parts)
        return Finding(self.path, line, column, severity, code, message, json_path(tuple(parts)))


def deferred_doc(path: str, data: Any, read: Callable[[], bytes]) -> Doc:
    """A document from a cache, which keeps only the data: its marks are found again from the
    file's bytes the first time a finding asks for one (rare), not on every run."""
    positions = _Positions(path, read)
    return Doc(path, data, _LazyMarks(positions, 0), _LazyMarks(positions, 1))


class _Positions:
    def __init__(self, path: str, read: Callable[[], bytes]):
        self.path, self.read, self.value = path, read, None

    def get(self, which: int) -> dict:
        if self.value is None:
            doc, _ = load_yaml(self.path, self.read())
            self.value = (doc.marks, doc.key_marks) if doc is not None else ({}, {})
        return self.value[which]


class _LazyMarks(Mapping):
    def __init__(self, positions: _Positions, which: int):
        self._positions, self._which = positions, which

    def __getitem__(self, parts):
        return self._positions.get(self._which)[parts]

    def __iter__(self):
        return iter(self._positions.get(self._which))

    def __len__(self) -> int:
        return len(self._positions.get(self._which))


class _Refused(Exception):
    """A limit was passed: the document is refused with one finding at `node` (None: the document)."""

    def __init__(self, node, code: str, message: str):
        self.node, self.code, self.message = node, code, message


class _Budget:
    """What a construction may still spend, and what it found along the way."""

    def __init__(self):
        self.alias_nodes = MAX_ALIAS_NODES
        self.seen: set[int] = set()  # collection nodes met once: meeting one again is an alias
        self.problems: list[Finding] = []


class _Duplicate(Exception):
    def __init__(self, finding: Finding):
        self.finding = finding


def _pos(node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _offset_to_mark(raw: bytes, offset: int) -> Mark:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return (line, column)


def load_yaml(path: str, raw: bytes) -> tuple[Doc | None, list[Finding]]:
    """Parse one YAML file. Returns the document, or None and the findings that stop it."""
    if yaml is None:
        _init()
    if len(raw) > MAX_FILE_BYTES:
        return None, [Finding(path, 1, 1, ERROR, "file-too-large",
                              f"the file is larger than the limit of {MAX_FILE_BYTES:,} bytes; refused unread")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _offset_to_mark(raw, exc.start)
        return None, [Finding(path, line, column, ERROR, "encoding",
                              f"not valid UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded")]
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.problem} ({exc.context})"
        return None, [Finding(path, line, column, ERROR, "yaml-syntax", f"YAML syntax error: {problem}")]
    except yaml.YAMLError as exc:
        return None, [Finding(path, 1, 1, ERROR, "yaml-syntax", f"YAML syntax error: {exc}")]
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == "" and not root.style):
        # nothing at all, or only comments, or a bare `---`
        return None, [Finding(path, 1, 1, ERROR, "empty-file", "the file is empty")]
    marks: dict = {}
    key_marks: dict = {}
    budget = _Budget()
    try:
        data = _construct(path, root, (), marks, key_marks, budget, False)
    except _Refused as refused:
        line, column = _pos(refused.node or root)
        return None, [Finding(path, line, column, ERROR, refused.code, refused.message)]
    except _Duplicate as dup:
        return None, [dup.finding]
    if budget.problems:
        return None, budget.problems
    return Doc(path, data, marks, key_marks), []


def _construct(path: str, node, here: Path, marks: dict, key_marks: dict, budget: _Budget, aliased: bool) -> Any:
    marks[here] = _pos(node)
    if not isinstance(node, yaml.ScalarNode):
        if len(here) >= MAX_DEPTH:
            raise _Refused(node, "too-deep", f"the document nests deeper than {MAX_DEPTH} levels; refused")
        if not aliased:
            aliased = id(node) in budget.seen
            budget.seen.add(id(node))
    if aliased:
        budget.alias_nodes -= 1
        if budget.alias_nodes < 0:
            raise _Refused(None, "alias-bomb", f"aliases expand to more than {MAX_ALIAS_NODES:,} values; refused")
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        first: dict = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            else:
                key = str(_construct(path, key_node, here + ("<key>",), {}, {}, budget, aliased))
            if key in out:
                line, column = _pos(key_node)
                raise _Duplicate(Finding(path, line, column, ERROR, "duplicate-key",
                                         f"duplicate key '{key}' (first defined on line {first[key][0]})",
                                         json_path(here + (key,))))
            first[key] = _pos(key_node)
            key_marks[here + (key,)] = first[key]
            out[key] = _construct(path, value_node, here + (key,), marks, key_marks, budget, aliased)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(path, item, here + (i,), marks, key_marks, budget, aliased)
                for i, item in enumerate(node.value)]
    value = _scalars.construct_object(node)
    if isinstance(value, float) and not math.isfinite(value):
        line, column = _pos(node)
        budget.problems.append(Finding(path, line, column, ERROR, "non-finite",
                                       f"{node.value} is not a finite number", json_path(here)))
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return node.value
    return value
