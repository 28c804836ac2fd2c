"""The hooks through the real pre-commit framework, on temp Git repositories.

`pre-commit try-repo` runs the validate hook straight from this repository, as the issue asks,
on a good and on a bad registry. It builds a fresh store on every call (about half a minute of
installing), so the other hook tests go the way users do: a committed snapshot of this working
tree (tracked plus untracked, not ignored files) is named in a `.pre-commit-config.yaml`, and
`pre-commit run HOOK --all-files` shares one PRE_COMMIT_HOME per test session.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gitrepos import GIT_ENV

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")



def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV, HOME=str(cwd))  # no user or system git config leaks in
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory) -> Path:
    """A one-commit Git repository holding this working tree as it is now."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    dest = tmp_path_factory.mktemp("funnelcheck-snapshot")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():  # a tracked file deleted in the work tree is not part of the snapshot
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "snapshot")
    return dest


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def project(tmp_path, hook_repo) -> Path:
    """A user's repository: the example registry and a .pre-commit-config.yaml that uses our hooks."""
    project = tmp_path / "models"
    shutil.copytree(REPO / "registry", project / "registry")
    shutil.copy(REPO / "funnelcheck.yaml", project / "funnelcheck.yaml")
    (project / ".gitignore").write_text(".funnelcheck/\n")
    rev = git(hook_repo, "rev-parse", "HEAD").strip()
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo.as_posix()}\n    rev: {rev}\n    hooks:\n"
        "      - id: funnelcheck-format\n      - id: funnelcheck-validate\n")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "models")
    return project


def run_hook(project: Path, home: Path, hook: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PRE_COMMIT", "VIRTUAL_ENV"))}
    env.update(GIT_ENV, PRE_COMMIT_HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1", PRE_COMMIT_COLOR="never")
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", hook, "--all-files"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=1200)


def test_the_validate_hook_passes_a_good_registry_and_fails_a_bad_one(project, pre_commit_home):
    good = run_hook(project, pre_commit_home, "funnelcheck-validate")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "funnelcheck validate" in good.stdout and "Passed" in good.stdout

    bad_file = project / "registry" / "parameters" / "checkout" / "checkout-base.yaml"
    text = bad_file.read_text()
    bad_file.write_text(text.replace(text[text.index("mean:"):].split(",")[0], "mean: 1.55"))
    git(project, "commit", "-q", "-am", "an impossible checkout rate")
    bad = run_hook(project, pre_commit_home, "funnelcheck-validate")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert "registry/parameters/checkout/checkout-base.yaml:" in bad.stdout
    assert "error[probability-range]: mean 1.55 is not a probability" in bad.stdout


def test_the_format_hook_fixes_and_then_passes(project, pre_commit_home):
    target = project / "registry" / "parameters" / "unsorted.yaml"
    target.write_text("id: unsorted\nedge: signup\ncontext_filter: {device: mobile, channel: organic}\n"
                      "visited_filter: [pricing, features]\nvalue: {mean: 0.2, stdev: 0.05}\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "unsorted filters")

    first = run_hook(project, pre_commit_home, "funnelcheck-format")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "reformatted registry/parameters/unsorted.yaml" in first.stdout
    assert "context_filter: {channel: organic, device: mobile}\nvisited_filter: [features, pricing]\n" in target.read_text()
    git(project, "add", "-A")
    second = run_hook(project, pre_commit_home, "funnelcheck-format")
    assert second.returncode == 0, second.stdout + second.stderr


def try_repo(project: Path, hook: str) -> subprocess.CompletedProcess:
    """`pre-commit try-repo` straight on this repository (its uncommitted changes included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PRE_COMMIT", "VIRTUAL_ENV"))}
    env.update(GIT_ENV, PIP_DISABLE_PIP_VERSION_CHECK="1", PRE_COMMIT_COLOR="never")
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(REPO), hook, "--all-files"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=1200)


def test_try_repo_passes_a_good_registry_and_fails_a_bad_one_naming_the_file(tmp_path):
    project = tmp_path / "models"
    shutil.copytree(REPO / "registry", project / "registry")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "models")
    good = try_repo(project, "funnelcheck-validate")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout

    graph = project / "registry" / "graphs" / "saas-signup.yaml"
    graph.write_text(graph.read_text().replace("to: purchase", "to: purchase-page"))
    git(project, "commit", "-q", "-am", "an edge to a page that does not exist")
    bad = try_repo(project, "funnelcheck-validate")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert "registry/graphs/saas-signup.yaml:" in bad.stdout and "error[unknown-node]" in bad.stdout
