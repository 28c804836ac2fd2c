"""The registry model: plain dataclasses built from the YAML files.

Every object keeps `where`, the parsed document it came from and its path inside it,
so any later check can point at the file, line and column of the node at fault.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from funnelcheck.findings import ERROR, Finding
from funnelcheck.yamlload import Doc


@dataclass(frozen=True)
class Where:
    """A place in a parsed file: the document and the path of a node inside it."""

    doc: Doc
    parts: tuple = ()

    @property
    def path(self) -> str:
        return self.doc.path

    def at(self, *parts) -> "Where":
        return Where(self.doc, self.parts + parts)

    def finding(self, code: str, message: str, severity: str = ERROR, key: bool = False) -> Finding:
        return self.doc.finding(self.parts, code, message, severity, key=key)


@dataclass(frozen=True)
class Estimate:
    """A probability with its uncertainty: (mean, stdev)."""

    mean: float
    stdev: float


@dataclass(frozen=True)
class ContextValue:
    id: str
    label: str | None
    share: float | None  # None: no share given
    where: Where | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Context:
    id: str
    name: str | None
    values: tuple[ContextValue, ...]
    where: Where = field(compare=False, repr=False)

    def value_ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.values)

    def shares(self) -> dict[str, float]:
        """The default traffic mix: the declared shares, or equal shares when none is given."""
        if all(v.share is not None for v in self.values):
            return {v.id: float(v.share) for v in self.values}
        return {v.id: 1.0 / len(self.values) for v in self.values}


@dataclass(frozen=True)
class Parameter:
    id: str
    edge: str
    context_filter: tuple[tuple[str, str], ...]  # sorted by key
    visited_filter: frozenset[str]
    value: Estimate | None
    where: Where = field(compare=False, repr=False)
    description: str | None = None
    fallback_value: Estimate | None = None
    prior_source: dict | None = None
    observation_source: dict | None = None
    bayesian_update: dict | None = None
    model_fit: dict | None = None
    visited_as_written: tuple[str, ...] = field(default=(), compare=False, repr=False)  # file order, for positions

    @property
    def context(self) -> dict[str, str]:
        return dict(self.context_filter)

    @property
    def filters(self) -> tuple:
        """What makes two parameters of one edge the same slot (docs/formats.md)."""
        return (self.edge, self.context_filter, self.visited_filter)

    @property
    def estimate(self) -> Estimate | None:
        """The value the model uses now: `value`, else `fallback_value`."""
        return self.value or self.fallback_value


@dataclass(frozen=True)
class Node:
    id: str
    entry_weight: float | None
    outcome: str | None  # "success" | "failure" | None
    where: Where = field(compare=False, repr=False)
    name: str | None = None


@dataclass(frozen=True)
class Edge:
    id: str
    source: str
    target: str
    inline: Estimate | None  # inline base probability
    parameter_id: str | None  # named base parameter
    where: Where = field(compare=False, repr=False)


@dataclass(frozen=True)
class Graph:
    id: str
    name: str | None
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    where: Where = field(compare=False, repr=False)

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def edge(self, edge_id: str) -> Edge | None:
        return next((e for e in self.edges if e.id == edge_id), None)

    def out_edges(self) -> dict[str, list[Edge]]:
        out: dict[str, list[Edge]] = {n.id: [] for n in self.nodes}
        for e in self.edges:
            out.setdefault(e.source, []).append(e)
        return out

    def entries(self) -> dict[str, float]:
        """Entry nodes with their weights normalised to sum 1."""
        raw = {n.id: n.entry_weight for n in self.nodes if n.entry_weight}
        total = sum(raw.values())
        return {k: v / total for k, v in raw.items()} if total > 0 else {}


@dataclass(frozen=True)
class Config:
    """funnelcheck.yaml: kept as data; the v2 pipeline reads its sections."""

    path: str | None
    data: dict
    where: Where | None = field(default=None, compare=False, repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


@dataclass
class Registry:
    """A whole registry. Ids are unique here; duplicates were reported and dropped."""

    root: str
    contexts: tuple[Context, ...] = ()
    parameters: dict[str, Parameter] = field(default_factory=dict)
    graphs: dict[str, Graph] = field(default_factory=dict)
    config: Config | None = None

    def context(self, context_id: str) -> Context | None:
        return next((c for c in self.contexts if c.id == context_id), None)

    def context_priority(self) -> dict[str, int]:
        """Context key → its rank in contexts.yaml (earlier = higher priority)."""
        return {c.id: i for i, c in enumerate(self.contexts)}

    def parameters_by_edge(self) -> dict[str, list[Parameter]]:
        by_edge: dict[str, list[Parameter]] = {}
        for p in sorted(self.parameters.values(), key=lambda p: p.id):
            by_edge.setdefault(p.edge, []).append(p)
        return by_edge

    def graphs_with_edge(self, edge_id: str) -> list[Graph]:
        return [g for g in self.graphs.values() if g.edge(edge_id) is not None]
