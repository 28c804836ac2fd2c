"""One HTTP call for prior sources and alert channels: standard library, bounded, no redirects.

A redirect is refused, not followed: urllib would carry the Authorization header (a Sheets
token) to whatever host the answer names, and a webhook that moved should be reconfigured.
Errors come back as one line in `HttpFailure`, never with the URL's query (an API key) in it.
"""
from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from funnelcheck import __version__

TIMEOUT = 10.0
BODY_LIMIT = 1_000_000  # bytes read from an answer at most


class HttpFailure(Exception):
    """The call failed: unreachable, timed out, redirected, or answered with a status ≥ 300."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def shown(url: str) -> str:
    """The URL without query or credentials, fit for a message (`https://host/path`)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def call(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = TIMEOUT) -> Answer:
    """One request; a 2xx answer is returned, anything else raises HttpFailure with one line."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise HttpFailure(f"{shown(url) or url!r} is not an http(s) URL")
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"User-Agent": f"funnelcheck/{__version__}", **(headers or {})})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return Answer(resp.status, resp.read(BODY_LIMIT))
    except urllib.error.HTTPError as err:
        if 300 <= err.code < 400:
            raise HttpFailure(f"{shown(url)} answered a redirect ({err.code}) to "
                              f"{shown(err.headers.get('Location', '?'))}; redirects are not followed: "
                              "configure the final URL", err.code) from None
        detail = err.read(300).decode("utf-8", "replace").strip().splitlines()
        reason = f": {detail[0][:200]}" if detail else ""
        raise HttpFailure(f"{shown(url)} answered {err.code}{reason}", err.code) from None
    except (TimeoutError, socket.timeout):
        raise HttpFailure(f"{shown(url)} did not answer within {timeout:g} s") from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise HttpFailure(f"{shown(url)} did not answer within {timeout:g} s") from None
        raise HttpFailure(f"cannot reach {shown(url)}: {reason}") from None
    except (ConnectionError, OSError) as err:
        raise HttpFailure(f"cannot reach {shown(url)}: {err}") from None
