"""`funnelcheck history PARAM_ID`: one parameter's value across the commits that changed it."""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import time

from funnelcheck.commands._common import print_json, project_of
from funnelcheck.findings import FunnelcheckError, UsageError

ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
COLUMNS = ("commit", "date", "author", "mean", "stdev", "change", "status", "path", "message")


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


def run(args: argparse.Namespace) -> int:
    if not ID.match(args.parameter_id):
        raise UsageError(f"'{args.parameter_id}' is not a parameter id (lower-case letters, digits, '-' and '_')")
    from funnelcheck.load.gitsource import Placement, open_repository, open_revision, reading
    from funnelcheck.git.history import history_cache, parameter_history, row_json

    project = project_of(args)
    repo = open_repository(project)
    placement = Placement(repo, project)
    revision = open_revision(project, args.rev, repo, placement)
    bar = ProgressBar() if sys.stderr.isatty() else None
    cache = history_cache(project.state_dir)
    with reading(args.rev, revision.commit.id):
        history = parameter_history(repo, revision.commit, placement.registry_at, args.parameter_id,
                                    args.limit, bar, cache)
    cache.save()
    if bar:
        bar.close()
    if not history.rows:
        where = "/".join(p for p in (revision.registry_subpath, "parameters") if p)
        raise FunnelcheckError(f"parameter '{args.parameter_id}' is not in {where}/ at any commit reachable from "
                               f"'{args.rev}' ({history.commits_scanned} commits searched; uncommitted files have no history)")
    if history.truncated_at:
        print(f"funnelcheck history: warning: history stops at {history.truncated_at[:10]} because the clone is "
              "shallow; fetch with full history (git fetch --unshallow)", file=sys.stderr)
    rows = [row_json(r) for r in history.rows]
    if args.format == "json":
        print_json(rows)
    elif args.format == "csv":
        sys.stdout.write(render_csv(rows))
    else:
        print(render_table(rows))
    return 0


def _cell(row: dict, column: str) -> str:
    value = row[column]
    if column == "commit":
        return value[:10]
    if column == "date":
        return value[:16].replace("T", " ")
    if column == "change":
        return "" if value is None else f"{value:+.4g}"
    if column in ("mean", "stdev"):
        return "-" if value is None else f"{value:.4g}"
    if value is None:
        return "-"
    text = " ".join(str(value).split())
    return text if len(text) <= 60 else text[:59] + "…"


def render_table(rows: list[dict]) -> str:
    """Aligned columns, newest first; the message column is last and shortened."""
    cells = [[c.upper() for c in COLUMNS]] + [[_cell(r, c) for c in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells)


def render_csv(rows: list[dict]) -> str:
    """Full values (whole commit id, ISO date, full message line), one row per change."""
    out = io.StringIO()
    fields = ("commit", "date", "author", "email", "message", "path", "mean", "stdev", "change", "status")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for r in rows:
        writer.writerow(["" if r[f] is None else r[f] for f in fields])
    return out.getvalue()


class ProgressBar:
    """A one-line counter on stderr, shown only when the walk takes more than half a second."""

    def __init__(self, delay: float = 0.5):
        self.started = time.monotonic()
        self.delay = delay
        self.shown = False

    def __call__(self, scanned: int, found: int) -> None:
        if time.monotonic() - self.started < self.delay:
            return
        self.shown = True
        sys.stderr.write(f"\rhistory: {scanned} commits scanned, {found} changes found")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
