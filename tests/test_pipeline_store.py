"""The persistence database on SQLite and the real PostgreSQL: schema with a version, one row per
parameter per run date (upsert), history queries, and two monitors at once leaving no duplicate."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from funnelcheck.pipeline.result import MonitorResult, Observed, ParameterCheck, PriorUsed
from funnelcheck.pipeline.store import (SCHEMA_VERSION, StoreError, monitor_results, open_store, parameter_values,
                                        schema_version)

from conftest import REPO
from test_pipeline_support import AS_OF, make_project, pg_url, run_cli_subprocess, simulate_into  # noqa: F401


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state/fc.db"
    return request.getfixturevalue("pg_url")


def result(day: date, z: float, status: str = "green", ids=("a", "b")) -> MonitorResult:
    checks = [ParameterCheck(pid, f"e.{pid}.p.mean", status, "m", PriorUsed(0.3, 0.05, 24.9, 58.1),
                             Observed(200, 60 + i), z + i) for i, pid in enumerate(ids)]
    return MonitorResult(datetime(day.year, day.month, day.day, 6, tzinfo=timezone.utc), day, checks, "abc123")


def test_schema_is_created_once_with_a_version(store_url, tmp_path):
    store = open_store(store_url, tmp_path)
    store.close()
    store = open_store(store_url, tmp_path)  # a second open finds the schema and keeps it
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(schema_version.c.version)).all() == [(SCHEMA_VERSION,)]
    store.close()


def test_a_rerun_replaces_the_days_rows(store_url, tmp_path):
    store = open_store(store_url, tmp_path)
    store.write_results(result(date(2026, 11, 28), 1.0))
    store.write_results(result(date(2026, 11, 28), 2.5, "amber"))
    rows = store.latest_run()
    assert [(r["param_id"], r["z"], r["status"]) for r in rows] == [("a", 2.5, "amber"), ("b", 3.5, "amber")]
    assert rows[0]["run_date"] == date(2026, 11, 28) and rows[0]["revision"] == "abc123"
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(monitor_results)).scalar() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(parameter_values)).scalar() == 2
    store.close()


def test_history_queries(store_url, tmp_path):
    store = open_store(store_url, tmp_path)
    for day in range(1, 6):
        store.write_results(result(date(2026, 11, day), float(day)))
    assert store.z_history("a", limit=3) == [(date(2026, 11, 3), 3.0), (date(2026, 11, 4), 4.0), (date(2026, 11, 5), 5.0)]
    assert store.previous_results(date(2026, 11, 4))["b"]["z"] == 4.0
    assert store.run_dates()[0] == date(2026, 11, 5)
    store.close()


def test_a_newer_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/fc.db"
    store = open_store(url, tmp_path)
    with store.engine.begin() as conn:
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="upgrade funnelcheck"):
        open_store(url, tmp_path)


def test_an_unreachable_store_is_one_line(tmp_path):
    with pytest.raises(StoreError) as info:
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path)
    assert "\n" not in str(info.value) and "***" not in str(info.value)


def test_two_monitors_at_once_on_postgres_leave_no_duplicate(pg_url, tmp_path):
    root = make_project(tmp_path, "duckdb:///data.duckdb", store=pg_url)
    simulate_into(root, str(root / "data.duckdb"), users=5000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "funnelcheck", "monitor", "--as-of", AS_OF, "--format", "json"],
                              cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(json.loads(out)["stored"] for out, _ in outs)
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        counts = conn.execute(sa.select(monitor_results.c.param_id, sa.func.count())
                              .group_by(monitor_results.c.param_id)).all()
    engine.dispose()
    assert len(counts) == 31 and {c for _, c in counts} == {1}
    again = run_cli_subprocess("monitor", "--as-of", AS_OF, "--format", "json", cwd=root)
    assert again.returncode == 0 and json.loads(again.stdout)["stored"]
