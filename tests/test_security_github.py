"""Issue 7, classes 2 and 3: the token stays with the API origin, every loop is bounded, answers
of the wrong shape are one-line errors, and the sticky comment is only ever our own."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fakegithub import TOKEN, fake_github, github_env, silent_server  # noqa: F401  (the fixtures)
from funnelcheck.github import client as github
from funnelcheck.render.markdown import MARKER

COMMENTS = r"/repos/acme/models/issues/7/comments"


@pytest.fixture
def env(github_env, tmp_path):  # noqa: F811
    (tmp_path / "body.md").write_text(f"{MARKER}\nnew impact\n")
    return github_env


@pytest.fixture
def recorder():
    """A second loopback server, on another port (another origin), that records every request's headers."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(dict(self.headers))
            data = b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PATCH = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def comment(cli, *extra):
    return cli("github", "comment", "--pr", "7", "--body-file", "body.md", *extra)


# -- the token stays home ------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_never_carries_the_token(fake_github, env, cli, recorder, status):  # noqa: F811
    url, seen = recorder
    fake_github.fail_next("GET", COMMENTS, status, {"Location": f"{url}/steal"}, {})
    res = comment(cli)
    assert res.code == 1 and res.err.count("\n") == 1 and "another origin" in res.err
    assert not any("Authorization" in h or "authorization" in h for h in seen)
    assert seen == []  # not followed at all
    assert TOKEN not in res.err + res.out
    assert fake_github.writes() == []


def test_a_redirect_within_the_api_origin_is_followed(fake_github, env, cli):  # noqa: F811
    fake_github.add_comments(7, [f"{MARKER}\nold"])
    fake_github.fail_next("GET", COMMENTS, 301, {"Location": f"{fake_github.url}{COMMENTS}?per_page=100"}, {})
    res = comment(cli)
    assert res.code == 0 and res.out.startswith("updated comment on #7"), res
    assert all(c.authorization == f"Bearer {TOKEN}" for c in fake_github.calls)


def test_credentials_in_the_api_url_are_refused_unechoed(fake_github, env, cli, monkeypatch):  # noqa: F811
    host = fake_github.url.split("//")[1]
    monkeypatch.setenv("GITHUB_API_URL", f"http://robot:s3cr3t-pass@{host}")
    res = comment(cli)
    assert res.code == 2 and res.err.count("\n") == 1 and "credentials" in res.err
    assert "s3cr3t-pass" not in res.err and "robot" not in res.err
    assert fake_github.calls == []
    monkeypatch.setenv("GITHUB_API_URL", f"ftp://{host}")
    assert comment(cli).code == 2


def test_a_request_to_another_origin_is_refused_before_sending():
    client = github.Client(TOKEN, "http://127.0.0.1:9")
    with pytest.raises(github.GitHubError, match="not the API's origin"):
        client.request("GET", "http://127.0.0.2:9/x")


# -- bounded loops -------------------------------------------------------------------------------

def test_a_self_referencing_next_link_ends_the_walk(fake_github, env, cli):  # noqa: F811
    first = f"{fake_github.url}{COMMENTS}?per_page=100"
    fake_github.fail_next("GET", COMMENTS, 200, {"Link": f'<{first}>; rel="next"'}, [])
    res = comment(cli)
    assert res.code == 0 and res.out.startswith("created comment on #7"), res
    assert len([c for c in fake_github.calls if c.method == "GET" and c.path == COMMENTS]) == 1


def test_a_two_page_cycle_ends_the_walk(fake_github, env, cli):  # noqa: F811
    first = f"{fake_github.url}{COMMENTS}?per_page=100"
    second = f"{first}&page=2"
    fake_github.fail_next("GET", COMMENTS, 200, {"Link": f'<{second}>; rel="next"'}, [])
    fake_github.fail_next("GET", COMMENTS, 200, {"Link": f'<{first}>; rel="next"'}, [])
    res = comment(cli)
    assert res.code == 0, res
    assert len([c for c in fake_github.calls if c.method == "GET" and c.path == COMMENTS]) == 2


