"""`funnelcheck resolve REF`: one reference through the fallback hierarchy (docs/formats.md#resolution)."""
from __future__ import annotations

import argparse

from funnelcheck.commands._common import add_format, add_rev, open_registry, print_json, require_clean
from funnelcheck.findings import UsageError
from funnelcheck.reference import ReferenceError, format_reference, parse_reference
from funnelcheck.resolve import Resolution, Resolver, Slot, Unresolvable, source_nodes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REF", help="e.g. e.signup.visited(pricing).context(channel='google').p.mean")
    parser.add_argument("--explain", action="store_true", help="list the candidates and why the winner won")
    add_rev(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    try:
        ref = parse_reference(args.reference)
    except ReferenceError as exc:
        raise UsageError(f"{args.reference!r}: {exc}") from None
    loaded = open_registry(args)
    require_clean(loaded)
    registry = loaded.registry
    try:
        res = Resolver(registry).resolve(ref, source_nodes(registry, ref.edge))
    except Unresolvable as exc:
        if args.format == "json":
            print_json({"reference": format_reference(ref), "value": None, "field": ref.field, "error": str(exc)})
        else:
            print(f"{format_reference(ref)}: {exc}")
        return 1
    if args.format == "json":
        print_json(resolution_json(res))
    else:
        print(render_text(res, args.explain))
    return 0


def slot_json(s: Slot) -> dict:
    return {"parameter_id": s.id, "kind": s.kind, "file": s.file, "edge": s.edge,
            "context_filter": dict(s.context_filter), "visited_filter": sorted(s.visited_filter),
            "value": {"mean": s.estimate.mean, "stdev": s.estimate.stdev}}


def resolution_json(res: Resolution) -> dict:
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


def _filters(s: Slot) -> str:
    parts = [f"{k}={v}" for k, v in s.context_filter] + [f"visited {n}" for n in sorted(s.visited_filter)]
    return ", ".join(parts) if parts else "no filters"


def render_text(res: Resolution, explain: bool) -> str:
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
    return "\n".join(lines)
