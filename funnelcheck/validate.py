"""Semantic and cross-file checks of a loaded registry (docs/validation.md).

`registry.load` already reports what one file can tell alone (YAML syntax, duplicate keys,
encoding, alias bombs, JSON Schema, file stem == id, duplicate ids, escaping symlinks).
This module adds everything that needs the model: references between files, probabilities,
bases, graph structure, shares, the outgoing sums for every combination that can occur,
resolution ties and inline credentials. Every finding points at the YAML node at fault.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from functools import lru_cache
from typing import Iterable, NamedTuple

from funnelcheck.findings import ERROR, WARNING, Finding, sort_key
from funnelcheck.model import Edge, Estimate, Graph, Node, Parameter, Registry, Where
from funnelcheck.load.registry import Loaded, kind_of
from funnelcheck.resolve import INLINE, Resolver, Slot
from funnelcheck.engine.statespace import OTHER, build_state_graph

# Sums of probabilities are compared with this slack, so 0.7 + 0.2 + 0.1 never fails on rounding.
SUM_TOLERANCE = 1e-9
SHARE_TOLERANCE = 1e-6

# One line each; docs/validation.md carries the same table for users.
CODES = {
    # reported while loading (registry.py, yamlload.py, sources.py)
    "yaml-syntax": "the file is not valid YAML",
    "duplicate-key": "a mapping has the same key twice",
    "encoding": "the file is not valid UTF-8",
    "alias-bomb": "aliases expand the document past a safe size; refused unexpanded",
    "empty-file": "the file holds no document",
    "schema": "the file breaks the JSON Schema of its kind (wrong type, unknown or missing key, bad id)",
    "id-mismatch": "the file stem differs from the id inside",
    "duplicate-id": "two files (or two entries) share an id",
    "duplicate-file": "more than one contexts file",
    "symlink-escape": "a symlink points outside the registry; refused",
    "no-contexts": "there is no contexts.yaml (warning)",
    # reported here
    "unknown-edge": "a parameter's edge is in no graph",
    "unknown-context": "a context_filter key is not in contexts.yaml",
    "unknown-context-value": "a context_filter value is not a value of that context",
    "unknown-node": "a node named by an edge or a visited_filter is not in the graph",
    "unknown-parameter": "p.parameter_id names no parameter",
    "unknown-connection": "a connection name is not in funnelcheck.yaml connections",
    "base-mismatch": "p.parameter_id names a parameter of another edge, or one with filters",
    "probability-range": "a mean outside [0, 1]",
    "infeasible-stdev": "a stdev below 0, or so large no Beta distribution has it (stdev² ≥ mean·(1−mean))",
    "nonpositive-prior": "a Beta prior alpha or beta that is not above 0",
    "missing-value": "a parameter with no value, no fallback_value and no external prior",
    "conflicting-parameters": "two parameters with the same edge, context_filter and visited_filter",
    "no-base": "an edge with no base (no inline p, no parameter_id, no filter-free parameter)",
    "multiple-bases": "an edge with more than one base",
    "duplicate-node": "a node id appears twice in one graph",
    "duplicate-edge": "an edge id appears twice in one graph",
    "outcome-out-edge": "an edge leaves an outcome node (outcomes are absorbing)",
    "no-entry": "a graph without an entry node",
    "no-success": "a graph without a success outcome",
    "unreachable-node": "a node no path from an entry node reaches",
    "shares-partial": "some values of a context have a share and some do not",
    "shares-sum": "the shares of a context do not sum to 1",
    "shares-missing": "no value of a context has a share: equal shares are used (warning)",
    "outgoing-sum": "a node's resolved outgoing probabilities sum above 1 in some context/visited combination",
    "resolution-tie": "two parameters can match a query with equal rank; the tie-break decides (warning)",
    "inline-credential": "a password, token or key written into a file instead of taken from the environment",
}


def validate(loaded: Loaded) -> list[Finding]:
    """Every finding for a loaded registry: the loader's and the semantic ones, sorted, no duplicates."""
    registry = loaded.registry
    ctx = _Context(loaded)
    found: list[Finding] = list(loaded.findings)
    found += check_shares(registry)
    found += check_parameters(ctx)
    found += check_conflicts(registry)
    for graph in sorted(registry.graphs.values(), key=lambda g: g.id):
        found += check_graph(graph)
        found += check_bases(ctx, graph)
        found += check_outgoing_sums(ctx, graph)
    found += check_ties(ctx)
    found += check_config(registry)
    found += check_credentials(registry)
    return sorted(set(found), key=sort_key)


