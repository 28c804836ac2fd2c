"""The what-if engine (docs/statistics.md): propagation over the state graph, segment mixes, overrides and
Monte Carlo uncertainty. A library first: `whatif`, `diff` and the dashboard all call
`run_whatif` and render its `WhatIfResult`.

Modules: `mix` (segments and their weights), `overrides` (`--set`), `montecarlo` (Beta draws
and their streams), `chain` (the absorbing-chain solver), `run` (the pipeline), `result`.
"""
from funnelcheck.engine.mix import Mix, Segment, parse_mix, parse_select
from funnelcheck.engine.overrides import Override, parse_override
from funnelcheck.engine.result import (AppliedOverride, EdgeResult, NodeResult, SegmentResult, Summary,
                                       WhatIfResult)
from funnelcheck.engine.run import run_whatif

__all__ = [
    "AppliedOverride", "EdgeResult", "Mix", "NodeResult", "Override", "Segment", "SegmentResult", "Summary",
    "WhatIfResult", "parse_mix", "parse_override", "parse_select", "run_whatif",
]
