"""Resolution through the fallback hierarchy (docs/formats.md#resolution).

A query is (edge E, visited set V, context assignment C). Candidates are the parameters of
E whose filters hold for the query, plus the edge's inline base. The winner has the most
context keys, then the most visited nodes; ties go to the filter on the earlier context
(contexts.yaml order), then to the parameter id.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterable

from funnelcheck.findings import FunnelcheckError
from funnelcheck.model import Estimate, Graph, Parameter, Registry
from funnelcheck.reference import Reference

INLINE = "inline"


@dataclass(frozen=True)
class Slot:
    """Anything that can supply an edge's probability: a parameter, an inline base or an override."""

    id: str | None  # parameter id; None for an inline base
    edge: str
    context_filter: tuple[tuple[str, str], ...]
    visited_filter: frozenset[str]
    estimate: Estimate
    file: str | None
    kind: str = "parameter"  # parameter | inline | override
    # An override's: the parameter (or inline base) with its edge and filters that it took the place of.
    replaces: "Slot | None" = field(default=None, compare=False)

    @classmethod
    def of(cls, p: Parameter) -> "Slot":
        return cls(p.id, p.edge, p.context_filter, p.visited_filter, p.estimate, p.where.path)

    def matches(self, visited: frozenset[str], context: dict[str, str]) -> bool:
        return self.visited_filter <= visited and all(context.get(k) == v for k, v in self.context_filter)

    def why_not(self, visited: frozenset[str], context: dict[str, str]) -> str:
        missing = sorted(self.visited_filter - visited)
        if missing:
            return f"needs visited {', '.join(missing)}"
        for k, v in self.context_filter:
            if context.get(k) != v:
                return f"needs {k}={v} (query has {k}={context[k]})" if k in context else f"needs {k}={v} (query leaves {k} open)"
        return "matches"


@dataclass(frozen=True)
class Resolution:
    reference: Reference
    visited: frozenset[str]  # the query's V, including the edge's source node(s)
    winner: Slot
    tier: str  # exact | context | visited | base | inline
    partial: bool
    candidates: tuple[Slot, ...]  # matching slots, best first
    rejected: tuple[tuple[Slot, str], ...] = field(default=())  # non-matching slots of the edge, with why

    @property
    def value(self) -> float:
        return getattr(self.winner.estimate, self.reference.field)


class Unresolvable(FunnelcheckError):
    pass


class Resolver:
    """Resolves queries against one registry (optionally within one graph), memoised.

    `with_overrides` gives the same resolver with `--set` slots in place of what they replace.
    """

    def __init__(self, registry: Registry, graph: Graph | None = None):
        self.registry = registry
        self.priority = registry.context_priority()
        self.slots: dict[str, list[Slot]] = {}
        # Within one graph only its own edges can be asked for: skip every other parameter.
        wanted = {e.id for e in graph.edges} if graph else None
        for p in registry.parameters.values():
            if p.estimate is not None and (wanted is None or p.edge in wanted):
                self.slots.setdefault(p.edge, []).append(Slot.of(p))
        for g in ([graph] if graph else sorted(registry.graphs.values(), key=lambda g: g.id)):
            for e in g.edges:
                if e.inline is not None and not any(s.kind == INLINE for s in self.slots.get(e.id, ())):
                    self.slots.setdefault(e.id, []).append(
                        Slot(None, e.id, (), frozenset(), e.inline, g.where.path, INLINE))
        self._index()

    def _index(self) -> None:
        """Sort each edge's slots best first; note what they look at (a query is projected onto it before memoising)."""
        for edge_slots in self.slots.values():
            edge_slots.sort(key=self.order)
        self.used_keys = {e: {k for s in ss for k, _ in s.context_filter} for e, ss in self.slots.items()}
        self.used_nodes = {e: frozenset().union(*(s.visited_filter for s in ss)) for e, ss in self.slots.items()}
        self._memo: dict = {}

    def same_filters(self, edge: str, context_filter: tuple, visited_filter: frozenset[str]) -> list[Slot]:
        """What an override with this edge and these filters takes the place of: the parameter with exactly
        these filters, and for a filter-free override also the inline base (the parameter first)."""
        slots = self.slots.get(edge, ())
        out = [s for s in slots if s.kind != INLINE and (s.context_filter, s.visited_filter) == (context_filter, visited_filter)]
        if not context_filter and not visited_filter:
            out += [s for s in slots if s.kind == INLINE]
        return out

    def with_overrides(self, overrides: Iterable[Slot]) -> "Resolver":
        """This resolver with each override in place of what it replaces (`same_filters`); the memo starts empty."""
        new = copy.copy(self)
        new.slots = {e: list(ss) for e, ss in self.slots.items()}
        for o in overrides:
            gone = self.same_filters(o.edge, o.context_filter, o.visited_filter)
            new.slots[o.edge] = [s for s in new.slots.get(o.edge, []) if s not in gone] + [o]
        new._index()
        return new

    def order(self, s: Slot) -> tuple:
        """Sort key: best first (steps 2 and 3 of docs/formats.md#resolution)."""
        ranks = tuple(sorted(self.priority.get(k, len(self.priority)) for k, _ in s.context_filter))
        return (-len(s.context_filter), -len(s.visited_filter), ranks, s.kind == INLINE, s.id or "")

    def winner(self, edge: str, visited: frozenset[str], context: dict[str, str]) -> Slot | None:
        """The winning slot for a query, or None when nothing matches."""
        keys = self.used_keys.get(edge)
        if keys is None:
            return None
        memo_key = (edge, visited & self.used_nodes[edge], tuple(sorted((k, v) for k, v in context.items() if k in keys)))
        hit = self._memo.get(memo_key, False)
        if hit is False:
            hit = next((s for s in self.slots[edge] if s.matches(visited, context)), None)
            self._memo[memo_key] = hit
        return hit

    def resolve(self, ref: Reference, source_nodes: Iterable[str] = ()) -> Resolution:
        """Resolve a reference; V = the reference's visited nodes plus the edge's source node(s)."""
        context = ref.context_dict
        visited = frozenset(ref.visited) | frozenset(source_nodes)
        slots = self.slots.get(ref.edge, [])
        matching = tuple(s for s in slots if s.matches(visited, context))
        rejected = tuple((s, s.why_not(visited, context)) for s in slots if not s.matches(visited, context))
        if not matching:
            if not slots and not self.registry.graphs_with_edge(ref.edge) and ref.edge not in self.registry.parameters_by_edge():
                raise Unresolvable(f"unknown edge '{ref.edge}' in {ref}")
            raise Unresolvable(f"no parameter matches {ref} and edge '{ref.edge}' has no base")
        win = matching[0]
        implicit = frozenset(source_nodes)
        partial = bool(set(context) - {k for k, _ in win.context_filter}) or bool(
            (visited - implicit) - win.visited_filter)
        if win.kind == INLINE:
            tier = INLINE
        elif not win.context_filter and not win.visited_filter:
            tier = "base"
        elif not partial:
            tier = "exact"
        else:
            tier = "context" if win.context_filter else "visited"
        return Resolution(ref, visited, win, tier, partial, matching, rejected)


def source_nodes(registry: Registry, edge: str) -> set[str]:
    """The source node of `edge` in every graph that has it (normally one)."""
    return {g.edge(edge).source for g in registry.graphs_with_edge(edge)}


def resolve(registry: Registry, ref: Reference) -> Resolution:
    """Resolve one reference against a whole registry (what `funnelcheck resolve` runs)."""
    return Resolver(registry).resolve(ref, source_nodes(registry, ref.edge))