class _Context:
    """Indexes shared by the checks, built once per run; the costly ones only when a check needs them."""

    def __init__(self, loaded: Loaded):
        self.registry = registry = loaded.registry
        self.by_edge = registry.parameters_by_edge()
        self.graphs_of_edge: dict[str, list[Graph]] = defaultdict(list)
        self.nodes_of: dict[str, set[str]] = {}
        for g in sorted(registry.graphs.values(), key=lambda g: g.id):
            self.nodes_of[g.id] = {n.id for n in g.nodes}
            for e_id in dict.fromkeys(e.id for e in g.edges):
                self.graphs_of_edge[e_id].append(g)
        self.context_values = {c.id: set(c.value_ids()) for c in registry.contexts}
        # Files that failed to load hide what they define; checks that would only echo that are skipped.
        self.failed_kinds: set[str] = set()
        self.failed_stems: set[str] = set()
        prefix = registry.root + "/"
        for f in loaded.findings:
            if f.severity == ERROR and f.path.startswith(prefix):
                rel = f.path[len(prefix):]
                kind = kind_of(rel)
                if kind:
                    self.failed_kinds.add(kind)
                    self.failed_stems.add(rel.rsplit("/", 1)[-1].rsplit(".", 1)[0])
        self._visited_at: dict[str, dict[str, set[frozenset[str]]]] = {}

    def resolver(self, graph: Graph, edge_ids: Iterable[str]) -> Resolver:
        """A resolver for some edges of one graph, built from just their parameters."""
        params = {p.id: p for e_id in edge_ids for p in self.by_edge.get(e_id, ())}
        sub = Registry(self.registry.root, self.registry.contexts, params, {graph.id: graph}, self.registry.config)
        return Resolver(sub, graph)

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

    def best_mean(self, graph: Graph, edge_id: str) -> float:
        """The highest mean anything could give this edge: a bound for the outgoing-sum search."""
        edge = graph.edge(edge_id)
        means = [p.estimate.mean for p in self.by_edge.get(edge_id, ()) if p.estimate is not None]
        if edge is not None and edge.inline is not None:
            means.append(edge.inline.mean)
        return max(means, default=0.0)


# --- contexts ---------------------------------------------------------------------------------

def check_shares(registry: Registry) -> list[Finding]:
    """Shares: within a context, every value has a share and they sum to 1, or none has one."""
    out = []
    for c in registry.contexts:
        values = c.where.doc.data["contexts"][c.where.parts[1]]["values"]
        missing = [j for j, v in enumerate(values) if v.get("share") is None]
        if len(missing) == len(values):
            out.append(c.where.at("values").finding(
                "shares-missing", f"no value of context '{c.id}' has a share: what-if uses equal shares", WARNING))
        elif missing:
            j = missing[0]
            out.append(c.where.at("values", j).finding(
                "shares-partial", f"value '{values[j]['id']}' of context '{c.id}' has no share, but other values "
                "do: give every value a share, or none"))
        else:
            total = sum(v["share"] for v in values)
            if abs(total - 1) > SHARE_TOLERANCE:
                listed = ", ".join(f"{v['id']} {v['share']:g}" for v in values)
                out.append(c.where.at("values").finding(
                    "shares-sum", f"the shares of context '{c.id}' sum to {total:.6g}, not 1 ({listed})"))
    return out


# --- parameters -------------------------------------------------------------------------------

