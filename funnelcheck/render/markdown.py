"""The what-if diff as a GitHub PR comment (docs/cli-git.md), and the escaping every user string goes through.

Layout: the hidden marker, a summary table, validation at HEAD in one line, then per graph a
Mermaid flowchart and `<details>` blocks. The body stays under `LIMIT` characters: whole
sections are dropped from the end first, long tables lose rows, and a note says what is missing.
"""
from __future__ import annotations

from funnelcheck import __version__
from funnelcheck.engine.montecarlo import standard_error
from funnelcheck.git.diff import Change, Delta, Diff, GraphDiff
from funnelcheck.findings import ERROR, WARNING, Finding
from funnelcheck.render import mermaid, segment_label
from funnelcheck.render.format import md_code as code
from funnelcheck.render.format import md_escape as escape
from funnelcheck.render.format import md_html_text as html_text
from funnelcheck.render.format import md_table as table
from funnelcheck.render.format import number, pct, pp

MARKER = "<!-- funnelcheck:impact -->"
LIMIT = 60_000


def value(v) -> str:
    """A parameter value in a table cell; strings, filters and lists escaped."""
    return number(v) if v is None or isinstance(v, float) else escape(number(v))


def interval(d: Delta | None) -> str:
    """The point delta (head point − base point) and the 90% interval of the coupled draws."""
    return "–" if d is None else f"{pp(d.point)} ({pp(d.p05)} … {pp(d.p95)})"


# P(head > base) is shown with its Monte Carlo standard error when it lies within 3 standard
# errors of one of these (docs/statistics.md): whether it is above them is then not settled.
THRESHOLDS = (0.05, 0.5, 0.95)


def probability(d: Delta | None, samples: int) -> str:
    """P(head > base) as a percentage, '± standard error' near a threshold; 'no draw changed' for
    a delta of exactly zero (an unchanged or renamed parameter)."""
    if d is None:
        return "–"
    if d.prob_improvement == 0 and d.mean == 0 and d.p05 == 0 and d.p95 == 0:
        return "no draw changed"
    p = d.prob_improvement
    se = standard_error(p, samples)
    near = any(abs(p - t) < 3 * se for t in THRESHOLDS)
    return f"{p * 100:.1f}%" + (f" ± {se * 100:.1f}" if near else "")


def details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n</details>\n"


def _status(g: GraphDiff) -> str:
    return {"added": "new", "removed": "removed", "error": "⚠️ error", "unchanged": "unchanged"}.get(g.status, "")


def summary_rows(d: Diff) -> list[list[str]]:
    """One row per computed graph; graphs whose inputs did not change are listed apart."""
    rows = []
    for g in d.graphs:
        if not g.computed:
            continue
        prob_text = probability(g.delta, d.samples)
        rows.append([f"{code(g.id)} {_status(g)}".strip(), pct(g.base.point if g.base else None),
                     pct(g.head.point if g.head else None), interval(g.delta), prob_text,
                     str(len({c.id for c in g.changes}))])
    return rows


def _counts(findings: list[Finding]) -> str:
    errors = sum(f.severity == ERROR for f in findings)
    warnings = sum(f.severity == WARNING for f in findings)
    return f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"


def finding_rows(findings: list[Finding]) -> list[list[str]]:
    return [[f.severity, code(f.code), escape(f"{f.path}:{f.line}:{f.column}"), escape(f.message)] for f in findings]


def change_rows(changes: list[Change]) -> list[list[str]]:
    return [[code(c.id), escape(c.field), value(c.base), value(c.head), c.change,
             escape(c.description) if c.description else ""] for c in changes]


def segment_rows(g: GraphDiff) -> list[list[str]]:
    """Segments that moved most first; a `*` class lists the values it stands for."""
    rows = []
    moved = sorted(g.segments, key=lambda s: -abs(s.delta.mean) if s.delta else float("-inf"))
    for s in moved:
        ctx = segment_label(s.context, s.members, sep=", ")
        rows.append([escape(ctx), f"{s.weight * 100:.1f}%", pct(s.base), pct(s.head), interval(s.delta)])
    return rows


