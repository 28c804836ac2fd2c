"""simulate → monitor on DuckDB (file and Parquet folder) and on the real PostgreSQL: resolved
evidence recovers every simulated rate, only the drifted parameter goes red, filter evidence
equals the seed's hand-written SQL, and reruns replace instead of doubling."""
from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from funnelcheck.load.registry import find_project
from funnelcheck.pipeline.observations import Window, collect
from funnelcheck.pipeline.project import open_pipeline
from funnelcheck.pipeline.store import monitor_results, open_store

from test_pipeline_support import (AS_OF, copy_to_postgres, make_project, pg_schema, run_cli_subprocess,  # noqa: F401
                                   simulate_into, simulated)

DRIFTED = {"signup-facebook": 0.40}


@pytest.fixture(scope="module", params=["duckdb-file", "parquet", "postgres"])
def project(request, simulated, tmp_path_factory):
    """A project reading the same simulated journeys from one backend."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "duckdb-file":
        make_project(root, "duckdb:///data.duckdb")
        simulate_into(root, str(root / "data.duckdb"))
    elif request.param == "parquet":
        make_project(root, f"duckdb:///{simulated}")
    else:
        url = request.getfixturevalue("pg_schema")
        make_project(root, url)
        copy_to_postgres(simulated, url)
    return root


def monitor_json(cli, root: Path, *extra) -> dict:
    r = cli("monitor", "--as-of", AS_OF, "--format", "json", *extra, cwd=root)
    assert r.code == 0, r
    return json.loads(r.out)


def test_resolved_evidence_recovers_every_simulated_rate(cli, project):
    result = monitor_json(cli, project)
    params = {p["id"]: p for p in result["parameters"]}
    assert len(params) == 31
    for pid, p in params.items():
        truth = DRIFTED.get(pid, p["prior"]["mean"])
        n, rate = p["observed"]["n"], p["observed"]["rate"]
        assert n > 0, pid
        se = math.sqrt(truth * (1 - truth) / n)
        assert abs(rate - truth) < 4 * se, (pid, rate, truth, n)
    assert {pid for pid, p in params.items() if p["status"] == "red"} == set(DRIFTED)
    assert result["summary"]["red"] == 1 and result["summary"]["error"] == 0


def test_every_backend_counts_the_same(cli, project, simulated, tmp_path):
    reference = make_project(tmp_path / "ref", f"duckdb:///{simulated}")
    want = {p["id"]: p["observed"] for p in monitor_json(cli, reference)["parameters"]}
    got = {p["id"]: p["observed"] for p in monitor_json(cli, project)["parameters"]}
    assert got == want


def _seed_query(p, model_contexts: dict) -> tuple[str, dict]:
    """The seed's hand-written per-parameter query: filters in WHERE, visited via HAVING COUNT(DISTINCT)."""
    where = ["j.edge_slug = :edge", "j.created_at >= :ws", "j.created_at < :we"]
    binds = {"edge": p.edge}
    for i, (key, value) in enumerate(p.context_filter):
        where.append(f"j.{model_contexts[key]} = :c{i}")
        binds[f"c{i}"] = value
    if p.visited_filter:
        nodes = sorted(p.visited_filter)
        names = ", ".join(f":n{i}" for i in range(len(nodes)))
        binds.update({f"n{i}": n for i, n in enumerate(nodes)})
        where.append(f"EXISTS (SELECT 1 FROM events e WHERE e.user_id = j.user_id AND e.session_id = j.session_id"
                     f" AND e.node_slug IN ({names}) AND e.created_at <= j.created_at"
                     f" HAVING COUNT(DISTINCT e.node_slug) = {len(nodes)})")
    return (f"SELECT COUNT(*) AS trials, SUM(j.converted) AS successes FROM user_journeys j "
            f"WHERE {' AND '.join(where)}", binds)