def check_parameters(ctx: _Context) -> list[Finding]:
    """References from each parameter file, its probabilities, its prior and its sources."""
    registry = ctx.registry
    connections = _connections(registry)
    contexts_known = "contexts" not in ctx.failed_kinds
    out: list[Finding] = []
    for p in registry.parameters.values():  # findings are sorted at the end
        graphs = ctx.graphs_of_edge.get(p.edge)
        if not graphs and "graph" not in ctx.failed_kinds:
            out.append(p.where.at("edge").finding(
                "unknown-edge", f"edge '{p.edge}' is not an edge of any graph{_suggest(p.edge, ctx.graphs_of_edge)}"))
        if contexts_known:
            for key, value in p.context_filter:
                values = ctx.context_values.get(key)
                if values is None:
                    out.append(p.where.at("context_filter", key).finding(
                        "unknown-context", f"context '{key}' is not defined in contexts.yaml"
                        f"{_suggest(key, ctx.context_values)}", key=True))
                elif value not in values:
                    out.append(p.where.at("context_filter", key).finding(
                        "unknown-context-value", f"'{value}' is not a value of context '{key}' "
                        f"(values: {', '.join(registry.context(key).value_ids())})"))
        if graphs and p.visited_filter:
            for node in p.visited_filter:
                if not any(node in ctx.nodes_of[g.id] for g in graphs):
                    names = ", ".join(f"'{g.id}'" for g in graphs)
                    j = p.where.doc.data["visited_filter"].index(node)
                    out.append(p.where.at("visited_filter", j).finding(
                        "unknown-node", f"node '{node}' is not in graph {names}, which has edge '{p.edge}'"))
        if p.value is not None:
            out += check_estimate(p.where, "value", p.value)
        if p.fallback_value is not None:
            out += check_estimate(p.where, "fallback_value", p.fallback_value)
        if p.bayesian_update:
            out += _check_prior(p)
        if p.value is None and p.fallback_value is None and (p.prior_source or {}).get("type", "yaml") == "yaml":
            out.append(p.where.finding(
                "missing-value", f"parameter '{p.id}' has no value: give it `value`, or a `prior_source` "
                "other than yaml (with a `fallback_value` for when it fails)"))
        for section, source in (("prior_source", p.prior_source), ("observation_source", p.observation_source)):
            name = (source or {}).get("connection")
            if name is not None and name not in connections:
                where = "funnelcheck.yaml has no connections" if not connections else \
                    f"known: {', '.join(sorted(connections))}"
                out.append(p.where.at(section, "connection").finding(
                    "unknown-connection", f"connection '{name}' is not defined in funnelcheck.yaml ({where})"))
    return out


def check_estimate(where: Where, field: str, est: Estimate) -> list[Finding]:
    """A probability in [0, 1] with a stdev a Beta distribution can have (docs/statistics.md), at `where.field`."""
    out = []
    m, s = est.mean, est.stdev
    if not 0 <= m <= 1:
        out.append(where.at(field, "mean").finding("probability-range", f"mean {m:g} is not a probability (0 <= mean <= 1)"))
    if not s >= 0:
        out.append(where.at(field, "stdev").finding("infeasible-stdev", f"stdev {s:g} is negative"))
    elif s > 0 and 0 <= m <= 1 and s * s >= m * (1 - m):
        limit = (m * (1 - m)) ** 0.5
        out.append(where.at(field, "stdev").finding(
            "infeasible-stdev", f"stdev {s:g} is too large for mean {m:g}: a Beta distribution needs "
            f"stdev < sqrt(mean·(1−mean)) = {limit:.4g}"))
    return out


def _check_prior(p: Parameter) -> list[Finding]:
    prior = (p.bayesian_update or {}).get("prior") or {}
    return [p.where.at("bayesian_update", "prior", name).finding(
                "nonpositive-prior", f"Beta prior {name} must be above 0, not {prior[name]:g}")
            for name in ("alpha", "beta") if name in prior and not prior[name] > 0]


def _connections(registry: Registry) -> set[str]:
    config = registry.config
    conns = config.get("connections") if config else None
    return set(conns) if isinstance(conns, dict) else set()


