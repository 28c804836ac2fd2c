"""`funnelcheck resolve REF`: one reference through the fallback hierarchy (docs/formats.md#resolution)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from funnelcheck.commands._common import CommonOptions, add_format, add_rev, open_registry, print_json, require_clean
from funnelcheck.findings import UsageError
from funnelcheck.reference import ReferenceError, parse_reference
from funnelcheck.render import resolve as render
from funnelcheck.resolve import Resolver, Unresolvable, source_nodes


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck resolve`'s options, typed (built from argparse once, in `cli`)."""

    reference: str
    explain: bool = False
    rev: str | None = None
    format: str = "text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REF", help="e.g. e.signup.visited(pricing).context(channel='google').p.mean")
    parser.add_argument("--explain", action="store_true", help="list the candidates and why the winner won")
    add_rev(parser)
    add_format(parser)


def run(args: Options) -> int:
    try:
        ref = parse_reference(args.reference)
    except ReferenceError as exc:
        raise UsageError(f"{args.reference!r}: {exc}") from None
    loaded = open_registry(args, args.rev)
    require_clean(loaded)
    registry = loaded.registry
    try:
        res = Resolver(registry).resolve(ref, source_nodes(registry, ref.edge))
    except Unresolvable as exc:
        if args.format == "json":
            print_json(render.unresolvable_json(ref, str(exc)))
        else:
            sys.stdout.write(render.unresolvable_text(ref, str(exc)))
        return 1
    if args.format == "json":
        print_json(render.as_json(res))
    else:
        sys.stdout.write(render.text(res, args.explain))
    return 0
