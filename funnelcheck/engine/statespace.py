"""The state graph of a funnel (docs/statistics.md) and its context segments, in plain Python.

A state is (node, the visited status of the relevant nodes), where the relevant nodes are
those named in any `visited_filter` of a parameter on the graph's edges. Both `validate`
(outgoing sums per reachable combination) and the engine (propagation) stand on this.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import product
from typing import Iterable, NamedTuple

from funnelcheck.model import Edge, Graph, Registry

OTHER = "*"  # the class of context values that no parameter of the graph names


class State(NamedTuple):
    node: str
    visited: frozenset[str]  # relevant nodes visited so far, the current node included

    def query_visited(self) -> frozenset[str]:
        """The visited set V for resolving an edge out of this state (source node included)."""
        return self.visited | {self.node}


class Transition(NamedTuple):
    source: int  # state index
    edge: Edge
    target: int  # state index


@dataclass(frozen=True)
class StateGraph:
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    entries: dict[int, float]  # state index -> normalised entry weight
    relevant: frozenset[str]

    def index(self) -> dict[State, int]:
        return {s: i for i, s in enumerate(self.states)}


def relevant_nodes(registry: Registry, graph: Graph) -> frozenset[str]:
    edge_ids = {e.id for e in graph.edges}
    node_ids = {n.id for n in graph.nodes}
    named = set()
    for p in registry.parameters.values():
        if p.edge in edge_ids:
            named |= p.visited_filter
    return frozenset(named & node_ids)


def build_state_graph(registry: Registry, graph: Graph, relevant: frozenset[str] | None = None,
                      needs: dict[str, frozenset[str]] | None = None) -> StateGraph:
    """Every state reachable from an entry node, in breadth-first order, and its transitions.

    With `needs` (edge id → the visited nodes its parameters look at), a state keeps only the
    visited nodes that some edge still reachable from it looks at. That is an exact lumping of
    the full state graph (every edge resolves the same way, visits and flows add up), often
    several times smaller: a visited flag is forgotten once no edge ahead can consult it.
    """
    if relevant is None:
        relevant = (frozenset().union(*needs.values()) & {n.id for n in graph.nodes} if needs is not None
                    else relevant_nodes(registry, graph))
    keep = _nodes_needed_ahead(graph, needs, relevant) if needs is not None else None
    out = graph.out_edges()
    states: list[State] = []
    index: dict[State, int] = {}
    transitions: list[Transition] = []

    def state_id(s: State) -> int:
        if s not in index:
            index[s] = len(states)
            states.append(s)
            queue.append(index[s])
        return index[s]

    queue: deque[int] = deque()
    entries: dict[int, float] = {}
    def enter(node: str, visited: frozenset[str]) -> int:
        visited = visited | (frozenset({node}) & relevant)
        return state_id(State(node, visited & keep.get(node, frozenset()) if keep is not None else visited))

    for node, w in graph.entries().items():
        i = enter(node, frozenset())
        entries[i] = entries.get(i, 0.0) + w
    while queue:
        i = queue.popleft()
        s = states[i]
        for e in out.get(s.node, ()):
            transitions.append(Transition(i, e, enter(e.target, s.visited)))
    return StateGraph(tuple(states), tuple(transitions), entries, relevant)


def _nodes_needed_ahead(graph: Graph, needs: dict[str, frozenset[str]], relevant: frozenset[str]) -> dict[str, frozenset[str]]:
    """Node → the relevant nodes looked at by some edge reachable from it (its own edges included)."""
    ahead = {n.id: set() for n in graph.nodes}
    preds: dict[str, set[str]] = {n.id: set() for n in graph.nodes}
    for e in graph.edges:
        ahead.setdefault(e.source, set()).update(needs.get(e.id, frozenset()) & relevant)
        preds.setdefault(e.target, set()).add(e.source)
    work = deque(ahead)
    while work:  # sets only grow, bounded by `relevant`: this terminates, cycles included
        v = work.popleft()
        for u in preds.get(v, ()):
            if not ahead[v] <= ahead.setdefault(u, set()):
                ahead[u] |= ahead[v]
                work.append(u)
    return {n: frozenset(s) for n, s in ahead.items()}


class ContextClass(NamedTuple):
    """One class of a context key's values: a named value, or OTHER for the values no parameter names."""

    key: str
    value: str  # the value id, or OTHER
    members: tuple[str, ...]  # the value ids in the class


def context_classes(registry: Registry, graph: Graph,
                    extra: Iterable[tuple[str, str]] = ()) -> dict[str, list[ContextClass]]:
    """For each context key used by the graph's parameters: its value classes, in contexts.yaml order.

    `extra` (key, value) pairs count as named too (the what-if engine passes its overrides).
    """
    edge_ids = {e.id for e in graph.edges}
    named: dict[str, set[str]] = {}
    for p in registry.parameters.values():
        if p.edge in edge_ids:
            for k, v in p.context_filter:
                named.setdefault(k, set()).add(v)
    for k, v in extra:
        named.setdefault(k, set()).add(v)
    out: dict[str, list[ContextClass]] = {}
    for ctx in registry.contexts:
        if ctx.id not in named:
            continue
        values = ctx.value_ids()
        classes = [ContextClass(ctx.id, v, (v,)) for v in values if v in named[ctx.id]]
        rest = tuple(v for v in values if v not in named[ctx.id])
        if rest:
            classes.append(ContextClass(ctx.id, OTHER, rest))
        out[ctx.id] = classes
    return out


def segments(classes: dict[str, list[ContextClass]]) -> list[tuple[ContextClass, ...]]:
    """Every full assignment of a class to each used key (the product), in a stable order."""
    keys = list(classes)
    return [tuple(combo) for combo in product(*(classes[k] for k in keys))]


def segment_context(segment: tuple[ContextClass, ...]) -> dict[str, str]:
    """The context assignment used to resolve parameters for a segment (OTHER matches no filter)."""
    return {c.key: c.value for c in segment}