def test_filter_evidence_equals_the_seeds_sql(project, monkeypatch):
    monkeypatch.chdir(project)
    pipe = open_pipeline(find_project())
    registry = pipe.loaded.registry
    registry.parameters = {pid: replace(p, observation_source={"type": "events", "evidence": "filter"})
                           for pid, p in registry.parameters.items()}
    end = datetime(2026, 11, 29, tzinfo=timezone.utc)
    window = Window(datetime(2026, 11, 22, tzinfo=timezone.utc), end)
    params = sorted(registry.parameters.values(), key=lambda p: p.id)
    evidence = collect(registry, params, {p.id: window for p in params}, pipe.connections)
    contexts = pipe.config["observations"]["journeys"]["contexts"]
    for p in params:
        sql, binds = _seed_query(p, contexts)
        [(n, k)] = pipe.connections.query("data", sql, {**binds, "ws": window.start.replace(tzinfo=None),
                                                         "we": end.replace(tzinfo=None)}).rows
        assert (evidence[p.id].observed.n, evidence[p.id].observed.k) == (n, k or 0), p.id
    # filter mode counts the base on the whole mix: it sees more journeys than resolved mode does
    plain = open_pipeline(find_project()).loaded.registry
    resolved = collect(plain, list(plain.parameters.values()), {p: window for p in plain.parameters}, pipe.connections)
    assert evidence["signup-base"].observed.n > resolved["signup-base"].observed.n
    pipe.connections.dispose()


def test_rerun_replaces_the_days_rows(cli, project):
    first = monitor_json(cli, project)
    second = monitor_json(cli, project)
    assert [p["observed"] for p in first["parameters"]] == [p["observed"] for p in second["parameters"]]
    store = open_store("sqlite:///.funnelcheck/funnelcheck.db", project)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(monitor_results.c.param_id, sa.func.count())
                            .group_by(monitor_results.c.param_id)).all()
    assert len(rows) == 31 and all(count == 1 for _, count in rows)
    assert len(store.latest_run()) == 31
    store.close()


def test_change_since_the_last_run(cli, project):
    monitor_json(cli, project)
    r = cli("monitor", "--as-of", "2026-11-30", "--format", "json", cwd=project)
    later = {p["id"]: p for p in json.loads(r.out)["parameters"]}
    assert later["signup-facebook"]["previous"]["status"] == "red"
    text = cli("monitor", "--as-of", "2026-11-30", cwd=project).out
    rows = text.split("\n\n")[0].splitlines()[2:]
    assert len(rows) == 31 and any(r.startswith("  RED") for r in rows)
    assert not any(r.endswith(" new") for r in rows)  # every parameter had a run the day before


@pytest.mark.parametrize("fail_on,code", [("never", 0), ("red", 1), ("amber", 1)])
def test_fail_on(cli, project, fail_on, code):
    assert cli("monitor", "--as-of", AS_OF, "--fail-on", fail_on, cwd=project).code == code


def test_resolved_evidence_counts_each_row_once(cli, project, simulated):
    """Every journey row of an edge without an inline base counts for exactly one parameter."""
    import duckdb

    params = monitor_json(cli, project)["parameters"]
    con = duckdb.connect()
    totals = dict(con.execute(
        f"SELECT edge_slug, COUNT(*) FROM read_parquet('{simulated / 'user_journeys.parquet'}') "
        "WHERE created_at >= TIMESTAMP '2026-11-22' AND created_at < TIMESTAMP '2026-11-29' GROUP BY 1").fetchall())
    edges = {}
    for p in params:
        edge = p["reference"].split(".")[1]
        edges[edge] = edges.get(edge, 0) + p["observed"]["n"]
    inline = {"blog-to-homepage", "pricing-to-features"}
    checked = [e for e in edges if e not in inline]
    assert len(checked) == 10
    for edge in checked:
        assert edges[edge] == totals[edge], edge
    assert edges["pricing-to-features"] < totals["pricing-to-features"]  # the inline base keeps its share


def test_predictive_method_and_overrides(cli, project):
    cfg = project / "funnelcheck.yaml"
    original = cfg.read_text()
    cfg.write_text(original.replace("method: wald", "method: predictive").replace("min_sample_size: 100",
                                                                                  "min_sample_size: 5000"))
    try:
        params = {p["id"]: p for p in monitor_json(cli, project)["parameters"]}
    finally:
        cfg.write_text(original)
    from scipy.stats import betabinom, norm

    p = params["signup-facebook"]
    n, k, a, b = p["observed"]["n"], p["observed"]["k"], p["prior"]["alpha"], p["prior"]["beta"]
    tail = 2 * min(betabinom(n, a, b).cdf(k), betabinom(n, a, b).sf(k - 1))
    assert p["method"] == "predictive" and p["z"] == pytest.approx(norm.isf(tail / 2), rel=1e-6)
    assert all(q["status"] == "insufficient" for q in params.values() if q["observed"]["n"] < 5000)
