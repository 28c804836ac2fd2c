"""A registry moved with `git mv registry models/registry`: every revision is read with its own funnelcheck.yaml.

The repository is built with pygit2; expected values are the closed forms of the shop graph
(conversion = p(add-to-cart) × p(checkout), stdev 0 so every draw is the point).
"""
from __future__ import annotations

import json
import subprocess

import pygit2
import pytest

from funnelcheck.findings import FunnelcheckError
from funnelcheck.git.history import parameter_history
from funnelcheck.load.gitsource import Placement, load_revision, open_repository
from funnelcheck.load.registry import find_project
from gitrepos import PyRepo, parameter, shop_registry

CHECKOUT = "parameters/checkout/checkout-base.yaml"


@pytest.fixture
def moved(tmp_path):
    """before (checkout 0.4) → edit (0.45) → `git mv registry models/registry` + config → after (0.5).

    The work tree is checked out at the last commit (models/registry), as a user's clone would be.
    """
    repo = PyRepo(tmp_path / "r")
    ids = {}
    ids["before"] = repo.commit("before", {"funnelcheck.yaml": "registry: registry\n", **shop_registry(checkout=0.4)})
    ids["edit"] = repo.commit("edit", {f"registry/{CHECKOUT}": parameter("checkout-base", "checkout", 0.45)})
    old = {k: v for k, v in repo.files.items() if k.startswith("registry/")}
    ids["move"] = repo.commit("git mv registry models/registry",
                              {"funnelcheck.yaml": "registry: models/registry\n",
                               **{f"models/{k}": v for k, v in old.items()}}, remove=tuple(old))
    ids["after"] = repo.commit("after", {f"models/registry/{CHECKOUT}": parameter("checkout-base", "checkout", 0.5)})
    repo.repo.checkout_head(strategy=pygit2.GIT_CHECKOUT_FORCE)
    return repo, {k: str(v) for k, v in ids.items()}


def test_rev_of_a_commit_before_the_move(moved, monkeypatch, cli):
    repo, ids = moved
    monkeypatch.chdir(repo.repo.workdir)
    project = find_project()
    assert project.registry.name == "registry" and project.registry.parent.name == "models"
    before = load_revision(project, ids["before"])
    assert before.registry.root == "registry"  # findings name the folder as it was at that revision
    assert before.registry.parameters["checkout-base"].value.mean == 0.4
    assert load_revision(project, ids["after"]).registry.parameters["checkout-base"].value.mean == 0.5
    res = cli("whatif", "shop", "--rev", ids["edit"], "--format", "json")
    assert res.code == 0, res
    assert json.loads(res.out)["conversion"]["point"] == pytest.approx(0.5 * 0.45)


def test_registry_option_wins_over_the_config_at_every_revision(moved, monkeypatch):
    repo, ids = moved
    monkeypatch.chdir(repo.repo.workdir)
    project = find_project(registry="models/registry")
    with pytest.raises(FunnelcheckError, match="no registry folder models/registry/"):
        load_revision(project, ids["before"])


def test_diff_across_the_move_compares_like_with_like(moved, cli):
    repo, ids = moved
    out = json.loads(cli("diff", ids["edit"], ids["after"], "--format", "json", cwd=repo.repo.workdir).out)
    assert out["base"]["registry"] and out["head"]["registry"]
    [graph] = out["graphs"]
    assert graph["status"] == "modified"
    assert graph["base"]["point"] == pytest.approx(0.5 * 0.45) and graph["head"]["point"] == pytest.approx(0.5 * 0.5)
    assert [(c["id"], c["field"], c["base"], c["head"]) for c in out["changed_parameters"]] == [
        ("checkout-base", "mean", 0.45, 0.5)]
    # Only the move: nothing changed, nothing is "added".
    same = json.loads(cli("diff", ids["edit"], ids["move"], "--format", "json", cwd=repo.repo.workdir).out)
    assert same["changed_parameters"] == [] and [g["status"] for g in same["graphs"]] == ["unchanged"]
    # Against the work tree (HEAD defaults to it).
    tree = json.loads(cli("diff", ids["before"], "--format", "json", cwd=repo.repo.workdir).out)
    assert tree["graphs"][0]["delta"]["point"] == pytest.approx(0.5 * 0.5 - 0.5 * 0.4)


def test_history_keeps_rows_before_the_move_and_follows_it(moved, cli):
    repo, ids = moved
    rows = json.loads(cli("history", "checkout-base", "--format", "json", cwd=repo.repo.workdir).out)
    assert [(r["commit"], r["status"], r["mean"], r["path"]) for r in rows] == [
        (ids["after"], "modified", 0.5, f"models/registry/{CHECKOUT}"),
        (ids["move"], "moved", 0.45, f"models/registry/{CHECKOUT}"),
        (ids["edit"], "modified", 0.45, f"registry/{CHECKOUT}"),
        (ids["before"], "added", 0.4, f"registry/{CHECKOUT}"),
    ]
    assert rows[1]["previous"]["path"] == f"registry/{CHECKOUT}"
    # Independent check: git's own rename following lists the same commits.
    logged = subprocess.run(["git", "log", "--follow", "--format=%H", "--", f"models/registry/{CHECKOUT}"],
                            cwd=repo.repo.workdir, capture_output=True, text=True, check=True).stdout.split()
    assert logged == [r["commit"] for r in rows]


def test_history_with_a_fixed_registry_loses_the_rows_before_the_move(moved):
    """What the per-commit placement buys: a fixed folder sees the parameter appear at the move."""
    repo, ids = moved
    head = repo.repo.head.peel(pygit2.Commit)
    fixed = parameter_history(repo.repo, head, "models/registry", "checkout-base")
    assert [r.status for r in fixed.rows] == ["modified", "added"]
    project = find_project(cwd=repo.repo.workdir)
    followed = parameter_history(repo.repo, head, Placement(open_repository(project), project).registry_at,
                                 "checkout-base")
    assert len(followed.rows) == 4


def test_unchanged_blobs_are_parsed_once_across_the_move(moved, monkeypatch):
    from funnelcheck.load import registry as registry_module

    repo, ids = moved
    calls = []
    real = registry_module.parse_file
    monkeypatch.setattr(registry_module, "parse_file", lambda k, sf, raw: calls.append(sf.key) or real(k, sf, raw))
    project = find_project(cwd=repo.repo.workdir)
    history = parameter_history(repo.repo, repo.repo.head.peel(pygit2.Commit),
                                Placement(open_repository(project), project).registry_at, "checkout-base")
    assert len(history.rows) == 4
    assert len(calls) == len(set(calls)) == 3  # three distinct blobs (0.4, 0.45, 0.5); the moved one once
