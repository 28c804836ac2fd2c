"""DuckDB queries run without SQLAlchemy (pipeline/connections.py): URLs read and `:name` parameters
bound exactly as SQLAlchemy reads and binds them."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import make_url

from funnelcheck.pipeline.connections import Connections, duckdb_target, resolve_url

from test_pipeline_support import simulated  # noqa: F401  (a fixture)

names = st.text(alphabet="abcxyz_-. 0123456789%", min_size=1, max_size=12)
settings = st.dictionaries(st.sampled_from(["threads", "memory_limit", "access_mode"]),
                           st.text(alphabet="abc019", min_size=1, max_size=4), max_size=3)


@given(st.one_of(st.just(""), st.just(":memory:"), names, names.map(lambda n: f"/abs/{n}"),
                 st.tuples(names, names).map("/".join)), settings)
def test_a_duckdb_url_is_read_as_sqlalchemy_reads_it(tmp_path_factory, database, query):
    base = Path("/nonexistent-base")
    url = "duckdb:///" + database + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    ours = duckdb_target(url, base)
    parsed, folder = resolve_url(url, base)
    assert ours is not None
    assert ours == (parsed.database or ":memory:", dict(parsed.query), folder)


@pytest.mark.parametrize("url", ["duckdb://host/x.db", "postgresql://u@h/db", "sqlite:///x.db", "duckdb+x:///a.db",
                                 "duckdb:///a.db?threads=1&threads=2"])
def test_other_urls_are_left_to_sqlalchemy(url):
    assert duckdb_target(url, Path(".")) is None
    make_url(url)  # and SQLAlchemy can read each of them


def test_a_folder_becomes_views_in_memory(tmp_path):
    (tmp_path / "data").mkdir()
    assert duckdb_target("duckdb:///data", tmp_path) == (":memory:", {}, tmp_path / "data")


def test_parameters_bind_as_sqlalchemy_binds_them(tmp_path):
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t (name VARCHAR, seen TIMESTAMPTZ, n INTEGER)")
    con.execute("INSERT INTO t VALUES ('a:b', '2026-11-01 10:00:00+00', 1), ('c', '2026-11-02 10:00:00+00', 2), "
                "('a', '2026-11-03 10:00:00+00', 3)")
    con.close()
    sql = ("SELECT name, n::INTEGER AS n, '\\:literal' AS lit FROM t WHERE seen >= :start AND seen < :end "
           "AND (name = :who OR name = 'a:b') ORDER BY n")
    binds = {"start": datetime(2026, 11, 1, tzinfo=timezone.utc), "end": datetime(2026, 11, 3, tzinfo=timezone.utc),
             "who": "c", "unused": 5}
    got = Connections({"w": {"url": f"duckdb:///{db}"}}, tmp_path).query("w", sql, binds)
    # The same statement compiled by SQLAlchemy, run on DuckDB positionally.
    from sqlalchemy.engine import default

    compiled = text(sql).compile(dialect=default.DefaultDialect(paramstyle="numeric_dollar"))
    params = compiled.construct_params({k: v for k, v in binds.items() if k != "unused"})
    con = duckdb.connect(str(db), read_only=True)
    expected = con.execute(compiled.string, [params[k] for k in compiled.positiontup]).fetchall()
    assert got.rows == expected == [("a:b", 1, ":literal"), ("c", 2, ":literal")]
    assert got.columns == ["name", "n", "lit"]


def test_a_parameter_without_a_value_is_one_clear_error(tmp_path):
    from funnelcheck.pipeline import PipelineError

    with pytest.raises(PipelineError, match=":missing"):
        Connections({"m": {"url": "duckdb:///:memory:"}}, tmp_path).query("m", "SELECT :missing AS x", {})


def test_monitor_queries_duckdb_before_sqlalchemy_is_loaded_and_gets_the_same_result(tmp_path, simulated):
    """The overlap is real (the query starts with SQLAlchemy not yet imported) and changes nothing."""
    import json
    import subprocess
    import sys

    from test_pipeline_support import AS_OF, REPO, make_project

    root = make_project(tmp_path / "p", f"duckdb:///{simulated}")
    probe = (
        "import sys, json\n"
        "from funnelcheck.pipeline import connections as c\n"
        "seen = []\n"
        "query = c.Connections.query\n"
        "def spy(self, *a, **k):\n"
        "    seen.append('sqlalchemy' in sys.modules)\n"
        "    return query(self, *a, **k)\n"
        "c.Connections.query = spy\n"
        "if sys.argv[1] == 'preloaded':\n"
        "    import sqlalchemy\n"
        "from funnelcheck.cli import main\n"
        f"rc = main(['monitor', '--as-of', '{AS_OF}', '--format', 'json', '--no-alerts'])\n"
        "print('SEEN:' + json.dumps(seen))\n")
    outputs = {}
    for mode in ("plain", "preloaded"):
        done = subprocess.run([sys.executable, "-c", probe, mode], cwd=root, capture_output=True, text=True,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path)},
                              timeout=300)
        lines = done.stdout.splitlines()
        seen = json.loads(next(line for line in lines if line.startswith("SEEN:"))[5:])
        assert seen and all(s == (mode == "preloaded") for s in seen), (mode, seen, done.stderr)
        result = json.loads("\n".join(line for line in lines if not line.startswith("SEEN:")))
        outputs[mode] = [{k: v for k, v in p.items() if k not in ("previous_z", "previous_status", "change")}
                         for p in result["parameters"]]
        assert result["revision"] is None or len(result["revision"]) == 40
    assert outputs["plain"] == outputs["preloaded"]
    assert any(p["status"] == "red" for p in outputs["plain"])
