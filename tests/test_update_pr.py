"""`funnelcheck github update-pr` end to end: a bare Git repository as origin, the fake GitHub API,
real observations in SQLite, a CSV prior. Run twice with no new data: one commit; after a merge:
a fresh branch from the default branch; the PR body's numbers are the update's."""
from __future__ import annotations

import argparse
import json
import sqlite3

import pytest

from funnelcheck.cli import common_options
from funnelcheck.commands import github_update
from funnelcheck.github.pulls import BOT, BRANCH
from funnelcheck.pipeline import stats
from tests.fakegithub import TOKEN, fake_github  # noqa: F401  (fixture)
from tests.gitrepos import GitCli

N, K = 400, 180
GRAPH = """\
id: shop
nodes:
  - {id: home, entry: {weight: 1}}
  - {id: cart}
  - {id: buy, outcome: success}
edges:
  - {id: add-to-cart, from: home, to: cart}
  - {id: checkout, from: cart, to: buy}
"""
OBSERVED = ("observation_source:\n  type: sql\n  connection: obs\n  query: >-\n"
            "    SELECT trials, successes FROM counts WHERE :window_start < :window_end\n")


def files() -> dict[str, str]:
    return {
        ".gitignore": ".funnelcheck/\nobs.db\n",
        "funnelcheck.yaml": "registry: registry\ndatabase: sqlite:///.funnelcheck/fc.db\n"
                            "connections:\n  obs: {url: \"sqlite:///obs.db\"}\n",
        "registry/contexts.yaml": "contexts:\n  - id: channel\n    values: [{id: google, share: 1.0}]\n",
        "registry/graphs/shop.yaml": GRAPH,
        "registry/priors.csv": "param_id,mean,stdev\ncheckout-base,0.4,0.05\n",
        "registry/parameters/add-to-cart-base.yaml": "id: add-to-cart-base\nedge: add-to-cart\n"
                                                     "value: {mean: 0.5, stdev: 0.1}\n",
        "registry/parameters/checkout-base.yaml": "id: checkout-base\nedge: checkout\n# from the pricing team\n"
                                                  "prior_source: {type: csv, path: priors.csv}\n"
                                                  "value: {mean: 0.4, stdev: 0.05}\n" + OBSERVED,
    }


