"""The one place for how numbers, percentages, tables and escaped strings look in every output.

Text renderers, the Markdown PR comment, GitHub annotations and the pipeline's tables all take
their formatting from here, so a percentage looks the same wherever it is printed.
"""
from __future__ import annotations

import html
import json
import re

DASH = "–"  # no value


def pct(x: float | None, digits: int = 2, none: str = DASH) -> str:
    """A share as a percentage: 0.1234 -> '12.34%'; `none` for no value."""
    return none if x is None else f"{100 * x:.{digits}f}%"


def pp(x: float, digits: int = 2) -> str:
    """A difference of shares in percentage points, signed: '+0.42 pp'."""
    return f"{x * 100:+.{digits}f} pp"


def number(v, none: str = DASH) -> str:
    """A parameter value as people read it: 4 significant digits; dicts and lists as `k=v, …`."""
    if v is None:
        return none
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={val}" for k, val in v.items()) or "none"
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "none"
    return str(v)


def signed(v: float | None, none: str = "") -> str:
    """A change, 4 significant digits with its sign: '+0.02'."""
    return none if v is None else f"{v:+.4g}"


def one_line(text, width: int | None = None) -> str:
    """Whitespace folded to single spaces; with `width`, cut to that many characters with '…'."""
    s = " ".join(str(text).split())
    return s if width is None or len(s) <= width else s[: width - 1] + "…"


def columns(header: list[str], rows: list[list[str]], align: str | None = None, indent: str = "") -> list[str]:
    """Plain-text columns padded to their widest cell; `align` holds '<' or '>' per column (default '<')."""
    align = align or "<" * len(header)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [(indent + "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths))).rstrip()
            for cells in [header, *rows]]


# --- Markdown (GitHub-flavoured) --------------------------------------------------------------

ZWJ = "\u200d"  # after '@' it stops GitHub from turning `@name` into a mention
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/~^@{}-]*$")  # ids and Git revision names (main~3, HEAD^2)


def md_escape(text) -> str:
    """Any user-supplied string as inert Markdown: no HTML, no links or emphasis, no @mentions, one line."""
    s = " ".join(str(text).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _SPECIAL.sub(r"\\\1", s)
    return s.replace("@", "@" + ZWJ)


def md_html_text(text) -> str:
    """A user string inside raw HTML (a `<summary>`), where Markdown escapes would show literally."""
    return html.escape(" ".join(str(text).split())).replace("@", "@" + ZWJ)


def md_code(text) -> str:
    """An id in a code span when it is plain (ids are `[a-z0-9_-]`); anything else is escaped text."""
    s = str(text)
    return f"`{s}`" if _PLAIN.match(s) else md_escape(s)


def md_table(header: list[str], rows: list[list[str]], budget: int | None = None) -> tuple[str, int]:
    """A GFM table; with a budget (characters), as many rows as fit. Returns (text, rows left out)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    size = sum(len(line) + 1 for line in lines)
    shown = 0
    for row in rows:
        line = "| " + " | ".join(row) + " |"
        if budget is not None and size + len(line) + 1 > budget:
            break
        lines.append(line)
        size += len(line) + 1
        shown += 1
    return "\n".join(lines) + "\n", len(rows) - shown


# --- GitHub workflow commands -----------------------------------------------------------------
# actions/toolkit, command.ts: data escapes %, CR, LF; properties also escape ':' and ','.

def gh_data(value) -> str:
    """The message part of `::error …::message`."""
    return str(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gh_property(value) -> str:
    """A property value of a workflow command (`file=…`, `title=…`)."""
    return gh_data(value).replace(":", "%3A").replace(",", "%2C")


JSON_DEPTH = 2  # containers nested deeper than this are written on one line


def json_text(data) -> str:
    """JSON with a final newline: every command's `--format json`.

    The outer two levels are indented by two spaces; anything deeper (a row, a parameter, a
    finding) is one line. That reads like `indent=2` at the top, diffs and greps a row per
    line, and keeps the encoding in json's C encoder: `indent=` switches to its pure-Python
    one, which took 0.1 s of `monitor --format json` on 1,000 parameters."""
    return _json_layout(data, 0) + "\n"


def _json_layout(value, depth: int) -> str:
    if depth < JSON_DEPTH and value and isinstance(value, (dict, list)):
        pad, inner = "  " * depth, "  " * (depth + 1)
        if isinstance(value, dict):
            items = [f"{inner}{json.dumps(_json_key(k))}: {_json_layout(v, depth + 1)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        return "[\n" + ",\n".join(inner + _json_layout(v, depth + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value)


def _json_key(key) -> str:
    """A key as json.dumps writes one (keys that are not strings are converted the same way)."""
    return key if isinstance(key, str) else next(iter(json.loads(json.dumps({key: 0}))))
