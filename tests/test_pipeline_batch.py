"""The batched `events` query against a row-by-row count in Python, on every backend.

One grouped query per (connection, window) computes every parameter's evidence: its cells are
split per edge only by the context keys and visited nodes that edge's parameters look at, the
visited flags packed into integers. Here the journeys are read back as plain rows and counted
one at a time, by filter (the seed's semantics) and by resolution, with no SQL at all.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from funnelcheck.load.registry import find_project
from funnelcheck.pipeline import observations
from funnelcheck.pipeline.connections import Connections
from funnelcheck.pipeline.observations import Window, collect
from funnelcheck.pipeline.project import open_pipeline
from funnelcheck.resolve import Resolver, source_nodes

from test_pipeline_support import copy_to_postgres, make_project, pg_schema, simulate_into  # noqa: F401

END = datetime(2026, 11, 29, tzinfo=timezone.utc)
WINDOW = Window(END - timedelta(days=7), END)
CONTEXTS = ("channel", "device", "utm_source", "browser")


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> Path:
    """A small simulated Parquet folder (no drift: only the counts matter here)."""
    root = make_project(tmp_path_factory.mktemp("sim"), "duckdb:///data")
    simulate_into(root, str(root / "data"), users=6000, seed=11, drift=None)
    return root / "data"


def _rows(parquet: Path, name: str) -> list[dict]:
    con = duckdb.connect()
    try:
        cursor = con.execute(f"SELECT * FROM read_parquet('{parquet / (name + '.parquet')}')")
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, r)) for r in cursor.fetchall()]
    finally:
        con.close()


def _to_sqlite(parquet: Path, path: Path) -> None:
    with sqlite3.connect(path) as db:
        for name in ("user_journeys", "events"):
            rows = _rows(parquet, name)
            columns = list(rows[0])
            db.execute(f"CREATE TABLE {name} ({', '.join(columns)})")
            stamp = [c == "created_at" for c in columns]
            db.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(columns))})",
                           [tuple(v.isoformat(sep=" ", timespec="microseconds") if s else v
                                  for v, s in zip(r.values(), stamp)) for r in rows])


@pytest.fixture(scope="module", params=["parquet", "duckdb-file", "sqlite", "postgres"])
def project(request, parquet, tmp_path_factory) -> Path:
    """The same journeys on one backend, every parameter observed through `events`."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "parquet":
        make_project(root, f"duckdb:///{parquet}")
    elif request.param == "duckdb-file":
        make_project(root, "duckdb:///data.duckdb")
        con = duckdb.connect(str(root / "data.duckdb"))
        for name in ("user_journeys", "events"):
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{parquet / (name + '.parquet')}')")
        con.close()
    elif request.param == "sqlite":
        make_project(root, "sqlite:///data.db")
        _to_sqlite(parquet, root / "data.db")
    else:
        url = request.getfixturevalue("pg_schema")
        make_project(root, url)
        copy_to_postgres(parquet, url)
    return root


def row_by_row(registry, parquet: Path, mode: str) -> dict[str, tuple[int, int]]:
    """(n, k) per parameter, one journey row at a time: visited = an event of the session on the
    node at or before the row's time; `filter` counts every parameter whose filters the row meets,
    `resolved` the one parameter its edge, visited state (with the source node) and context resolve to."""
    end, start = WINDOW.end.replace(tzinfo=None), WINDOW.start.replace(tzinfo=None)
    first: dict[tuple, datetime] = {}
    for v in _rows(parquet, "events"):
        key = (v["user_id"], v["session_id"], v["node_slug"])
        if v["created_at"] < end and (key not in first or v["created_at"] < first[key]):
            first[key] = v["created_at"]
    by_edge = registry.parameters_by_edge()
    nodes = {n for p in registry.parameters.values() for n in p.visited_filter}
    resolver = Resolver(registry)
    counts = {pid: [0, 0] for pid in registry.parameters}
    for j in _rows(parquet, "user_journeys"):
        if not start <= j["created_at"] < end or j["edge_slug"] not in by_edge:
            continue
        visited = frozenset(n for n in nodes if first.get((j["user_id"], j["session_id"], n), end) <= j["created_at"])
        context = {k: j[k] for k in CONTEXTS if j[k] is not None}
        if mode == "filter":
            hits = [p.id for p in by_edge[j["edge_slug"]]
                    if p.visited_filter <= visited and all(context.get(a) == b for a, b in p.context_filter)]
        else:
            slot = resolver.winner(j["edge_slug"], visited | source_nodes(registry, j["edge_slug"]), context)
            hits = [slot.id] if slot is not None and slot.id is not None else []
        for pid in hits:
            counts[pid][0] += 1
            counts[pid][1] += j["converted"]
    return {pid: (n, k) for pid, (n, k) in counts.items()}


