"""A small GitHub REST client (standard library only) and the two things funnelcheck does with it.

- `upsert_comment`: the one sticky PR comment that carries the marker, updated in place.
- `upsert_pull_request`: the one open PR from a fixed branch, updated in place.

Rules (docs/security.md):
- The token goes to the API origin only: a redirect to another origin is refused, and a
  `Link: rel="next"` elsewhere is not followed.
- Every loop is bounded: at most `retries` retries per call (5xx, timeouts, rate limits as
  GitHub asks), at most MAX_PAGES pages per list (a page seen before ends the walk), and all
  time spent on GitHub — answers and waits together — at most `max_wait` (120 s) per command.
- An answer of the wrong shape (not JSON, a list for an object, a comment without `id`) is a
  one-line error (exit 1), as is an API error.
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
MAX_PAGES = 100  # 10,000 items at 100 a page
ACTIONS_BOT = "github-actions[bot]"  # who a workflow's GITHUB_TOKEN writes as
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


def check_api_url(url: str) -> str:
    """An http(s) API origin without credentials in it; the refusal never repeats them."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise UsageError("GITHUB_API_URL is not a valid URL") from None
    if parts.username is not None or parts.password is not None:
        shown = urllib.parse.urlunsplit((parts.scheme, "***@" + (parts.netloc.rpartition("@")[2]), parts.path, "", ""))
        raise UsageError(f"GITHUB_API_URL carries credentials ({shown}); refused: pass the token in GITHUB_TOKEN")
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError("GITHUB_API_URL must be an http(s) URL such as https://api.github.com")
    return url


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1  # matches no origin
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(parts.scheme)


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the API's origin: urllib would copy `Authorization` anywhere."""

    def __init__(self, origin: tuple):
        self.origin = origin

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urllib.parse.urljoin(req.full_url, newurl)
        if _origin(target) != self.origin:
            raise GitHubError(f"GitHub's answer redirected to another origin ({_origin(target)[1]}); not followed, "
                              "so the token stays with the API")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


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
        self.api_url = check_api_url(api_url).rstrip("/")
        self.timeout = timeout
        self.max_wait = max_wait
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep or _sleep
        self.waited = 0.0  # seconds slept between attempts
        self.spent = 0.0  # seconds spent waiting for answers
        self._opener = urllib.request.build_opener(_SameOriginRedirects(_origin(self.api_url)))

    def _left(self) -> float:
        return self.max_wait - self.waited - self.spent

    def _url(self, path: str, params: dict | None = None) -> str:
        url = path if "://" in path else self.api_url + path
        return url + ("?" + urllib.parse.urlencode(params) if params else "")

    def request(self, method: str, path: str, body: dict | None = None, params: dict | None = None,
                expect: type | None = None) -> Response:
        """One API call, retried as GitHub asks; `expect` (dict or list) is the JSON shape the answer must have."""
        url = self._url(path, params)
        if _origin(url) != _origin(self.api_url):
            raise GitHubError(f"refusing to send the token to {_origin(url)[1]}: not the API's origin")
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
            timeout = min(self.timeout, self._left())
            if timeout <= 0:
                raise GitHubError(f"gave up on {method} {self._shown(path)}: past the {self.max_wait:.0f} s "
                                  "funnelcheck spends on GitHub in total; re-run later")
            start = time.monotonic()
            try:
                try:
                    with self._opener.open(req, timeout=timeout) as resp:
                        return self._checked(method, path, Response(resp.status, _headers(resp.headers),
                                                                    _json(resp.read())), expect)
                finally:
                    self.spent += time.monotonic() - start
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
                                          f"{timeout:g} s ({attempt} attempts)") from None
                    raise GitHubError(f"cannot reach the GitHub API at {self.api_url}: {reason}") from None
                wait = self.backoff * 2 ** (attempt - 1)
            self._pause(wait, method, path)

    def _shown(self, path: str) -> str:
        shown = path[len(self.api_url):] if path.startswith(self.api_url + "/") else path
        return shown.split("?")[0]

    def _checked(self, method: str, path: str, res: Response, expect: type | None) -> Response:
        """A 2xx answer must be JSON, and of the expected shape."""
        if isinstance(res.data, _NotJSON) or (expect is not None and not isinstance(res.data, expect)):
            got = "text that is not JSON (a proxy's page?)" if isinstance(res.data, _NotJSON) else _shape(res.data)
            want = {dict: "a JSON object", list: "a JSON list"}.get(expect, "JSON")
            raise GitHubError(f"GitHub answered {method} {self._shown(path)} with {got} where {want} was expected")
        return res

    def _pause(self, wait: float, method: str, path: str) -> None:
        if wait > self._left():
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
        what = f"{method} {self._shown(path)}"
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
        """Every item (a JSON object) of a list endpoint, following `Link: <...>; rel="next"` 100 at a time.

        A next link seen before ends the walk; more than MAX_PAGES pages is an error."""
        url: str | None = self._url(path, {**(params or {}), "per_page": 100})
        seen: set[str] = set()
        while url and url not in seen:
            if len(seen) == MAX_PAGES:
                raise GitHubError(f"GET {self._shown(path)} has more than {MAX_PAGES} pages; stopped there")
            seen.add(url)
            res = self.request("GET", url, expect=list)
            for item in res.data:
                if not isinstance(item, dict):
                    raise GitHubError(f"GitHub listed {_shape(item)} in GET {self._shown(path)} where objects belong")
                yield item
            url = _next_link(res.headers.get("link", ""), self.api_url)

    def identity(self) -> str:
        """The login the token acts as: GET /user, else (a workflow's token may not call it) the Actions bot."""
        try:
            res = self.request("GET", "/user", expect=dict)
        except GitHubError as exc:
            if exc.status in (401, 403, 404):
                return ACTIONS_BOT
            raise
        login = res.data.get("login")
        if not isinstance(login, str) or not login:
            raise GitHubError("GitHub answered GET /user without a login")
        return login


