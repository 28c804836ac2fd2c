"""`funnelcheck whatif GRAPH`: conversion under a traffic mix, with Monte Carlo uncertainty (docs/statistics.md)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TextIO

from funnelcheck.commands._common import (BlockingFindings, CommonOptions, add_format, add_rev, open_registry,
                                          print_json, require_clean)
from funnelcheck.findings import ERROR, Finding
from funnelcheck.load.registry import Loaded


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck whatif`'s options, typed (built from argparse once, in `cli`)."""

    graph: str
    select: list[str] = field(default_factory=list)
    mix: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    samples: int = 2000
    seed: int = 0
    rev: str | None = None
    format: str = "text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """GRAPH, --select, --mix, --set, --samples, --seed, --rev, --format."""
    parser.add_argument("graph", metavar="GRAPH", help="graph id")
    parser.add_argument("--select", action="append", default=[], metavar="KEY=V1,V2",
                        help="keep only these values of a context and renormalise (repeatable)")
    parser.add_argument("--mix", action="append", default=[], metavar="KEY=V:W,...",
                        help="set a context's value shares explicitly; unlisted values get 0 (repeatable)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="REF=VALUE",
                        help="override p.mean or p.stdev of a reference, e.g. \"e.signup.context(channel='direct').p.mean=0.5\" (repeatable)")
    parser.add_argument("--samples", type=int, default=2000,
                        help="Monte Carlo draws, at most 1,000,000; 0 for the point estimate only (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_rev(parser)
    add_format(parser)


def run(args: Options) -> int:
    """Parse the options, load and check the registry, run the engine, render."""
    from funnelcheck.engine import Mix, parse_override, run_whatif
    from funnelcheck.render import whatif as render

    mix = Mix.from_options(args.select, args.mix)
    overrides = [parse_override(text) for text in args.overrides]
    loaded = open_registry(args, args.rev)
    require_clean(loaded)
    blocking = blocking_findings(loaded, args.graph)
    if blocking:
        first = blocking[0]
        more = f" (and {len(blocking) - 1} more; run funnelcheck validate)" if len(blocking) > 1 else ""
        raise BlockingFindings(f"graph '{args.graph}' cannot be computed: "
                               f"{first.path}:{first.line}:{first.column}: {first.message}{more}")
    progress = SegmentProgress(sys.stderr)
    try:
        result = run_whatif(loaded.registry, args.graph, mix, overrides, args.samples, args.seed, progress=progress)
    finally:
        progress.close()
    if args.format == "json":
        print_json(result.to_json())
    else:
        sys.stdout.write(render.text(result))
    return 0


def blocking_findings(loaded: Loaded, graph_id: str) -> list[Finding]:
    """Validation errors in the files the graph's computation reads: the graph, its edges'
    parameters and contexts.yaml (errors elsewhere do not change this graph's numbers)."""
    from funnelcheck.checks import validate

    registry = loaded.registry
    graph = registry.graphs.get(graph_id)
    if graph is None:
        return []
    edges = {e.id for e in graph.edges}
    paths = {graph.where.path} | {c.where.path for c in registry.contexts}
    paths |= {p.where.path for p in registry.parameters.values() if p.edge in edges}
    return [f for f in validate(loaded, computation=True) if f.severity == ERROR and f.path in paths]


# From this many segments on, the run says early how many it will compute.
MANY_SEGMENTS = 1000


class SegmentProgress:
    """The engine's progress callback: a notice before a large run, then the shared progress display."""

    def __init__(self, stream: TextIO):
        from funnelcheck.render.progress import Progress

        self.stream, self.shown, self.started = stream, Progress(stream, "whatif"), False

    def __call__(self, done: int, total: int) -> None:
        if not self.started and total >= MANY_SEGMENTS:
            from funnelcheck.render.whatif import segments_notice

            self.stream.write(segments_notice(total))
            self.stream.flush()
        self.started = True
        if total > 0:
            self.shown.show(f"{done:,}/{total:,} segments", done / total)

    def close(self) -> None:
        """Clear the bar from a terminal."""
        self.shown.close()
