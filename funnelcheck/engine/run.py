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

import hashlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from funnelcheck.engine import chain
from funnelcheck.engine.mix import Mix, Segment, label, value_shares, weigh
from funnelcheck.engine.montecarlo import draw_slots, summarize, summarize_rows
from funnelcheck.engine.overrides import Override, OverrideSlot, override_slots
from funnelcheck.engine.resolution import (ResolutionTable, SlotKeys, check_feasible, check_overrides_used,
                                           query_text, slot_keys, slots_in)
from funnelcheck.engine.result import (AppliedOverride, Column, EdgeResult, NodeResult, SegmentResult, Summary,
                                       WhatIfResult)
from funnelcheck.findings import FunnelcheckError, UsageError
from funnelcheck.model import Graph, Registry
from funnelcheck.reference import format_reference
from funnelcheck.resolve import Resolver
from funnelcheck.engine.statespace import OTHER, ContextClass, StateGraph, build_state_graph, context_classes, segments

# Working arrays of one Monte Carlo chunk stay around this size (bytes).
CHUNK_BYTES = 48 * 2**20
# Segments whose (transitions × segments) arrays the point estimate makes at once.
SEGMENTS_PER_CHUNK = 1024
# More draws than this are refused (SPEC 10): memory grows with segments × draws.
MAX_SAMPLES = 1_000_000
# Means may exceed 1 by rounding in YAML (0.1 + 0.2 + 0.7); anything more is an error.
SUM_TOLERANCE = 1e-9

Progress = Callable[[int, int], None]


def run_whatif(registry: Registry, graph_id: str, mix: Mix | None = None, overrides: Sequence[Override] = (),
               samples: int = 2000, seed: int = 0, progress: Progress | None = None,
               known: Mapping[str, np.ndarray] | None = None) -> WhatIfResult:
    """Propagate one graph under a traffic mix and overrides: point estimate and Monte Carlo.

    With `known` (even empty), every segment carries the digest of its inputs
    (`SegmentResult.inputs`), and `known` maps such digests, from any earlier run, to draws: a
    segment found there is not drawn again (a diff passes the other revision's segments).
    `rescaled` then counts only the segments drawn here.

    Raises UsageError for bad arguments (unknown graph, context or value, an override the
    graph never uses) and FunnelcheckError when the registry cannot be computed (an edge
    with no base, an infeasible estimate, out-probabilities summing past 1, a closed cycle).
    """
    graph = registry.graphs.get(graph_id)
    if graph is None:
        have = ", ".join(sorted(registry.graphs)) or "none"
        raise UsageError(f"unknown graph '{graph_id}' (graphs: {have})")
    if not 0 <= samples <= MAX_SAMPLES:
        raise UsageError(f"--samples must be between 0 (the point estimate only) and {MAX_SAMPLES:,}, not {samples:,}")
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, not {seed}")
    _check_structure(graph)
    plain = Resolver(registry, graph)
    applied = override_slots(plain, graph, overrides)
    resolver = plain.with_overrides(a.slot for a in applied) if applied else plain
    shares = value_shares(registry, mix)
    classes = context_classes(registry, graph, extra=[kv for a in applied for kv in a.slot.context_filter])
    segs = [s for s in weigh(segments(classes), shares) if s.weight > 0]
    if progress:
        progress(0, len(segs))  # said before the work starts: the caller may warn about a large run
    node_ids = {n.id for n in graph.nodes}
    needs = {e.id: resolver.used_nodes.get(e.id, frozenset()) & node_ids for e in graph.edges}
    sg = build_state_graph(registry, graph, needs=needs)
    table = ResolutionTable.build(resolver, sg, classes, segs)
    table.check_complete(graph, sg, segs)
    keys = [slot_keys(s) for s in table.slots]  # aligned with table.slots
    check_overrides_used(applied, table)
    check_feasible(table.slots, keys)
    point = _point(graph, sg, table, segs)
    inputs = segment_inputs(graph, sg, table, keys, samples, seed) if known is not None else [""] * len(segs)
    if samples:
        given = {j: known[d] for j, d in enumerate(inputs) if d in known} if known else {}
        conv_draws, seg_draws, rescaled = _monte_carlo(graph, sg, table, segs, keys, samples, seed, progress, given)
    else:
        conv_draws, seg_draws, rescaled = np.zeros(0), np.zeros((len(segs), 0)), 0.0
    plan = Plan(graph, sg, table, segs, keys, applied, shares, classes, samples, seed)
    return _result(plan, point, conv_draws, seg_draws, rescaled, inputs)


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


