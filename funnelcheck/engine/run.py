"""`run_whatif`: a graph, a traffic mix and overrides in; conversion with its uncertainty out.

The steps, each vectorised over segments (and draws) rather than looped:

1. Overrides become resolution slots; the mix gives each segment its weight.
2. The state graph keeps, per state, only the visited flags an edge ahead still looks at.
3. Every transition is resolved once per *distinct* (edge, visited projection, context
   projection) into a table `slot[transition, segment]`.
4. The point estimate propagates the slot means for all segments at once; the Monte Carlo
   run draws every slot once per draw (its own stream) and propagates chunks of segments ×
   draws through the part of the chain that can still reach a success outcome.
5. Population figures mix segments end to end (Σ_s w_s · figure_s), never edge probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Callable, Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from funnelcheck.engine import chain
from funnelcheck.engine.mix import Mix, Segment, label, value_shares, weigh
from funnelcheck.engine.montecarlo import InfeasibleEstimate, Streams, beta_shape, summarize, summarize_rows
from funnelcheck.engine.overrides import OVERRIDE, Override, OverrideSlot, override_slots
from funnelcheck.engine.result import (AppliedOverride, EdgeResult, NodeResult, SegmentResult, Summary,
                                       WhatIfResult)
from funnelcheck.findings import FunnelcheckError, UsageError
from funnelcheck.model import Graph, Registry
from funnelcheck.reference import Reference, format_reference
from funnelcheck.resolve import INLINE, Resolver, Slot
from funnelcheck.engine.statespace import OTHER, ContextClass, StateGraph, build_state_graph, context_classes, segments

# Working arrays of one Monte Carlo chunk stay around this size (bytes).
CHUNK_BYTES = 48 * 2**20
# Means may exceed 1 by rounding in YAML (0.1 + 0.2 + 0.7); anything more is an error.
SUM_TOLERANCE = 1e-9

Progress = Callable[[int, int], None]


def run_whatif(registry: Registry, graph_id: str, mix: Mix | None = None, overrides: Sequence[Override] = (),
               samples: int = 2000, seed: int = 0, progress: Progress | None = None) -> WhatIfResult:
    """Propagate one graph under a traffic mix and overrides: point estimate and Monte Carlo.

    Raises UsageError for bad arguments (unknown graph, context or value, an override the
    graph never uses) and FunnelcheckError when the registry cannot be computed (an edge
    with no base, an infeasible estimate, out-probabilities summing past 1, a closed cycle).
    """
    graph = registry.graphs.get(graph_id)
    if graph is None:
        have = ", ".join(sorted(registry.graphs)) or "none"
        raise UsageError(f"unknown graph '{graph_id}' (graphs: {have})")
    if samples < 1:
        raise UsageError(f"--samples must be at least 1, not {samples}")
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, not {seed}")
    _check_structure(graph)
    applied = override_slots(registry, graph, overrides)
    resolver = Resolver(registry, graph, [a.slot for a in applied])
    shares = value_shares(registry, mix)
    classes = context_classes(registry, graph, extra=[kv for a in applied for kv in a.slot.context_filter])
    segs = [s for s in weigh(segments(classes), shares) if s.weight > 0]
    node_ids = {n.id for n in graph.nodes}
    needs = {e.id: resolver.used_nodes.get(e.id, frozenset()) & node_ids for e in graph.edges}
    sg = build_state_graph(registry, graph, needs=needs)
    table = ResolutionTable.build(resolver, sg, classes, segs)
    table.check_complete(graph, sg, segs)
    keys = [_keys(s, graph, applied) for s in table.slots]  # aligned with table.slots
    _check_overrides_used(applied, table)
    _check_feasible(table.slots, keys)
    point = _point(graph, sg, table, segs)
    conv_draws, seg_draws, rescaled = _monte_carlo(graph, sg, table, segs, keys, samples, seed, progress)
    return _result(graph, sg, table, segs, point, conv_draws, seg_draws, rescaled, keys, applied,
                   shares, classes, samples, seed)


# --- structure and resolution -----------------------------------------------------------------

def _check_structure(graph: Graph) -> None:
    if not graph.entries():
        raise FunnelcheckError(f"graph '{graph.id}' has no entry node: run funnelcheck validate")
    if not any(n.outcome == "success" for n in graph.nodes):
        raise FunnelcheckError(f"graph '{graph.id}' has no success outcome: run funnelcheck validate")
    outcome = {n.id: n.outcome for n in graph.nodes}
    if len(outcome) < len(graph.nodes) or len({e.id for e in graph.edges}) < len(graph.edges):
        raise FunnelcheckError(f"graph '{graph.id}' repeats a node or edge id: run funnelcheck validate")
    for e in graph.edges:
        if e.source not in outcome or e.target not in outcome:
            raise FunnelcheckError(f"edge '{e.id}' of graph '{graph.id}' joins an unknown node: run funnelcheck validate")
        if outcome[e.source] is not None:
            raise FunnelcheckError(f"edge '{e.id}' leaves the outcome node '{e.source}': run funnelcheck validate")


@dataclass
class ResolutionTable:
    """slot[t, s]: the index (into `slots`) of the winner for transition t in segment s."""

    slots: list[Slot]
    index: np.ndarray  # (transitions, segments) int; -1 where nothing resolves

    @classmethod
    def build(cls, resolver: Resolver, sg: StateGraph, classes: dict[str, list[ContextClass]],
              segs: list[Segment]) -> "ResolutionTable":
        """Resolve each distinct (edge, visited projection) once per combination of the context
        classes its edge's parameters look at, then spread the winners over the segments."""
        keys = list(classes)
        codes = np.array([[classes[k].index(c) for k, c in zip(keys, s.classes)] for s in segs],
                         dtype=np.intp).reshape(len(segs), len(keys))
        slot_ids: dict[int, int] = {}  # id() of the resolver's own Slot objects -> index
        slots: list[Slot] = []
        rows: dict[tuple, np.ndarray] = {}
        index = np.empty((len(sg.transitions), len(segs)), dtype=np.int64)

        def slot_index(slot: Slot | None) -> int:
            if slot is None:
                return -1
            if id(slot) not in slot_ids:
                slot_ids[id(slot)] = len(slots)
                slots.append(slot)
            return slot_ids[id(slot)]

        for t, tr in enumerate(sg.transitions):
            edge = tr.edge.id
            visited = sg.states[tr.source].query_visited()
            memo = (edge, visited & resolver.used_nodes.get(edge, frozenset()))
            row = rows.get(memo)
            if row is None:
                used = resolver.used_keys.get(edge, set())
                axes = [i for i, k in enumerate(keys) if k in used]
                dims = [len(classes[keys[i]]) for i in axes]
                winners = np.array([
                    slot_index(resolver.winner(edge, visited, {keys[i]: classes[keys[i]][c].value
                                                               for i, c in zip(axes, combo)}))
                    for combo in product(*(range(d) for d in dims))], dtype=np.int64)
                flat = np.ravel_multi_index(tuple(codes[:, axes].T), dims) if axes else np.zeros(len(segs), np.intp)
                row = rows[memo] = winners[flat]
            index[t] = row
        return cls(slots, index)

    def check_complete(self, graph: Graph, sg: StateGraph, segs: list[Segment]) -> None:
        """Refuse a transition that resolves to nothing in some segment (an edge with no base)."""
        missing = np.argwhere(self.index < 0)
        if len(missing):
            t, s = missing[0]
            tr = sg.transitions[t]
            raise FunnelcheckError(
                f"edge '{tr.edge.id}' ({tr.edge.source} → {tr.edge.target}) of graph '{graph.id}' has no base "
                f"and no parameter matches {_query_text(sg.states[tr.source].query_visited(), segs[s])}: "
                f"run funnelcheck validate")

    def means(self) -> np.ndarray:
        """Each slot's mean, in slot order."""
        return np.array([s.estimate.mean for s in self.slots], dtype=float)


