"""References between files: a parameter's edge, contexts, visited nodes and connections; a named base."""
from __future__ import annotations

from funnelcheck.checks.index import CheckIndex, filters_text, suggest
from funnelcheck.findings import Finding
from funnelcheck.model import Registry


def check_parameter_references(index: CheckIndex) -> list[Finding]:
    """Each parameter's edge is in a graph, its filters name known contexts, values and nodes, its connections exist."""
    registry = index.registry
    connections = _connections(registry)
    contexts_known = "contexts" not in index.failed_kinds
    out: list[Finding] = []
    for p in registry.parameters.values():  # findings are sorted at the end
        graphs = index.graphs_of_edge.get(p.edge)
        if not graphs and "graph" not in index.failed_kinds:
            out.append(p.where.at("edge").finding(
                "unknown-edge", f"edge '{p.edge}' is not an edge of any graph{suggest(p.edge, index.graphs_of_edge)}"))
        if contexts_known:
            for key, value in p.context_filter:
                values = index.context_values.get(key)
                if values is None:
                    out.append(p.where.at("context_filter", key).finding(
                        "unknown-context", f"context '{key}' is not defined in contexts.yaml"
                        f"{suggest(key, index.context_values)}", key=True))
                elif value not in values:
                    out.append(p.where.at("context_filter", key).finding(
                        "unknown-context-value", f"'{value}' is not a value of context '{key}' "
                        f"(values: {', '.join(registry.context(key).value_ids())})"))
        if graphs and p.visited_filter:
            for node in p.visited_filter:
                if not any(node in index.nodes_of[g.id] for g in graphs):
                    names = ", ".join(f"'{g.id}'" for g in graphs)
                    out.append(p.where.at("visited_filter", p.visited_as_written.index(node)).finding(
                        "unknown-node", f"node '{node}' is not in graph {names}, which has edge '{p.edge}'"))
        for section, source in (("prior_source", p.prior_source), ("observation_source", p.observation_source)):
            name = (source or {}).get("connection")
            if name is not None and name not in connections:
                where = "funnelcheck.yaml has no connections" if not connections else \
                    f"known: {', '.join(sorted(connections))}"
                out.append(p.where.at(section, "connection").finding(
                    "unknown-connection", f"connection '{name}' is not defined in funnelcheck.yaml ({where})"))
    return out


def check_config_references(index: CheckIndex) -> list[Finding]:
    """funnelcheck.yaml: the default observation connection must be one of its connections."""
    config = index.registry.config
    name = (config.get("observations") or {}).get("connection") if config else None
    if name is None or name in _connections(index.registry):
        return []
    return [config.where.at("observations", "connection").finding(
        "unknown-connection", f"connection '{name}' is not defined under connections")]


def check_named_bases(index: CheckIndex) -> list[Finding]:
    """`p.parameter_id` names an existing, filter-free parameter of that very edge."""
    out = []
    for graph in index.graphs:
        for e in graph.edges:
            if e.parameter_id is None:
                continue
            where = e.where.at("p", "parameter_id")
            named = index.registry.parameters.get(e.parameter_id)
            if named is None:
                if e.parameter_id not in index.failed_stems:
                    out.append(where.finding("unknown-parameter", f"no parameter has id '{e.parameter_id}'"
                                             f"{suggest(e.parameter_id, index.registry.parameters)}"))
            elif named.edge != e.id:
                out.append(where.finding(
                    "base-mismatch", f"parameter '{named.id}' supplies edge '{named.edge}', not '{e.id}'"))
            elif named.context_filter or named.visited_filter:
                out.append(where.finding(
                    "base-mismatch", f"parameter '{named.id}' has filters "
                    f"({filters_text(named.context_filter, named.visited_filter)}); a base must have none"))
    return out


def _connections(registry: Registry) -> set[str]:
    config = registry.config
    conns = config.get("connections") if config else None
    return set(conns) if isinstance(conns, dict) else set()
