"""The state graph of a funnel (SPEC 6) and its context segments, in plain Python.

A state is (node, the visited status of the relevant nodes), where the relevant nodes are
those named in any `visited_filter` of a parameter on the graph's edges. Both `validate`
(outgoing sums per reachable combination) and the engine (propagation) stand on this.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import product
from typing import NamedTuple

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


def build_state_graph(registry: Registry, graph: Graph, relevant: frozenset[str] | None = None) -> StateGraph:
    """Every state reachable from an entry node, in breadth-first order, and its transitions."""
    relevant = relevant_nodes(registry, graph) if relevant is None else relevant
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
    for node, w in graph.entries().items():
        i = state_id(State(node, frozenset({node}) & relevant))
        entries[i] = entries.get(i, 0.0) + w
    while queue:
        i = queue.popleft()
        s = states[i]
        for e in out.get(s.node, ()):
            j = state_id(State(e.target, s.visited | (frozenset({e.target}) & relevant)))
            transitions.append(Transition(i, e, j))
    return StateGraph(tuple(states), tuple(transitions), entries, relevant)


class ContextClass(NamedTuple):
    """One class of a context key's values: a named value, or OTHER for the values no parameter names."""

    key: str
    value: str  # the value id, or OTHER
    members: tuple[str, ...]  # the value ids in the class


def context_classes(registry: Registry, graph: Graph) -> dict[str, list[ContextClass]]:
    """For each context key used by the graph's parameters: its value classes, in contexts.yaml order."""
    edge_ids = {e.id for e in graph.edges}
    named: dict[str, set[str]] = {}
    for p in registry.parameters.values():
        if p.edge in edge_ids:
            for k, v in p.context_filter:
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