# --- point estimate ---------------------------------------------------------------------------

@dataclass
class Point:
    visits: np.ndarray  # (states, segments)
    out_sum: np.ndarray  # (states, segments)
    flow: np.ndarray  # (transitions,) population flow, Σ_s w_s · p_s(t) · visits_s(source of t)
    edge_flow: np.ndarray  # (edges, segments): each segment's expected flow per edge (the dashboard re-weights it)


def _arrays(sg: StateGraph) -> tuple[np.ndarray, np.ndarray]:
    src = np.fromiter((t.source for t in sg.transitions), dtype=np.intp, count=len(sg.transitions))
    tgt = np.fromiter((t.target for t in sg.transitions), dtype=np.intp, count=len(sg.transitions))
    return src, tgt


def _point(graph: Graph, sg: StateGraph, table: ResolutionTable, segs: list[Segment]) -> Point:
    """Every segment at the slots' means, a block of segments at a time: the (transitions × segments)
    probabilities of one block are all that is made at once (15,625 segments would need 175 MB)."""
    src, tgt = _arrays(sg)
    plan = chain.make_plan(len(sg.states), src, tgt, sg.entries)
    means = table.means()
    absorbed = _outcome_mask(graph, sg, ("success", "failure"))
    w = np.array([s.weight for s in segs])
    src = src[plan.order]
    edge_pos = {e.id: i for i, e in enumerate(graph.edges)}
    edge_of = np.array([edge_pos[sg.transitions[t].edge.id] for t in plan.order], dtype=np.intp)
    visits = np.empty((len(sg.states), len(segs)))
    out_sum = np.empty((len(sg.states), len(segs)))
    flow = np.zeros(len(src))  # population flow per transition
    edge_flow = np.empty((len(graph.edges), len(segs)))
    for a in range(0, len(segs), SEGMENTS_PER_CHUNK):
        cols = slice(a, a + SEGMENTS_PER_CHUNK)
        probs = means[table.index[plan.order, cols]]
        summed = np.zeros((len(sg.states), probs.shape[1]))
        np.add.at(summed, src, probs)
        bad = np.argwhere(summed > 1.0 + SUM_TOLERANCE)
        if len(bad):
            u, s = bad[0]
            state = sg.states[u]
            raise FunnelcheckError(
                f"the probabilities out of node '{state.node}' sum to {summed[u, s]:.6g} > 1 for "
                f"{query_text(state.query_visited(), segs[a + s])}: run funnelcheck validate")
        try:
            reached = chain.propagate(plan, probs)
        except chain.NotAbsorbing as exc:
            raise _closed_cycle(graph, sg, exc.states) from None
        drop = np.where(absorbed[:, None], 0.0, reached * (1.0 - summed))
        total = reached[absorbed].sum(axis=0) + drop.sum(axis=0)
        if not np.all(np.isfinite(reached)) or np.any(np.abs(total - 1.0) > 1e-6):
            raise _closed_cycle(graph, sg, np.arange(len(sg.states)))
        visits[:, cols], out_sum[:, cols] = reached, summed
        block = probs * reached[src]
        flow += block @ w[cols]
        per_edge = np.zeros((len(graph.edges), block.shape[1]))
        np.add.at(per_edge, edge_of, block)
        edge_flow[:, cols] = per_edge
    in_order = np.empty_like(flow)
    in_order[plan.order] = flow
    return Point(visits, out_sum, in_order, edge_flow)


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

