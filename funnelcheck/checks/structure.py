"""The shape of the model: graph structure, one base per edge, no two parameters in one slot, shares."""
from __future__ import annotations

from collections import defaultdict

from funnelcheck.checks.index import CheckIndex, filters_text, suggest
from funnelcheck.findings import WARNING, Finding
from funnelcheck.model import Graph, Node, Parameter

SHARE_TOLERANCE = 1e-6


def check_graphs(index: CheckIndex) -> list[Finding]:
    """Graph structure: unique ids, known endpoints, absorbing outcomes, entries, reachability."""
    return [f for graph in index.graphs for f in _check_graph(graph)]


def _check_graph(graph: Graph) -> list[Finding]:
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
                    f"{suggest(node_id, nodes)}"))
        source = nodes.get(e.source)
        if source is not None and source.outcome:
            out.append(e.where.at("from").finding(
                "outcome-out-edge", f"edge '{e.id}' leaves '{e.source}', a {source.outcome} outcome "
                "(outcome nodes are absorbing and have no outgoing edges)"))
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


def check_bases(index: CheckIndex) -> list[Finding]:
    """Each edge has exactly one base: inline p, p.parameter_id, or the filter-free parameter."""
    out = []
    for graph in index.graphs:
        for e in graph.edges:
            free = [p for p in index.by_edge.get(e.id, ()) if not p.context_filter and not p.visited_filter]
            if e.parameter_id is not None:
                if e.inline is not None:
                    out.append(e.where.at("p").finding(
                        "multiple-bases", f"edge '{e.id}' has both an inline mean and p.parameter_id: keep one"))
            elif e.inline is not None:
                if free:
                    names = ", ".join(f"'{p.id}' ({p.where.path})" for p in free)
                    out.append(e.where.at("p").finding(
                        "multiple-bases", f"edge '{e.id}' has an inline p and the filter-free parameter {names}: "
                        "keep one"))
            elif not free and "parameter" not in index.failed_kinds:
                out.append(e.where.at("id").finding(
                    "no-base", f"edge '{e.id}' has no base: give it an inline p {{mean, stdev}}, a p.parameter_id, "
                    f"or a parameter file with edge: {e.id} and no filters"))
    return out


def check_conflicts(index: CheckIndex) -> list[Finding]:
    """Same edge, same context_filter, same visited_filter is a conflict, whatever the ids."""
    groups: dict[tuple, list[Parameter]] = defaultdict(list)
    for p in index.registry.parameters.values():
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
                f"({filters_text(p.context_filter, p.visited_filter)}) as {others}"))
    return out


def check_shares(index: CheckIndex) -> list[Finding]:
    """Within a context, every value has a share and they sum to 1, or none has one."""
    out = []
    for c in index.registry.contexts:
        missing = [v for v in c.values if v.share is None]
        if len(missing) == len(c.values):
            out.append(c.where.at("values").finding(
                "shares-missing", f"no value of context '{c.id}' has a share: what-if uses equal shares", WARNING))
        elif missing:
            out.append(missing[0].where.finding(
                "shares-partial", f"value '{missing[0].id}' of context '{c.id}' has no share, but other values "
                "do: give every value a share, or none"))
        else:
            total = sum(v.share for v in c.values)
            if abs(total - 1) > SHARE_TOLERANCE:
                listed = ", ".join(f"{v.id} {v.share:g}" for v in c.values)
                out.append(c.where.at("values").finding(
                    "shares-sum", f"the shares of context '{c.id}' sum to {total:.6g}, not 1 ({listed})"))
    return out