def _rate_limited(res: Response) -> bool:
    if res.status not in (403, 429):
        return False
    return (res.status == 429 or "retry-after" in res.headers or res.headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in _message(res).lower())


def _headers(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()} if headers else {}


class _NotJSON(str):
    """An answer body that is not JSON (kept short, for error messages)."""


def _json(raw: bytes):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return _NotJSON(raw[:200].decode("utf-8", "replace"))


def _shape(value) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else f"a {type(value).__name__}"


def _message(res: Response) -> str:
    if isinstance(res.data, _NotJSON):
        return " ".join(res.data.split())[:120] or "no message"
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


def upsert_comment(client: Client, repository: str, pr: int, body: str, marker: str,
                   author: str | None = None) -> Outcome:
    """Update the PR's comment that carries `marker` *and* was written by `author` (default: the
    token's own identity), or create one; never a second one, never anyone else's."""
    body = check_body(body if marker in body else f"{marker}\n{body}")
    author = author or client.identity()
    base = f"/repos/{repository}"
    for comment in client.paginate(f"{base}/issues/{pr}/comments"):
        body_now = comment.get("body")
        if not isinstance(body_now, str) or marker not in body_now or _login(comment) != author:
            continue
        number = comment.get("id")
        if not isinstance(number, int) or isinstance(number, bool):
            raise GitHubError(f"GitHub listed a comment on #{pr} without an id")
        if body_now == body:
            return Outcome("unchanged", comment.get("html_url"), number)
        res = client.request("PATCH", f"{base}/issues/comments/{number}", {"body": body}, expect=dict)
        return Outcome("updated", res.data.get("html_url"), number)
    res = client.request("POST", f"{base}/issues/{pr}/comments", {"body": body}, expect=dict)
    if not isinstance(res.data.get("id"), int):
        raise GitHubError(f"GitHub answered the new comment on #{pr} without an id")
    return Outcome("created", res.data.get("html_url"), res.data["id"])


def _login(comment: dict) -> str | None:
    user = comment.get("user")
    return user.get("login") if isinstance(user, dict) else None


def upsert_pull_request(client: Client, repository: str, branch: str, title: str, body: str,
                        base: str | None = None) -> Outcome:
    """Update the open PR whose head is `owner:branch`, or open one against `base` (default: the default branch)."""
    check_body(body)
    owner = repository.split("/")[0]
    path = f"/repos/{repository}/pulls"
    for pr in client.paginate(path, {"state": "open", "head": f"{owner}:{branch}"}):
        if (pr.get("head") or {}).get("ref") == branch:
            if not isinstance(pr.get("number"), int):
                raise GitHubError(f"GitHub listed a pull request from {branch} without a number")
            patch = {"title": title, "body": body, **({"base": base} if base else {})}
            res = client.request("PATCH", f"{path}/{pr['number']}", patch, expect=dict)
            return Outcome("updated", res.data.get("html_url"), pr["number"])
    if base is None:
        base = client.request("GET", f"/repos/{repository}", expect=dict).data.get("default_branch") or "main"
    res = client.request("POST", path, {"title": title, "head": branch, "base": base, "body": body}, expect=dict)
    return Outcome("created", res.data.get("html_url"), res.data.get("number"))
