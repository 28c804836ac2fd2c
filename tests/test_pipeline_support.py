"""Shared pieces of the pipeline tests: a project with simulated data on DuckDB or PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 (trust auth, database `test`). Each test gets its own schema,
so parallel runs never clash. Under CI=true an unreachable server fails the test instead of
skipping it.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import EXAMPLE, REPO

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DRIFT = "e.signup.context(channel='facebook').p.mean=0.40"
AS_OF = "2026-11-29"


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _fresh_schema():
    why = pg_available()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required under CI=true: {why}")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {why}")
    import psycopg

    schema = f"fc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    yield from _fresh_schema()


def config_text(url: str, store: str = "sqlite:///.funnelcheck/funnelcheck.db") -> str:
    return f"""\
registry: registry
database: "{store}"
connections:
  data: {{url: "{url}"}}
observations:
  connection: data
  journeys: {{table: user_journeys, edge: edge_slug, converted: converted, time: created_at,
             session: [user_id, session_id],
             contexts: {{channel: channel, device: device, utm_source: utm_source, browser: browser}}}}
  visits: {{table: events, node: node_slug, time: created_at, session: [user_id, session_id]}}
model_fit: {{method: wald, thresholds: {{amber: 2, red: 3}}, min_sample_size: 100}}
"""


def make_project(root: Path, data_url: str, store: str = "sqlite:///.funnelcheck/funnelcheck.db") -> Path:
    """The example registry, every parameter observed through `events`, and a funnelcheck.yaml."""
    shutil.copytree(EXAMPLE, root / "registry")
    google = root / "registry/parameters/signup/signup-google.yaml"
    text = google.read_text()
    google.write_text(text[:text.index("observation_source:")] + "observation_source: {type: events}\n")
    (root / "funnelcheck.yaml").write_text(config_text(data_url, store))
    return root


def simulate_into(root: Path, out: str, users: int = 120_000, seed: int = 7, drift: str | None = DRIFT) -> None:
    """`funnelcheck simulate` in-process, four weeks ending at AS_OF."""
    from funnelcheck.cli import main

    argv = ["simulate", "saas-signup", "--users", str(users), "--out", out, "--start", "2026-11-01",
            "--days", "28", "--seed", str(seed), "--config", str(root / "funnelcheck.yaml")]
    if drift:
        argv += ["--drift", drift]
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(argv) == 0
    finally:
        os.chdir(cwd)


def copy_to_postgres(parquet_dir: Path, url: str) -> None:
    """Load the simulated Parquet tables into PostgreSQL (COPY of CSV)."""
    import psycopg
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = url.split("search_path%3D")[1]
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        conn.execute("CREATE TABLE user_journeys (user_id bigint, session_id bigint, edge_slug text, converted int,"
                     " created_at timestamp, channel text, device text, utm_source text, browser text)")
        conn.execute("CREATE TABLE events (user_id bigint, session_id bigint, node_slug text, created_at timestamp)")
        for name in ("user_journeys", "events"):
            table = pq.read_table(parquet_dir / f"{name}.parquet")
            buf = io.BytesIO()
            pacsv.write_csv(table, buf)
            cols = ", ".join(table.column_names)
            with conn.cursor().copy(f"COPY {name} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                copy.write(buf.getvalue())
        conn.execute("CREATE INDEX ON events (user_id, session_id)")
        conn.execute("ANALYZE user_journeys")
        conn.execute("ANALYZE events")


def run_cli_subprocess(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `python -m funnelcheck`, for what must be separate processes."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "funnelcheck", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


def test_validate_never_imports_the_pipeline(tmp_path):
    """`funnelcheck validate` runs on every commit: no SQLAlchemy, DuckDB or numpy on its path."""
    make_project(tmp_path, "duckdb:///data.duckdb")
    code = ("import sys; from funnelcheck.cli import main; rc = main(['validate']); "
            "bad = [m for m in ('sqlalchemy', 'duckdb', 'numpy', 'duckdb_engine', 'psycopg') if m in sys.modules]; "
            "print(rc, bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split("\n")[-2] == "0 []", out


@pytest.fixture(scope="module")
def pg_schema():
    """Like pg_url, for a whole module's shared data."""
    yield from _fresh_schema()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """A Parquet folder of simulated journeys (drifted signup-facebook), made once per module."""
    root = make_project(tmp_path_factory.mktemp("sim"), "duckdb:///data")
    simulate_into(root, str(root / "data"))
    return root / "data"