def graph_sections(g: GraphDiff, budget: int) -> list[str]:
    """The graph's own blocks, most important first: heading, chart, errors, parameters, segments."""
    blocks = [f"#### {code(g.id)}\n"]
    if g.errors:
        blocks[0] += "\n" + "".join(f"> ⚠️ {escape(e)}\n" for e in g.errors)
    chart, omitted = mermaid.flowchart(g)
    note = f"\n<sub>{omitted} unchanged edges not drawn.</sub>\n" if omitted else ""
    blocks.append(f"```mermaid\n{chart}\n```\n{note}")
    if g.changes:
        text, cut = table(["parameter", "field", "base", "head", "change", "description"], change_rows(g.changes),
                            budget)
        blocks.append(details(f"Changed parameters ({len({c.id for c in g.changes})})", text + _cut_note(cut)))
    if g.segments:
        text, cut = table(["segment", "weight", "base", "head", "Δ (90% interval)"], segment_rows(g), budget)
        blocks.append(details(f"Segments ({len(g.segments)})", text + _cut_note(cut)))
    return blocks


def _cut_note(cut: int) -> str:
    return f"\n_{cut} more rows not shown (size limit)._\n" if cut else ""


def render_diff(d: Diff, limit: int = LIMIT) -> str:
    """The PR comment for a diff, under `limit` characters."""
    head = [MARKER + "\n", f"### Funnel impact: {code(d.base.label)} → {code(d.head.label)}\n"]
    if d.base.loaded is None:
        head.append("\nThere is no registry at the base revision: everything below is new.\n")
    rows_budget = limit // 3
    rows = summary_rows(d)
    if rows:
        text, cut = table(["graph", "base", "head", "Δ conversion (90% interval)", "P(head > base)",
                           "changed parameters"], rows, rows_budget)
        head.append("\n" + text + _cut_note(cut))
    same = [g.id for g in d.graphs if not g.computed]
    if same:
        names = ", ".join(code(i) for i in same[:50]) + (f" and {len(same) - 50} more" if len(same) > 50 else "")
        head.append(f"\nUnchanged (same graph, contexts and parameters at both revisions): {names}.\n")
    if d.head.findings:
        head.append(f"\n**Validation at {escape(d.head.label)}:** {_counts(d.head.findings)} (details below).\n")
    if d.base.findings:
        head.append(f"\n**The base revision has {_counts(d.base.findings)}**: graphs it breaks are compared where possible.\n")
    footer = (f"\n<sub>funnelcheck {__version__} · {d.samples:,} Monte Carlo draws, seed {d.seed}, common random numbers"
              f" · default traffic mix · Δ in percentage points: head point − base point, 90% interval of the"
              f" coupled draws · ± Monte Carlo standard error</sub>\n")
    sections: list[str] = []
    budget = limit // 4
    for g in d.graphs:
        if g.status == "unchanged":
            continue
        sections += ["\n" + b for b in graph_sections(g, budget)]
    if d.head.findings:
        text, cut = table(["severity", "code", "where", "message"], finding_rows(d.head.findings), budget)
        sections.append("\n" + details(f"Validation at {html_text(d.head.label)} ({len(d.head.findings)})", text + _cut_note(cut)))
    if d.base.findings:
        text, cut = table(["severity", "code", "where", "message"], finding_rows(d.base.findings), budget)
        sections.append("\n" + details(f"Errors at {html_text(d.base.label)} ({len(d.base.findings)})", text + _cut_note(cut)))
    body = "".join(head)
    note_room = 200
    dropped = 0
    for s in sections:
        if len(body) + len(s) + len(footer) + note_room <= limit:
            body += s
        else:
            dropped += 1
    if dropped:
        body += (f"\n_{dropped} section{'s' if dropped != 1 else ''} left out to keep this comment under "
                 f"{limit:,} characters; run `funnelcheck diff` locally for everything._\n")
    if not any(g.status != "unchanged" for g in d.graphs) and not d.changes:
        body += "\nNo funnel changes.\n"
    return body + footer