def check_config(registry: Registry) -> list[Finding]:
    """funnelcheck.yaml: the default observation connection must be one of its connections."""
    config = registry.config
    name = (config.get("observations") or {}).get("connection") if config else None
    if name is None or name in _connections(registry):
        return []
    return [config.where.at("observations", "connection").finding(
        "unknown-connection", f"connection '{name}' is not defined under connections")]


def check_conflicts(registry: Registry) -> list[Finding]:
    """Conflicts: same edge, same context_filter, same visited_filter is a conflict, whatever the ids."""
    groups: dict[tuple, list[Parameter]] = defaultdict(list)
    for p in registry.parameters.values():
        groups[p.filters].append(p)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda p: p.id)
        for p in members:
            others = ", ".join(f"'{q.id}' ({q.where.path})" for q in members if q is not p)
            out.append(p.where.at("edge").finding(
                "conflicting-parameters", f"parameter '{p.id}' has the same edge '{p.edge}' and filters "
                f"({_filters_text(p.context_filter, p.visited_filter)}) as {others}"))
    return out


def _filters_text(context_filter, visited_filter) -> str:
    parts = [f"{k}={v}" for k, v in context_filter] + [f"visited {n}" for n in sorted(visited_filter)]
    return ", ".join(parts) if parts else "none"


# --- graphs -----------------------------------------------------------------------------------

def check_graph(graph: Graph) -> list[Finding]:
    """Graph structure: unique ids, known endpoints, absorbing outcomes, entries, reachability."""
    out: list[Finding] = []
    nodes: dict[str, Node] = {}
    for n in graph.nodes:
        if n.id in nodes:
            out.append(n.where.at("id").finding("duplicate-node", f"node '{n.id}' appears twice in graph '{graph.id}'"))
        else:
            nodes[n.id] = n
    seen_edges = set()
    adjacency: dict[str, list[str]] = defaultdict(list)
    for e in graph.edges:
        if e.id in seen_edges:
            out.append(e.where.at("id").finding("duplicate-edge", f"edge '{e.id}' appears twice in graph '{graph.id}'"))
        seen_edges.add(e.id)
        for end, node_id in (("from", e.source), ("to", e.target)):
            if node_id not in nodes:
                out.append(e.where.at(end).finding(
                    "unknown-node", f"edge '{e.id}' {end} '{node_id}': no such node in graph '{graph.id}'"
                    f"{_suggest(node_id, nodes)}"))
        source = nodes.get(e.source)
        if source is not None and source.outcome:
            out.append(e.where.at("from").finding(
                "outcome-out-edge", f"edge '{e.id}' leaves '{e.source}', a {source.outcome} outcome "
                "(outcome nodes are absorbing and have no outgoing edges)"))
        if e.inline is not None:
            out += check_estimate(e.where, "p", e.inline)
        adjacency[e.source].append(e.target)
    entries = [n.id for n in graph.nodes if n.entry_weight]
    if not entries:
        out.append(graph.where.at("nodes").finding(
            "no-entry", f"graph '{graph.id}' has no entry node (give one node `entry: {{weight: 1}}`)"))
    if not any(n.outcome == "success" for n in graph.nodes):
        out.append(graph.where.at("nodes").finding(
            "no-success", f"graph '{graph.id}' has no success outcome (mark one node `outcome: success`)"))
    if entries:
        reached = set(entries)
        stack = list(entries)
        while stack:
            for target in adjacency.get(stack.pop(), ()):
                if target not in reached:
                    reached.add(target)
                    stack.append(target)
        for node_id, n in nodes.items():
            if node_id not in reached:
                out.append(n.where.at("id").finding(
                    "unreachable-node", f"node '{node_id}' cannot be reached from any entry node"))
    return out