@pytest.fixture
def repo(tmp_path, fake_github, monkeypatch):
    for name in ("GIT_CONFIG_GLOBAL",):
        monkeypatch.setenv(name, str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    GitCli(tmp_path / "origin.git", init=False).path.mkdir()
    GitCli(tmp_path / "origin.git", init=False).git("init", "-q", "--bare", "-b", "main")
    work = GitCli(tmp_path / "work")
    work.commit("registry", files())
    work.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    work.git("push", "-q", "origin", "main")
    with sqlite3.connect(work.path / "obs.db") as db:
        db.execute("CREATE TABLE counts (trials INTEGER, successes INTEGER)")
        db.execute("INSERT INTO counts VALUES (?, ?)", (N, K))
    monkeypatch.chdir(work.path)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", fake_github.repository)
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    work.origin = GitCli(tmp_path / "origin.git", init=False)
    return work


def update_pr(*argv: str) -> int:
    """`funnelcheck github update-pr ARGV` as commands/github.py dispatches it (a sub-command of `github`)."""
    parser = argparse.ArgumentParser(parents=[common_options()])
    github_update.add_arguments(parser.add_subparsers(dest="action").add_parser("update-pr"))
    return github_update.run(parser.parse_args(["update-pr", *argv]))


def branch_tip(origin: GitCli) -> str | None:
    out = origin.git("for-each-ref", "--format=%(objectname)", f"refs/heads/{BRANCH}")
    return out or None


def test_the_scheduled_sequence_end_to_end(repo, fake_github, capsys, tmp_path):
    main0 = repo.git("rev-parse", "HEAD")
    assert update_pr("--as-of", "2026-11-20") == 0
    out = capsys.readouterr().out
    assert "created pull request #1" in out
    tip = branch_tip(repo.origin)
    assert repo.origin.git("rev-parse", f"{tip}^") == main0
    assert repo.origin.git("log", "-1", "--format=%an <%ae>", tip) == f"{BOT[0]} <{BOT[1]}>"
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""  # the work tree is as it was

    prior = stats.moment_match(0.4, 0.05)
    post = stats.posterior(prior, N, K)
    text = repo.origin.git("show", f"{tip}:registry/parameters/checkout-base.yaml")
    assert f"mean: {round(post.mean, 6)}" in text and "# from the pricing team" in text
    assert "updated_through: '2026-11-20T00:00:00Z'" in text or "updated_through: 2026-11-20T00:00:00Z" in text
    changed = repo.origin.git("diff", "--name-only", main0, tip).splitlines()
    assert changed == ["registry/parameters/checkout-base.yaml"]

    pr, = fake_github.pulls
    body = pr["body"]
    assert pr["head"]["ref"] == BRANCH and pr["base"]["ref"] == "main"
    z = (K / N - prior.mean) / ((K / N) * (1 - K / N) / N) ** 0.5
    status = "red" if abs(z) > 3 else "amber" if abs(z) >= 2 else "green"
    row = next(line for line in body.splitlines() if "checkout-base" in line and "→" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].endswith(status) and cells[2:4] == [str(N), str(K)]
    assert cells[4] == "2026-11-13 00:00 → 2026-11-20 00:00"
    assert cells[5] == f"{prior.mean:.6f} → {post.mean:.6f}"
    assert cells[6] == f"{prior.stdev:.6f} → {post.stdev:.6f}"
    assert cells[7] == f"{prior.alpha:.6g} → {post.alpha:.6g}"
    assert cells[8] == f"{prior.beta:.6g} → {post.beta:.6g}"
    assert "Funnel impact" in body and "shop" in body
    with sqlite3.connect(repo.path / ".funnelcheck/fc.db") as db:
        recorded = db.execute("SELECT mean FROM parameter_values WHERE param_id = 'checkout-base' "
                              "AND source = 'update'").fetchall()
    assert recorded == [(pytest.approx(post.mean, abs=1e-6),)]
    summary = (tmp_path / "summary.md").read_text()
    assert "funnelcheck monitor — 2026-11-20" in summary and "https://github.test/pull/1" in summary

    # the same day again, nothing new: no commit, no push, the pull request left alone
    writes = len(fake_github.writes())
    assert update_pr("--as-of", "2026-11-20") == 0
    assert "nothing new (the same update is already proposed)" in capsys.readouterr().out
    assert branch_tip(repo.origin) == tip and len(fake_github.writes()) == writes

    # the pull request is merged; the next run starts a fresh branch from the default branch
    repo.git("fetch", "-q", "origin")
    repo.git("merge", "-q", "--ff-only", f"origin/{BRANCH}")
    repo.git("push", "-q", "origin", "main")
    pr["state"] = "closed"
    main1 = repo.git("rev-parse", "HEAD")
    assert update_pr("--as-of", "2026-11-21") == 0
    assert "created pull request #2" in capsys.readouterr().out
    tip2 = branch_tip(repo.origin)
    assert repo.origin.git("rev-parse", f"{tip2}^") == main1
    post2 = stats.posterior(post, N, K)  # the one new day's evidence on top of the merged posterior
    assert f"{post.alpha:.6g} → {post2.alpha:.6g}" in fake_github.pulls[1]["body"]


def test_an_open_pr_is_updated_in_place_with_newer_evidence(repo, fake_github, capsys):
    assert update_pr("--as-of", "2026-11-20") == 0
    tip = branch_tip(repo.origin)
    assert update_pr("--as-of", "2026-11-22", "--config", "funnelcheck.yaml") == 0
    assert "updated pull request #1" in capsys.readouterr().out
    assert len(fake_github.pulls) == 1 and branch_tip(repo.origin) != tip
    assert repo.origin.git("rev-parse", f"{branch_tip(repo.origin)}^") == repo.git("rev-parse", "HEAD")
    assert "through 2026-11-22" in fake_github.pulls[0]["body"]


def test_nothing_to_update_makes_no_branch_and_no_pr(repo, fake_github, capsys):
    (repo.path / "obs.db").unlink()
    with sqlite3.connect(repo.path / "obs.db") as db:
        db.execute("CREATE TABLE counts (trials INTEGER, successes INTEGER)")
        db.execute("INSERT INTO counts VALUES (0, NULL)")
    assert update_pr("--as-of", "2026-11-20") == 0
    assert "nothing new (no registry file changed)" in capsys.readouterr().out
    assert branch_tip(repo.origin) is None and fake_github.writes() == []


def test_a_dirty_work_tree_or_a_head_off_the_default_branch_is_refused(repo, fake_github):
    from funnelcheck.findings import UsageError

    path = repo.path / "registry/parameters/add-to-cart-base.yaml"
    path.write_text(path.read_text().replace("0.5", "0.6"))
    with pytest.raises(UsageError, match="uncommitted changes"):
        update_pr("--as-of", "2026-11-20")
    repo.commit("local change")
    with pytest.raises(UsageError, match="builds on the tip of origin/main"):
        update_pr("--as-of", "2026-11-20")
    assert fake_github.writes() == []


def test_a_failing_pr_call_after_the_push_is_retried_by_the_next_run(repo, fake_github):
    from funnelcheck.github.client import GitHubError

    fake_github.fail_next("POST", r"/repos/acme/models/pulls", 422, body={"message": "Validation Failed"})
    with pytest.raises(GitHubError):
        update_pr("--as-of", "2026-11-20")
    assert branch_tip(repo.origin) is not None and fake_github.pulls == []
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""
    assert update_pr("--as-of", "2026-11-20") == 0
    assert len(fake_github.pulls) == 1
    assert json.loads(json.dumps(fake_github.pulls[0]))["head"]["ref"] == BRANCH


def test_a_registry_with_errors_gets_no_pull_request(repo, fake_github):
    from funnelcheck.commands._common import BlockingFindings

    repo.commit("break it", {"registry/parameters/add-to-cart-base.yaml": "id: add-to-cart-base\nedge: nowhere\n"
                                                                           "value: {mean: 0.5, stdev: 0.1}\n"})
    repo.git("push", "-q", "origin", "main")
    with pytest.raises(BlockingFindings, match="refused"):
        update_pr("--as-of", "2026-11-20")
    assert branch_tip(repo.origin) is None and fake_github.writes() == []


def test_a_failure_midway_leaves_the_work_tree_as_it_was(repo, fake_github, monkeypatch):
    import funnelcheck.pipeline.update as update

    (repo.path / "registry/priors.csv").write_text("param_id,mean,stdev\ncheckout-base,0.45,0.05\n")
    repo.commit("the pricing team's new estimate")
    repo.git("push", "-q", "origin", "main")

    def broken(*args, **kwargs):
        raise RuntimeError("the warehouse went away")

    monkeypatch.setattr(update, "plan_update", broken)
    with pytest.raises(RuntimeError):
        update_pr("--as-of", "2026-11-20")
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""  # the synced prior was put back
    assert branch_tip(repo.origin) is None and fake_github.writes() == []
