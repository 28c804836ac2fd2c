"""`funnelcheck serve`: the dashboard on 127.0.0.1, plus live `p.mean` overrides run by the engine.

The standard library's `http.server` serves it (docs/dashboard.md says why): two routes,
`GET /` (the page, built once at start) and `POST /api/whatif` (`{"graph": ID, "overrides":
{REFERENCE: VALUE}}` → the graph's panel data recomputed with those overrides, exactly as
`whatif --set REFERENCE=VALUE` computes it). Anything else is refused with a message.

Limits: bodies over MAX_BODY bytes are refused unread, a client that stalls is dropped after
TIMEOUT seconds, one engine run at a time, and at most one override per offered reference.
On a loopback address the Host header must name that address (no DNS rebinding), and a
POST must be `application/json` from the page's own origin (no cross-site form posts).
"""
from __future__ import annotations

import ipaddress
import json
import math
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from funnelcheck.engine.overrides import parse_override
from funnelcheck.findings import FunnelcheckError
from funnelcheck.model import Registry
from funnelcheck.reference import ReferenceError, format_reference, parse_reference
from funnelcheck.web.dashboard import Dashboard, graph_panel
from funnelcheck.web.page import panel_json, render_page

MAX_BODY = 64 * 1024
TIMEOUT = 10.0
MAX_REFERENCE = 1000


class BadRequest(Exception):
    """A request the server refuses: the message goes back to the page."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


class DashboardApp:
    """The served dashboard: the page, and the engine behind its override inputs."""

    def __init__(self, registry: Registry, dashboard: Dashboard):
        self.registry = registry
        self.dashboard = dashboard
        self.page = render_page(dashboard, serve=True).encode("utf-8")
        self.allowed = {p.id: {o.reference for o in p.overrides} for p in dashboard.graphs}
        self.engine = threading.Lock()

    def whatif(self, body: bytes) -> dict:
        """Recompute one graph's panel with the requested overrides (as `whatif --set`)."""
        try:
            request = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(request, dict) or set(request) - {"graph", "overrides"}:
            raise BadRequest('expected {"graph": ID, "overrides": {REFERENCE: VALUE, ...}}')
        graph, given = request.get("graph"), request.get("overrides", {})
        if not isinstance(graph, str) or graph not in self.allowed:
            raise BadRequest(f"unknown graph {graph!r} (graphs: {', '.join(sorted(self.allowed))})")
        if not isinstance(given, dict):
            raise BadRequest('"overrides" must be an object {REFERENCE: VALUE}')
        allowed = self.allowed[graph]
        if len(given) > len(allowed):
            raise BadRequest(f"{len(given)} overrides, but graph '{graph}' offers only {len(allowed)}")
        overrides, seen = [], set()
        for text, value in given.items():
            reference = self._reference(graph, text, allowed)
            if reference in seen:
                raise BadRequest(f"{reference} is overridden twice")
            seen.add(reference)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0.0 <= value <= 1.0:
                raise BadRequest(f"{reference}: the value must be a number in [0, 1], not {json.dumps(value)}")
            overrides.append(parse_override(f"{reference}={float(value)!r}"))
        d = self.dashboard
        with self.engine:
            try:
                panel = graph_panel(self.registry, graph, d.board, overrides, d.samples, d.seed)
            except FunnelcheckError as exc:
                raise BadRequest(str(exc)) from None
        return panel_json(panel)

    @staticmethod
    def _reference(graph: str, text: Any, allowed: set[str]) -> str:
        if not isinstance(text, str) or len(text) > MAX_REFERENCE:
            raise BadRequest("a reference must be a string of at most 1000 characters")
        try:
            reference = parse_reference(text)
        except ReferenceError as exc:
            raise BadRequest(f"{text!r} is not a reference: {exc}") from None
        canonical = format_reference(reference)
        if reference.field != "mean" or canonical not in allowed:
            raise BadRequest(f"{canonical}: graph '{graph}' offers no override for it "
                             f"(only the p.mean of the parameters it uses)")
        return canonical


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number in JSON")


class Handler(BaseHTTPRequestHandler):
    """Two routes; every other request gets a short plain-text refusal."""

    app: DashboardApp
    hosts: frozenset[str] | None  # Host values accepted (None: any, when bound to a non-loopback address)
    timeout = TIMEOUT
    server_version = "funnelcheck"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:  # quiet: the command prints the address once
        pass

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        if self.path.split("?", 1)[0] not in ("/", "/index.html"):
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
        self._send(HTTPStatus.OK, self.app.page, "text/html; charset=utf-8")

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        if self.path != "/api/whatif":
            return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        origin = self.headers.get("Origin")
        if origin is not None and self.hosts is not None and origin.split("//", 1)[-1] not in self.hosts:
            return self._json(HTTPStatus.FORBIDDEN, {"error": "cross-origin requests are refused"})
        if self.headers.get_content_type() != "application/json":
            return self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send application/json"})
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "a Content-Length is required"})
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"the body is limited to {MAX_BODY} bytes"})
        try:
            self._json(HTTPStatus.OK, self.app.whatif(self.rfile.read(length)))
        except BadRequest as exc:
            self._json(exc.status, {"error": str(exc)})

    def do_PUT(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n", "text/plain; charset=utf-8")

    do_DELETE = do_PATCH = do_PUT

    def _host_ok(self) -> bool:
        if self.hosts is None or self.headers.get("Host", "") in self.hosts:
            return True
        self._send(HTTPStatus.MISDIRECTED_REQUEST, b"unknown Host\n", "text/plain; charset=utf-8")
        return False

    def _json(self, status: HTTPStatus, data: dict) -> None:
        self._send(status, json.dumps(data, allow_nan=False).encode("utf-8"), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the tab was closed while the engine ran
            self.close_connection = True


def make_server(app: DashboardApp, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A threading HTTP server bound to (host, port); port 0 picks a free one. Call serve_forever()."""
    server = ThreadingHTTPServer((host, port), type("BoundHandler", (Handler,), {"app": app, "hosts": None}))
    server.daemon_threads = True
    bound = server.server_address[1]
    if _loopback(host):
        names = {host, "localhost", "127.0.0.1", "[::1]"}
        server.RequestHandlerClass.hosts = frozenset(f"{n}:{bound}" for n in names)
    return server


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
