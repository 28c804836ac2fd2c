"""Render `priors sync` / `priors push` reports and the prior-source lines other commands print.
JSON is `SyncReport.to_json()`. Renderers never compute."""
from __future__ import annotations

from funnelcheck.pipeline.priorsync import ERROR, KEPT, PUSHED, SKIPPED, UNCHANGED, UPDATE, SyncItem, SyncReport

WHAT = {
    UPDATE: "changed in the source",
    UNCHANGED: "same as the registry",
    KEPT: "kept the registry's value (newer than the source's, e.g. an accepted posterior)",
    ERROR: "source failed",
    PUSHED: "written to the source",
    SKIPPED: "not writable",
}


def _pair(e) -> str:
    return "-" if e is None else f"{e.mean:.6g} ± {e.stdev:.6g}"


def line(i: SyncItem) -> str:
    """`  a-sheet (sheets): 0.3 ± 0.05 → 0.35 ± 0.04: changed in the source`."""
    if i.action == UPDATE:
        body = f"{_pair(i.registry)} → {_pair(i.fetched)}"
    elif i.action == KEPT:
        body = f"registry {_pair(i.registry)}, source {_pair(i.fetched)}"
    else:
        body = _pair(i.registry if i.action in (PUSHED, SKIPPED, ERROR) else i.fetched)
    note = f" ({i.note})" if i.note else ""
    return f"  {i.param_id} ({i.source}): {body}: {WHAT[i.action]}{note}"


def text(report: SyncReport, write: bool = False) -> str:
    """Every parameter with a remote source, then what was written or would be."""
    verb = "push" if report.pushed else "sync"
    if not report.items:
        return f"funnelcheck priors {verb}: no parameter has a sheets, csv or sql prior_source\n"
    counts = ", ".join(f"{report.count(a)} {a}" for a in ((PUSHED, SKIPPED, ERROR) if report.pushed
                                                          else (UPDATE, UNCHANGED, KEPT, ERROR)))
    out = [f"funnelcheck priors {verb}: {len(report.items)} parameters with a prior source: {counts}"]
    out += [line(i) for i in report.items]
    if not report.pushed:
        if write:
            out += ["", *(f"wrote {p}" for p in report.written)] if report.written else ["", "nothing to write"]
        elif report.count(UPDATE):
            out += ["", "dry run: nothing written (use --write)"]
    return "\n".join(out) + "\n"


def fallback_lines(problems: dict[str, str], command: str) -> str:
    """One warning per parameter whose prior source failed and whose fallback_value was used."""
    return "".join(f"funnelcheck {command}: warning: {pid}: prior source failed ({why}): using fallback_value\n"
                   for pid, why in sorted(problems.items()))
