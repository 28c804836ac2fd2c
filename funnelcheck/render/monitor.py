"""Render a monitor result: a Red/Amber/Green text table, GitHub annotations and a step summary.
JSON is `MonitorResult.to_json()`. Renderers never compute."""
from __future__ import annotations

from funnelcheck.pipeline.result import MonitorResult, ParameterCheck
from funnelcheck.render.format import columns, gh_data, gh_property, pct

COLOURS = {"green": "\033[32m", "amber": "\033[33m", "red": "\033[31m", "error": "\033[35m", "insufficient": "\033[2m"}
RESET = "\033[0m"
ORDER = {"red": 0, "amber": 1, "error": 2, "green": 3, "insufficient": 4}
HEADER = ["status", "reference", "expected", "observed", "n", "σ", "since last run"]


def _sigma(z: float | None) -> str:
    return "-" if z is None else f"{z:+.2f}"


def change(c: ParameterCheck) -> str:
    """`new`, `+0.40σ`, or `was amber` when the status changed."""
    if c.previous_status is None:
        return "new"
    if c.previous_status != c.status:
        return f"was {c.previous_status}"
    if c.z is None or c.previous_z is None:
        return "="
    return f"{c.z - c.previous_z:+.2f}σ"


def _cells(c: ParameterCheck) -> list[str]:
    observed = c.observed
    expected = pct(c.expected, 1, none="-") + (" fallback" if c.prior and c.prior.fallback else "")
    return [c.status.upper(), c.reference, expected, pct(observed.rate if observed else None, 1, none="-"),
            str(observed.n) if observed else "-", _sigma(c.z), change(c)]


def ordered(result: MonitorResult) -> list[ParameterCheck]:
    """Worst first, then by reference: what needs attention reads at the top."""
    return sorted(result.parameters, key=lambda c: (ORDER[c.status], -abs(c.z or 0), c.reference))


def text(result: MonitorResult, color: bool = False) -> str:
    """The RAG table, the problems' messages, and a one-line summary."""
    checks = ordered(result)
    out = [f"funnelcheck monitor: as of {result.as_of.isoformat()} (windows end at 00:00 UTC)"]
    if not checks:
        return out[0] + "\nno parameter has an observation_source\n"
    lines = columns(HEADER, [_cells(c) for c in checks], "<<>>>><", indent="  ")
    out.append(lines[0])
    for c, line in zip(checks, lines[1:]):
        out.append(f"{COLOURS[c.status]}{line}{RESET}" if color else line)
    notes = [f"  {c.id}: {c.message}" for c in checks if c.status in ("error", "insufficient")]
    if notes:
        out += ["", *notes]
    s = result.summary()
    out += ["", "summary: " + ", ".join(f"{v} {k}" for k, v in s.items())]
    if result.store_error:
        out.append(f"not stored: {result.store_error}")
    return "\n".join(out) + "\n"


def github_annotations(result: MonitorResult) -> str:
    """`::error` for red and error, `::warning` for amber, on the parameter's file."""
    lines = []
    for c in ordered(result):
        command = {"red": "error", "error": "error", "amber": "warning"}.get(c.status)
        if command is None:
            continue
        props = ",".join(f"{k}={gh_property(v)}" for k, v in
                         (("file", c.file or ""), ("title", f"funnelcheck monitor: {c.id} {c.status}")))
        lines.append(f"::{command} {props}::{gh_data(c.reference + ': ' + c.message)}\n")
    return "".join(lines)


def step_summary(result: MonitorResult) -> str:
    """A Markdown table for $GITHUB_STEP_SUMMARY (user strings escaped)."""
    icon = {"green": "🟢", "amber": "🟠", "red": "🔴", "error": "⚠️", "insufficient": "⚪"}
    out = [f"### funnelcheck monitor — {result.as_of.isoformat()}", "",
           "| | reference | expected | observed | n | σ | since last run |", "|---|---|---:|---:|---:|---:|---|"]
    for c in ordered(result):
        cells = _cells(c)
        out.append("| " + " | ".join([f"{icon[c.status]} {c.status}", f"`{_md(c.reference)}`",
                                        *(_md(x) for x in cells[2:])]) + " |")
    s = result.summary()
    out += ["", ", ".join(f"{v} {k}" for k, v in s.items())]
    if result.store_error:
        out.append(f"\n**Not stored:** {_md(result.store_error)}")
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("`", "'").replace("\n", " "))
