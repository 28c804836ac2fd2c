"""`funnelcheck update`: Bayesian posteriors from new evidence (docs/pipeline.md).

Without --write it prints the changes and the unified diff it would write. With --write the
YAML files are rewritten (round-trip, atomically) — refused when the registry has validation
errors. Exit 0; 1 when some parameter's evidence failed (the others are still updated) or
--write is refused; 2 on bad usage.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from funnelcheck.commands._common import CommonOptions, add_format, print_json, project_of, refuse_invalid


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck update`'s options, typed (built from argparse once, in `cli`)."""

    as_of: str | None = None
    write: bool = False
    format: str = "text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--as-of, --write, --format."""
    parser.add_argument("--as-of", metavar="DATE", help="count evidence up to DATE 00:00 UTC (default: today)")
    parser.add_argument("--write", action="store_true", help="rewrite the parameter files (default: dry run)")
    add_format(parser)


def run(args: Options) -> int:
    from funnelcheck.pipeline import require_extra

    require_extra()
    from funnelcheck.pipeline.monitor import parse_as_of
    from funnelcheck.pipeline.project import open_pipeline
    from funnelcheck.pipeline.update import plan_update, write_plan
    from funnelcheck.render import update as render
    from funnelcheck.render.progress import Progress

    as_of = parse_as_of(args.as_of)
    pipe = open_pipeline(project_of(args))
    if args.write:
        refuse_invalid(pipe.loaded, "update --write")
    bar = Progress(sys.stderr, "update")
    priors = _priors(pipe)
    try:
        plan = plan_update(pipe.loaded.registry, pipe.connections, as_of,
                           lambda path: Path(path).read_text(encoding="utf-8"), progress=bar.counter("queries"),
                           priors=priors)
    finally:
        bar.close()
        pipe.connections.dispose()
        if priors.store is not None:
            priors.store.close()
    from funnelcheck.render.priors import fallback_lines

    sys.stderr.write(fallback_lines(priors.problems, "update"))
    written = write_plan(plan) if args.write else None
    stored = _record(plan, written, pipe) if written else None
    if args.format == "json":
        print_json(render.as_json(plan))
    else:
        sys.stdout.write(render.text(plan, written))
    for c in plan.errors:
        print(f"funnelcheck update: error: {c.id}: {c.error}", file=sys.stderr)
    if stored:
        print(f"funnelcheck update: error: posteriors written to the YAML but not recorded: {stored}", file=sys.stderr)
    return 1 if plan.errors or stored else 0


def _record(plan, written: list[str], pipe) -> str | None:
    """Record the written posteriors in parameter_values (source `update`); the error, if any."""
    from funnelcheck.pipeline.store import StoreError, open_store, store_url
    from funnelcheck.pipeline.update import value_rows

    try:
        store = open_store(store_url(pipe.config, pipe.project.base), pipe.project.base)
        try:
            store.write_values(value_rows(plan, written))
        finally:
            store.close()
    except StoreError as exc:
        return str(exc)
    return None


def _priors(pipe):
    """The live prior of each parameter, cached in the persistence database when it opens."""
    from funnelcheck.pipeline.priors import live_priors
    from funnelcheck.pipeline.store import StoreError, open_store, store_url

    try:
        store = open_store(store_url(pipe.config, pipe.project.base), pipe.project.base)
    except StoreError:
        store = None  # no cache: the sources are read afresh
    return live_priors(pipe.loaded.registry, pipe.connections, pipe.project.base, store)
