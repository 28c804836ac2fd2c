"""`funnelcheck history PARAM_ID`: one parameter's value across the commits that changed it."""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

from funnelcheck.commands._common import CommonOptions, print_json, project_of
from funnelcheck.findings import FunnelcheckError, UsageError
from funnelcheck.render import history as render
from funnelcheck.render.progress import Progress

ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck history`'s options, typed (built from argparse once, in `cli`)."""

    parameter_id: str
    rev: str = "HEAD"
    limit: int | None = None
    format: str = "table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("parameter_id", metavar="PARAM_ID", help="the parameter's id (its file's stem)")
    parser.add_argument("--rev", metavar="REV", default="HEAD", help="walk the history reachable from REV (default: HEAD)")
    parser.add_argument("--limit", type=_positive, metavar="N", help="stop after the N newest changes")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default: table)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: Options) -> int:
    if not ID.match(args.parameter_id):
        raise UsageError(f"'{args.parameter_id}' is not a parameter id (lower-case letters, digits, '-' and '_')")
    from funnelcheck.git.history import history_cache, parameter_history, row_json
    from funnelcheck.git.walkindex import walk_index
    from funnelcheck.load.gitsource import Placement, open_repository, open_revision, reading

    project = project_of(args)
    repo = open_repository(project)
    placement = Placement(repo, project)
    revision = open_revision(project, args.rev, repo, placement)
    progress = Progress(sys.stderr, "history")

    def report(scanned: int, found: int) -> None:
        progress.show(f"{scanned} commits scanned, {found} changes found")

    cache = history_cache(project.base)
    index = walk_index(project.base, args.parameter_id, placement, repo)
    with reading(args.rev, revision.commit.id):
        history = parameter_history(repo, revision.commit, placement.registry_at, args.parameter_id,
                                    args.limit, report, cache, index)
    index.save()
    cache.save()
    progress.close()
    if not history.rows:
        where = "/".join(p for p in (revision.registry_subpath, "parameters") if p)
        searched = "every commit searched" if history.from_index else f"{history.commits_scanned} commits searched"
        raise FunnelcheckError(f"parameter '{args.parameter_id}' is not in {where}/ at any commit reachable from "
                               f"'{args.rev}' ({searched}; uncommitted files have no history)")
    if history.truncated_at:
        sys.stderr.write(render.shallow_warning(history.truncated_at))
    rows = [row_json(r) for r in history.rows]
    if args.format == "json":
        print_json(rows)
    elif args.format == "csv":
        sys.stdout.write(render.as_csv(rows))
    else:
        sys.stdout.write(render.table(rows))
    return 0
