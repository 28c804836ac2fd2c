"""What a what-if run returns: plain records, and their JSON shape (docs/cli.md)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from funnelcheck.model import Estimate


@dataclass(frozen=True)
class Summary:
    """Conversion at the parameters' means (`point`) and over the Monte Carlo draws (None
    without draws: `--samples 0`)."""

    point: float
    mean: float | None
    p05: float | None
    p50: float | None
    p95: float | None

    def to_json(self) -> dict:
        """{"point", "mean", "p05", "p50", "p95"}."""
        return {"point": self.point, "mean": self.mean, "p05": self.p05, "p50": self.p50, "p95": self.p95}


@dataclass(frozen=True)
class NodeResult:
    """Population expected visits (P(reach) on a DAG) and the mass that leaves along no edge."""

    visits: float
    dropoff: float
    outcome: str | None = None  # success | failure | None


@dataclass(frozen=True)
class EdgeResult:
    """Population flow and the effective probability Σ_s w_s flow_s / Σ_s w_s visits_s(source).

    `p` is None when the source is never visited (the ratio has no value).
    """

    p: float | None
    flow: float
    source: str = ""
    target: str = ""


class Column(Mapping):
    """Column j of a (names × segments) array read as {name: value}: each segment's visits and flows
    without a dict per segment (15,625 segments × 1,500 nodes and edges would be millions of floats
    that only the dashboard reads). The column becomes a list on first read."""

    def __init__(self, position: dict[str, int], values: np.ndarray, j: int):
        self._position, self._values, self._j, self._list = position, values, j, None

    def __getitem__(self, name: str) -> float:
        if self._list is None:
            self._list = self._values[:, self._j].tolist()
        return self._list[self._position[name]]

    def __iter__(self):
        return iter(self._position)

    def __len__(self) -> int:
        return len(self._position)

    def __repr__(self) -> str:
        return repr(dict(self))


@dataclass(frozen=True)
class SegmentResult:
    context: dict[str, str]  # key -> value id, or '*' for the values no parameter names
    weight: float
    conversion: float  # at the means
    draws: np.ndarray = field(repr=False)  # conversion per Monte Carlo draw
    members: dict[str, list[str]] = field(default_factory=dict)  # for '*' classes: the values they stand for
    summary: Summary | None = None
    visits: Mapping[str, float] = field(default_factory=dict)  # node -> expected visits in this segment, at the means
    flows: Mapping[str, float] = field(default_factory=dict)  # edge -> expected flow in this segment, at the means
    inputs: str = ""  # with `run_whatif(known=...)`: digest of what its draws depend on (equal digests, equal draws)

    def to_json(self) -> dict:
        """{"context", "weight", "conversion"} plus the Monte Carlo summary and '*' members."""
        out = {"context": dict(self.context), "weight": self.weight, "conversion": self.conversion}
        if self.summary is not None:
            out.update(mean=self.summary.mean, p05=self.summary.p05, p50=self.summary.p50, p95=self.summary.p95)
        if self.members:
            out["members"] = {k: list(v) for k, v in self.members.items()}
        return out


@dataclass(frozen=True)
class AppliedOverride:
    reference: str  # canonical, with the field
    value: float
    before: float  # what the reference resolved to without overrides
    replaces: str | None  # parameter id (or inline key) it replaced, if any


@dataclass
class WhatIfResult:
    graph: str
    conversion: Summary
    draws: np.ndarray  # population conversion per draw (len == samples): diffs use common random numbers
    outcomes: dict[str, float]  # absorption probability per outcome node (population, at the means)
    nodes: dict[str, NodeResult]
    edges: dict[str, EdgeResult]
    segments: list[SegmentResult]  # heaviest first
    parameters_used: dict[str, Estimate]  # parameter id (or `inline:<edge>`) -> the estimate drawn from
    name: str | None = None
    samples: int = 0
    seed: int = 0
    shares: dict[str, dict[str, float]] = field(default_factory=dict)  # the value shares applied, per used key
    overrides: list[AppliedOverride] = field(default_factory=list)
    rescaled: float = 0.0  # share of drawn (state, segment) out-probability sets that summed past 1 and were scaled
    states: int = 0  # size of the state graph that was propagated

    def to_json(self) -> dict:
        """the `whatif` JSON shape of docs/cli.md, plus run details."""
        return {
            "graph": self.graph,
            "conversion": self.conversion.to_json(),
            "outcomes": dict(self.outcomes),
            "nodes": {n: {"visits": r.visits, "dropoff": r.dropoff} for n, r in self.nodes.items()},
            "edges": {e: {"p": r.p, "flow": r.flow, "from": r.source, "to": r.target} for e, r in self.edges.items()},
            "segments": [s.to_json() for s in self.segments],
            "name": self.name,
            "samples": self.samples,
            "seed": self.seed,
            "mix": {k: dict(v) for k, v in self.shares.items()},
            "overrides": [{"reference": o.reference, "value": o.value, "before": o.before, "replaces": o.replaces}
                          for o in self.overrides],
            "parameters_used": {k: {"mean": v.mean, "stdev": v.stdev} for k, v in self.parameters_used.items()},
            "rescaled": self.rescaled,
        }