def _query_text(visited: frozenset[str], seg: Segment) -> str:
    parts = [f"visited {{{', '.join(sorted(visited))}}}"]
    members = seg.members
    parts += [f"{k} in {{{', '.join(members[k])}}}" if v == OTHER else f"{k}={v}" for k, v in seg.context.items()]
    return ", ".join(parts)


@dataclass(frozen=True)
class SlotKeys:
    stream: str  # what seeds the slot's random stream
    used: str  # its name in `parameters_used`


def _keys(slot: Slot, graph: Graph, applied: list[OverrideSlot]) -> SlotKeys:
    """Stream and report keys: the parameter id; `inline:<edge>` (stream: graph and edge) for an
    inline base; an override takes over the keys of what it replaced, so it keeps its stream."""
    if slot.kind == OVERRIDE:
        replaced = next((a.replaces for a in applied if a.slot == slot), None)
        if replaced is not None:
            return _keys(replaced, graph, applied)
        ref = format_reference(Reference.make(slot.edge, slot.visited_filter, dict(slot.context_filter)))
        name = "override:" + ref[: -len(".p.mean")]
        return SlotKeys(name, name)
    if slot.kind == INLINE:
        return SlotKeys(f"inline:{graph.id}:{slot.edge}", f"inline:{slot.edge}")
    return SlotKeys(slot.id, slot.id)


