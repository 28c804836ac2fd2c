"""Outgoing sums: for every node and every context/visited combination that can occur, Σ resolved means ≤ 1.

The combinations are searched by branch and bound over the dimensions that matter for a node's
out-edges (its reachable visited sets projected onto the nodes their filters name, then one
dimension per context key they filter on, with the values no filter names collapsed into one
class). A branch stops as soon as a bound says no combination below it can offend, so a healthy
registry costs one bound per node. Offending combinations are merged into few patterns for the
message. `checks/draws.py` runs the same search with another bound.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable, Iterator, NamedTuple

from funnelcheck.checks.index import SUM_TOLERANCE, CheckIndex
from funnelcheck.engine.statespace import OTHER
from funnelcheck.findings import Finding
from funnelcheck.model import Edge, Graph, Node
from funnelcheck.resolve import Slot

ANY = -1


class Option(NamedTuple):
    """A slot reduced to what the search needs."""

    slot: Slot
    mean: float
    context: dict
    visited: frozenset
    stdev: float = 0.0
    proxy: float = 0.0  # the Beta's variance proxy (`variance_proxy`), for the draws check's bound


def variance_proxy(mean: float, stdev: float) -> float:
    """A sub-Gaussian variance proxy of the Beta moment-matched to (mean, stdev): at most
    1/(4(α+β+1)) = stdev² / (4·mean·(1−mean)) (Marchal and Arbel, 2017); 0 for a point mass."""
    return stdev * stdev / (4 * mean * (1 - mean)) if stdev > 0 and 0 < mean < 1 else 0.0


class NodeSearch(NamedTuple):
    """What a node's out-edges resolve on: the options per edge and the dimensions of the combinations."""

    node: Node
    edges: list[Edge]
    options: list[list[Option]]  # per edge, best first
    names: list[str]  # the visited nodes the options' filters name
    keys: list[str]  # the context keys they filter on, in contexts.yaml order
    domains: list  # [visited sets projected onto names] + [the classes of each key]


def check_outgoing_sums(index: CheckIndex) -> list[Finding]:
    """Every node's resolved outgoing means sum to at most 1 in every combination that can occur."""
    def could_offend(options: list[list[Option]]) -> bool:
        return sum(max((o.mean for o in opts), default=0.0) for opts in options) > 1 + SUM_TOLERANCE

    found = []
    for graph in index.graphs:
        found += index.per_graph("outgoing-sum", graph, lambda graph=graph: _graph_sums(index, graph, could_offend))
    return found


def _graph_sums(index: CheckIndex, graph: Graph, could_offend) -> list[Finding]:
    found = []

    def worth(edges: list[Edge]) -> bool:
        return sum(best_mean(index, graph, e.id) for e in edges) > 1 + SUM_TOLERANCE

    for search in node_searches(index, graph, worth):
        bad = {}
        for combo, winners in combinations(search, could_offend):
            total = sum(w.mean for w in winners if w is not None)
            if total > 1 + SUM_TOLERANCE:
                bad[combo] = (total, winners)
        for pattern, members in merged(search, bad):
            worst = max(members, key=lambda c: (members[c][0], c))
            total, winners = members[worst]
            lowest = min(t for t, _ in members.values())
            terms = " + ".join(f"{e.id} {w.mean:g} ({w.slot.id or 'inline p'})"
                               for e, w in zip(search.edges, winners) if w is not None)
            amount = f"{total:.6g}" if lowest == total else f"up to {total:.6g}"
            found.append(search.node.where.at("id").finding(
                "outgoing-sum", f"outgoing probabilities of node '{search.node.id}' sum to {amount} > 1 "
                f"{combination_text(search, pattern)}: {terms}"))
    return found


def best_mean(index: CheckIndex, graph: Graph, edge_id: str) -> float:
    """The highest mean anything could give this edge: a bound for the search."""
    return max((s.mean for s in edge_estimates(index, graph, edge_id)), default=0.0)


def edge_estimates(index: CheckIndex, graph: Graph, edge_id: str) -> list:
    """Every estimate that could supply this edge: its parameters' and its inline p."""
    out = [p.estimate for p in index.by_edge.get(edge_id, ()) if p.estimate is not None]
    edge = graph.edge(edge_id)
    if edge is not None and edge.inline is not None:
        out.append(edge.inline)
    return out


def node_searches(index: CheckIndex, graph: Graph, worth: Callable[[list[Edge]], bool]) -> Iterator[NodeSearch]:
    """The reachable nodes worth a search (`worth(out_edges)`: a cheap bound), with their dimensions."""
    known = {c.id: c for c in index.registry.contexts}
    out_edges = graph.out_edges()
    seen_nodes = set()
    for node in graph.nodes:
        edges = out_edges.get(node.id) or []
        if node.id in seen_nodes or not edges:
            continue
        seen_nodes.add(node.id)
        if not worth(edges):
            continue
        visited_sets = index.visited_at(graph).get(node.id)
        if not visited_sets:
            continue  # unreachable: reported as such
        resolver = index.resolver(graph)
        options = []
        for e in edges:
            slots = [s for s in resolver.slots.get(e.id, ()) if all(k in known for k, _ in s.context_filter)]
            options.append([Option(s, s.estimate.mean, dict(s.context_filter), s.visited_filter, s.estimate.stdev,
                                   variance_proxy(s.estimate.mean, s.estimate.stdev)) for s in slots])
        names = sorted(frozenset().union(*(o.visited for opts in options for o in opts)))
        visited_domain = sorted({v & frozenset(names) for v in visited_sets}, key=sorted)
        keys = [c.id for c in index.registry.contexts if any(c.id in o.context for opts in options for o in opts)]
        domains = [visited_domain] + [_classes(known[k], options) for k in keys]
        yield NodeSearch(node, edges, options, names, keys, domains)