def segment_inputs(graph: Graph, sg: StateGraph, table: ResolutionTable, keys: list[SlotKeys], samples: int,
                   seed: int) -> list[str]:
    """Per segment, a digest of everything its Monte Carlo draws depend on: the state graph, the
    number of draws, the seed and, transition by transition, the stream key and estimate of the
    slot it resolves to. Segments of any two runs with the same digest draw identical values: a
    segment's columns are propagated independently of the others'."""
    outcome = {n.id: n.outcome for n in graph.nodes}
    structure = repr((samples, seed, [(s.node, outcome[s.node]) for s in sg.states],
                      [(t.source, t.target) for t in sg.transitions], sorted(sg.entries.items())))
    prefix = hashlib.blake2b(structure.encode("utf-8"), digest_size=16)
    slot_ids = np.frombuffer(b"".join(
        hashlib.blake2b(repr((k.stream, float(s.estimate.mean), float(s.estimate.stdev))).encode("utf-8"),
                        digest_size=16).digest() for s, k in zip(table.slots, keys)), dtype="V16")
    out = []
    for a in range(0, table.index.shape[1], SEGMENTS_PER_CHUNK):
        for column in np.ascontiguousarray(slot_ids[table.index[:, a:a + SEGMENTS_PER_CHUNK]].T):
            h = prefix.copy()
            h.update(bytes(column))
            out.append(h.hexdigest())
    return out


