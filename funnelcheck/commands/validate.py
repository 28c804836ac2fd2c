"""`funnelcheck validate [PATH...]`: every check of docs/validation.md over the whole registry.

Runs on every commit (pre-commit), so it stays light: it imports neither numpy, scipy,
pygit2, SQLAlchemy nor DuckDB (pygit2 only with --rev), and jsonschema only for a file the fast
schema check cannot pass (docs/validation.md).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
from dataclasses import dataclass, field

from funnelcheck.checks import validate
from funnelcheck.checks.memo import GraphMemo
from funnelcheck.commands._common import CommonOptions, add_rev, open_registry, print_json, project_of
from funnelcheck.findings import ERROR, Finding, UsageError
from funnelcheck.render import findings as render

FORMATS = ("text", "json", "github")


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck validate`'s options, typed (built from argparse once, in `cli`)."""

    paths: list[str] = field(default_factory=list)
    format: str | None = None
    strict: bool = False
    rev: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="report only findings in these files or folders (the whole registry is always checked)")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="output format (default: text; github when GITHUB_ACTIONS=true)")
    parser.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    add_rev(parser)


def run(args: Options) -> int:
    if not args.rev:
        missing = [p for p in args.paths if not os.path.exists(p)]
        if missing:
            raise UsageError(f"no such file or folder: {missing[0]}")
    # Loading builds many small objects and no reference cycles worth collecting; pausing the
    # cyclic collector meanwhile saves a quarter of a warm run on a large registry.
    paused = gc.isenabled()
    gc.disable()
    try:
        project = project_of(args)
        loaded = open_registry(args, args.rev, project)
        memo = GraphMemo(project.cache_file("checks"))
        findings = validate(loaded, memo=memo)
        memo.save()
    finally:
        if paused:
            gc.enable()
    if args.paths:
        findings = narrow(findings, args.paths)
    fmt = args.format or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text")
    if fmt == "json":
        print_json(render.as_json(findings))
    else:
        sys.stdout.write(render.github(findings) if fmt == "github" else render.text(findings))
        print(render.summary(findings, loaded.registry), file=sys.stderr)
    failing = [f for f in findings if f.severity == ERROR or args.strict]
    return 1 if failing else 0


def narrow(findings: list[Finding], paths: list[str]) -> list[Finding]:
    """Keep the findings in the given files, or below the given folders."""
    wanted = [os.path.abspath(p) for p in paths]

    def inside(path: str) -> bool:
        full = os.path.abspath(path)
        return any(full == w or full.startswith(w.rstrip(os.sep) + os.sep) for w in wanted)

    return [f for f in findings if inside(f.path)]
