"""The scheduled posterior-update pull request, end to end (SPEC 8.4, `github update-pr`).

Every run builds on the tip of the default branch as `origin` has it: priors sync --write,
monitor (stored, alerts sent), update --write; the changed registry files are committed with a
temporary index (the user's index and branch are untouched) on top of that tip, pushed with
--force to the fixed branch `funnelcheck/posterior-update`, and the one open pull request from
it is created or updated. Building on the default branch each time means a merged pull request
is followed by a fresh branch, an open one is replaced by the newest evidence, and no evidence
is counted twice. When the new tree equals the default branch's or the branch's current one,
nothing is committed or pushed and the pull request is left alone. The work tree's files are
restored afterwards: the results live on the branch.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from funnelcheck.findings import FunnelcheckError, UsageError

BRANCH = "funnelcheck/posterior-update"
TITLE = "Posterior update of the funnel parameters"
BOT = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")
NOTHING_NEW = "nothing new"


class GitFailure(FunnelcheckError):
    """A git command failed; the message is its first line of error."""

    exit_code = 1


@dataclass
class UpdatePr:
    """What one update-pr run did, with everything the body and the summary show."""

    as_of: datetime
    default_branch: str
    base_commit: str
    monitor: object = None  # MonitorResult
    plan: object = None  # UpdatePlan
    sync: object = None  # SyncReport
    alerts: object = None  # AlertReport
    impact: object = None  # git.diff.Diff between the default branch and the update
    changed_files: list[str] = field(default_factory=list)
    commit: str | None = None
    action: str = NOTHING_NEW
    pull_request: object = None  # client.Outcome
    problems: dict[str, str] = field(default_factory=dict)  # prior sources that fell back


class Git:
    """The git command line in one repository (it uses the credentials the checkout configured)."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)

    def __call__(self, *args: str, env: dict | None = None, check: bool = True) -> str:
        done = subprocess.run(["git", *args], cwd=self.workdir, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})})
        if check and done.returncode != 0:
            lines = [ln for ln in (done.stderr or done.stdout).strip().splitlines() if ln.strip()]
            raise GitFailure(f"git {args[0]} failed: {lines[-1] if lines else 'exit ' + str(done.returncode)}")
        return done.stdout.strip()

    def ok(self, *args: str) -> bool:
        return subprocess.run(["git", *args], cwd=self.workdir, capture_output=True, timeout=300,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}).returncode == 0


def prepare(git: Git, default_branch: str) -> tuple[str, str | None]:
    """Fetch the default branch and the update branch; the commit to build on and the branch's tree (or None).

    Refuses a work tree with uncommitted changes to tracked files, or a HEAD that is not the default
    branch's tip: the update must start from what was merged."""
    if git("status", "--porcelain", "--untracked-files=no"):
        raise UsageError("the work tree has uncommitted changes: commit or stash them first "
                         "(update-pr commits the registry's changes itself)")
    git("fetch", "--quiet", "origin", f"+refs/heads/{default_branch}:refs/remotes/origin/{default_branch}")
    base = git("rev-parse", f"refs/remotes/origin/{default_branch}^{{commit}}")
    head = git("rev-parse", "HEAD^{commit}")
    if head != base:
        raise UsageError(f"update-pr builds on the tip of origin/{default_branch} ({base[:12]}), but HEAD is "
                         f"{head[:12]}: check out {default_branch} and pull first")
    branch_tree = None
    if git("ls-remote", "origin", f"refs/heads/{BRANCH}"):
        git("fetch", "--quiet", "origin", f"+refs/heads/{BRANCH}:refs/remotes/origin/{BRANCH}")
        branch_tree = git("rev-parse", f"refs/remotes/origin/{BRANCH}^{{tree}}")
    return base, branch_tree


def changed_files(git: Git) -> list[str]:
    """Tracked files the run modified, relative to the repository root."""
    out = git("diff", "--name-only", "-z", "HEAD")
    return sorted(p for p in out.split("\0") if p)


