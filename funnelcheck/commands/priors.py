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

from funnelcheck.commands._common import BlockingFindings, add_format, print_json, project_of


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


def refuse_invalid(loaded, what: str) -> None:
    """As `update --write`: nothing is written into a registry that does not validate (its first error)."""
    from funnelcheck.findings import ERROR
    from funnelcheck.validate import validate

    errors = [f for f in validate(loaded) if f.severity == ERROR]
    if errors:
        f = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BlockingFindings(f"{what} refused, nothing written: {f.path}:{f.line}:{f.column}: {f.message}{more}; "
                               "run funnelcheck validate")


def after_command_word(parser: argparse.ArgumentParser) -> None:
    """Accept the common options after the last command word too (SPEC 10), without a sub-command's
    defaults overwriting what was given before it (hence SUPPRESS)."""
    parser.add_argument("--registry", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
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