def check_bases(ctx: _Context, graph: Graph) -> list[Finding]:
    """Bases: each edge has exactly one base (inline p, p.parameter_id, or the filter-free parameter)."""
    out = []
    for e in graph.edges:
        free = [p for p in ctx.by_edge.get(e.id, ()) if not p.context_filter and not p.visited_filter]
        if e.parameter_id is not None:
            out += _check_named_base(ctx, e)
            if e.inline is not None:
                out.append(e.where.at("p").finding(
                    "multiple-bases", f"edge '{e.id}' has both an inline mean and p.parameter_id: keep one"))
        elif e.inline is not None:
            if free:
                names = ", ".join(f"'{p.id}' ({p.where.path})" for p in free)
                out.append(e.where.at("p").finding(
                    "multiple-bases", f"edge '{e.id}' has an inline p and the filter-free parameter {names}: keep one"))
        elif not free and "parameter" not in ctx.failed_kinds:
            out.append(e.where.at("id").finding(
                "no-base", f"edge '{e.id}' has no base: give it an inline p {{mean, stdev}}, a p.parameter_id, "
                f"or a parameter file with edge: {e.id} and no filters"))
    return out


def _check_named_base(ctx: _Context, e: Edge) -> list[Finding]:
    where = e.where.at("p", "parameter_id")
    named = ctx.registry.parameters.get(e.parameter_id)
    if named is None:
        if e.parameter_id in ctx.failed_stems:
            return []
        return [where.finding("unknown-parameter", f"no parameter has id '{e.parameter_id}'"
                              f"{_suggest(e.parameter_id, ctx.registry.parameters)}")]
    if named.edge != e.id:
        return [where.finding("base-mismatch", f"parameter '{named.id}' supplies edge '{named.edge}', not '{e.id}'")]
    if named.context_filter or named.visited_filter:
        return [where.finding(
            "base-mismatch", f"parameter '{named.id}' has filters "
            f"({_filters_text(named.context_filter, named.visited_filter)}); a base must have none")]
    return []


# --- outgoing sums ----------------------------------------------------------------------------

class _Option(NamedTuple):
    """A slot reduced to what the search needs."""

    slot: Slot
    mean: float
    context: dict
    visited: frozenset


def check_outgoing_sums(ctx: _Context, graph: Graph) -> list[Finding]:
    """For every node and every context/visited combination that can occur, Σ resolved means ≤ 1.

    A branch-and-bound search over the dimensions that matter for the node's out-edges (its
    reachable visited sets projected onto the nodes their filters name, then one dimension per
    context key they filter on, with the values no filter names collapsed into one class). A
    branch stops as soon as the best each edge could still get sums to at most 1, so a healthy
    registry costs one bound per node.
    """
    known = {c.id: c for c in ctx.registry.contexts}
    out_edges = graph.out_edges()
    found = []
    seen_nodes = set()
    for node in graph.nodes:
        edges = out_edges.get(node.id) or []
        if node.id in seen_nodes or not edges:
            continue
        seen_nodes.add(node.id)
        if sum(ctx.best_mean(graph, e.id) for e in edges) <= 1 + SUM_TOLERANCE:
            continue
        visited_sets = ctx.visited_at(graph).get(node.id)
        if not visited_sets:
            continue  # unreachable: reported as such
        resolver = ctx.resolver(graph, {e.id for e in edges})
        options = []
        for e in edges:
            slots = [s for s in resolver.slots.get(e.id, ()) if all(k in known for k, _ in s.context_filter)]
            options.append([_Option(s, s.estimate.mean, dict(s.context_filter), s.visited_filter) for s in slots])
        names = sorted(frozenset().union(*(o.visited for opts in options for o in opts)))
        visited_domain = sorted({v & frozenset(names) for v in visited_sets}, key=sorted)
        keys = [c.id for c in ctx.registry.contexts if any(c.id in o.context for opts in options for o in opts)]
        domains = [visited_domain] + [_classes(known[k], options) for k in keys]
        bad = _offending(options, keys, domains)
        if bad:
            found += _sum_findings(node, edges, names, keys, domains, bad)
    return found


