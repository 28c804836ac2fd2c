"""Render a what-if diff for a terminal (`diff --format text`); Markdown is `render.markdown`, JSON `Diff.to_json`."""
from __future__ import annotations

from funnelcheck.findings import Finding
from funnelcheck.git.diff import Diff
from funnelcheck.render.format import number, pct
from funnelcheck.render.markdown import probability


def _finding(f: Finding) -> str:
    return f"  {f.path}:{f.line}:{f.column}: {f.severity}[{f.code}]: {f.message}"


def text(d: Diff) -> str:
    """One block per graph (base → head, the point delta, its interval, P(head > base)), then the changed
    parameters and the findings at both revisions."""
    lines = [f"funnel diff {d.base.label} -> {d.head.label} ({d.samples} draws, seed {d.seed})"]
    if d.base.loaded is None:
        lines.append("no registry at the base revision: everything is new")
    for g in d.graphs:
        if not g.computed:
            lines.append(f"  {g.id}: unchanged (same graph, contexts and parameters at both revisions)")
            continue
        base = g.base.point if g.base else None
        head = g.head.point if g.head else None
        line = f"  {g.id}: {pct(base, none='-')} -> {pct(head, none='-')}"
        if g.delta is not None:
            dl = g.delta
            line += (f"  delta {dl.point * 100:+.2f} pp (90%: {dl.p05 * 100:+.2f} .. {dl.p95 * 100:+.2f})"
                     f"  P(head > base) = {probability(dl, d.samples)}")
        lines.append(line + ("" if g.status in ("modified", "unchanged") else f"  [{g.status}]"))
        lines += [f"    ! {e}" for e in g.errors]
    if d.changes:
        lines.append("changed parameters:")
        lines += [f"  {c.id} {c.field}: {_value(c.base)} -> {_value(c.head)} ({c.change})" for c in d.changes]
    if d.head.findings:
        lines.append(f"validation at {d.head.label}:")
        lines += [_finding(f) for f in d.head.findings]
    if d.base.findings:
        lines.append(f"errors at {d.base.label}:")
        lines += [_finding(f) for f in d.base.findings]
    return "\n".join(lines) + "\n"


def _value(v) -> str:
    import json

    return json.dumps(v) if isinstance(v, (dict, list)) else number(v, none="-")
