"""`funnelcheck github comment|pr` against a real HTTP server on 127.0.0.1 that stands in for GitHub."""
from __future__ import annotations

import json
import time

import pytest

from fakegithub import TOKEN, fake_github, github_env, silent_server  # noqa: F401  (the fixtures)
from funnelcheck.github import client as github
from funnelcheck.render.markdown import MARKER


@pytest.fixture
def env(github_env):  # noqa: F811
    return github_env


def body_file(tmp_path, text: str, name: str = "body.md"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_rerun_updates_the_sticky_comment_among_many(fake_github, env, cli, tmp_path):  # noqa: F811
    fake_github.add_comments(7, [f"chatter {i}" for i in range(230)] + [f"{MARKER}\nold impact"]
                             + [f"more chatter {i}" for i in range(40)])
    before = len(fake_github.comments[7])
    res = cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, f"{MARKER}\nnew impact\n"))
    assert res.code == 0, res
    assert res.out.startswith("updated comment on #7: https://github.test/c/")
    gets = [c for c in fake_github.calls if c.method == "GET" and c.path != "/user"]
    assert [c.query.get("page", "1") for c in gets] == ["1", "2", "3"]
    assert all(c.query["per_page"] == "100" for c in gets)
    assert [(c.method, c.path) for c in fake_github.writes()] == [
        ("PATCH", f"/repos/acme/models/issues/comments/{fake_github.comments[7][230]['id']}")]
    assert len(fake_github.comments[7]) == before
    assert fake_github.comments[7][230]["body"] == f"{MARKER}\nnew impact\n"


def test_first_run_creates_then_updates_then_leaves_alone(fake_github, env, cli, tmp_path):  # noqa: F811
    f = body_file(tmp_path, "no marker in here\n")
    assert cli("github", "comment", "--pr", "3", "--body-file", f).out.startswith("created comment on #3")
    assert fake_github.comments[3][0]["body"] == f"{MARKER}\nno marker in here\n"  # the marker is added
    f = body_file(tmp_path, f"{MARKER}\nsecond run\n")
    assert cli("github", "comment", "--pr", "3", "--body-file", f).out.startswith("updated comment on #3")
    assert cli("github", "comment", "--pr", "3", "--body-file", f).out.startswith("unchanged comment on #3")
    assert len(fake_github.comments[3]) == 1
    assert [c.method for c in fake_github.writes()] == ["POST", "PATCH"]
    assert all(c.authorization == f"Bearer {TOKEN}" for c in fake_github.calls)


def test_pr_number_comes_from_the_event(fake_github, env, cli, tmp_path, monkeypatch):  # noqa: F811
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 12, "pull_request": {"number": 12}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    assert cli("github", "comment", "--body-file", body_file(tmp_path, "x")).code == 0
    assert list(fake_github.comments) == [12]
    monkeypatch.delenv("GITHUB_EVENT_PATH")
    res = cli("github", "comment", "--body-file", body_file(tmp_path, "x"))
    assert res.code == 2 and "--pr is required" in res.err


def test_second_scheduled_run_updates_the_same_pr(fake_github, env, cli, tmp_path):  # noqa: F811
    fake_github.default_branch = "trunk"
    args = ("github", "pr", "--branch", "funnelcheck/posterior-update", "--title", "Posterior update")
    res = cli(*args, "--body-file", body_file(tmp_path, "run 1"))
    assert res.code == 0 and res.out.startswith("created pull request #1 from funnelcheck/posterior-update")
    res = cli(*args, "--body-file", body_file(tmp_path, "run 2"))
    assert res.out.startswith("updated pull request #1")
    assert len(fake_github.pulls) == 1
    pr = fake_github.pulls[0]
    assert (pr["body"], pr["base"]["ref"], pr["head"]["ref"]) == ("run 2", "trunk", "funnelcheck/posterior-update")
    listing = [c for c in fake_github.calls if c.method == "GET" and c.path.endswith("/pulls")]
    assert listing[0].query == {"state": "open", "head": "acme:funnelcheck/posterior-update", "per_page": "100"}
    res = cli(*args, "--body-file", body_file(tmp_path, "run 3"), "--base", "release")
    assert fake_github.pulls[0]["base"]["ref"] == "release" and len(fake_github.pulls) == 1


def test_rate_limits_and_outages_are_retried(fake_github, env, cli, tmp_path):  # noqa: F811
    comments = r"/repos/acme/models/issues/7/comments"
    fake_github.fail_next("GET", comments, 429, {"Retry-After": "3"}, {"message": "Too many requests"})
    fake_github.fail_next("GET", comments, 403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 5)},
                          {"message": "API rate limit exceeded"})
    fake_github.fail_next("POST", comments, 502, {}, {"message": "Bad gateway"})
    res = cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, "hello"))
    assert res.code == 0, res
    assert len(fake_github.comments[7]) == 1
    assert env[0] == 3.0 and 4.0 <= env[1] <= 6.5 and env[2] == 1.0  # Retry-After, until reset (+1 s), backoff
    assert [c.method for c in fake_github.calls if c.path != "/user"] == ["GET", "GET", "GET", "POST", "POST"]


