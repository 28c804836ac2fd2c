"""`funnelcheck priors sync [--write]` / `priors push`: prior sources ↔ the registry (docs/pipeline.md).

sync fetches every sheets/csv/sql prior source afresh and shows which values a person changed
since the last sync or push; --write puts those in the YAML (round-trip, atomic). push writes
the registry's values to the writable sources (a Sheets range, a local CSV). Exit 0; a failing
source is a warning line and the others go on; push exits 1 when a writable source could not be
written (the posterior did not reach it); 2 on bad usage.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from funnelcheck.commands._common import (CommonOptions, add_format, after_command_word, print_json, project_of,
                                          refuse_invalid)


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck priors`'s options, typed (built from argparse once, in `cli`)."""

    action: str
    write: bool = False
    format: str = "text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """sync [--write] | push, --format."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("sync", help="fetch prior sources; --write puts values a person changed into the YAML")
    s.add_argument("--write", action="store_true", help="rewrite the parameter files (default: dry run)")
    add_format(s)
    p = sub.add_parser("push", help="write the registry's values back to writable prior sources")
    add_format(p)
    after_command_word(s)
    after_command_word(p)


def run(args: Options) -> int:
    from funnelcheck.pipeline import require_extra

    require_extra()
    from funnelcheck.pipeline.priors import live_priors
    from funnelcheck.pipeline.priorsync import ERROR, plan_sync, push, write_sync
    from funnelcheck.pipeline.project import open_pipeline
    from funnelcheck.pipeline.store import open_store, store_url
    from funnelcheck.render import priors as render

    pipe = open_pipeline(project_of(args))
    if getattr(args, "write", False):
        refuse_invalid(pipe.loaded, "priors sync --write")
    store = open_store(store_url(pipe.config, pipe.project.base), pipe.project.base)
    try:
        sources = live_priors(pipe.loaded.registry, pipe.connections, pipe.project.base, store)
        if args.action == "push":
            report = push(sources, store)
        else:
            report = plan_sync(sources, store)
            if args.write:
                write_sync(report, sources, store)
    finally:
        pipe.connections.dispose()
        store.close()
    if args.format == "json":
        print_json(report.to_json())
    else:
        sys.stdout.write(render.text(report, getattr(args, "write", False)))
    for item in report.items:
        if item.action == ERROR:
            print(f"funnelcheck priors {args.action}: warning: {item.param_id}: {item.note}", file=sys.stderr)
    return 1 if report.pushed and report.count(ERROR) else 0