def _evidence(project: Path, monkeypatch, mode: str) -> tuple[object, dict[str, tuple[int, int]]]:
    monkeypatch.chdir(project)
    pipe = open_pipeline(find_project())
    registry = pipe.loaded.registry
    registry.parameters = {pid: replace(p, observation_source={"type": "events", "evidence": mode})
                           for pid, p in registry.parameters.items()}
    params = sorted(registry.parameters.values(), key=lambda p: p.id)
    try:
        found = collect(registry, params, {p.id: WINDOW for p in params}, pipe.connections)
    finally:
        pipe.connections.dispose()
    assert all(e.error is None for e in found.values()), {k: e.error for k, e in found.items() if e.error}
    return registry, {pid: (e.observed.n, e.observed.k) for pid, e in found.items()}


@pytest.mark.parametrize("mode", ["filter", "resolved"])
@pytest.mark.parametrize("flag_bits", [30, 1])
def test_batched_counts_equal_a_row_by_row_count(project, parquet, monkeypatch, mode, flag_bits):
    """Whatever the backend and however the visited flags are packed (one node per integer too)."""
    monkeypatch.setattr(observations, "FLAG_BITS", flag_bits)
    registry, got = _evidence(project, monkeypatch, mode)
    want = row_by_row(registry, parquet, mode)
    assert got == want
    assert sum(n for n, _ in got.values()) > 3_000  # the window has data, and it was counted


def test_one_grouped_query_per_connection_and_window(parquet, tmp_path, monkeypatch):
    """Edges with different visited-node sets and context keys share one scan; a second window is a second one."""
    root = make_project(tmp_path, f"duckdb:///{parquet}")
    monkeypatch.chdir(root)
    pipe = open_pipeline(find_project())
    registry = pipe.loaded.registry
    registry.parameters = {pid: replace(p, observation_source={"type": "events"})
                           for pid, p in registry.parameters.items()}
    params = sorted(registry.parameters.values(), key=lambda p: p.id)
    assert len({frozenset(p.visited_filter) for p in params}) > 2 and len({p.edge for p in params}) > 5
    sql, cells = [], []
    real_query, real_assign = Connections.query, observations.assign
    monkeypatch.setattr(Connections, "query", lambda self, *a, **k: sql.append(a[1]) or real_query(self, *a, **k))
    monkeypatch.setattr(observations, "assign", lambda *a: cells.extend(a[3]) or real_assign(*a))
    earlier = Window(WINDOW.start - timedelta(days=7), WINDOW.start)
    windows = {p.id: WINDOW if i % 3 else earlier for i, p in enumerate(params)}
    found = collect(registry, params, windows, pipe.connections)
    pipe.connections.dispose()
    assert len(sql) == 2 and all(s.count(" FROM user_journeys ") == 1 for s in sql)
    assert all(e.error is None and e.observed.n > 0 for e in found.values())
    # a cell is split only by what its edge's parameters look at
    by_edge = registry.parameters_by_edge()
    for edge, context, visited, _, _ in cells:
        assert set(context) <= {k for p in by_edge[edge] for k, _ in p.context_filter}, (edge, context)
        assert visited <= {n for p in by_edge[edge] for n in p.visited_filter}, (edge, visited)
    assert any(context for _, context, _, _, _ in cells) and any(visited for _, _, visited, _, _ in cells)


def test_sql_sources_share_the_duckdb_connection_of_the_events_query(cli, parquet, tmp_path):
    """On a DuckDB file, a `sql` observation source (a `::` cast, a bound window named twice) and a
    `sql` prior source run on the same connection as the grouped query, in one monitor run."""
    root = make_project(tmp_path, "duckdb:///data.duckdb")
    con = duckdb.connect(str(root / "data.duckdb"))
    for name in ("user_journeys", "events"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{parquet / (name + '.parquet')}')")
    want = con.execute("SELECT COUNT(*), SUM(converted) FROM user_journeys WHERE edge_slug = 'signup' AND "
                       "created_at >= TIMESTAMP '2026-11-22' AND created_at < TIMESTAMP '2026-11-29'").fetchone()
    con.close()
    google = root / "registry/parameters/signup/signup-google.yaml"
    text = google.read_text()
    google.write_text(text[:text.index("observation_source:")] + (
        "observation_source:\n  type: sql\n  query: |\n"
        "    SELECT COUNT(*) AS trials, SUM(converted) AS successes FROM user_journeys\n"
        "    WHERE edge_slug = 'signup' AND created_at::date >= CAST(:window_start AS date) AND created_at >= :window_start\n"
        "      AND created_at < :window_end\n"
        "prior_source: {type: sql, connection: data, query: \"SELECT 0.31 AS mean, 0.05 AS stdev\"}\n"))
    r = cli("monitor", "--as-of", "2026-11-29", "--format", "json", cwd=root)
    assert r.code == 0, r
    params = {p["id"]: p for p in json.loads(r.out)["parameters"]}
    assert [p["message"] for p in params.values() if p["status"] == "error"] == []
    google = params["signup-google"]
    assert (google["observed"]["n"], google["observed"]["k"]) == want
    assert google["prior"]["mean"] == pytest.approx(0.31) and google["prior"]["source"] == "sql"
