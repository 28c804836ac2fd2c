"""`funnelcheck dashboard --output DIR`: the what-if, model-fit and history page as one offline index.html."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from funnelcheck.atomicfile import write_atomic
from funnelcheck.commands._common import CommonOptions, add_rev, open_registry, project_of, require_clean
from funnelcheck.findings import UsageError

MAX_SAMPLES = 1_000_000


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options `dashboard` and `serve` share."""
    parser.add_argument("--database", metavar="URL",
                        help="persistence database with the monitor runs (default: database: of funnelcheck.yaml, "
                             "else sqlite:///.funnelcheck/funnelcheck.db)")
    parser.add_argument("--samples", type=int, default=2000, help="Monte Carlo draws per graph (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--history-limit", type=int, default=50, metavar="N",
                        help="newest changes per parameter in the history section (default: 50)")
    add_rev(parser)


@dataclass(frozen=True, kw_only=True)
class PageOptions(CommonOptions):
    """What the page is built from (`add_common`): `dashboard` and `serve` both take these."""

    database: str | None = None
    samples: int = 2000
    seed: int = 0
    history_limit: int = 50
    rev: str | None = None


@dataclass(frozen=True, kw_only=True)
class Options(PageOptions):
    """`funnelcheck dashboard`'s options, typed (built from argparse once, in `cli`)."""

    output: str = "dashboard"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--output DIR and the shared options."""
    parser.add_argument("--output", "-o", metavar="DIR", default="dashboard",
                        help="folder to write index.html into (default: ./dashboard)")
    add_common(parser)


def build(args: PageOptions):
    """Load the registry and assemble the dashboard (shared with `serve`)."""
    if not 1 <= args.samples <= MAX_SAMPLES:
        raise UsageError(f"--samples must be between 1 and {MAX_SAMPLES:,}, not {args.samples}")
    if args.history_limit < 1:
        raise UsageError(f"--history-limit must be at least 1, not {args.history_limit}")
    from funnelcheck.web.dashboard import assemble

    project = project_of(args)
    loaded = open_registry(args, args.rev)
    require_clean(loaded)
    return loaded, assemble(project, loaded.registry, args.database, args.samples, args.seed, args.history_limit,
                            args.rev or "HEAD")


def report_failed_graphs(command: str, dashboard) -> int:
    """Say which graphs could not be computed (their panels show why); 1 if any, else 0."""
    failed = [g for g in dashboard.graphs if g.error]
    for g in failed:
        print(f"funnelcheck {command}: error: graph '{g.id}': {g.error}", file=sys.stderr)
    return 1 if failed else 0


def run(args: Options) -> int:
    """Write DIR/index.html (also when a graph fails: the others are shown) and print its path."""
    from funnelcheck.web.page import render_page

    _, dashboard = build(args)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out}: not a folder")
    out.mkdir(parents=True, exist_ok=True)
    target = out / "index.html"
    write_atomic(target, render_page(dashboard).encode("utf-8"))
    target.chmod(0o644)  # a page to publish: readable by the web server, like any file the user writes
    print(target)
    return report_failed_graphs("dashboard", dashboard)
