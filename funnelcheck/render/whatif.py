"""Render a what-if result as text a person reads at a glance (JSON is `WhatIfResult.to_json`)."""
from __future__ import annotations

from funnelcheck.engine.result import WhatIfResult
from funnelcheck.render import segment_label
from funnelcheck.engine.statespace import OTHER
from funnelcheck.render.format import columns
from funnelcheck.render.format import pct as _pct


def pct(x: float | None, digits: int = 2) -> str:
    """A share as a percentage; '-' for no value (the terminal's dash)."""
    return _pct(x, digits, none="-")


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    return columns(header, rows, align, indent="  ")


def segments_notice(total: int) -> str:
    """What a run with many segments says before it starts (stderr)."""
    return (f"whatif: {total:,} segments to compute (every combination of the context values the graph's "
            f"parameters name); this can take minutes and much memory. Narrow it with --select KEY=V1,V2.\n")


def text(result: WhatIfResult, top: int = 10) -> str:
    """Conversion and its interval, mix, outcomes, the `top` heaviest segments, nodes, edges."""
    c = result.conversion
    title = f"{result.graph} ({result.name})" if result.name and result.name != result.graph else result.graph
    out = [f"{title}: conversion {pct(c.point)} at the parameters' means",
           f"  90% interval {pct(c.p05)} – {pct(c.p95)}, median {pct(c.p50)}, mean {pct(c.mean)} "
           f"({result.samples:,} Monte Carlo draws, seed {result.seed})" if result.samples else
           "  no Monte Carlo draws (--samples 0): no interval"]
    if result.rescaled:
        out.append(f"  {result.rescaled:.2%} of the drawn out-probability sets of a page summed past 1 "
                   f"and were scaled down to 1")
    for o in result.overrides:
        out.append(f"  override: {o.reference} = {o.value:g} (was {o.before:g})")
    others = {k: "|".join(v) for seg in result.segments for k, v in seg.members.items()}
    mixed = [f"{key} " + ", ".join(f"{others.get(key, v) if v == OTHER else v} {pct(s, 0)}" for v, s in shares.items())
             for key, shares in result.shares.items()]
    if mixed:
        out.append("  mix: " + "; ".join(mixed))

    out += ["", "Outcomes"]
    drop = sum(n.dropoff for n in result.nodes.values())
    rows = [[node, result.nodes[node].outcome or "", pct(p)] for node, p in result.outcomes.items()]
    rows.append(["(drop-off)", "", pct(drop)])
    out += _table(["node", "outcome", "share of users"], rows, "<<>")

    if len(result.segments) > 1:
        shown = result.segments[:top]
        out += ["", f"Segments, heaviest first ({len(shown)} of {len(result.segments)})"]
        rows = [[segment_label(s.context, s.members), pct(s.weight, 1), pct(s.conversion),
                 f"{pct(s.summary.p05)} – {pct(s.summary.p95)}" if s.summary else ""] for s in shown]
        out += _table(["segment", "weight", "conversion", "90% interval"], rows, "<>>>")

    out += ["", "Nodes"]
    rows = [[n, pct(r.visits, 1), pct(r.dropoff, 1) if not r.outcome else r.outcome]
            for n, r in result.nodes.items()]
    out += _table(["node", "visits", "drop-off"], rows, "<>>")
    if any(r.visits > 1 + 1e-9 for r in result.nodes.values()):
        out.append("  (visits are expected visits per entering user: above 100% where users come back)")

    out += ["", "Edges (p: effective probability for this mix = flow / visits of the source)"]
    rows = [[e, f"{r.source} → {r.target}", "-" if r.p is None else f"{r.p:.4f}", pct(r.flow, 1)]
            for e, r in result.edges.items()]
    out += _table(["edge", "from → to", "p", "flow"], rows, "<<>>")
    return "\n".join(out) + "\n"