def _check_overrides_used(applied: list[OverrideSlot], table: ResolutionTable) -> None:
    if not applied:
        return
    used = {table.slots[i] for i in np.unique(table.index)}
    for a in applied:
        if a.slot not in used:
            raise UsageError(
                f"--set {a.overrides[0]}: the graph never uses this reference in the selected mix "
                f"(a more specific parameter wins wherever its filters hold, or they never hold)")


def _check_feasible(slots: list[Slot], keys: list[SlotKeys]) -> None:
    for s, key in zip(slots, keys):
        try:
            beta_shape(s.estimate)
        except InfeasibleEstimate as exc:
            where = f"{s.file}: " if s.file else ""
            raise FunnelcheckError(f"{where}{key.used}: {exc}: run funnelcheck validate") from None


# --- point estimate ---------------------------------------------------------------------------

@dataclass
class Point:
    visits: np.ndarray  # (states, segments)
    probs: np.ndarray  # (transitions, segments)
    out_sum: np.ndarray  # (states, segments)


def _arrays(sg: StateGraph) -> tuple[np.ndarray, np.ndarray]:
    src = np.fromiter((t.source for t in sg.transitions), dtype=np.intp, count=len(sg.transitions))
    tgt = np.fromiter((t.target for t in sg.transitions), dtype=np.intp, count=len(sg.transitions))
    return src, tgt


def _point(graph: Graph, sg: StateGraph, table: ResolutionTable, segs: list[Segment]) -> Point:
    src, tgt = _arrays(sg)
    probs = table.means()[table.index]
    out_sum = np.zeros((len(sg.states), len(segs)))
    np.add.at(out_sum, src, probs)
    bad = np.argwhere(out_sum > 1.0 + SUM_TOLERANCE)
    if len(bad):
        u, s = bad[0]
        state = sg.states[u]
        raise FunnelcheckError(
            f"the probabilities out of node '{state.node}' sum to {out_sum[u, s]:.6g} > 1 for "
            f"{_query_text(state.query_visited(), segs[s])}: run funnelcheck validate")
    plan = chain.make_plan(len(sg.states), src, tgt, sg.entries)
    try:
        visits = chain.propagate(plan, probs[plan.order])
    except chain.NotAbsorbing as exc:
        raise _closed_cycle(graph, sg, exc.states) from None
    absorbed = _outcome_mask(graph, sg, ("success", "failure"))
    drop = np.where(absorbed[:, None], 0.0, visits * (1.0 - out_sum))
    total = visits[absorbed].sum(axis=0) + drop.sum(axis=0)
    if not np.all(np.isfinite(visits)) or np.any(np.abs(total - 1.0) > 1e-6):
        raise _closed_cycle(graph, sg, np.arange(len(sg.states)))
    return Point(visits, probs, out_sum)


def _outcome_mask(graph: Graph, sg: StateGraph, kinds: tuple[str, ...]) -> np.ndarray:
    """Which states sit on an outcome node of the given kinds."""
    outcome = {n.id: n.outcome for n in graph.nodes}
    return np.array([outcome[s.node] in kinds for s in sg.states], dtype=bool)


def _closed_cycle(graph: Graph, sg: StateGraph, states: np.ndarray) -> FunnelcheckError:
    nodes = sorted({sg.states[i].node for i in states})
    shown = ", ".join(nodes[:8]) + (", ..." if len(nodes) > 8 else "")
    return FunnelcheckError(f"graph '{graph.id}': users can circle forever through {shown} "
                            f"(every way out of that cycle has probability 0)")


