"""Bad input to monitor / update / simulate: one clear line naming the file and field, no
traceback, the documented exit code, and nothing computed lost."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from funnelcheck.pipeline import PipelineError
from funnelcheck.pipeline.observations import journey_model

from test_pipeline_support import AS_OF, make_project, simulate_into


@pytest.fixture
def project(tmp_path) -> Path:
    root = make_project(tmp_path, "duckdb:///data.duckdb")
    simulate_into(root, str(root / "data.duckdb"), users=4000, drift=None)
    return root


def sql_parameter(root: Path, query: str, connection: str = "data", name: str = "signup-google") -> Path:
    """Give one parameter a `type: sql` source with `query`."""
    path = root / f"registry/parameters/signup/{name}.yaml"
    text = path.read_text()
    body = "\n".join("    " + line for line in query.strip().splitlines())
    path.write_text(text[:text.index("observation_source:")] +
                    f"observation_source:\n  type: sql\n  connection: {connection}\n  query: |\n{body}\n")
    return path


def checks(cli, root: Path) -> dict:
    r = cli("monitor", "--as-of", AS_OF, "--format", "json", cwd=root)
    assert r.code == 0 and "Traceback" not in r.err, r
    return {p["id"]: p for p in json.loads(r.out)["parameters"]}


@pytest.mark.parametrize("query,fragment", [
    ("SELECT 1 AS n, 0 AS k", "must return columns trials and successes"),
    ("SELECT 5 AS trials, 9 AS successes", "successes 9 > trials 5"),
    ("SELECT -3 AS trials, 0 AS successes", "negative counts"),
    ("SELECT 10 AS trials, NULL AS successes", "NULL"),
    ("SELECT COUNT(*) AS trials, SUM(converted) AS successes FROM no_such_table", "no_such_table"),
    ("SELECT COUNT(*) AS trials, SUM(no_such_column) AS successes FROM user_journeys", "no_such_column"),
])
def test_a_bad_query_marks_that_parameter_error_and_the_run_goes_on(cli, project, query, fragment):
    sql_parameter(project, query)
    result = checks(cli, project)
    bad = result["signup-google"]
    assert bad["status"] == "error" and fragment in bad["message"]
    assert bad["message"].startswith("registry/parameters/signup/signup-google.yaml:")
    assert "observation_source.query" in bad["message"] and "\n" not in bad["message"]
    assert sum(p["status"] != "error" for p in result.values()) == 30  # everything else was still judged


def test_an_empty_window_is_insufficient_not_an_error(cli, project):
    sql_parameter(project, "SELECT COUNT(*) AS trials, SUM(converted) AS successes FROM user_journeys WHERE 1 = 0")
    p = checks(cli, project)["signup-google"]
    assert p["status"] == "insufficient" and p["observed"]["n"] == 0


def test_sql_gets_the_window_bound(cli, project):
    sql_parameter(project, "SELECT COUNT(*) AS trials, SUM(converted) AS successes FROM user_journeys\n"
                           "WHERE edge_slug = 'signup' AND created_at >= :window_start AND created_at < :window_end")
    p = checks(cli, project)["signup-google"]
    con = duckdb.connect(str(project / "data.duckdb"), read_only=True)
    n, k = con.execute("SELECT COUNT(*), SUM(converted) FROM user_journeys WHERE edge_slug = 'signup' "
                       "AND created_at >= TIMESTAMP '2026-11-22' AND created_at < TIMESTAMP '2026-11-29'").fetchone()
    con.close()
    assert (p["observed"]["n"], p["observed"]["k"]) == (n, k)


def test_unknown_connection_and_unset_url_env(cli, project, monkeypatch):
    sql_parameter(project, "SELECT 1 AS trials, 1 AS successes", connection="nowhere")
    msg = checks(cli, project)["signup-google"]["message"]
    assert "connections.nowhere" in msg and "unknown connection" in msg
    cfg = project / "funnelcheck.yaml"
    cfg.write_text(cfg.read_text().replace('data: {url: "duckdb:///data.duckdb"}', "data: {url_env: FC_TEST_DATA_URL}"))
    monkeypatch.delenv("FC_TEST_DATA_URL", raising=False)
    result = checks(cli, project)
    assert all(p["status"] == "error" for p in result.values())
    assert "connections.data.url_env: environment variable FC_TEST_DATA_URL is not set" in result["signup-base"]["message"]


def test_an_unreachable_database_is_one_line_per_parameter(cli, project):
    cfg = project / "funnelcheck.yaml"
    cfg.write_text(cfg.read_text().replace('"duckdb:///data.duckdb"', '"postgresql+psycopg://nobody@127.0.0.1:1/none"'))
    result = checks(cli, project)
    assert all(p["status"] == "error" for p in result.values())
    assert "connection 'data'" in result["signup-base"]["message"] and "\n" not in result["signup-base"]["message"]


def test_an_injected_identifier_is_refused_not_quoted(cli, project):
    with pytest.raises(PipelineError, match=r"observations.journeys.table: .* is not an identifier"):
        journey_model({"observations": {"journeys": {"table": "user_journeys; DROP TABLE events", "edge": "e",
                                                     "converted": "c", "time": "t"}}})
    cfg = project / "funnelcheck.yaml"
    cfg.write_text(cfg.read_text().replace("table: user_journeys", 'table: "user_journeys; DROP TABLE events --"'))
    r = cli("monitor", "--as-of", AS_OF, cwd=project)
    assert r.code == 1 and r.err.startswith("funnelcheck monitor: error: funnelcheck.yaml:") and "Traceback" not in r.err
    con = duckdb.connect(str(project / "data.duckdb"), read_only=True)
    assert con.execute("SELECT COUNT(*) FROM events").fetchone()[0] > 0
    con.close()


@pytest.mark.parametrize("as_of", ["2026-13-01", "yesterday", "2026/11/29"])
def test_a_malformed_as_of_is_bad_usage(cli, project, as_of):
    r = cli("monitor", "--as-of", as_of, cwd=project)
    assert r.code == 2 and f"--as-of {as_of!r}" in r.err and r.err.count("\n") == 1


def test_an_unreachable_store_still_prints_the_results(cli, project):
    cfg = project / "funnelcheck.yaml"
    cfg.write_text(cfg.read_text().replace('database: "sqlite:///.funnelcheck/funnelcheck.db"',
                                           'database: "postgresql+psycopg://nobody@127.0.0.1:1/none"'))
    r = cli("monitor", "--as-of", AS_OF, "--format", "json", cwd=project)
    assert r.code == 1 and "Traceback" not in r.err
    data = json.loads(r.out)
    assert len(data["parameters"]) == 31 and data["stored"] is False
    assert "results not stored" in r.err


def test_a_locked_duckdb_file(cli, project):
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); time.sleep(60)", str(project / "data.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = checks(cli, project)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    msg = result["signup-base"]["message"]
    assert result["signup-base"]["status"] == "error" and "locked by another process" in msg


def test_a_missing_extra_names_the_extra(cli, project, monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # as if not installed
    r = cli("monitor", cwd=project)
    assert r.code == 2 and "pip install 'funnelcheck[pipeline]'" in r.err


def test_simulate_bad_drift_and_graph(cli, project):
    r = cli("simulate", "saas-signup", "--users", "10", "--out", "x.duckdb", "--drift", "e.nope.p.mean=0.3", cwd=project)
    assert r.code == 2 and "--drift" in r.err and "no edge 'nope'" in r.err
    r = cli("simulate", "nope", "--users", "10", "--out", "x.duckdb", cwd=project)
    assert r.code == 2 and "unknown graph 'nope'" in r.err
