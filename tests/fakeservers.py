"""Real HTTP servers on 127.0.0.1 standing in for Google Sheets, Slack and alert webhooks.

`FakeSheets` keeps cells per (spreadsheet, range) and answers values.get / values.update like
API v4 (the tests check the path, the auth and valueInputOption). `FakeHooks` records every
POST and answers what it is told: 200, 500, a redirect, or a hang (bounded by the client's
timeout). Both stop at the end of the test.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


@dataclass
class FakeSheets:
    url: str = ""
    cells: dict = field(default_factory=dict)  # (sheet id, range) -> list of rows
    requests: list[Request] = field(default_factory=list)
    down: bool = False

    def handle(self, req: Request) -> tuple[int, dict, bytes]:
        parts = req.path.split("/")  # /v4/spreadsheets/ID/values/RANGE
        if self.down:
            return 503, {}, b'{"error": {"message": "backend unavailable"}}'
        if len(parts) != 6 or parts[1:3] != ["v4", "spreadsheets"] or parts[4] != "values":
            return 404, {}, b'{"error": {"message": "not found"}}'
        key = (parts[3], unquote(parts[5]))
        if req.method == "GET":
            if key not in self.cells:
                return 400, {}, b'{"error": {"message": "Unable to parse range"}}'
            return 200, {}, json.dumps({"range": key[1], "majorDimension": "ROWS", "values": self.cells[key]}).encode()
        if req.method == "PUT":
            if req.query.get("valueInputOption") != "RAW" or not req.headers.get("authorization", "").startswith("Bearer "):
                return 400, {}, b'{"error": {"message": "bad update"}}'
            data = json.loads(req.body)
            rows = data["values"]
            self.cells[key] = [[v] for v in rows[0]] if data.get("majorDimension") == "COLUMNS" else rows
            return 200, {}, json.dumps({"updatedCells": 2}).encode()
        return 405, {}, b"{}"


@dataclass
class FakeHooks:
    """A webhook receiver: `answers` is a queue of 'ok' | 500 | 'redirect' | 'hang'; empty means ok.
    It also serves `files` on GET."""

    url: str = ""
    received: list[Request] = field(default_factory=list)
    answers: list = field(default_factory=list)
    hang_seconds: float = 3.0

    files: dict = field(default_factory=dict)  # path -> bytes served on GET (a CSV prior at a URL)

    def handle(self, req: Request) -> tuple[int, dict, bytes]:
        if req.method == "GET" and req.path in self.files:
            return 200, {"Content-Type": "text/csv"}, self.files[req.path]
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "hang":
            time.sleep(self.hang_seconds)
            return 200, {}, b"late"
        if answer == "redirect":
            return 302, {"Location": "http://127.0.0.1:9/elsewhere"}, b""
        if isinstance(answer, int):
            return answer, {}, b"server error"
        self.received.append(req)
        return 200, {}, b"ok"


def serve(fake) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _do(self):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            req = Request(self.command, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                          {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length) if length else b"")
            if isinstance(fake, FakeSheets):
                fake.requests.append(req)
            status, headers, body = fake.handle(req)
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a hang test)

        do_GET = do_POST = do_PUT = _do

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


def _served(fake):
    """`fake` served on 127.0.0.1 for one test, shut down after it."""
    server = serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def sheets():
    yield from _served(FakeSheets())


@pytest.fixture
def hooks():
    yield from _served(FakeHooks())
