"""What-if diff between two revisions of a registry (docs/cli-git.md): the computation, never the printing.

For each graph: conversion under the default mix at BASE and at HEAD, the delta's mean and
90% interval and P(head > base). The runs themselves come from `git.sides` (cached by a hash of
their inputs, spread over the cores, the head taking the base's segments that a change does not
reach). Both sides draw each parameter slot from the stream seeded by (seed, slot), so an
unchanged parameter draws the same values at both revisions (common random numbers) and the
delta's spread comes only from what changed; a segment with the same inputs at both sides has a
delta of exactly zero.

Either side may be missing (a registry new at HEAD: everything is new) or broken: the
findings are kept and every graph that can still be computed is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from funnelcheck.engine.statespace import OTHER
from funnelcheck.findings import ERROR, Finding
from funnelcheck.load.registry import Loaded
from funnelcheck.model import Edge, Graph, Parameter, Registry

ADDED, REMOVED, MODIFIED = "added", "removed", "modified"


@dataclass(frozen=True)
class Side:
    """One revision: how the user named it, its commit (None for the work tree), what loading it gave."""

    label: str
    commit: str | None
    loaded: Loaded | None  # None: there is no registry at this revision
    findings: list[Finding] = field(default_factory=list)  # validation (HEAD) or load errors (BASE)

    @property
    def registry(self) -> Registry | None:
        return self.loaded.registry if self.loaded else None


@dataclass(frozen=True)
class Delta:
    """head − base over common draws: mean, 90% interval and P(head > base); `point` at the means."""

    point: float
    mean: float
    p05: float
    p95: float
    prob_improvement: float


@dataclass(frozen=True)
class Change:
    """One changed field of a parameter (or of an edge's inline base, id `inline:<edge>`)."""

    id: str
    field: str  # mean | stdev | edge | context_filter | visited_filter
    base: Any
    head: Any
    change: str  # added | removed | modified
    edge: str | None
    description: str | None = None  # the parameter's description (HEAD's, else BASE's)


@dataclass(frozen=True)
class SegmentDelta:
    context: dict  # key -> value, or OTHER ('*') for a class of several values
    weight: float
    base: float | None  # conversion at the means
    head: float | None
    delta: Delta | None
    members: dict = field(default_factory=dict)  # for OTHER: key -> the values it stands for


@dataclass(frozen=True)
class EdgeDelta:
    """An edge of the drawn graph with its effective probability under the mix at each side."""

    id: str
    source: str
    target: str
    base: float | None  # None: the edge is not in the graph at that side, or the side could not be computed
    head: float | None
    changed: bool
    status: str = "kept"  # kept | added | removed


@dataclass
class GraphDiff:
    id: str
    status: str  # added | removed | modified | unchanged | error
    base: Any = None  # the engine's Summary at BASE (point, mean, p05, p50, p95), or None
    head: Any = None
    delta: Delta | None = None
    changes: list[Change] = field(default_factory=list)
    segments: list[SegmentDelta] = field(default_factory=list)
    edges: list[EdgeDelta] = field(default_factory=list)
    nodes: list[tuple[str, str | None]] = field(default_factory=list)  # (id, outcome) of the drawn graph
    errors: list[str] = field(default_factory=list)  # why a side could not be computed
    computed: bool = True  # False: the graph's inputs are identical at both sides, so it was not run


@dataclass
class Diff:
    base: Side
    head: Side
    graphs: list[GraphDiff]
    changes: list[Change]  # every changed parameter, whichever graph uses it
    samples: int
    seed: int

    def to_json(self) -> dict:
        """the `diff` JSON shape of docs/cli.md, plus status, errors, edges and the BASE side's load errors."""
        return {
            "base": _side_json(self.base),
            "head": _side_json(self.head),
            "samples": self.samples,
            "seed": self.seed,
            "graphs": [_graph_json(g) for g in self.graphs],
            "changed_parameters": [_change_json(c) for c in self.changes],
            "validation": [f.as_dict() for f in self.head.findings],
            "base_errors": [f.as_dict() for f in self.base.findings],
        }


def _side_json(side: Side) -> dict:
    return {"label": side.label, "commit": side.commit, "registry": side.loaded is not None}


def _summary_json(s) -> dict | None:
    return None if s is None else {"point": s.point, "mean": s.mean, "p05": s.p05, "p50": s.p50, "p95": s.p95}


def _delta_json(d: Delta | None) -> dict | None:
    return None if d is None else {"point": d.point, "mean": d.mean, "p05": d.p05, "p95": d.p95,
                                   "prob_improvement": d.prob_improvement}


def _change_json(c: Change) -> dict:
    return {"id": c.id, "field": c.field, "base": c.base, "head": c.head, "change": c.change, "edge": c.edge,
            "description": c.description}


def _graph_json(g: GraphDiff) -> dict:
    return {
        "id": g.id, "status": g.status,
        "base": _summary_json(g.base), "head": _summary_json(g.head), "delta": _delta_json(g.delta),
        "changed_parameters": [_change_json(c) for c in g.changes],
        "segments": [{"context": s.context, "weight": s.weight, "base": s.base, "head": s.head,
                      "delta": _delta_json(s.delta), **({"members": s.members} if s.members else {})}
                     for s in g.segments],
        "edges": {e.id: {"base": e.base, "head": e.head, "changed": e.changed, "status": e.status} for e in g.edges},
        "errors": g.errors, "computed": g.computed,
    }


# -- changed parameters -------------------------------------------------------------------------

def _fields(p: Parameter) -> dict[str, Any]:
    est = p.estimate
    return {"mean": est.mean if est else None, "stdev": est.stdev if est else None, "edge": p.edge,
            "context_filter": dict(p.context_filter), "visited_filter": sorted(p.visited_filter)}


def _inline_fields(edge: Edge) -> dict[str, Any]:
    return {"mean": edge.inline.mean, "stdev": edge.inline.stdev}


def _inline_bases(registry: Registry | None) -> dict[str, tuple[str, dict]]:
    """`inline:<edge>` -> (edge id, fields) for every edge with an inline base, in any graph."""
    out: dict[str, tuple[str, dict]] = {}
    for g in sorted(registry.graphs.values(), key=lambda g: g.id) if registry else ():
        for e in g.edges:
            if e.inline is not None:
                out.setdefault(f"inline:{e.id}", (e.id, _inline_fields(e)))
    return out


def parameter_changes(base: Registry | None, head: Registry | None) -> list[Change]:
    """Parameters (and inline bases) added, removed or changed, field by field, sorted by id."""
    before, after = base.parameters if base else {}, head.parameters if head else {}
    # Equal parameters (model objects compare by value) have no changed field: only the others are read.
    old = {pid: (p.edge, _fields(p)) for pid, p in before.items() if after.get(pid) != p}
    new = {pid: (p.edge, _fields(p)) for pid, p in after.items() if before.get(pid) != p}
    old.update(_inline_bases(base))
    new.update(_inline_bases(head))
    out: list[Change] = []
    for pid in sorted(old.keys() | new.keys()):
        (e0, f0), (e1, f1) = old.get(pid, (None, None)), new.get(pid, (None, None))
        p = (head.parameters.get(pid) if head else None) or (base.parameters.get(pid) if base else None)
        text = p.description if p is not None else None
        if f0 is None:
            out += [Change(pid, k, None, f1[k], ADDED, e1, text) for k in ("mean", "stdev")]
        elif f1 is None:
            out += [Change(pid, k, f0[k], None, REMOVED, e0, text) for k in ("mean", "stdev")]
        else:
            out += [Change(pid, k, f0[k], f1[k], MODIFIED, e1, text) for k in f0 if f0[k] != f1.get(k)]
    return out


# -- deltas ---------------------------------------------------------------------------------------

def delta_of(base_draws, head_draws, base_point: float, head_point: float) -> Delta:
    """head − base draw by draw (common random numbers): mean, 5th and 95th percentiles, P(head > base)."""
    return deltas_of([base_draws], [head_draws], [base_point], [head_point])[0]


def deltas_of(base_draws: list, head_draws: list, base_points: list, head_points: list) -> list[Delta]:
    """`delta_of` for many pairs at once (one vectorised quantile over all of them)."""
    import numpy as np

    if not base_draws:
        return []
    b, h = np.asarray(base_draws, dtype=float), np.asarray(head_draws, dtype=float)
    d = h - b
    p05, p95 = np.quantile(d, [0.05, 0.95], axis=1)
    means, better = d.mean(axis=1), (h > b).mean(axis=1)
    return [Delta(float(hp - bp), float(m), float(lo), float(hi), float(pi))
            for bp, hp, m, lo, hi, pi in zip(base_points, head_points, means, p05, p95, better)]


def _value_sets(seg, universe: dict[str, frozenset]) -> dict[str, frozenset]:
    """The context values a segment stands for, per key; a key it does not split covers every value."""
    out = dict(universe)
    for k, v in seg.context.items():
        out[k] = frozenset(seg.members.get(k, ())) if v == OTHER else frozenset([v])
    return out


def segment_deltas(base, head, shares: dict[str, dict[str, float]]) -> list[SegmentDelta]:
    """Per-segment deltas on the common refinement of both sides' segments.

    When a revision adds a context filter, HEAD splits traffic that BASE did not: each HEAD
    segment is then compared with the BASE segment that covers the same values (BASE resolves
    all of them alike), cell by cell, with the weight from `shares` (value -> share per key).
    A segment present at one side only (its graph missing or broken at the other) has no delta.
    """
    if base is None or head is None:
        only = head or base
        return [SegmentDelta(dict(s.context), s.weight, s.conversion if only is base else None,
                             s.conversion if only is head else None, None, dict(s.members)) for s in only.segments]
    same = {tuple(sorted(s.context.items())): s for s in base.segments}
    if len(same) == len(head.segments) and all(tuple(sorted(h.context.items())) in same for h in head.segments):
        pairs = [(same[tuple(sorted(h.context.items()))], h, dict(h.context), h.weight, dict(h.members))
                 for h in head.segments]
    else:
        keys = {k for s in (*base.segments, *head.segments) for k in s.context}
        universe = {k: frozenset(shares.get(k, {})) for k in keys}
        pairs = []
        for h in head.segments:
            hs = _value_sets(h, universe)
            for b in base.segments:
                bs = _value_sets(b, universe)
                cell = {k: hs[k] & bs[k] for k in keys}
                if all(cell.values()):
                    weight = 1.0
                    for k, values in cell.items():
                        weight *= sum(shares.get(k, {}).get(v, 0.0) for v in values)
                    context = {k: next(iter(v)) if len(v) == 1 else OTHER for k, v in sorted(cell.items())}
                    members = {k: sorted(v) for k, v in sorted(cell.items()) if len(v) > 1}
                    pairs.append((b, h, context, weight, members))
    pairs = [p for p in pairs if p[3] > 0]
    # Segments with the same inputs digest drew identical values: their delta is exactly zero, known
    # without reading their draws.
    same = [_same_draws(b, h) for b, h, *_ in pairs]
    drawn = [p for p, equal in zip(pairs, same) if not equal]
    deltas = iter(deltas_of([b.draws for b, *_ in drawn], [h.draws for _, h, *_ in drawn],
                            [b.conversion for b, *_ in drawn], [h.conversion for _, h, *_ in drawn]))
    out = []
    for (b, h, context, weight, members), equal in zip(pairs, same):
        delta = Delta(float(h.conversion - b.conversion), 0.0, 0.0, 0.0, 0.0) if equal else next(deltas)
        out.append(SegmentDelta(context, weight, b.conversion, h.conversion, delta, members))
    out.sort(key=lambda s: (-s.weight, sorted(s.context.items())))
    return out


def _same_draws(base_segment, head_segment) -> bool:
    """Whether two segments' draws are known equal: the same digest of their inputs (engine `SegmentResult.inputs`)."""
    return bool(base_segment.inputs) and base_segment.inputs == head_segment.inputs


def value_shares(*registries: Registry | None) -> dict[str, dict[str, float]]:
    """The default mix, value by value: each context's shares from the first registry that has it."""
    out: dict[str, dict[str, float]] = {}
    for registry in registries:
        for ctx in (registry.contexts if registry else ()):
            out.setdefault(ctx.id, ctx.shares())
    return out


def _effective_p(result, edge_id: str) -> float | None:
    edge = result.edges.get(edge_id) if result is not None else None
    return edge.p if edge is not None else None


def edge_deltas(base_graph: Graph | None, head_graph: Graph | None, base, head, changed_edges: set[str]) -> list[EdgeDelta]:
    """Every edge of either side's graph; `changed` when the edge itself or a parameter of it changed.

    An edge whose own inputs are the same is not `changed` even when its effective p moved: that
    only says a different mix of users reaches it, and highlighting it would hide the real change.
    """
    out = []
    base_edges = {e.id: e for e in (base_graph.edges if base_graph else ())}
    head_edges = {e.id: e for e in (head_graph.edges if head_graph else ())}
    for eid in list(head_edges) + [e for e in base_edges if e not in head_edges]:
        e = head_edges.get(eid) or base_edges[eid]
        pb = _effective_p(base, eid) if eid in base_edges else None
        ph = _effective_p(head, eid) if eid in head_edges else None
        status = "kept" if eid in base_edges and eid in head_edges else "added" if eid in head_edges else "removed"
        rewired = status == "kept" and (base_edges[eid].source, base_edges[eid].target) != (e.source, e.target)
        out.append(EdgeDelta(eid, e.source, e.target, pb, ph, status != "kept" or rewired or eid in changed_edges, status))
    return out


# -- the whole diff -------------------------------------------------------------------------------

Results = dict  # (graph id, "base" | "head") -> (what-if result or None, error or None): `sides.GraphRuns`


def inputs(registry: Registry, graph: Graph, by_edge: dict[str, list[Parameter]]) -> tuple:
    """Everything a what-if run of `graph` reads: the graph, the contexts, the parameters of its edges.

    Model objects compare by value (their source positions excluded), so equal inputs at two
    revisions mean equal results, and the graph need not be run at all.
    """
    return graph, registry.contexts, tuple(p for e in graph.edges for p in by_edge.get(e.id, ()))


def graph_diff(graph_id: str, base: Side, head: Side, changes: list[Change], results: Results,
               same_inputs: bool = False) -> GraphDiff:
    """One graph at both sides from the runs in `results`; with `same_inputs` it is reported unchanged."""
    bg = base.registry.graphs.get(graph_id) if base.registry else None
    hg = head.registry.graphs.get(graph_id) if head.registry else None
    if same_inputs:
        return GraphDiff(graph_id, "unchanged", nodes=[(n.id, n.outcome) for n in hg.nodes], computed=False)
    edge_ids = {e.id for g in (bg, hg) if g for e in g.edges}
    mine = [c for c in changes if c.edge in edge_ids]
    errors: list[str] = []
    rb, rh = None, None
    for name, side in (("base", base), ("head", head)):
        result, error = results.get((graph_id, name), (None, None))
        if error is not None:
            errors.append(f"cannot compute {graph_id} at {side.label}: {error}")
        rb, rh = (result, rh) if name == "base" else (rb, result)
    gd = GraphDiff(graph_id, "unchanged", rb.conversion if rb else None, rh.conversion if rh else None,
                   changes=mine, errors=errors)
    if rb is not None and rh is not None:
        gd.delta = delta_of(rb.draws, rh.draws, rb.conversion.point, rh.conversion.point)
    gd.segments = segment_deltas(rb, rh, value_shares(head.registry, base.registry)) if (rb or rh) else []
    drawn = hg or bg
    gd.nodes = [(n.id, n.outcome) for n in drawn.nodes]
    if hg and bg:
        gd.nodes += [(n.id, n.outcome) for n in bg.nodes if hg.node(n.id) is None]
    gd.edges = edge_deltas(bg, hg, rb, rh, {c.edge for c in mine})
    if errors:
        gd.status = "error"
    elif bg is None:
        gd.status = ADDED
    elif hg is None:
        gd.status = REMOVED
    elif mine or any(e.changed for e in gd.edges) or (gd.delta is not None and gd.delta.point != 0):
        gd.status = MODIFIED
    return gd


def diff(base: Side, head: Side, samples: int = 2000, seed: int = 0, store=None, jobs: int | None = None) -> Diff:
    """The what-if diff of every graph at either side (docs/cli-git.md).

    Only graphs whose inputs differ are run, each side once and both together (`sides.GraphRuns`):
    read back from `store` (a `sides.SideStore`) when seen before, else run over `jobs` processes,
    each of which sends back only its graph's diff. Graphs found whole in the store are diffed
    here meanwhile.
    """
    from funnelcheck.git.sides import DamagedEntry, GraphRuns, parallel

    changes = parameter_changes(base.registry, head.registry)
    ids = sorted((set(base.registry.graphs) if base.registry else set()) |
                 (set(head.registry.graphs) if head.registry else set()))
    registries = {"base": base.registry, "head": head.registry}
    by_edge = {side: reg.parameters_by_edge() for side, reg in registries.items() if reg is not None}
    same = set()
    if base.registry and head.registry:
        same = {gid for gid in set(base.registry.graphs) & set(head.registry.graphs)
                if inputs(base.registry, base.registry.graphs[gid], by_edge["base"]) ==
                inputs(head.registry, head.registry.graphs[gid], by_edge["head"])}
    runs = GraphRuns(registries, samples, seed, store, by_edge)

    def one(graph_id: str) -> GraphDiff:
        try:
            return graph_diff(graph_id, base, head, changes, runs.results(graph_id))
        except DamagedEntry:
            return graph_diff(graph_id, base, head, changes, runs.results(graph_id, reuse=False))

    changed = [gid for gid in ids if gid not in same]
    ready = [gid for gid in changed if len(runs.stored(gid)) == len(runs.sides(gid))]
    to_run = [gid for gid in changed if gid not in ready]
    done: dict[str, GraphDiff] = {}

    def diff_ready() -> None:
        done.update((gid, one(gid)) for gid in ready)

    done.update(zip(to_run, parallel(one, to_run, jobs, meanwhile=diff_ready)))
    graphs = [done[gid] if gid in done else graph_diff(gid, base, head, changes, {}, same_inputs=True) for gid in ids]
    return Diff(base, head, graphs, changes, samples, seed)


def errors_of(loaded: Loaded | None) -> list[Finding]:
    """The load errors of a side (what stops files from entering the model)."""
    return [f for f in loaded.findings if f.severity == ERROR] if loaded else []