def _classes(context, options) -> list[tuple[str, tuple[str, ...]]]:
    """The classes of one context key for these options: each named value, then the rest as OTHER."""
    named = {o.context[context.id] for opts in options for o in opts if context.id in o.context}
    values = context.value_ids()
    classes = [(v, (v,)) for v in values if v in named]
    rest = tuple(v for v in values if v not in named)
    if rest:
        classes.append((OTHER, rest))
    return classes


def _offending(options, keys, domains) -> dict[tuple, tuple[float, tuple]]:
    """Every full combination (one index per dimension) whose winners sum above 1, with the winners."""
    bad: dict[tuple, tuple[float, tuple]] = {}

    def search(level: int, options, chosen: tuple) -> None:
        if sum(max((o.mean for o in opts), default=0.0) for opts in options) <= 1 + SUM_TOLERANCE:
            return
        if level == len(domains):
            # Every dimension is fixed, so each edge's first remaining option is its winner.
            winners = tuple(opts[0] if opts else None for opts in options)
            total = sum(w.mean for w in winners if w is not None)
            if total > 1 + SUM_TOLERANCE:
                bad[chosen] = (total, winners)
            return
        for i, value in enumerate(domains[level]):
            if level == 0:
                narrowed = [[o for o in opts if o.visited <= value] for opts in options]
            else:
                key, cls = keys[level - 1], value[0]
                narrowed = [[o for o in opts if o.context.get(key, cls) == cls] for opts in options]
            search(level + 1, narrowed, chosen + (i,))

    search(0, options, ())
    return bad


ANY = -1


def _sum_findings(node, edges, names: list[str], keys: list[str], domains, bad) -> list[Finding]:
    """One finding per merged pattern of offending combinations, naming it and the winners."""
    # Flatten for reporting: one visited/not-visited dimension per node a filter names, then the keys.
    def flat(combo: tuple) -> tuple:
        return tuple(int(n in domains[0][combo[0]]) for n in names) + combo[1:]

    flat_bad = {flat(c): result for c, result in bad.items()}
    reachable = {tuple(int(n in v) for n in names) for v in domains[0]}
    sizes = [2] * len(names) + [len(d) for d in domains[1:]]
    out = []
    for pattern in _merge(flat_bad, sizes, len(names), reachable):
        members = [c for c in flat_bad if _covers(pattern, c)]
        worst = max(members, key=lambda c: (flat_bad[c][0], c))
        total, winners = flat_bad[worst]
        lowest = min(flat_bad[c][0] for c in members)
        terms = " + ".join(f"{e.id} {w.mean:g} ({w.slot.id or 'inline p'})" for e, w in zip(edges, winners)
                           if w is not None)
        amount = f"{total:.6g}" if lowest == total else f"up to {total:.6g}"
        out.append(node.where.at("id").finding(
            "outgoing-sum", f"outgoing probabilities of node '{node.id}' sum to {amount} > 1 "
            f"{_combination_text(pattern, names, keys, domains[1:], node.id)}: {terms}"))
    return out


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


def _combination_text(pattern: tuple, names: list[str], keys: list[str], classes, node_id: str) -> str:
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


# --- resolution ties --------------------------------------------------------------------------

def check_ties(ctx: _Context) -> list[Finding]:
    """docs/formats.md#resolution: warn about every pair of parameters of one edge that can tie at the top.

    Two parameters with equal numbers of context keys and visited nodes both match exactly the
    queries that contain the union of their filters; the union itself is the query where the
    tie shows, unless a third parameter matching it ranks higher (then it wins wherever both
    match) or no reachable state of the edge's source has visited the union's nodes.
    """
    out = []
    for edge_id in sorted(ctx.by_edge):
        graphs = ctx.graphs_of_edge.get(edge_id)
        if not graphs:
            continue
        # rank (number of keys, number of visited nodes) -> context keys -> context filter -> parameters.
        # Same keys: only the same values can both match (typically none do), so pairs are
        # sought within a filter, and across key sets, never between every two parameters.
        by_rank: dict[tuple, dict[tuple, dict[tuple, list[Parameter]]]] = {}
        for p in ctx.by_edge[edge_id]:
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
        pairs = [(a, b, context) for a, b in pairs if (context := _union_context(ctx, a, b)) is not None]
        if not pairs:
            continue
        resolver = ctx.resolver(graphs[0], [edge_id])
        slots = {s.id: s for s in resolver.slots.get(edge_id, ()) if s.kind != INLINE}
        for a, b, context in pairs:
            visited = _tie_visited(ctx, edge_id, graphs, a.visited_filter | b.visited_filter)
            if visited is None:
                continue
            rank = (len(a.context_filter), len(a.visited_filter))
            if any((len(s.context_filter), len(s.visited_filter)) > rank and s.matches(visited, context)
                   for s in slots.values()):
                continue
            out.append(_tie_finding(ctx.registry, resolver, edge_id, slots[a.id], slots[b.id], context, visited))
    return out


