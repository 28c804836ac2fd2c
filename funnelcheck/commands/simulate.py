"""`funnelcheck simulate GRAPH --users N --out PATH`: journeys drawn from the model (docs/pipeline.md).

PATH ending in `.duckdb` is a DuckDB file (the two tables replaced); anything else is a folder
of Parquet files, `<table>.parquet`. Exit 0; 1 when the output cannot be written; 2 on bad usage.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from funnelcheck.commands._common import CommonOptions, open_registry, require_clean


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck simulate`'s options, typed (built from argparse once, in `cli`)."""

    graph: str
    users: int | None = None
    out: str | None = None
    drift: list[str] = field(default_factory=list)
    start: str | None = None
    days: int = 28
    seed: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """GRAPH, --users, --out, --drift, --start, --days, --seed."""
    parser.add_argument("graph", metavar="GRAPH", help="graph id")
    parser.add_argument("--users", type=int, required=True, help="number of user sessions to draw")
    parser.add_argument("--out", required=True, metavar="PATH", help="a .duckdb file, or a folder for Parquet files")
    parser.add_argument("--drift", action="append", default=[], metavar="REF=VALUE",
                        help="make the truth differ from the registry, e.g. \"e.signup.context(channel='facebook').p.mean=0.3\"")
    parser.add_argument("--start", metavar="DATE", help="first day of the sessions, YYYY-MM-DD (default: --days before today)")
    parser.add_argument("--days", type=int, default=28, help="days the sessions are spread over (default: 28)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args: Options) -> int:
    from funnelcheck.pipeline import require_extra

    require_extra("duckdb")
    require_extra("pyarrow")
    from funnelcheck.engine.overrides import override_slots, parse_override
    from funnelcheck.findings import UsageError
    from funnelcheck.pipeline.simulate import default_start, parse_start, simulate, write_tables
    from funnelcheck.resolve import Resolver

    start = parse_start(args.start) or default_start(args.days)
    loaded = open_registry(args)
    require_clean(loaded)
    graph = loaded.registry.graphs.get(args.graph)
    try:
        drifts = override_slots(Resolver(loaded.registry, graph), graph, [parse_override(t) for t in args.drift]) if graph else []
    except UsageError as exc:
        raise UsageError(str(exc).replace("--set", "--drift", 1)) from None
    tables = simulate(loaded.registry, args.graph, args.users, args.seed, drifts, start, args.days)
    written = write_tables(tables, args.out)
    print(f"funnelcheck simulate: {tables.users} users, {tables.journey_rows} journey rows, "
          f"{len(tables.visits['time'])} visits -> {', '.join(written)}", file=sys.stderr)
    return 0
