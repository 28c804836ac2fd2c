"""A real HTTP server on 127.0.0.1 standing in for the GitHub REST API, recording every call.

It keeps issue comments and pull requests in memory, paginates lists with `Link` headers
like GitHub, checks the token, and can be told to fail: queued answers (5xx, rate limits)
or a read-only token (403 on every write, as a fork's pull request gets).
"""
from __future__ import annotations

import json
import re
import contextlib
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "test-token"


@dataclass
class Call:
    method: str
    path: str
    query: dict
    body: dict | None
    authorization: str | None


@dataclass
class FakeGitHub:
    url: str = ""
    repository: str = "acme/models"
    default_branch: str = "main"
    comments: dict[int, list[dict]] = field(default_factory=dict)  # PR number -> comments
    pulls: list[dict] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[str, str, int, dict, dict]] = field(default_factory=list)  # method, path regex, status, headers, body
    read_only: bool = False
    next_id: int = 1000
    login: str | None = None  # what GET /user answers; None: 403, as for a workflow's GITHUB_TOKEN

    def fail_next(self, method: str, path: str, status: int, headers: dict | None = None, body=None):
        """Answer the next matching call with this (`body` may be bytes: sent as is, not JSON)."""
        self.failures.append((method, path, status, headers or {}, {"message": "failure"} if body is None else body))

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PATCH")]

    def add_comments(self, pr: int, bodies: list[str], author: str = "github-actions[bot]") -> None:
        for body in bodies:
            self.next_id += 1
            self.comments.setdefault(pr, []).append(
                {"id": self.next_id, "body": body, "html_url": f"https://github.test/c/{self.next_id}",
                 "user": {"login": author}})

    # -- request handling -----------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, body: dict | None, auth: str | None) -> tuple[int, dict, object]:
        parts = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.calls.append(Call(method, parts.path, query, body, auth))
        for i, (m, pattern, status, headers, payload) in enumerate(self.failures):
            if m == method and re.fullmatch(pattern, parts.path):
                del self.failures[i]
                return status, headers, payload
        if auth != f"Bearer {TOKEN}":
            return 401, {}, {"message": "Bad credentials"}
        if self.read_only and method in ("POST", "PATCH"):
            return 403, {}, {"message": "Resource not accessible by integration"}
        repo = f"/repos/{self.repository}"
        if method == "GET" and parts.path == "/user":
            if self.login is None:
                return 403, {}, {"message": "Resource not accessible by integration"}
            return 200, {}, {"login": self.login}
        if method == "GET" and parts.path == repo:
            return 200, {}, {"full_name": self.repository, "default_branch": self.default_branch}
        m = re.fullmatch(rf"{repo}/issues/(\d+)/comments", parts.path)
        if m and method == "GET":
            return self._page(parts.path, query, self.comments.get(int(m.group(1)), []))
        if m and method == "POST":
            self.add_comments(int(m.group(1)), [body["body"]], self.login or "github-actions[bot]")
            return 201, {}, self.comments[int(m.group(1))][-1]
        m = re.fullmatch(rf"{repo}/issues/comments/(\d+)", parts.path)
        if m and method == "PATCH":
            for comment in (c for cs in self.comments.values() for c in cs):
                if comment["id"] == int(m.group(1)):
                    comment["body"] = body["body"]
                    return 200, {}, comment
            return 404, {}, {"message": "Not Found"}
        if parts.path == f"{repo}/pulls" and method == "GET":
            owner, _, branch = query.get("head", ":").partition(":")
            found = [p for p in self.pulls if p["state"] == query.get("state", "open")
                     and (not query.get("head") or (owner == self.repository.split("/")[0] and p["head"]["ref"] == branch))]
            return self._page(parts.path, query, found)
        if parts.path == f"{repo}/pulls" and method == "POST":
            if any(p["head"]["ref"] == body["head"] and p["state"] == "open" for p in self.pulls):
                return 422, {}, {"message": "Validation Failed",
                                 "errors": [{"message": f"A pull request already exists for {body['head']}."}]}
            number = len(self.pulls) + 1
            self.pulls.append({"number": number, "state": "open", "title": body["title"], "body": body["body"],
                               "head": {"ref": body["head"]}, "base": {"ref": body["base"]},
                               "html_url": f"https://github.test/pull/{number}"})
            return 201, {}, self.pulls[-1]
        m = re.fullmatch(rf"{repo}/pulls/(\d+)", parts.path)
        if m and method == "PATCH":
            pr = self.pulls[int(m.group(1)) - 1]
            pr.update({k: v for k, v in body.items() if k in ("title", "body")})
            if "base" in body:
                pr["base"] = {"ref": body["base"]}
            return 200, {}, pr
        return 404, {}, {"message": "Not Found"}

    def _page(self, path: str, query: dict, items: list) -> tuple[int, dict, object]:
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            rest = {k: v for k, v in query.items() if k != "page"}
            qs = "&".join(f"{k}={v}" for k, v in rest.items())
            headers["Link"] = (f'<{self.url}{path}?{qs}&page={page + 1}>; rel="next", '
                               f'<{self.url}{path}?{qs}&page={-(-len(items) // per_page)}>; rel="last"')
        return 200, headers, chunk


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        status, headers, payload = self.fake.handle(self.command, self.path, body, self.headers.get("Authorization"))
        raw = isinstance(payload, bytes)  # a queued answer that is not JSON (a proxy's HTML page)
        data = payload if raw else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if raw else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _serve

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_github():
    """A FakeGitHub serving on 127.0.0.1 for the length of one test."""
    fake = FakeGitHub()
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def github_env(fake_github, monkeypatch, tmp_path):  # noqa: F811
    """The environment a workflow step has, pointing at the fake API, in a fresh folder; the client's
    sleeps are recorded (the returned list), not slept."""
    from funnelcheck.github import client

    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", fake_github.repository)
    slept: list[float] = []
    monkeypatch.setattr(client, "_sleep", slept.append)
    monkeypatch.chdir(tmp_path)
    return slept


@contextlib.contextmanager
def silent_server():
    """A server on 127.0.0.1 that accepts connections and never answers; yields its URL. The accept
    loop is bounded by the context: it stops, and every connection is closed, on exit."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    accepted, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