# --- Monte Carlo ------------------------------------------------------------------------------

def _monte_carlo(graph: Graph, sg: StateGraph, table: ResolutionTable, segs: list[Segment],
                 keys: list[SlotKeys], samples: int, seed: int,
                 progress: Progress | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Population draws (samples,), per-segment draws (segments, samples), share rescaled."""
    src, tgt = _arrays(sg)
    success = _outcome_mask(graph, sg, ("success",))
    live = _reaches(len(sg.states), src, tgt, success)
    seg_draws = np.zeros((len(segs), samples))
    weights = np.array([s.weight for s in segs])
    entries = {i: w for i, w in sg.entries.items() if live[i]}
    if not entries:
        return seg_draws.sum(axis=0), seg_draws, 0.0
    out = np.flatnonzero(live[src])  # transitions out of live states; dead targets share the out-sums
    index = table.index[out]
    values = np.zeros((len(table.slots), samples))
    streams = Streams(seed)
    for i in np.unique(index):
        values[i] = streams.draws(table.slots[i].estimate, keys[i].stream, samples)
    sub = np.flatnonzero(live)
    local = np.full(len(sg.states), -1, dtype=np.intp)
    local[sub] = np.arange(len(sub))
    inner = np.flatnonzero(live[tgt[out]])  # rows of `out` between live states: what the plan pushes
    plan = chain.make_plan(len(sub), local[src[out][inner]], local[tgt[out][inner]],
                           {int(local[i]): w for i, w in entries.items()})
    # Rows in the plan's order, then the transitions into dead states (they only share out-sums).
    rows = np.concatenate([inner[plan.order], np.flatnonzero(~live[tgt[out]])])
    index = index[rows]
    sources, row_source = np.unique(src[out][rows], return_inverse=True)
    leaving = csr_matrix((np.ones(len(rows)), (row_source, np.arange(len(rows)))), shape=(len(sources), len(rows)))
    goal = local[np.flatnonzero(success & live)]
    # Work in chunks of (segments × draws) columns of bounded memory: whole segments when
    # several fit, else slices of one segment's draws.
    width = max(1, CHUNK_BYTES // (8 * (plan.working_rows + len(rows))))
    per_chunk, span = (max(1, min(len(segs), width // samples)), samples) if width >= samples else (1, width)
    scaled = 0
    if progress:
        progress(0, len(segs))
    for a in range(0, len(segs), per_chunk):
        for b in range(0, samples, span):
            drawn = values if span == samples else values[:, b:b + span]
            probs = drawn[index[:, a:a + per_chunk]]  # (rows, segments, draws) of the chunk
            scaled += _scale_down(probs.reshape(len(rows), -1), leaving)
            try:
                visits = chain.propagate(plan, probs[:len(plan.order)])
            except chain.NotAbsorbing as exc:
                raise _closed_cycle(graph, sg, sub[exc.states]) from None
            seg_draws[a:a + per_chunk, b:b + span] = visits[goal].sum(axis=0)
        if progress:
            progress(min(a + per_chunk, len(segs)), len(segs))
    if not np.all(np.isfinite(seg_draws)):
        raise _closed_cycle(graph, sg, sub)
    return weights @ seg_draws, seg_draws, scaled / max(1, len(sources) * len(segs) * samples)


def _scale_down(probs: np.ndarray, leaving) -> int:
    """Where a state's drawn out-probabilities sum past 1 in a column, scale them to sum 1.

    Independent Beta draws ignore that a state's out-probabilities share one unit of mass;
    validation guarantees that the means fit, not that every draw does. `leaving` (states ×
    rows, CSR of ones) groups the rows of `probs` by source state. Only the offending
    (state, column) cells are touched. Returns how many there were.
    """
    total = leaving @ probs
    state, col = np.nonzero(total > 1.0)
    if not len(state):
        return 0
    counts = leaving.indptr[state + 1] - leaving.indptr[state]
    # The rows of each offending state: its run of CSR column indices, laid end to end.
    starts = np.repeat(leaving.indptr[state] - np.cumsum(counts) + counts, counts)
    rows = leaving.indices[starts + np.arange(counts.sum())]
    probs[rows, np.repeat(col, counts)] /= np.repeat(total[state, col], counts)
    return len(state)


def _reaches(n: int, src: np.ndarray, tgt: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """States from which some goal state can be reached."""
    if not goal.any():
        return np.zeros(n, dtype=bool)
    # Reverse edges plus a virtual root (index n) pointing at every goal state.
    goals = np.flatnonzero(goal)
    rows = np.concatenate([tgt, np.full(len(goals), n)])
    cols = np.concatenate([src, goals])
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1))
    order = breadth_first_order(graph, n, directed=True, return_predecessors=False)
    out = np.zeros(n + 1, dtype=bool)
    out[order] = True
    return out[:n]


# --- result -----------------------------------------------------------------------------------

def _result(graph: Graph, sg: StateGraph, table: ResolutionTable, segs: list[Segment], point: Point,
            conv_draws: np.ndarray, seg_draws: np.ndarray, rescaled: float, keys: list[SlotKeys],
            applied: list[OverrideSlot], shares: dict[str, dict[str, float]],
            classes: dict[str, list[ContextClass]], samples: int, seed: int) -> WhatIfResult:
    src, _ = _arrays(sg)
    w = np.array([s.weight for s in segs])
    node_pos = {n.id: i for i, n in enumerate(graph.nodes)}
    edge_pos = {e.id: i for i, e in enumerate(graph.edges)}
    state_node = np.array([node_pos[s.node] for s in sg.states], dtype=np.intp)
    absorbed = _outcome_mask(graph, sg, ("success", "failure"))
    visits = np.zeros((len(graph.nodes), len(segs)))
    np.add.at(visits, state_node, point.visits)
    drop = np.zeros_like(visits)
    np.add.at(drop, state_node, np.where(absorbed[:, None], 0.0, point.visits * (1.0 - point.out_sum)))
    flow = np.zeros((len(graph.edges), len(segs)))
    trans_edge = np.array([edge_pos[t.edge.id] for t in sg.transitions], dtype=np.intp)
    np.add.at(flow, trans_edge, point.probs * point.visits[src])
    pop_visits, pop_drop, pop_flow = visits @ w, drop @ w, flow @ w
    success = [node_pos[n.id] for n in graph.nodes if n.outcome == "success"]
    seg_point = visits[success].sum(axis=0)
    nodes = {n.id: NodeResult(float(pop_visits[i]), float(pop_drop[i]), n.outcome) for i, n in enumerate(graph.nodes)}
    edges = {}
    for i, e in enumerate(graph.edges):
        reach = pop_visits[node_pos[e.source]]
        edges[e.id] = EdgeResult(float(pop_flow[i] / reach) if reach > 0 else None, float(pop_flow[i]),
                                 e.source, e.target)
    outcomes = {n.id: float(pop_visits[node_pos[n.id]]) for n in graph.nodes if n.outcome is not None}
    seg_results = [
        SegmentResult(s.context, s.weight, float(seg_point[j]), seg_draws[j], s.members,
                      Summary(float(seg_point[j]), *stats),
                      dict(zip(node_pos, visits[:, j].tolist())), dict(zip(edge_pos, flow[:, j].tolist())))
        for j, (s, stats) in enumerate(zip(segs, summarize_rows(seg_draws)))]
    # Heaviest first; ties by value id with '*' last. Rounding keeps float noise in products
    # of shares from reordering equal weights.
    seg_results.sort(key=lambda r: (-round(r.weight, 12), [(k, v == OTHER, v) for k, v in sorted(r.context.items())]))
    used = sorted((int(i) for i in np.unique(table.index)), key=lambda i: keys[i].used)
    overrides = [AppliedOverride(format_reference(o.reference), o.value, getattr(a.before, o.reference.field),
                                 _keys(a.replaces, graph, applied).used if a.replaces is not None else None)
                 for a in applied for o in a.overrides]
    return WhatIfResult(
        graph=graph.id,
        conversion=Summary(float(seg_point @ w), *summarize(conv_draws)),
        draws=conv_draws,
        outcomes=outcomes,
        nodes=nodes,
        edges=edges,
        segments=seg_results,
        parameters_used={keys[i].used: table.slots[i].estimate for i in used},
        name=graph.name,
        samples=samples,
        seed=seed,
        shares={k: {label(c): sum(shares[k][v] for v in c.members) for c in classes[k]} for k in classes},
        overrides=overrides,
        rescaled=rescaled,
        states=len(sg.states),
    )

