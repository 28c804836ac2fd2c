"""The persistence database (SPEC 8.4), with SQLAlchemy Core.

Default `sqlite:///.funnelcheck/funnelcheck.db` relative to funnelcheck.yaml's folder; any
SQLAlchemy URL (PostgreSQL for a team). The schema is created on first use and carries a
version. One row per parameter per run date: writes are upserts on a unique key, so a rerun
replaces and two monitors at once leave no duplicate. Other modules add their tables to the
module-level `metadata` before calling `open_store`.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from funnelcheck.pipeline import PipelineError
from funnelcheck.pipeline.connections import create_engine_for, one_line

SCHEMA_VERSION = 1
DEFAULT_URL = "sqlite:///.funnelcheck/funnelcheck.db"

metadata = sa.MetaData()

schema_version = sa.Table(
    "funnelcheck_schema", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
)

parameter_values = sa.Table(
    "parameter_values", metadata,
    sa.Column("param_id", sa.String(200), nullable=False),
    sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
    sa.Column("mean", sa.Float, nullable=False),
    sa.Column("stdev", sa.Float, nullable=False),
    sa.Column("source", sa.String(50), nullable=False),
    sa.UniqueConstraint("param_id", "timestamp", "source", name="uq_parameter_values"),
)

monitor_results = sa.Table(
    "monitor_results", metadata,
    sa.Column("run_date", sa.Date, nullable=False),
    sa.Column("param_id", sa.String(200), nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("n", sa.BigInteger),
    sa.Column("k", sa.BigInteger),
    sa.Column("rate", sa.Float),
    sa.Column("expected", sa.Float),
    sa.Column("stdev", sa.Float),
    sa.Column("alpha", sa.Float),
    sa.Column("beta", sa.Float),
    sa.Column("z", sa.Float),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("method", sa.String(20)),
    sa.Column("window_start", sa.DateTime(timezone=True)),
    sa.Column("window_end", sa.DateTime(timezone=True)),
    sa.Column("revision", sa.String(64)),
    sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("run_date", "param_id", name="uq_monitor_results"),
)

_KEYS = {"parameter_values": ("param_id", "timestamp", "source"), "monitor_results": ("run_date", "param_id")}


class StoreError(PipelineError):
    """The persistence database could not be opened or written."""


def store_url(config_data: dict | None, base: Path) -> str:
    """The configured `database` URL, else the default (relative paths against `base` later)."""
    return (config_data or {}).get("database") or DEFAULT_URL


def open_store(url: str = DEFAULT_URL, base: Path | None = None) -> "Store":
    """Connect to the persistence database and create or check its schema."""
    engine = create_engine_for(url, base or Path.cwd())
    store = Store(engine)
    try:
        store.ensure_schema()
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"persistence database {engine.url.render_as_string(hide_password=True)}: "
                         f"{one_line(exc)}") from None
    return store


class Store:
    """Reads and writes of the persistence database."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def ensure_schema(self) -> None:
        """Create missing tables (serialised on PostgreSQL) and record or check the schema version."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7310450215)"))
            metadata.create_all(conn, checkfirst=True)
            found = conn.execute(sa.select(schema_version.c.version)).scalar()
            if found is None:
                self._upsert(conn, schema_version, [{"id": 1, "version": SCHEMA_VERSION}], ("id",))
            elif found > SCHEMA_VERSION:
                raise StoreError(f"the persistence database has schema version {found}; this funnelcheck "
                                 f"knows version {SCHEMA_VERSION}: upgrade funnelcheck")

    def write_results(self, result) -> None:
        """Store a MonitorResult: one monitor_results row per parameter for its run date (upsert),
        and the prior each was judged against in parameter_values (source `monitor`)."""
        run_date = result.as_of
        stamp = datetime(run_date.year, run_date.month, run_date.day, tzinfo=timezone.utc)
        rows, values = [], []
        for p in result.parameters:
            rows.append({
                "run_date": run_date, "param_id": p.id, "reference": p.reference,
                "n": p.observed.n if p.observed else None, "k": p.observed.k if p.observed else None,
                "rate": p.observed.rate if p.observed else None,
                "expected": p.prior.mean if p.prior else None, "stdev": p.prior.stdev if p.prior else None,
                "alpha": p.prior.alpha if p.prior else None, "beta": p.prior.beta if p.prior else None,
                "z": p.z, "status": p.status, "message": p.message, "method": p.method,
                "window_start": p.window_start, "window_end": p.window_end,
                "revision": result.revision, "run_at": result.run_at,
            })
            if p.prior:
                values.append({"param_id": p.id, "timestamp": stamp, "mean": p.prior.mean,
                               "stdev": p.prior.stdev, "source": "monitor"})
        self._write(monitor_results, rows)
        self._write(parameter_values, values)

    def write_values(self, rows: list[dict]) -> None:
        """Upsert parameter_values rows ({param_id, timestamp, mean, stdev, source})."""
        self._write(parameter_values, rows)

    def _write(self, table: sa.Table, rows: list[dict]) -> None:
        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                self._upsert(conn, table, rows, _KEYS[table.name])
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot write {table.name}: {one_line(exc)}") from None

    @staticmethod
    def _upsert(conn, table: sa.Table, rows: list[dict], keys: tuple[str, ...]) -> None:
        """INSERT ... ON CONFLICT DO UPDATE on SQLite and PostgreSQL; elsewhere delete+insert in one transaction."""
        name = conn.dialect.name
        if name in ("sqlite", "postgresql"):
            import importlib

            # only the dialect in use: a SQLite store need not import PostgreSQL's (tens of ms)
            insert = importlib.import_module(f"sqlalchemy.dialects.{name}").insert(table)
            updates = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
            stmt = insert.on_conflict_do_update(index_elements=list(keys), set_=updates) if updates \
                else insert.on_conflict_do_nothing(index_elements=list(keys))
            conn.execute(stmt, rows)
            return
        for row in rows:
            conn.execute(table.delete().where(sa.and_(*(table.c[k] == row[k] for k in keys))))
        conn.execute(table.insert(), rows)

    def run_dates(self) -> list[date]:
        """Every run date with results, newest first."""
        with self.engine.connect() as conn:
            q = sa.select(monitor_results.c.run_date).distinct().order_by(monitor_results.c.run_date.desc())
            return [_as_date(r[0]) for r in conn.execute(q)]

    def run(self, run_date: date) -> list[dict]:
        """The rows of one run date, ordered by parameter id."""
        with self.engine.connect() as conn:
            q = (sa.select(monitor_results).where(monitor_results.c.run_date == run_date)
                 .order_by(monitor_results.c.param_id))
            return [_row(r) for r in conn.execute(q)]

    def latest_run(self) -> list[dict]:
        """The rows of the newest run date (empty when nothing was stored yet)."""
        dates = self.run_dates()
        return self.run(dates[0]) if dates else []

    def previous_results(self, before: date) -> dict[str, dict]:
        """param_id → that parameter's newest row from a run date before `before`."""
        with self.engine.connect() as conn:
            newest = (sa.select(monitor_results.c.param_id, sa.func.max(monitor_results.c.run_date).label("d"))
                      .where(monitor_results.c.run_date < before).group_by(monitor_results.c.param_id).subquery())
            q = sa.select(monitor_results).join(newest, sa.and_(monitor_results.c.param_id == newest.c.param_id,
                                                                monitor_results.c.run_date == newest.c.d))
            return {r.param_id: _row(r) for r in conn.execute(q)}

    def z_history(self, param_id: str, limit: int = 30) -> list[tuple[date, float | None]]:
        """The last `limit` (run_date, z) of a parameter, oldest first (the dashboard's sparkline)."""
        with self.engine.connect() as conn:
            q = (sa.select(monitor_results.c.run_date, monitor_results.c.z)
                 .where(monitor_results.c.param_id == param_id)
                 .order_by(monitor_results.c.run_date.desc()).limit(limit))
            return [(_as_date(d), z) for d, z in reversed(conn.execute(q).all())]

    def close(self) -> None:
        self.engine.dispose()


def _row(r) -> dict:
    out = dict(r._mapping)
    out["run_date"] = _as_date(out["run_date"])
    for key in ("window_start", "window_end", "run_at"):
        if isinstance(out.get(key), datetime) and out[key].tzinfo is None:
            out[key] = out[key].replace(tzinfo=timezone.utc)  # SQLite keeps no zone: we only write UTC
    return out


def _as_date(value) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])
