"""A small GitHub REST client (standard library only) and the two things funnelcheck does with it.

- `upsert_comment`: the one sticky PR comment that carries the marker, updated in place.
- `upsert_pull_request`: the one open PR from a fixed branch, updated in place.

Retries: 5xx answers and timeouts back off exponentially; rate limits (403/429 with
`Retry-After`, or `x-ratelimit-remaining: 0` with `x-ratelimit-reset`) wait as GitHub asks.
All waiting together is capped by `max_wait`; past it the call fails with a clear message.
urllib is enough for a handful of JSON calls, so there is no extra dependency.
"""
from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, Iterator

from funnelcheck import __version__
from funnelcheck.findings import FunnelcheckError, UsageError

DEFAULT_API = "https://api.github.com"
BODY_LIMIT = 65_536  # GitHub's maximum length of an issue comment or PR body
RETRY_STATUSES = (500, 502, 503, 504)
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubError(FunnelcheckError):
    """The API refused or failed; the message says what to check."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class NoPermission(GitHubError):
    """403 that is not a rate limit: the token may not write here (a fork PR's read-only token)."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    data: object


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def check_repository(name: str | None) -> str:
    if not name:
        raise UsageError("GITHUB_REPOSITORY is not set (expected owner/name); pass --repo")
    if not _REPO.match(name):
        raise UsageError(f"'{name}' is not a repository name of the form owner/name")
    return name


def check_body(body: str) -> str:
    """GitHub refuses bodies over 65,536 characters; say so before sending one."""
    if len(body) > BODY_LIMIT:
        raise FunnelcheckError(f"the body is {len(body):,} characters; GitHub accepts at most {BODY_LIMIT:,} "
                               "(funnelcheck diff --format md keeps its comment under 60,000)")
    return body


class Client:
    """JSON over HTTPS to the REST API at `api_url`, with retries and one-line errors."""

    def __init__(self, token: str, api_url: str = DEFAULT_API, timeout: float = 30.0, max_wait: float = 120.0,
                 retries: int = 4, backoff: float = 1.0, sleep: Callable[[float], None] | None = None):
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.max_wait = max_wait
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep or _sleep
        self.waited = 0.0

    def _url(self, path: str, params: dict | None = None) -> str:
        url = path if path.startswith(self.api_url + "/") else self.api_url + path
        return url + ("?" + urllib.parse.urlencode(params) if params else "")

    def request(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> Response:
        url = self._url(path, params)
        data = json.dumps(body).encode() if body is not None else None
        attempt = 0
        while True:
            attempt += 1
            req = urllib.request.Request(url, data=data, method=method, headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": f"funnelcheck/{__version__}",
                **({"Content-Type": "application/json"} if data is not None else {}),
            })
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return Response(resp.status, _headers(resp.headers), _json(resp.read()))
            except urllib.error.HTTPError as err:
                res = Response(err.code, _headers(err.headers), _json(err.read()))
                wait = self._wait_for(res, attempt)
                if wait is None:
                    raise self._error(method, path, res) from None
            except (TimeoutError, socket.timeout, urllib.error.URLError, ConnectionError) as err:
                reason = getattr(err, "reason", err)
                if attempt > self.retries:
                    if isinstance(reason, (TimeoutError, socket.timeout)):
                        raise GitHubError(f"the GitHub API at {self.api_url} did not answer within "
                                          f"{self.timeout:g} s ({attempt} attempts)") from None
                    raise GitHubError(f"cannot reach the GitHub API at {self.api_url}: {reason}") from None
                wait = self.backoff * 2 ** (attempt - 1)
            self._pause(wait, method, path)

    def _pause(self, wait: float, method: str, path: str) -> None:
        if self.waited + wait > self.max_wait:
            raise GitHubError(f"gave up on {method} {path}: GitHub asks to wait {wait:.0f} s more, past the "
                              f"{self.max_wait:.0f} s funnelcheck waits in total (rate limit or outage); re-run later")
        self.waited += wait
        self.sleep(wait)

    def _wait_for(self, res: Response, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the answer is final."""
        if attempt > self.retries:
            return None
        if _rate_limited(res):
            if "retry-after" in res.headers:
                try:
                    return max(0.0, float(res.headers["retry-after"]))
                except ValueError:
                    return 60.0
            if res.headers.get("x-ratelimit-remaining") == "0":
                try:
                    return max(0.0, float(res.headers.get("x-ratelimit-reset", "0")) - time.time()) + 1.0
                except ValueError:
                    return 60.0
            return 60.0  # GitHub's advice when a secondary limit names no time
        if res.status in RETRY_STATUSES:
            return self.backoff * 2 ** (attempt - 1)
        return None

    def _error(self, method: str, path: str, res: Response) -> GitHubError:
        msg = _message(res)
        shown = path[len(self.api_url):] if path.startswith(self.api_url + "/") else path
        what = f"{method} {shown.split('?')[0]}"
        if _rate_limited(res):
            return GitHubError(f"GitHub's rate limit stopped {what} after {self.retries} retries ({msg}); re-run later",
                               res.status)
        if res.status == 401:
            return GitHubError(f"GitHub rejected the token (401 {msg}): check GITHUB_TOKEN", 401)
        if res.status == 403:
            return NoPermission(f"GitHub refused {what} (403 {msg}): the token lacks permission here "
                                "(a fork's pull request gets a read-only token)", 403)
        if res.status == 404:
            return GitHubError(f"GitHub found nothing at {what} (404): check GITHUB_REPOSITORY, the number, and "
                               "that the token can see the repository", 404)
        if res.status == 422:
            return GitHubError(f"GitHub could not process {what} (422): {msg}", 422)
        return GitHubError(f"GitHub answered {res.status} to {what}: {msg}", res.status)

    def paginate(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a list endpoint, following `Link: <...>; rel="next"` 100 at a time."""
        url: str | None = self._url(path, {**(params or {}), "per_page": 100})
        while url:
            res = self.request("GET", url)
            yield from res.data or []
            url = _next_link(res.headers.get("link", ""), self.api_url)


def _rate_limited(res: Response) -> bool:
    if res.status not in (403, 429):
        return False
    return (res.status == 429 or "retry-after" in res.headers or res.headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in _message(res).lower())


def _headers(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()} if headers else {}


def _json(raw: bytes):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"message": raw[:200].decode("utf-8", "replace")}


def _message(res: Response) -> str:
    data = res.data if isinstance(res.data, dict) else {}
    msg = str(data.get("message") or "no message")
    details = [e.get("message") or e.get("code") for e in data.get("errors", []) if isinstance(e, dict)]
    details = [str(d) for d in details if d]
    return msg + (": " + "; ".join(details) if details else "")


def _next_link(link: str, api_url: str) -> str | None:
    for part in link.split(","):
        m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if m and m.group(1).startswith(api_url + "/"):  # never send the token anywhere else
            return m.group(1)
    return None


@dataclass(frozen=True)
class Outcome:
    action: str  # created | updated | unchanged
    url: str | None
    number: int | None = None


def upsert_comment(client: Client, repository: str, pr: int, body: str, marker: str) -> Outcome:
    """Update the PR's comment that carries `marker`, or create it; never a second one."""
    body = check_body(body if marker in body else f"{marker}\n{body}")
    base = f"/repos/{repository}"
    for comment in client.paginate(f"{base}/issues/{pr}/comments"):
        if marker in (comment.get("body") or ""):
            if comment.get("body") == body:
                return Outcome("unchanged", comment.get("html_url"), comment.get("id"))
            res = client.request("PATCH", f"{base}/issues/comments/{comment['id']}", {"body": body})
            return Outcome("updated", res.data.get("html_url"), comment["id"])
    res = client.request("POST", f"{base}/issues/{pr}/comments", {"body": body})
    return Outcome("created", res.data.get("html_url"), res.data.get("id"))


def upsert_pull_request(client: Client, repository: str, branch: str, title: str, body: str,
                        base: str | None = None) -> Outcome:
    """Update the open PR whose head is `owner:branch`, or open one against `base` (default: the default branch)."""
    check_body(body)
    owner = repository.split("/")[0]
    path = f"/repos/{repository}/pulls"
    for pr in client.paginate(path, {"state": "open", "head": f"{owner}:{branch}"}):
        if (pr.get("head") or {}).get("ref") == branch:
            patch = {"title": title, "body": body, **({"base": base} if base else {})}
            res = client.request("PATCH", f"{path}/{pr['number']}", patch)
            return Outcome("updated", res.data.get("html_url"), pr["number"])
    if base is None:
        base = client.request("GET", f"/repos/{repository}").data.get("default_branch") or "main"
    res = client.request("POST", path, {"title": title, "head": branch, "base": base, "body": body})
    return Outcome("created", res.data.get("html_url"), res.data.get("number"))
