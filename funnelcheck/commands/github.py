"""`funnelcheck github comment|pr|update-pr`: the sticky PR comment, a PR from a fixed branch, and the
whole scheduled posterior update (`update-pr`, in commands/github_update.py).

Settings come from the environment GitHub Actions provides: `GITHUB_TOKEN`, `GITHUB_REPOSITORY`,
`GITHUB_API_URL` (default https://api.github.com), `GITHUB_EVENT_PATH` (for the PR number)
and `GITHUB_STEP_SUMMARY`. Without permission to write (a fork's pull request gets a
read-only token) the body goes to the step summary instead and the command exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

from funnelcheck.commands import github_update
from funnelcheck.commands._common import CommonOptions
from funnelcheck.findings import FunnelcheckError, UsageError
from funnelcheck.render.format import gh_data


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck github`'s options, typed (built from argparse once, in `cli`)."""

    action: str  # comment | pr | update-pr
    repo: str | None = None  # all three
    body_file: str | None = None  # comment, pr
    pr: int | None = None  # comment
    comment_author: str | None = None
    no_alerts: bool = False  # update-pr
    as_of: str | None = None
    branch: str | None = None  # pr
    title: str | None = None
    base: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("comment", help="create or update the one sticky comment on a pull request")
    c.add_argument("--pr", type=int, metavar="N", help="pull request number (default: from $GITHUB_EVENT_PATH)")
    c.add_argument("--body-file", required=True, metavar="FILE", help="the comment's Markdown (funnelcheck diff --format md)")
    c.add_argument("--repo", metavar="OWNER/NAME", help="repository (default: $GITHUB_REPOSITORY)")
    c.add_argument("--comment-author", metavar="LOGIN",
                   help="whose comment is the sticky one (default: the token's identity, from GET /user, "
                        "else github-actions[bot])")
    p = sub.add_parser("pr", help="create or update the one open pull request from a branch")
    p.add_argument("--branch", required=True, metavar="B", help="the PR's head branch, e.g. funnelcheck/posterior-update")
    p.add_argument("--title", required=True, metavar="T")
    p.add_argument("--body-file", required=True, metavar="FILE")
    p.add_argument("--base", metavar="BRANCH", help="target branch (default: the repository's default branch)")
    p.add_argument("--repo", metavar="OWNER/NAME", help="repository (default: $GITHUB_REPOSITORY)")
    github_update.add_arguments(sub.add_parser(
        "update-pr", help="the scheduled posterior update: priors sync, monitor, update, one pull request"))


def run(args: Options) -> int:
    if args.action == "update-pr":
        return github_update.run(args)
    from funnelcheck.github import client as github
    from funnelcheck.render.markdown import MARKER

    body = _read(args.body_file)
    repository = github.check_repository(args.repo or os.environ.get("GITHUB_REPOSITORY"))
    pr = _pr_number(args.pr) if args.action == "comment" else None
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        return degrade(body, "GITHUB_TOKEN is not set")
    client = github.Client(token, os.environ.get("GITHUB_API_URL") or github.DEFAULT_API)
    try:
        if args.action == "comment":
            outcome = github.upsert_comment(client, repository, pr, body, MARKER, args.comment_author)
            what = f"comment on #{pr}"
        else:
            outcome = github.upsert_pull_request(client, repository, args.branch, args.title, body, args.base)
            what = f"pull request #{outcome.number} from {args.branch}"
    except github.NoPermission as exc:
        return degrade(body, str(exc))
    print(f"{outcome.action} {what}: {outcome.url}")
    return 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read the body file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the body file {path} is not UTF-8 text") from None


def _pr_number(given: int | None) -> int:
    """--pr, else the pull request of the event that started the workflow."""
    if given is not None:
        return given
    path = os.environ.get("GITHUB_EVENT_PATH")
    number = None
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                event = json.load(fh)
            number = (event.get("pull_request") or {}).get("number") or event.get("number")
        except (OSError, ValueError):
            number = None
    if not isinstance(number, int):
        raise UsageError("--pr is required: no pull request number in $GITHUB_EVENT_PATH")
    return number


def degrade(body: str, reason: str) -> int:
    """No way to write to the PR: put the body in the job's step summary and say so (exit 0)."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        raise FunnelcheckError(f"{reason}; and GITHUB_STEP_SUMMARY is not set, so the body was not published")
    try:
        with open(summary, encoding="utf-8") as fh:
            already = body.strip() in fh.read()  # an earlier step (the impact workflow's) put it there
    except OSError:
        already = False
    if not already:
        # The step summary is a file Actions gives each step to append to; appending is its protocol.
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(body if body.endswith("\n") else body + "\n")
    notice = f"could not write to GitHub ({reason}); the body is in this job's step summary instead"
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::notice title=funnelcheck github::{gh_data(notice)}")
    else:
        print(f"funnelcheck github: notice: {notice}", file=sys.stderr)
    return 0
