"""`funnelcheck serve` over real HTTP on 127.0.0.1: overrides equal `whatif --set`, bad requests are 400s."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from funnelcheck.load.registry import find_project, load_project
from funnelcheck.web.dashboard import Board, Dashboard, graph_panel
from funnelcheck.web.serve import MAX_BODY, DashboardApp, make_server
from tests.conftest import EXAMPLE, REPO

SAMPLES = 400


@pytest.fixture(scope="module")
def server():
    registry = load_project(find_project(registry=str(EXAMPLE))).registry
    panel = graph_panel(registry, "saas-signup", Board(), samples=SAMPLES, seed=3)
    dashboard = Dashboard("t", "now", [panel], Board(note="none"), None, SAMPLES, 3)
    httpd = make_server(DashboardApp(registry, dashboard), "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield registry, httpd.server_address[1], panel
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, resp
    finally:
        conn.close()


def post(port: int, payload, **kw):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, data, _ = request(port, "POST", "/api/whatif", body, **kw)
    return status, json.loads(data)


def test_the_page_is_served_with_its_policy(server):
    _, port, _ = server
    status, body, resp = request(port, "GET", "/")
    assert status == 200 and resp.getheader("Content-Type").startswith("text/html")
    html = body.decode()
    assert "connect-src &#x27;self&#x27;" in html and '"serve":true' in html
    assert request(port, "GET", "/etc/passwd")[0] == 404


def test_an_override_equals_whatif_set(server, cli):
    registry, port, panel = server
    ref = "e.signup.context(channel='google').p.mean"
    status, data = post(port, {"graph": "saas-signup", "overrides": {"e.signup.context(channel=google).p.mean": 0.41}})
    assert status == 200, data
    cli_result = cli("whatif", "saas-signup", "--registry", EXAMPLE, "--set", f"{ref}=0.41", "--samples", SAMPLES,
                     "--seed", 3, "--format", "json", cwd=REPO)
    expected = json.loads(cli_result.out)
    assert data["conversion"] == pytest.approx(expected["conversion"], abs=1e-12)
    assert data["conversion"]["point"] != pytest.approx(panel.result.conversion.point, abs=1e-6)
    assert data["applied"] == [{"reference": ref, "value": 0.41}]
    # What the page re-weights (segments at default weights) gives back the engine's point.
    weights = np.array([s["weight"] for s in data["segments"]])
    conv = np.array([s["conversion"] for s in data["segments"]])
    assert weights @ conv == pytest.approx(expected["conversion"]["point"], abs=1e-12)


@pytest.mark.parametrize("payload, says", [
    ({"graph": "saas-signup", "overrides": {"e.signup.p.mean": 1.5}}, "[0, 1]"),
    ({"graph": "saas-signup", "overrides": {"e.signup.p.mean": -0.1}}, "[0, 1]"),
    ({"graph": "saas-signup", "overrides": {"e.signup.p.mean": True}}, "[0, 1]"),
    ({"graph": "saas-signup", "overrides": {"e.signup.p.mean": "0.3"}}, "[0, 1]"),
    ({"graph": "saas-signup", "overrides": {"e.signup.p.stdev": 0.1}}, "offers no override"),
    ({"graph": "saas-signup", "overrides": {"e.signup.context(channel='facebook',device='mobile').p.mean": 0.1}},
     "offers no override"),
    ({"graph": "saas-signup", "overrides": {"e.signup.context(channel=).p.mean": 0.1}}, "not a reference"),
    ({"graph": "nope", "overrides": {}}, "unknown graph"),
    ({"graph": "saas-signup", "overrides": [1]}, "must be an object"),
    ({"graph": "saas-signup", "overrides": {}, "extra": 1}, "expected"),
    (b'{"graph": "saas-signup", "overrides": {"e.signup.p.mean": NaN}}', "not JSON"),
    (b"\xff\xfe", "not JSON"),
    ({"graph": "saas-signup", "overrides": {"e.signup.p.mean": 0.3, "e.signup.p.mean ": 0.4}}, "twice"),
])
def test_bad_overrides_are_400_with_a_message(server, payload, says):
    _, port, _ = server
    status, data = post(port, payload)
    assert status == 400 and says in data["error"], data


def test_an_infeasible_override_is_a_400_not_a_crash(server):
    _, port, _ = server
    # signup-base has stdev 0.05: a mean of 0.001 leaves no Beta distribution with that spread.
    status, data = post(port, {"graph": "saas-signup", "overrides": {"e.signup.p.mean": 0.001}})
    assert status == 400 and "stdev" in data["error"], data


def test_limits_and_origin_checks(server):
    _, port, _ = server
    big = b'{"graph": "' + b"x" * (MAX_BODY + 1) + b'"}'
    assert request(port, "POST", "/api/whatif", big)[0] == 413
    assert request(port, "POST", "/api/whatif", b"{}", {"Content-Type": "text/plain"})[0] == 415
    assert request(port, "POST", "/api/whatif", b"{}", {"Origin": "http://evil.example"})[0] == 403
    assert request(port, "GET", "/", headers={"Host": "evil.example"})[0] == 421
    assert request(port, "PUT", "/api/whatif", b"{}")[0] == 405


def test_a_stalled_client_is_dropped(server, monkeypatch):
    _, port, _ = server
    import socket

    from funnelcheck.web import serve as serve_module

    monkeypatch.setattr(serve_module.Handler, "timeout", 1.0)
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall(b"POST /api/whatif HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{" % port)
        started = time.monotonic()
        data = sock.recv(100)  # the server gives up on the missing 99 bytes and closes
        assert data == b"" or data.startswith(b"HTTP/1.")
        assert time.monotonic() - started < 8
    finally:
        sock.close()


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=40), inner, max_size=3),
                           max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["graph", "overrides", "x"]), json_values, max_size=3))
def test_any_json_body_gets_an_answer_never_a_crash(server, payload):
    _, port, _ = server
    status, data = post(port, payload)
    assert status in (200, 400) and (status == 200) == ("error" not in data)


def test_the_command_listens_on_loopback_only_and_prints_its_address(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "funnelcheck", "serve", "--port", "0", "--registry", str(EXAMPLE),
                             "--samples", "50", "--database", f"sqlite:///{tmp_path}/none.db"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving the dashboard at http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() is not None else "")
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        status, body, _ = request(port, "GET", "/")
        assert status == 200 and b"funnelcheck-data" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)
