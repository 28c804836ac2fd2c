"""`funnelcheck simulate`: the simulated users follow the model (checked against the engine's
independent linear solve), the drift changes exactly its slot, and output is reproducible."""
from __future__ import annotations

import math

import duckdb
import numpy as np
import pytest

from funnelcheck.engine.run import run_whatif
from funnelcheck.load.registry import find_project, load_project

from test_pipeline_support import make_project, simulate_into


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("simulate"), "duckdb:///data")
    simulate_into(root, str(root / "data"), users=200_000, seed=3, drift=None)
    return root


def test_visits_match_the_engines_expected_visits(sim):
    """Cycles included: visits per user of each node equal the absorbing chain's expected visits."""
    registry = load_project(find_project(config=str(sim / "funnelcheck.yaml"))).registry
    expected = run_whatif(registry, "saas-signup", samples=10).to_json()["nodes"]
    con = duckdb.connect()
    counts = dict(con.execute(f"SELECT node_slug, COUNT(*) FROM read_parquet('{sim / 'data/events.parquet'}') "
                              "GROUP BY 1").fetchall())
    users = 200_000
    for node, info in expected.items():
        visits = info["visits"]
        got = counts.get(node, 0) / users
        # a node's visit count per user has variance at most about visits·(1 + visits): 5 standard errors
        assert abs(got - visits) < 5 * math.sqrt(max(visits * (1 + visits), 1e-9) / users) + 1e-9, (node, got, visits)


def test_every_visit_has_one_row_per_outgoing_edge(sim):
    con = duckdb.connect()
    j = f"read_parquet('{sim / 'data/user_journeys.parquet'}')"
    per_visit = con.execute(f"SELECT edge_slug, COUNT(*) FROM {j} GROUP BY 1").fetchall()
    counts = dict(per_visit)
    assert counts["view-features"] == counts["view-pricing"]  # both leave homepage
    assert counts["signup"] == counts["pricing-to-features"]  # both leave pricing
    taken = con.execute(f"SELECT user_id, created_at, SUM(converted) FROM {j} GROUP BY 1, 2 HAVING SUM(converted) > 1")
    assert taken.fetchall() == []  # at most one edge taken per visit


def test_drift_moves_only_its_slot(tmp_path):
    root = make_project(tmp_path, "duckdb:///data")
    simulate_into(root, str(root / "a.duckdb"), users=60_000, seed=5, drift=None)
    simulate_into(root, str(root / "b.duckdb"), users=60_000, seed=5, drift="e.signup.context(channel='facebook').p.mean=0.6")
    rate = "SELECT AVG(converted), COUNT(*) FROM user_journeys WHERE edge_slug = 'signup' AND channel = '{}'"
    a = duckdb.connect(str(root / "a.duckdb"), read_only=True)
    b = duckdb.connect(str(root / "b.duckdb"), read_only=True)
    (fb_a, _), (fb_b, n) = a.execute(rate.format("facebook")).fetchone(), b.execute(rate.format("facebook")).fetchone()
    assert abs(fb_a - 0.21) < 4 * math.sqrt(0.21 * 0.79 / n)
    assert abs(fb_b - 0.6) < 4 * math.sqrt(0.24 / n)
    # organic users never see the drift: identical draws, identical rows before signup
    q = "SELECT COUNT(*), SUM(converted) FROM user_journeys WHERE channel = 'organic' AND edge_slug = 'view-pricing'"
    assert a.execute(q).fetchone() == b.execute(q).fetchone()


def test_same_seed_same_tables(tmp_path):
    root = make_project(tmp_path, "duckdb:///data")
    for name in ("x", "y"):
        simulate_into(root, str(root / name), users=3000, seed=11, drift=None)
    con = duckdb.connect()
    q = "SELECT * FROM read_parquet('{}') ORDER BY ALL"
    for table in ("user_journeys", "events"):
        assert con.execute(q.format(root / "x" / f"{table}.parquet")).fetchall() == \
            con.execute(q.format(root / "y" / f"{table}.parquet")).fetchall()
    stamps = np.array(con.execute(f"SELECT MIN(created_at), MAX(created_at) FROM "
                                  f"read_parquet('{root / 'x/events.parquet'}')").fetchone(), dtype="datetime64[us]")
    assert stamps[0] >= np.datetime64("2026-11-01") and stamps[1] < np.datetime64("2026-11-30")