def _monte_carlo(graph: Graph, sg: StateGraph, table: ResolutionTable, segs: list[Segment],
                 keys: list[SlotKeys], samples: int, seed: int, progress: Progress | None,
                 given: dict[int, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Population draws (samples,), per-segment draws (segments, samples), share rescaled.

    Segments in `given` (position -> draws) are taken as they are; the others are drawn."""
    src, tgt = _arrays(sg)
    success = _outcome_mask(graph, sg, ("success",))
    live = _reaches(len(sg.states), src, tgt, success)
    seg_draws = np.zeros((len(segs), samples))
    weights = np.array([s.weight for s in segs])
    given = given or {}
    for j, row in given.items():
        seg_draws[j] = row
    todo = np.array([j for j in range(len(segs)) if j not in given], dtype=np.intp)
    entries = {i: w for i, w in sg.entries.items() if live[i]}
    if not entries or not len(todo):
        return weights @ seg_draws, seg_draws, 0.0
    out = np.flatnonzero(live[src])  # transitions out of live states; dead targets share the out-sums
    sub = np.flatnonzero(live)
    local = np.full(len(sg.states), -1, dtype=np.intp)
    local[sub] = np.arange(len(sub))
    inner = np.flatnonzero(live[tgt[out]])  # rows of `out` between live states: what the plan pushes
    plan = chain.make_plan(len(sub), local[src[out][inner]], local[tgt[out][inner]],
                           {int(local[i]): w for i, w in entries.items()})
    # Rows in the plan's order, then the transitions into dead states (they only share out-sums).
    rows = np.concatenate([inner[plan.order], np.flatnonzero(~live[tgt[out]])])
    table_rows = out[rows]
    values = np.zeros((len(table.slots), samples))
    drawn = slots_in(table.index[np.ix_(table_rows, todo)], len(table.slots))
    values[drawn] = draw_slots([table.slots[i].estimate for i in drawn], [keys[i].stream for i in drawn],
                               seed, samples)
    sources, row_source = np.unique(src[out][rows], return_inverse=True)
    from scipy.sparse import csr_matrix

    leaving = csr_matrix((np.ones(len(rows)), (row_source, np.arange(len(rows)))), shape=(len(sources), len(rows)))
    goal = local[np.flatnonzero(success & live)]
    # Work in chunks of (segments × draws) columns of bounded memory: whole segments when
    # several fit, else slices of one segment's draws.
    width = max(1, CHUNK_BYTES // (8 * (plan.working_rows + len(rows))))
    per_chunk, span = (max(1, min(len(todo), width // samples)), samples) if width >= samples else (1, width)
    scaled = 0
    for a in range(0, len(todo), per_chunk):
        for b in range(0, samples, span):
            drawn = values if span == samples else values[:, b:b + span]
            # (rows, segments, draws) of the chunk
            probs = drawn[table.index[np.ix_(table_rows, todo[a:a + per_chunk])]]
            scaled += _scale_down(probs.reshape(len(rows), -1), leaving)
            try:
                visits = chain.propagate(plan, probs[:len(plan.order)], sparse=True)
            except chain.NotAbsorbing as exc:
                raise _closed_cycle(graph, sg, sub[exc.states]) from None
            seg_draws[todo[a:a + per_chunk], b:b + span] = visits[goal].sum(axis=0)
        if progress:
            progress(len(segs) - len(todo) + min(a + per_chunk, len(todo)), len(segs))
    if not np.all(np.isfinite(seg_draws)):
        raise _closed_cycle(graph, sg, sub)
    return weights @ seg_draws, seg_draws, scaled / max(1, len(sources) * len(todo) * samples)


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
    """States from which some goal state can be reached (a search backwards from the goals)."""
    pred: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(src.tolist(), tgt.tolist()):
        pred[b].append(a)
    out = goal.copy()
    todo = np.flatnonzero(goal).tolist()
    while todo:
        for a in pred[todo.pop()]:
            if not out[a]:
                out[a] = True
                todo.append(a)
    return out


# --- result -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """What a run propagated: the graph, its state graph, the resolved slots (and their keys) per
    transition and segment, the weighted segments, the overrides and the mix."""

    graph: Graph
    sg: StateGraph
    table: ResolutionTable
    segs: list[Segment]
    keys: list[SlotKeys]  # aligned with table.slots
    applied: list[OverrideSlot]
    shares: dict[str, dict[str, float]]
    classes: dict[str, list[ContextClass]]
    samples: int
    seed: int


def _result(plan: Plan, point: Point, conv_draws: np.ndarray, seg_draws: np.ndarray, rescaled: float,
            inputs: list[str]) -> WhatIfResult:
    graph, sg, table, segs, keys = plan.graph, plan.sg, plan.table, plan.segs, plan.keys
    samples, seed, shares, classes = plan.samples, plan.seed, plan.shares, plan.classes
    w = np.array([s.weight for s in segs])
    node_pos = {n.id: i for i, n in enumerate(graph.nodes)}
    edge_pos = {e.id: i for i, e in enumerate(graph.edges)}
    state_node = np.array([node_pos[s.node] for s in sg.states], dtype=np.intp)
    absorbed = _outcome_mask(graph, sg, ("success", "failure"))
    visits = np.zeros((len(graph.nodes), len(segs)))
    np.add.at(visits, state_node, point.visits)
    drop = np.zeros_like(visits)
    lost = 1.0 - point.out_sum  # then × visits, in place: one (states × segments) array, not three
    lost *= point.visits
    lost[absorbed] = 0.0
    np.add.at(drop, state_node, lost)
    trans_edge = np.array([edge_pos[t.edge.id] for t in sg.transitions], dtype=np.intp)
    pop_flow = np.zeros(len(graph.edges))
    np.add.at(pop_flow, trans_edge, point.flow)
    pop_visits, pop_drop = visits @ w, drop @ w
    success = [node_pos[n.id] for n in graph.nodes if n.outcome == "success"]
    seg_point = visits[success].sum(axis=0)
    nodes = {n.id: NodeResult(float(pop_visits[i]), float(pop_drop[i]), n.outcome) for i, n in enumerate(graph.nodes)}
    edges = {}
    for i, e in enumerate(graph.edges):
        reach = pop_visits[node_pos[e.source]]
        edges[e.id] = EdgeResult(float(pop_flow[i] / reach) if reach > 0 else None, float(pop_flow[i]),
                                 e.source, e.target)
    outcomes = {n.id: float(pop_visits[node_pos[n.id]]) for n in graph.nodes if n.outcome is not None}
    stats = summarize_rows(seg_draws) if samples else [(None,) * 4] * len(segs)
    seg_results = [
        SegmentResult(s.context, s.weight, float(seg_point[j]), seg_draws[j], s.members,
                      Summary(float(seg_point[j]), *stats[j]) if samples else None,
                      Column(node_pos, visits, j), Column(edge_pos, point.edge_flow, j), inputs[j])
        for j, s in enumerate(segs)]
    # Heaviest first; ties by value id with '*' last. Rounding keeps float noise in products
    # of shares from reordering equal weights.
    seg_results.sort(key=lambda r: (-round(r.weight, 12), [(k, v == OTHER, v) for k, v in sorted(r.context.items())]))
    used = sorted(table.used().tolist(), key=lambda i: keys[i].used)
    overrides = [AppliedOverride(format_reference(o.reference), o.value, getattr(a.before, o.reference.field),
                                 slot_keys(a.slot.replaces).used if a.slot.replaces is not None else None)
                 for a in plan.applied for o in a.overrides]
    return WhatIfResult(
        graph=graph.id,
        conversion=Summary(float(seg_point @ w), *(summarize(conv_draws) if samples else (None,) * 4)),
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

