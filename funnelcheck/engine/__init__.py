"""The what-if engine (docs/statistics.md): propagation over the state graph, segment mixes, overrides and
Monte Carlo uncertainty. A library first: `whatif`, `diff` and the dashboard all call
`run_whatif` and render its `WhatIfResult`.

Modules: `statespace` (states and segments, plain Python: validate uses it too), `mix` (segments and
their weights), `overrides` (`--set`), `resolution` (the slot of every transition in every segment,
and the slots' stream keys), `montecarlo` (Beta draws by inverse CDF from per-slot streams), `chain`
(the absorbing-chain solver) with `digraph` (its graph algorithms), `run` (the pipeline), `result`.

The names below are loaded on first use, so `import funnelcheck.engine.statespace` (on the path of
`validate`) does not import numpy.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "Mix": "mix", "Segment": "mix", "parse_mix": "mix", "parse_select": "mix",
    "Override": "overrides", "parse_override": "overrides",
    "AppliedOverride": "result", "EdgeResult": "result", "NodeResult": "result", "SegmentResult": "result",
    "Summary": "result", "WhatIfResult": "result",
    "run_whatif": "run",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'funnelcheck.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"funnelcheck.engine.{_WHERE[name]}"), name)
