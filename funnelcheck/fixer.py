"""The format fixer: canonical filter order and canonical references, in place.

What it canonicalises: in parameter files, `context_filter` keys and `visited_filter` items
sorted; in every registry file, each string scalar that is a reference printed in the
canonical form of docs/formats.md. Edits are spliced into the original text at the exact spans of the
nodes that change (PyYAML's composer gives them), so every other byte — comments, alignment
inside flow mappings, quoting, blank lines — stays as it was. It does not go through
ruamel.yaml: a round-trip dump would re-space aligned flow mappings (ruamel.yaml is for the
pipeline's `update --write`, which rewrites values). The result is parsed again and must equal
the intended data before anything is written; files are replaced atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import yaml

from funnelcheck.atomicfile import write_atomic
from funnelcheck.findings import FunnelcheckError
from funnelcheck.reference import ReferenceError, format_reference, looks_like_reference, parse_reference

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOM = "\ufeff"
_STR = "tag:yaml.org,2002:str"


class FormatError(FunnelcheckError):
    """A file the fixer cannot read as YAML; `funnelcheck validate` says more."""


class _Edit(NamedTuple):
    start: int
    end: int
    text: str


def format_text(text: str, kind: str) -> str:
    """The canonical form of one registry file's text (`kind` as `registry.kind_of` names it)."""
    body = text[1:] if text.startswith(_BOM) else text
    root = _compose(body)
    if root is None:
        return text
    edits: list[_Edit] = []
    if kind == "parameter" and isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "context_filter" and isinstance(value, yaml.MappingNode):
                edits += _sort_pairs(body, value)
            elif key.value == "visited_filter" and isinstance(value, yaml.SequenceNode):
                edits += _sort_items(body, value)
    _references(root, edits, set(), body)
    if not edits:
        return text
    new = _apply(body, edits)
    _check(body, new, kind)
    return text[: len(text) - len(body)] + new


def format_file(path: Path, kind: str) -> bool:
    """Canonicalise one file in place; True when it changed."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not valid UTF-8") from None
    new = format_text(text, kind)
    if new == text:
        return False
    write_atomic(path, new.encode("utf-8"))
    return True


def _compose(text: str):
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}: " if mark else ""
        raise FormatError(f"{where}YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise FormatError(f"YAML error: {exc}") from None
    finally:
        loader.dispose()


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _line_end(text: str, pos: int) -> int:
    """Just past the newline that ends the line holding `pos` (or the end of the text)."""
    if pos > 0 and text[pos - 1] == "\n":
        return pos
    nl = text.find("\n", pos)
    return len(text) if nl < 0 else nl + 1


def _sort_pairs(text: str, node: yaml.MappingNode) -> list[_Edit]:
    pairs = node.value
    if len(pairs) < 2 or not all(_is_str(k) for k, _ in pairs):
        return []
    order = sorted(range(len(pairs)), key=lambda i: pairs[i][0].value)
    if order == list(range(len(pairs))):
        return []
    if node.flow_style:
        spans = [(k.start_mark.index, v.end_mark.index) for k, v in pairs]
        return _permute_spans(text, spans, order)
    return _permute_lines(text, [k.start_mark.index for k, _ in pairs], [v.end_mark.index for _, v in pairs], order)


def _sort_items(text: str, node: yaml.SequenceNode) -> list[_Edit]:
    items = node.value
    if len(items) < 2 or not all(_is_str(i) for i in items):
        return []
    order = sorted(range(len(items)), key=lambda i: items[i].value)
    if order == list(range(len(items))):
        return []
    if node.flow_style:
        return _permute_spans(text, [(i.start_mark.index, i.end_mark.index) for i in items], order)
    return _permute_lines(text, [i.start_mark.index for i in items], [i.end_mark.index for i in items], order)


def _is_str(node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR


def _permute_spans(text: str, spans: list[tuple[int, int]], order: list[int]) -> list[_Edit]:
    """Flow style: slot i receives the source text of element order[i]; separators stay."""
    return [_Edit(start, end, text[spans[j][0]:spans[j][1]]) for (start, end), j in zip(spans, order)]


def _permute_lines(text: str, starts: list[int], ends: list[int], order: list[int]) -> list[_Edit]:
    """Block style: whole lines move, each element with the comment lines above it and its own end-of-line comment."""
    bounds = [_line_start(text, starts[0])] + [_line_end(text, e) for e in ends]
    chunks = [text[bounds[i]:bounds[i + 1]] for i in range(len(starts))]
    last_open = not chunks[-1].endswith("\n")
    if last_open:
        chunks[-1] += "\n"
    joined = "".join(chunks[j] for j in order)
    if last_open:
        joined = joined[:-1]
    return [_Edit(bounds[0], bounds[-1], joined)]


def _references(node, edits: list[_Edit], seen: set, text: str) -> None:
    """Every string scalar that is a reference, re-printed canonically in its own quoting style."""
    if id(node) in seen:  # an alias: its node was visited already (and a bomb is not expanded)
        return
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        style = node.style or None  # the C parser says '' for plain
        if node.tag == _STR and style in (None, "'", '"') and looks_like_reference(node.value):
            try:
                canonical = format_reference(parse_reference(node.value))
            except ReferenceError:
                return  # not ours to fix; resolve/validate report what is wrong with it
            if canonical != node.value:
                edits.append(_Edit(_scalar_start(text, node.start_mark.index), node.end_mark.index,
                                   _scalar(canonical, style)))
        return
    children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
    for child in children:
        _references(child, edits, seen, text)


def _scalar_start(text: str, pos: int) -> int:
    """Where the scalar itself starts: a node's mark includes its anchor (`&a`) and tag (`!!str`)."""
    while text[pos] in "&!":
        while not text[pos].isspace():
            pos += 1
        while text[pos] in " \t":
            pos += 1
    return pos