def test_endless_pages_stop_at_the_cap(fake_github, env, cli):  # noqa: F811
    for page in range(2, github.MAX_PAGES + 3):
        nxt = f"{fake_github.url}{COMMENTS}?per_page=100&page={page}"
        fake_github.fail_next("GET", COMMENTS, 200, {"Link": f'<{nxt}>; rel="next"'}, [])
    res = comment(cli)
    assert res.code == 1 and f"more than {github.MAX_PAGES} pages" in res.err
    assert len([c for c in fake_github.calls if c.path == COMMENTS]) == github.MAX_PAGES


def test_a_slow_server_is_given_up_on_within_the_total_budget():
    """The old client spent timeout x attempts + backoff (165 s at the defaults): now all of it is capped."""
    with silent_server() as url:
        client = github.Client(TOKEN, url, timeout=1.0, max_wait=1.5, retries=4, backoff=0.1)
        start = time.monotonic()
        with pytest.raises(github.GitHubError):
            client.request("GET", "/repos/acme/models")
    assert time.monotonic() - start < 1.5 + 0.5
    assert client.spent + client.waited <= 1.5 + 0.1


def test_the_default_budget_is_the_documented_120_s():
    assert github.Client(TOKEN).max_wait == 120.0


# -- shapes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path,status,body,what", [
    ("GET", COMMENTS, 200, b"<html><body>Proxy login</body></html>", "not JSON"),
    ("GET", COMMENTS, 200, {"message": "an object"}, "an object where a JSON list"),
    ("GET", COMMENTS, 200, [1, 2], "where objects belong"),
    ("POST", COMMENTS, 201, [], "a list where a JSON object"),
    ("POST", COMMENTS, 201, {"html_url": "x"}, "without an id"),
    ("GET", "/user", 200, ["me"], "a list where a JSON object"),
])
def test_wrong_shaped_answers_are_one_line_errors(fake_github, env, cli, method, path, status, body, what):  # noqa: F811
    fake_github.fail_next(method, path, status, {}, body)
    res = comment(cli)
    assert res.code == 1 and res.err.count("\n") == 1 and what in res.err, res
    assert "Traceback" not in res.err


def test_a_listed_comment_without_an_id_is_an_error(fake_github, env, cli):  # noqa: F811
    fake_github.fail_next("GET", COMMENTS, 200, {}, [{"body": f"{MARKER}\nold", "user": {"login": "github-actions[bot]"}}])
    res = comment(cli)
    assert res.code == 1 and "without an id" in res.err and fake_github.writes() == []


def test_an_html_error_page_is_explained_in_one_line(fake_github, env, cli):  # noqa: F811
    fake_github.fail_next("GET", COMMENTS, 404, {}, b"<html>\n<h1>Not here</h1>\n</html>")
    res = comment(cli)
    assert res.code == 1 and res.err.count("\n") == 1 and "404" in res.err


# -- the sticky comment is ours only -------------------------------------------------------------

def test_someone_elses_comment_quoting_the_marker_is_never_edited(fake_github, env, cli):  # noqa: F811
    fake_github.add_comments(7, [f"look, the bot writes {MARKER} in its comments"], author="mallory")
    res = comment(cli)
    assert res.code == 0 and res.out.startswith("created comment on #7"), res
    assert fake_github.comments[7][0]["body"] == f"look, the bot writes {MARKER} in its comments"
    assert [c.method for c in fake_github.writes()] == ["POST"]
    assert fake_github.comments[7][1]["user"]["login"] == "github-actions[bot]"
    assert comment(cli).out.startswith("unchanged comment on #7")  # the rerun finds ours, not mallory's


def test_the_token_identity_comes_from_get_user(fake_github, env, cli):  # noqa: F811
    fake_github.login = "funnel-bot"  # a personal or app token that may call GET /user
    fake_github.add_comments(7, [f"{MARKER}\nby the actions bot"], author="github-actions[bot]")
    fake_github.add_comments(7, [f"{MARKER}\nours"], author="funnel-bot")
    res = comment(cli)
    assert res.code == 0 and res.out.startswith("updated comment on #7")
    assert [c["body"] for c in fake_github.comments[7]] == [f"{MARKER}\nby the actions bot", f"{MARKER}\nnew impact\n"]


def test_comment_author_overrides_the_identity(fake_github, env, cli):  # noqa: F811
    fake_github.add_comments(7, [f"{MARKER}\nold"], author="release-bot")
    res = comment(cli, "--comment-author", "release-bot")
    assert res.code == 0 and res.out.startswith("updated comment on #7")
    assert not [c for c in fake_github.calls if c.path == "/user"]
