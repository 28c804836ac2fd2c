"""`funnelcheck github update-pr [--as-of DATE]`: the scheduled posterior-update pull request
(docs/pipeline.md). Dispatched from `funnelcheck github` (commands/github.py).

Runs priors sync --write, monitor, update --write on the tip of the default branch, commits the
changed registry files to `funnelcheck/posterior-update`, pushes it to `origin`, and opens or
updates the one pull request from it through `$GITHUB_API_URL` with `$GITHUB_TOKEN`, as `github
pr` does. The monitor's Red/Amber/Green summary goes to `$GITHUB_STEP_SUMMARY` when it is set.
Exit 0 (also when nothing is new); 1 on a Git, GitHub API or pipeline failure; 2 on bad usage.
"""
from __future__ import annotations

import argparse
import os
import sys

from funnelcheck.commands._common import after_command_word, refuse_invalid
from funnelcheck.findings import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--as-of, --no-alerts, --repo."""
    parser.add_argument("--as-of", metavar="DATE", help="evidence up to DATE 00:00 UTC (default: today)")
    parser.add_argument("--no-alerts", action="store_true", help="send no alerts for the monitor run")
    parser.add_argument("--repo", metavar="OWNER/NAME", help="repository (default: $GITHUB_REPOSITORY)")
    after_command_word(parser)


def run(args) -> int:
    """`args`: the options of `funnelcheck github` (commands/github.py), action `update-pr`."""
    from funnelcheck.pipeline import require_extra

    require_extra()
    from funnelcheck.commands._common import project_of
    from funnelcheck.github import client as github
    from funnelcheck.github.pulls import run_update_pr
    from funnelcheck.load.registry import load_project
    from funnelcheck.pipeline.monitor import parse_as_of
    from funnelcheck.render import alerts as render_alerts
    from funnelcheck.render import monitor as render_monitor
    from funnelcheck.github import body as render
    from funnelcheck.render.priors import fallback_lines

    as_of = parse_as_of(args.as_of)
    repository = github.check_repository(args.repo or os.environ.get("GITHUB_REPOSITORY"))
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        raise UsageError("GITHUB_TOKEN is not set: update-pr needs a token that may write pull requests")
    client = github.Client(token, os.environ.get("GITHUB_API_URL") or github.DEFAULT_API)
    project = project_of(args)
    refuse_invalid(load_project(project), "github update-pr")  # no pull request from a broken registry
    result = run_update_pr(project, as_of, client, repository, render.body, not args.no_alerts)
    sys.stderr.write(fallback_lines(result.problems, "github update-pr"))
    if result.alerts is not None:
        sys.stderr.write(render_alerts.text(result.alerts, "github update-pr"))
    sys.stdout.write(render.text(result))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and result.monitor is not None:
        # The step summary is a file Actions gives each step to append to; appending is its protocol.
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(render_monitor.step_summary(result.monitor))
            if result.pull_request is not None:
                fh.write(f"\nPosterior update: {result.pull_request.action} {result.pull_request.url}\n")
    return 0