def commit_changes(git: Git, base: str, files: list[str], message: str) -> tuple[str, str]:
    """A commit of `files` as they are in the work tree on top of `base`, through a temporary index.
    Returns (commit, tree)."""
    with tempfile.TemporaryDirectory(prefix="funnelcheck-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("read-tree", base, env=env)
        git("add", "--", *files, env=env)
        tree = git("write-tree", env=env)
    identity = {}
    if not git.ok("config", "user.email"):
        identity = {"GIT_AUTHOR_NAME": BOT[0], "GIT_AUTHOR_EMAIL": BOT[1],
                    "GIT_COMMITTER_NAME": BOT[0], "GIT_COMMITTER_EMAIL": BOT[1]}
    commit = git("commit-tree", tree, "-p", base, "-m", message, env=identity)
    return commit, tree


def push_branch(git: Git, commit: str) -> None:
    """Point the fixed branch at `commit` on origin (replacing an older update)."""
    git("push", "--quiet", "--force", "origin", f"{commit}:refs/heads/{BRANCH}")


def restore(git: Git, files: list[str]) -> None:
    """Put the work tree's files back as HEAD has them (the update lives on the branch)."""
    if files:
        git("checkout", "HEAD", "--", *files)


def commit_message(run: UpdatePr) -> str:
    """`Posterior update through 2026-11-20` and one line per changed parameter."""
    lines = [f"Posterior update through {run.as_of.date().isoformat()}", ""]
    for c in (run.plan.changes if run.plan else []):
        if c.changes:
            lines.append(f"- {c.id}: {c.k}/{c.n}, mean {c.prior.mean:.4f} -> {c.posterior.mean:.4f}")
    for i in (run.sync.items if run.sync else []):
        if i.action == "update":
            lines.append(f"- {i.param_id}: prior synced from its {i.source} source")
    return "\n".join(lines).rstrip() + "\n"


def open_pull_request(client, repository: str):
    """The open pull request from the fixed branch, or None."""
    owner = repository.split("/")[0]
    for pr in client.paginate(f"/repos/{repository}/pulls", {"state": "open", "head": f"{owner}:{BRANCH}"}):
        if (pr.get("head") or {}).get("ref") == BRANCH:
            return pr
    return None


def default_branch(client, repository: str) -> str:
    """The repository's default branch, as the API reports it."""
    data = client.request("GET", f"/repos/{repository}").data
    name = data.get("default_branch") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise FunnelcheckError(f"GitHub's answer for {repository} names no default_branch")
    return name


def run_update_pr(project, as_of: datetime, client, repository: str, body_of, send_alerts: bool = True) -> UpdatePr:
    """priors sync --write, monitor, update --write, commit, push, and the one pull request (see the module).
    `body_of(run)` renders the pull request's body."""
    from funnelcheck.github.client import upsert_pull_request

    git = Git(Path(Git(project.base)("rev-parse", "--show-toplevel")))
    branch = default_branch(client, repository)
    base, branch_tree = prepare(git, branch)
    run = UpdatePr(as_of, branch, base)
    files: list[str] = []
    try:
        head = compute(project, run, send_alerts)
        files = changed_files(git)
        run.changed_files = files
        if files:
            run.impact = impact(project, base, head)
        if not files:
            return run
        commit, tree = commit_changes(git, base, files, commit_message(run))
        if tree == branch_tree and open_pull_request(client, repository) is not None:
            return run  # the same update is already proposed: leave it alone
        if tree != branch_tree:
            push_branch(git, commit)
            run.commit = commit
        text = body_of(run)
        run.pull_request = upsert_pull_request(client, repository, BRANCH, TITLE, text, branch)
        run.action = run.pull_request.action
        return run
    finally:
        restore(git, files or changed_files(git))  # prepare() saw a clean tree: every change is this run's


def compute(project, run: UpdatePr, send_alerts: bool = True):
    """The three pipeline steps on the work tree; returns the loaded registry after them."""
    from funnelcheck.load.registry import load_project
    from funnelcheck.pipeline import alerts
    from funnelcheck.pipeline.monitor import run_monitor
    from funnelcheck.pipeline.priors import live_priors
    from funnelcheck.pipeline.priorsync import plan_sync, write_sync
    from funnelcheck.pipeline.project import open_pipeline
    from funnelcheck.pipeline.store import open_store, store_url
    from funnelcheck.pipeline.update import plan_update, value_rows, write_plan

    pipe = open_pipeline(project)
    store = open_store(store_url(pipe.config, project.base), project.base)
    try:
        sources = live_priors(pipe.loaded.registry, pipe.connections, project.base, store)
        run.sync = write_sync(plan_sync(sources, store), sources, store)
        registry = load_project(project).registry
        sources = live_priors(registry, pipe.connections, project.base, store)
        previous = store.previous_results(run.as_of.date())
        run.monitor = run_monitor(registry, pipe.connections, run.as_of, previous, priors=sources,
                                  revision=run.base_commit)
        store.write_results(run.monitor)
        if send_alerts:
            run.alerts = alerts.dispatch(run.monitor, store, pipe.config)
        run.plan = plan_update(registry, pipe.connections, run.as_of,
                               lambda path: Path(path).read_text(encoding="utf-8"), priors=sources)
        store.write_values(value_rows(run.plan, write_plan(run.plan)))  # as `update --write` records them
        run.problems = dict(sources.problems)
        return load_project(project)
    finally:
        pipe.connections.dispose()
        store.close()


def impact(project, base: str, head_loaded):
    """The diff comment's computation between the default branch and the updated work tree."""
    from funnelcheck.git.diff import Side, diff, errors_of
    from funnelcheck.load.gitsource import blob_cache, load_tree, open_revision, registry_exists

    revision = open_revision(project, base)
    base_loaded = load_tree(revision, blob_cache(project)) if registry_exists(revision) else None
    return diff(Side("default branch", base, base_loaded, errors_of(base_loaded)),
                Side("posterior update", None, head_loaded, errors_of(head_loaded)))
