"""A funnel graph as a Mermaid flowchart, with changed edges highlighted and labelled `old → new`.

Mermaid ids are generated (`n0`, `n1`, ...) because some words (`end`, `graph`) break a
flowchart; labels carry the registry ids, reduced to a safe alphabet, so nothing a file
says can become markup inside the diagram.
"""
from __future__ import annotations

import re

from funnelcheck.git.diff import EdgeDelta, GraphDiff

CHANGED_STYLE = "stroke:#d1242f,stroke-width:3px,color:#d1242f"
MAX_EDGES = 200  # beyond this only changed edges are drawn: Mermaid refuses very large charts
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def label(text: str) -> str:
    """Registry ids are `[a-z0-9_-]`; anything else is replaced, never passed to Mermaid."""
    return _UNSAFE.sub("_", str(text))


def prob(p: float | None) -> str:
    return "–" if p is None else f"{p:.3g}"


def edge_label(e: EdgeDelta) -> str:
    if e.status == "added":
        return f"new: {prob(e.head)}"
    if e.status == "removed":
        return f"removed (was {prob(e.base)})"
    if e.changed:
        return f"{prob(e.base)} → {prob(e.head)}"
    return prob(e.head)


def flowchart(g: GraphDiff) -> tuple[str, int]:
    """The Mermaid source and how many unchanged edges were left out to keep the chart drawable."""
    edges = g.edges
    omitted = 0
    if len(edges) > MAX_EDGES:
        kept = [e for e in edges if e.changed][:MAX_EDGES]
        omitted = len(edges) - len(kept)
        edges = kept
    used = {n for e in edges for n in (e.source, e.target)}
    nodes = [(nid, outcome) for nid, outcome in g.nodes if not omitted or nid in used]
    known = {nid for nid, _ in nodes}
    nodes += [(nid, None) for nid in sorted(used - known)]  # an edge to an undeclared node still draws
    ids = {nid: f"n{i}" for i, (nid, _) in enumerate(nodes)}
    lines = ["flowchart LR"]
    for nid, outcome in nodes:
        shape = f'(["{label(nid)}"])' if outcome else f'["{label(nid)}"]'
        lines.append(f"  {ids[nid]}{shape}")
    changed = []
    for i, e in enumerate(edges):
        arrow = "-.->" if e.status == "removed" else "==>" if e.changed else "-->"
        lines.append(f'  {ids[e.source]} {arrow}|"{edge_label(e)}"| {ids[e.target]}')
        if e.changed:
            changed.append(str(i))
    success = [ids[n] for n, outcome in nodes if outcome == "success"]
    failure = [ids[n] for n, outcome in nodes if outcome == "failure"]
    lines.append("  classDef success fill:#dafbe1,stroke:#1a7f37")
    lines.append("  classDef failure fill:#ffebe9,stroke:#cf222e")
    if success:
        lines.append(f"  class {','.join(success)} success")
    if failure:
        lines.append(f"  class {','.join(failure)} failure")
    if changed:
        lines.append(f"  linkStyle {','.join(changed)} {CHANGED_STYLE}")
    return "\n".join(lines), omitted
