"""Resolution ties (docs/formats.md#resolution): two parameters that can match a query with equal rank."""
from __future__ import annotations

from funnelcheck.checks.index import CheckIndex
from funnelcheck.findings import WARNING, Finding
from funnelcheck.model import Graph, Parameter, Registry
from funnelcheck.resolve import INLINE, Resolver, Slot


def check_ties(index: CheckIndex) -> list[Finding]:
    """docs/formats.md#resolution: warn about every pair of parameters of one edge that can tie at the top.

    Two parameters with equal numbers of context keys and visited nodes both match exactly the
    queries that contain the union of their filters; the union itself is the query where the
    tie shows, unless a third parameter matching it ranks higher (then it wins wherever both
    match) or no reachable state of the edge's source has visited the union's nodes.
    """
    out = []
    for edge_id in sorted(index.by_edge):
        graphs = index.graphs_of_edge.get(edge_id)
        if not graphs:
            continue
        # rank (number of keys, number of visited nodes) -> context keys -> context filter -> parameters.
        # Same keys: only the same values can both match (typically none do), so pairs are
        # sought within a filter, and across key sets, never between every two parameters.
        by_rank: dict[tuple, dict[tuple, dict[tuple, list[Parameter]]]] = {}
        for p in index.by_edge[edge_id]:
            cf = p.context_filter
            if p.estimate is not None and (cf or p.visited_filter):
                by_rank.setdefault((len(cf), len(p.visited_filter)), {}).setdefault(
                    tuple([k for k, _ in cf]), {}).setdefault(cf, []).append(p)
        pairs = []
        for by_keys in by_rank.values():
            buckets = list(by_keys.values())
            for i, same_keys in enumerate(buckets):
                for same in same_keys.values():
                    pairs += [(a, b) for j, a in enumerate(same) for b in same[j + 1:]]
                if i + 1 < len(buckets):
                    members = [p for same in same_keys.values() for p in same]
                    pairs += [(a, b) for other in buckets[i + 1:] for same in other.values() for b in same
                              for a in members]
        pairs = [(a, b, context) for a, b in pairs if (context := _union_context(index, a, b)) is not None]
        if not pairs:
            continue
        resolver = index.resolver(graphs[0])
        slots = {s.id: s for s in resolver.slots.get(edge_id, ()) if s.kind != INLINE}
        for a, b, context in pairs:
            visited = _tie_visited(index, edge_id, graphs, a.visited_filter | b.visited_filter)
            if visited is None:
                continue
            rank = (len(a.context_filter), len(a.visited_filter))
            if any((len(s.context_filter), len(s.visited_filter)) > rank and s.matches(visited, context)
                   for s in slots.values()):
                continue
            out.append(_tie_finding(index.registry, resolver, edge_id, slots[a.id], slots[b.id], context, visited))
    return out


def _union_context(index: CheckIndex, a: Parameter, b: Parameter) -> dict[str, str] | None:
    """The union of two context filters, if consistent (no key with two values) and all known."""
    context = dict(a.context_filter)
    for k, v in b.context_filter:
        if context.setdefault(k, v) != v:
            return None
    if any(v not in index.context_values.get(k, ()) for k, v in context.items()):
        return None
    return context


def _tie_visited(index: CheckIndex, edge_id: str, graphs: list[Graph], union: frozenset[str]) -> frozenset[str] | None:
    """The query's visited set where both visited filters hold, if a reachable state has it."""
    for g in graphs:
        source = g.edge(edge_id).source
        for visited in index.visited_at(g).get(source, ()):
            if union <= visited:
                return union | {source}
    return None


def _tie_finding(registry: Registry, resolver: Resolver, edge_id: str, a: Slot, b: Slot, context, visited) -> Finding:
    winner, loser = sorted((a, b), key=resolver.order)
    wrank, lrank = resolver.order(winner)[2], resolver.order(loser)[2]
    if wrank != lrank:
        first = next(k for k in (registry.contexts[r].id for r in wrank) if k not in dict(loser.context_filter))
        why = f"context priority ('{first}' comes earlier in contexts.yaml)"
    else:
        why = "parameter id (alphabetical order)"
    query = ", ".join([f"{k}={v}" for k, v in sorted(context.items())] +
                      ([f"visited {', '.join(sorted(a.visited_filter | b.visited_filter))}"]
                       if a.visited_filter or b.visited_filter else []))
    n_ctx, n_vis = len(a.context_filter), len(a.visited_filter)
    p = registry.parameters[loser.id]
    at = p.where.at("context_filter") if p.context_filter else p.where.at("visited_filter")
    return at.finding(
        "resolution-tie", f"'{winner.id}' and '{loser.id}' of edge '{edge_id}' tie for {query} "
        f"({n_ctx} context key{'s' * (n_ctx != 1)}, {n_vis} visited node{'s' * (n_vis != 1)} each); "
        f"'{winner.id}' wins by {why}", WARNING)
