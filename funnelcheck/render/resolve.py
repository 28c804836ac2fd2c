"""Render a resolution (`funnelcheck resolve`): the text line(s), `--explain`, and the JSON shape of docs/cli.md."""
from __future__ import annotations

from funnelcheck.reference import Reference, format_reference
from funnelcheck.resolve import Resolution, Slot


def slot_json(s: Slot) -> dict:
    """One candidate: its id, kind, file, filters and value."""
    return {"parameter_id": s.id, "kind": s.kind, "file": s.file, "edge": s.edge,
            "context_filter": dict(s.context_filter), "visited_filter": sorted(s.visited_filter),
            "value": {"mean": s.estimate.mean, "stdev": s.estimate.stdev}}


def as_json(res: Resolution) -> dict:
    """{"reference", "value", "field", "parameter_id", "file", "tier", "partial", "visited", "candidates"}."""
    return {
        "reference": format_reference(res.reference),
        "value": res.value,
        "field": res.reference.field,
        "parameter_id": res.winner.id,
        "file": res.winner.file,
        "tier": res.tier,
        "partial": res.partial,
        "visited": sorted(res.visited),
        "candidates": [dict(slot_json(s), rank=i + 1, matches=True) for i, s in enumerate(res.candidates)]
        + [dict(slot_json(s), matches=False, reason=why) for s, why in res.rejected],
    }


def unresolvable_json(ref: Reference, reason: str) -> dict:
    """The JSON of a reference nothing resolves: value null and the reason."""
    return {"reference": format_reference(ref), "value": None, "field": ref.field, "error": reason}


def unresolvable_text(ref: Reference, reason: str) -> str:
    return f"{format_reference(ref)}: {reason}\n"


def _filters(s: Slot) -> str:
    parts = [f"{k}={v}" for k, v in s.context_filter] + [f"visited {n}" for n in sorted(s.visited_filter)]
    return ", ".join(parts) if parts else "no filters"


def text(res: Resolution, explain: bool = False) -> str:
    """`REF = value`, where it came from, and with `explain` every candidate, best first."""
    w = res.winner
    name = w.id if w.id else "inline base"
    lines = [f"{format_reference(res.reference)} = {res.value:g}",
             f"  from {name} ({w.file}), tier {res.tier}{', partial match' if res.partial else ''}"]
    if explain:
        lines.append(f"  query: visited {{{', '.join(sorted(res.visited))}}}; "
                     f"context {{{', '.join(f'{k}={v}' for k, v in res.reference.context) or ''}}}")
        lines.append("  candidates, best first (most context keys, then most visited nodes, then context priority, then id):")
        for i, s in enumerate(res.candidates):
            mark = "winner" if i == 0 else f"#{i + 1}"
            lines.append(f"    {mark:>6}  {s.id or 'inline base':<32} {_filters(s):<40} mean={s.estimate.mean:g} stdev={s.estimate.stdev:g}")
        for s, why in res.rejected:
            lines.append(f"    {'-':>6}  {s.id or 'inline base':<32} {_filters(s):<40} {why}")
    return "\n".join(lines) + "\n"