def _scalar(value: str, style: str | None) -> str:
    if style == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style is None:
        # A canonical reference is a safe plain scalar: it starts with 'e', has no ': ' or ' #',
        # and holds a comma only where the input held one (which a plain flow scalar cannot).
        return value
    return "'" + value.replace("'", "''") + "'"


def _apply(text: str, edits: list[_Edit]) -> str:
    # Filter sorting moves whole elements; a reference edit inside one of those would be stale.
    edits = sorted(set(edits))
    kept: list[_Edit] = []
    for e in edits:
        if kept and e.start < kept[-1].end:
            continue
        kept.append(e)
    out, pos = [], 0
    for e in kept:
        out += [text[pos:e.start], e.text]
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


def _check(old: str, new: str, kind: str) -> None:
    """The new text must hold exactly the old data, canonicalised; else nothing is written."""
    expected = _canonical(_ordered(yaml.load(old, Loader=_Loader)), kind, top=True)
    if _ordered(yaml.load(new, Loader=_Loader)) != expected:
        raise FunnelcheckError("internal error: the reformatted text does not hold the same data; file left unchanged")


def _ordered(data):
    """Data with mappings as lists of pairs, so key order counts in comparisons."""
    if isinstance(data, dict):
        return [("<map>", k, _ordered(v)) for k, v in data.items()]
    if isinstance(data, list):
        return [_ordered(x) for x in data]
    return data


def _canonical(data, kind: str, top: bool = False):
    if isinstance(data, str) and looks_like_reference(data):
        try:
            return format_reference(parse_reference(data))
        except ReferenceError:
            return data
    if not isinstance(data, list):
        return data
    if top and kind == "parameter" and data and isinstance(data[0], tuple):
        out = []
        for tag, k, v in data:
            if k == "context_filter" and v and isinstance(v, list) and all(
                    isinstance(kv, tuple) and isinstance(kv[1], str) for kv in v):
                v = sorted(v, key=lambda kv: kv[1])
            elif k == "visited_filter" and isinstance(v, list) and all(isinstance(x, str) for x in v):
                v = sorted(v)
            out.append((tag, k, _canonical(v, kind)))
        return out
    return [(x[0], x[1], _canonical(x[2], kind)) if isinstance(x, tuple) else _canonical(x, kind) for x in data]
