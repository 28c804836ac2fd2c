"""Render validation findings: text lines, the JSON list of docs/cli.md, GitHub annotations."""
from __future__ import annotations

from funnelcheck.findings import ERROR, WARNING, Finding
from funnelcheck.model import Registry
from funnelcheck.render.format import gh_data as _data
from funnelcheck.render.format import gh_property as _property


def text(findings: list[Finding]) -> str:
    """One `path:line:col: severity[CODE]: message` line per finding."""
    return "".join(f"{f.path}:{f.line}:{f.column}: {f.severity}[{f.code}]: {f.message}\n" for f in findings)


def as_json(findings: list[Finding]) -> list[dict]:
    """The JSON shape of docs/cli.md: [{"path", "line", "column", "severity", "code", "message", "json_path"}]."""
    return [f.as_dict() for f in findings]


def github(findings: list[Finding]) -> str:
    """GitHub Actions workflow commands: `::error file=…,line=…,col=…,title=…::message`."""
    lines = []
    for f in findings:
        command = "error" if f.severity == ERROR else "warning"
        props = ",".join(f"{k}={_property(v)}" for k, v in
                         (("file", f.path), ("line", f.line), ("col", f.column), ("title", f"funnelcheck {f.code}")))
        lines.append(f"::{command} {props}::{_data(f.message)}\n")
    return "".join(lines)


def summary(findings: list[Finding], registry: Registry) -> str:
    """`funnelcheck validate: 2 errors, 1 warning (31 parameters, 1 graph, 4 contexts)`."""
    checked = ", ".join(_count(n, word) for n, word in ((len(registry.parameters), "parameter"),
                                                        (len(registry.graphs), "graph"), (len(registry.contexts), "context")))
    errors = sum(f.severity == ERROR for f in findings)
    warnings = sum(f.severity == WARNING for f in findings)
    if not errors and not warnings:
        return f"funnelcheck validate: no problems ({checked})"
    return f"funnelcheck validate: {_count(errors, 'error')}, {_count(warnings, 'warning')} ({checked})"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"