def test_rate_limit_beyond_the_cap_fails_clearly(fake_github, env, cli, tmp_path):  # noqa: F811
    fake_github.fail_next("GET", r".*/comments", 429, {"Retry-After": "3600"}, {"message": "slow down"})
    res = cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, "hello"))
    assert res.code == 1 and res.err.count("\n") == 1
    assert "GitHub asks to wait 3600 s more, past the 120 s funnelcheck waits" in res.err
    assert env == []


def test_persistent_5xx_gives_up(fake_github, env, cli, tmp_path):  # noqa: F811
    for _ in range(5):
        fake_github.fail_next("GET", r".*/comments", 503, {}, {"message": "unavailable"})
    res = cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, "hello"))
    assert res.code == 1 and "GitHub answered 503" in res.err
    assert env == [1.0, 2.0, 4.0, 8.0]


def test_read_only_token_degrades_to_the_step_summary(fake_github, env, cli, tmp_path, monkeypatch):  # noqa: F811
    fake_github.read_only = True
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    res = cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, f"{MARKER}\nimpact table\n"))
    assert res.code == 0, res
    assert res.out.startswith("::notice title=funnelcheck github::could not write to GitHub (GitHub refused POST")
    assert summary.read_text() == f"earlier step\n{MARKER}\nimpact table\n"
    assert fake_github.comments.get(7) is None


def test_no_permission_without_a_step_summary_is_an_error(fake_github, env, cli, tmp_path):  # noqa: F811
    fake_github.read_only = True
    res = cli("github", "pr", "--branch", "b", "--title", "t", "--body-file", body_file(tmp_path, "x"))
    assert res.code == 1 and "403 Resource not accessible by integration" in res.err
    assert "GITHUB_STEP_SUMMARY is not set" in res.err


@pytest.mark.parametrize("status, body, expected", [
    (401, {"message": "Bad credentials"}, "GitHub rejected the token (401 Bad credentials): check GITHUB_TOKEN"),
    (404, {"message": "Not Found"}, "GitHub found nothing at GET /repos/acme/models/issues/7/comments (404)"),
    (422, {"message": "Validation Failed", "errors": [{"message": "body is too long"}]},
     "GitHub could not process GET /repos/acme/models/issues/7/comments (422): Validation Failed: body is too long"),
])
def test_api_errors_are_explained_in_one_line(fake_github, env, cli, tmp_path, status, body, expected):  # noqa: F811
    fake_github.fail_next("GET", r".*/comments", status, {}, body)
    res = cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, "x"))
    assert res.code == 1 and expected in res.err and res.err.count("\n") == 1, res


def test_wrong_token_is_a_401(fake_github, env, cli, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    res = cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, "x"))
    assert res.code == 1 and "check GITHUB_TOKEN" in res.err


def test_settings_errors(fake_github, env, cli, tmp_path, monkeypatch):  # noqa: F811
    f = body_file(tmp_path, MARKER + "x" * (github.BODY_LIMIT + 1 - len(MARKER)))
    res = cli("github", "comment", "--pr", "7", "--body-file", f)
    assert res.code == 1 and "the body is 65,537 characters; GitHub accepts at most 65,536" in res.err
    assert fake_github.writes() == []
    res = cli("github", "comment", "--pr", "7", "--body-file", str(tmp_path / "missing.md"))
    assert res.code == 2 and "cannot read the body file" in res.err
    monkeypatch.setenv("GITHUB_REPOSITORY", "not-a-repo")
    res = cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, "x"))
    assert res.code == 2 and "owner/name" in res.err
    monkeypatch.delenv("GITHUB_REPOSITORY")
    assert cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, "x")).code == 2
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.delenv("GITHUB_TOKEN")
    res = cli("github", "comment", "--pr", "7", "--body-file", body_file(tmp_path, "x"))
    assert res.code == 1 and "GITHUB_TOKEN is not set" in res.err
    assert cli("github").code == 2


def test_links_to_other_hosts_are_not_followed(fake_github, env):  # noqa: F811
    assert github._next_link('<https://evil.test/steal?page=2>; rel="next"', fake_github.url) is None
    assert github._next_link(f'<{fake_github.url}/x?page=2>; rel="next", <{fake_github.url}/x?page=9>; rel="last"',
                             fake_github.url) == f"{fake_github.url}/x?page=2"


def test_a_silent_server_times_out():
    slept = []
    with silent_server() as url:
        client = github.Client(TOKEN, url, timeout=0.2, retries=1, sleep=slept.append)
        with pytest.raises(github.GitHubError, match=r"did not answer within 0.2 s \(2 attempts\)"):
            client.request("GET", "/repos/acme/models")
    assert slept == [1.0]
