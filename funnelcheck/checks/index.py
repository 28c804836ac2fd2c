"""What every check shares: indexes over the loaded registry, built once per run.

The costly ones (a resolver for some edges, the reachable visited sets of a graph) are built
only when a check asks for them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Callable

from funnelcheck.checks.memo import GraphMemo, graph_fingerprint
from funnelcheck.engine.statespace import build_state_graph
from funnelcheck.findings import Finding
from funnelcheck.load.registry import Loaded
from funnelcheck.model import Graph, Parameter, Registry
from funnelcheck.resolve import Resolver

# Sums of probabilities are compared with this slack, so 0.7 + 0.2 + 0.1 never fails on rounding.
SUM_TOLERANCE = 1e-9


class CheckIndex:
    """The registry, looked up the ways the checks need; which file kinds and ids failed to load."""

    def __init__(self, loaded: Loaded, memo: GraphMemo | None = None):
        self.registry = registry = loaded.registry
        self.keys = loaded.keys
        self.memo = memo if memo is not None else GraphMemo()
        self.by_edge: dict[str, list[Parameter]] = registry.parameters_by_edge()
        self.graphs = sorted(registry.graphs.values(), key=lambda g: g.id)
        self.graphs_of_edge: dict[str, list[Graph]] = defaultdict(list)
        self.nodes_of: dict[str, set[str]] = {}
        for g in self.graphs:
            self.nodes_of[g.id] = {n.id for n in g.nodes}
            for e_id in dict.fromkeys(e.id for e in g.edges):
                self.graphs_of_edge[e_id].append(g)
        self.context_values = {c.id: set(c.value_ids()) for c in registry.contexts}
        # Files that failed to load hide what they define; checks that would only echo that are skipped.
        self.failed_kinds = {f.kind for f in loaded.failed}
        self.failed_stems = {f.stem for f in loaded.failed}
        self._visited_at: dict[str, dict[str, set[frozenset[str]]]] = {}
        self._resolvers: dict[str, Resolver] = {}

    def resolver(self, graph: Graph) -> Resolver:
        """The graph's resolver, built once: every check and every node of the graph shares it."""
        if graph.id not in self._resolvers:
            params = {p.id: p for e_id in dict.fromkeys(e.id for e in graph.edges) for p in self.by_edge.get(e_id, ())}
            sub = Registry(self.registry.root, self.registry.contexts, params, {graph.id: graph}, self.registry.config)
            self._resolvers[graph.id] = Resolver(sub, graph)
        return self._resolvers[graph.id]

    def per_graph(self, check: str, graph: Graph, compute: Callable[[], list[Finding]]) -> list[Finding]:
        """A graph-local check's findings for `graph`: from the memo when nothing it reads has changed."""
        files = [p.where.path for e_id in dict.fromkeys(e.id for e in graph.edges) for p in self.by_edge.get(e_id, ())]
        contexts = self.registry.contexts[0].where.path if self.registry.contexts else None
        return self.memo.findings(check, graph_fingerprint(graph, files, contexts, self.keys), compute)

    def visited_at(self, graph: Graph) -> dict[str, set[frozenset[str]]]:
        """Node → the visited sets (source included) of its reachable states in the state graph."""
        if graph.id not in self._visited_at:
            visited_at: dict[str, set[frozenset[str]]] = defaultdict(set)
            if graph.entries():
                # Edges to unknown nodes are reported elsewhere; the walk follows the others.
                known = self.nodes_of[graph.id]
                walkable = replace(graph, edges=tuple(e for e in graph.edges if {e.source, e.target} <= known))
                # Lumped: a state remembers only the visited nodes some edge ahead still looks at.
                needs = {e.id: frozenset().union(*(p.visited_filter for p in self.by_edge.get(e.id, ())))
                         for e in graph.edges}
                for state in build_state_graph(self.registry, walkable, needs=needs).states:
                    visited_at[state.node].add(state.query_visited())
            self._visited_at[graph.id] = visited_at
        return self._visited_at[graph.id]


def suggest(name: str, known) -> str:
    """`; did you mean 'x'?` for a near miss, else nothing."""
    import difflib  # only when a name is unknown

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def filters_text(context_filter, visited_filter) -> str:
    """`channel=google, visited pricing`, or `none`."""
    parts = [f"{k}={v}" for k, v in context_filter] + [f"visited {n}" for n in sorted(visited_filter)]
    return ", ".join(parts) if parts else "none"