def _union_context(ctx: _Context, a: Parameter, b: Parameter) -> dict[str, str] | None:
    """The union of two context filters, if consistent (no key with two values) and all known."""
    context = dict(a.context_filter)
    for k, v in b.context_filter:
        if context.setdefault(k, v) != v:
            return None
    if any(v not in ctx.context_values.get(k, ()) for k, v in context.items()):
        return None
    return context


def _tie_visited(ctx: _Context, edge_id: str, graphs: list[Graph], union: frozenset[str]) -> frozenset[str] | None:
    """The query's visited set where both visited filters hold, if a reachable state has it."""
    for g in graphs:
        source = g.edge(edge_id).source
        for visited in ctx.visited_at(g).get(source, ()):
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


# --- credentials ------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _patterns() -> tuple[re.Pattern, ...]:
    """Compiled on first use: most registries have no string that needs them."""
    return (
        # keys that hold a secret (their `*_env` twins are how to give one)
        re.compile(r"pass(word|wd)?$|pwd|secret|token|api_?key|private_?key|credential|webhook_url$", re.I),
        re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.I),  # scheme://user:password@host
        re.compile(r"[?&](password|passwd|pwd|token|access_token|auth_token|api_?key|key|secret|client_secret|sig"
                   r"|signature)=[^&#\s]", re.I),
        re.compile(r"hooks\.slack\.com/services/", re.I),  # a Slack webhook URL is itself the secret
    )


def check_credentials(registry: Registry) -> list[Finding]:
    """Credentials: secrets come only through the environment (`*_env` keys), never written in a file."""
    out = []
    config = registry.config
    if config is not None and config.where is not None:
        out += _walk_credentials(config.where.doc, (), config.where.doc.data)
    for p in registry.parameters.values():  # findings are sorted at the end
        for section, data in (("prior_source", p.prior_source), ("observation_source", p.observation_source)):
            if data:
                out += _walk_credentials(p.where.doc, (section,), data)
    return out


def _walk_credentials(doc, parts: tuple, data) -> list[Finding]:
    out = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = parts + (key,)
            literal = isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value) != ""
            if literal and isinstance(key, str) and not key.endswith("_env") and _patterns()[0].search(key):
                out.append(doc.finding(here, "inline-credential",
                                       f"'{key}' is written inline: put it in an environment variable and "
                                       f"name that variable with '{key}_env'"))
            else:
                out += _walk_credentials(doc, here, value)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            out += _walk_credentials(doc, parts + (i,), item)
    elif isinstance(data, str):
        _, password, secret_param, secret_url = _patterns()
        what = ("a password in the URL" if password.search(data) else
                "a secret query parameter in the URL" if secret_param.search(data) else
                "a webhook URL that is itself the secret" if secret_url.search(data) else None)
        if what:
            name = parts[-1] if parts and isinstance(parts[-1], str) else "the value"
            out.append(doc.finding(parts, "inline-credential",
                                   f"{what} is written inline in '{name}': take the URL from the environment "
                                   f"('{name}_env')"))
    return out


def _suggest(name: str, known) -> str:
    """`; did you mean 'x'?` for a near miss, else nothing."""
    import difflib  # only when a name is unknown

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""