def _classes(context, options) -> list[tuple[str, tuple[str, ...]]]:
    """The classes of one context key for these options: each named value, then the rest as OTHER."""
    named = {o.context[context.id] for opts in options for o in opts if context.id in o.context}
    values = context.value_ids()
    classes = [(v, (v,)) for v in values if v in named]
    rest = tuple(v for v in values if v not in named)
    if rest:
        classes.append((OTHER, rest))
    return classes


def combinations(search: NodeSearch, could_offend: Callable[[list[list[Option]]], bool]
                 ) -> Iterator[tuple[tuple, tuple]]:
    """Every full combination (one index per dimension) the bound lets through, with each edge's winner."""
    domains = search.domains
    keys = search.keys

    def walk(level: int, options, chosen: tuple):
        if not could_offend(options):
            return
        if level == len(domains):
            # Every dimension is fixed, so each edge's first remaining option is its winner.
            yield chosen, tuple(opts[0] if opts else None for opts in options)
            return
        for i, value in enumerate(domains[level]):
            if level == 0:
                narrowed = [[o for o in opts if o.visited <= value] for opts in options]
            else:
                key, cls = keys[level - 1], value[0]
                narrowed = [[o for o in opts if o.context.get(key, cls) == cls] for opts in options]
            yield from walk(level + 1, narrowed, chosen + (i,))

    return walk(0, search.options, ())


def merged(search: NodeSearch, bad: dict[tuple, tuple]) -> list[tuple[tuple, dict[tuple, tuple]]]:
    """The offending combinations merged into patterns, each with its members (as flat combinations)."""
    if not bad:
        return []
    names, domains = search.names, search.domains

    # Flatten for reporting: one visited/not-visited dimension per node a filter names, then the keys.
    def flat(combo: tuple) -> tuple:
        return tuple(int(n in domains[0][combo[0]]) for n in names) + combo[1:]

    flat_bad = {flat(c): result for c, result in bad.items()}
    reachable = {tuple(int(n in v) for n in names) for v in domains[0]}
    sizes = [2] * len(names) + [len(d) for d in domains[1:]]
    return [(pattern, {c: r for c, r in flat_bad.items() if _covers(pattern, c)})
            for pattern in _merge(flat_bad, sizes, len(names), reachable)]


def _merge(combos: Iterable[tuple], sizes: list[int], n_visited: int, reachable: set[tuple]) -> list[tuple]:
    """Collapse combinations into few patterns: ANY in a dimension where every value that can occur offends.

    Merging one dimension at a time is greedy, and its result depends on the order; trying each
    rotation of the order, both ways, finds the short description in the cases that occur.
    """
    combos = set(combos)
    dims = list(range(len(sizes)))
    orders = [dims[i:] + dims[:i] for i in dims]
    best = None
    for order in orders + [o[::-1] for o in orders]:
        patterns = sorted(_merge_in_order(combos, sizes, order, n_visited, reachable))
        if best is None or len(patterns) < len(best):
            best = patterns
    return best if best is not None else sorted(combos)


def _merge_in_order(patterns: set[tuple], sizes: list[int], order: list[int], n_visited: int,
                    reachable: set[tuple]) -> set[tuple]:
    for d in order:
        groups: dict[tuple, set] = defaultdict(set)
        for pat in patterns:
            groups[pat[:d] + (ANY,) + pat[d + 1:]].add(pat[d])
        merged = set()
        for key, values in groups.items():
            possible = {v for v in range(sizes[d]) if _occurs(key[:d] + (v,) + key[d + 1:], n_visited, reachable)}
            if values >= possible:
                merged.add(key)
            else:
                merged.update(key[:d] + (v,) + key[d + 1:] for v in values)
        patterns = merged
    return patterns


def _occurs(pattern: tuple, n_visited: int, reachable: set[tuple]) -> bool:
    """Some reachable visited set fits the pattern's visited part (every context assignment occurs)."""
    return any(_covers(pattern[:n_visited], bits) for bits in reachable)


def _covers(pattern: tuple, combo: tuple) -> bool:
    return all(p == ANY or p == c for p, c in zip(pattern, combo))


def combination_text(search: NodeSearch, pattern: tuple) -> str:
    """`for channel=organic, visited blog (any device)`, or `in every context`."""
    names, keys, classes, node_id = search.names, search.keys, search.domains[1:], search.node.id
    n = len(names)
    parts = []
    for key, index, domain in zip(keys, pattern[n:], classes):
        if index == ANY:
            continue
        value, members = domain[index]
        parts.append(f"{key}={value}" if value != OTHER else
                     f"{key}={members[0]}" if len(members) == 1 else f"{key} in ({', '.join(members)})")
    visited = [name for name, bit in zip(names, pattern) if bit == 1 and name != node_id]
    unvisited = [name for name, bit in zip(names, pattern) if bit == 0]
    if visited:
        parts.append(f"visited {', '.join(visited)}")
    if unvisited:
        parts.append(f"not visited {', '.join(unvisited)}")
    if not parts:
        return "in every context"
    others = [key for key, index in zip(keys, pattern[n:]) if index == ANY]
    return f"for {', '.join(parts)}" + (f" (any {', '.join(others)})" if others else "")
