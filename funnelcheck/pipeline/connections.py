"""SQLAlchemy engines for the connections named in funnelcheck.yaml (SPEC 9).

A connection is `{url: ...}` or `{url_env: NAME}` (secrets only through the environment).
Relative file paths in `duckdb:///` and `sqlite:///` URLs are relative to funnelcheck.yaml's
folder. A `duckdb:///` URL naming a folder opens an in-memory DuckDB in which every
`*.parquet` and `*.csv` file of that folder is a view named by its file stem (what
`funnelcheck simulate --out DIR` writes).

Observation and prior queries go through `Connections.query`, one connection per name for the
whole run. On DuckDB it runs them on the duckdb module's own connection: the SQLAlchemy dialect
(duckdb-engine) sets up several throw-away in-memory databases on first use, about 0.1 s of a
monitor run that takes under a second. The SQL text is still compiled by SQLAlchemy, so `:name`
parameters mean the same everywhere. (A DuckDB file cannot be opened through both in one
process: its settings would differ, which DuckDB refuses.)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from funnelcheck.pipeline import PipelineError

FILE_DIALECTS = ("duckdb", "sqlite")


def connection_url(connections: dict, name: str, where: str = "funnelcheck.yaml") -> str:
    """The URL of connection `name`: its `url`, or the value of the variable named by `url_env`."""
    spec = (connections or {}).get(name)
    if not isinstance(spec, dict):
        known = ", ".join(sorted(connections or {})) or "none configured"
        raise PipelineError(f"{where}: connections.{name}: unknown connection '{name}' (known: {known})")
    if "url_env" in spec:
        value = os.environ.get(spec["url_env"])
        if not value:
            raise PipelineError(f"{where}: connections.{name}.url_env: environment variable "
                                f"{spec['url_env']} is not set")
        return value
    if "url" in spec:
        return spec["url"]
    raise PipelineError(f"{where}: connections.{name}: needs url or url_env")


def resolve_url(url: str, base: Path):
    """Parse `url`, making a relative database file path relative to `base`. Returns (URL, folder|None)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise PipelineError(f"not a database URL: {_redact(url)} ({exc})") from None
    if parsed.get_backend_name() not in FILE_DIALECTS or not parsed.database or parsed.database == ":memory:":
        return parsed, None
    path = Path(parsed.database)
    if not path.is_absolute():
        path = base / path
    if parsed.get_backend_name() == "duckdb" and path.is_dir():
        return parsed.set(database=":memory:"), path
    return parsed.set(database=str(path)), None


def create_engine_for(url: str, base: Path, read_only: bool = False):
    """An SQLAlchemy engine for `url` (relative files against `base`); DuckDB folders become views."""
    import sqlalchemy as sa

    parsed, folder = resolve_url(url, base)
    backend = parsed.get_backend_name()
    kwargs: dict = {}
    if backend == "duckdb":
        _require_module("duckdb_engine", "pipeline")
        if read_only and folder is None and parsed.database not in (None, "", ":memory:"):
            kwargs["connect_args"] = {"read_only": True}
    elif backend == "postgresql":
        _require_module("psycopg", "postgres")
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs["connect_args"] = {"connect_timeout": 10}
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except Exception as exc:  # a missing driver, an unknown dialect
        raise PipelineError(f"cannot use {_redact(url)}: {one_line(exc)}") from None
    if folder is not None:
        _attach_folder(engine, folder)
    return engine


def _attach_folder(engine, folder: Path) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _views(dbapi_connection, _record):
        _create_views(dbapi_connection, folder)


def _create_views(connection, folder: Path) -> None:
    """A view per `*.parquet` / `*.csv` file of `folder`, named by its stem, on a DuckDB connection."""
    cursor = connection.cursor()
    for f in sorted([*folder.glob("*.parquet"), *folder.glob("*.csv")]):
        reader = "read_parquet" if f.suffix == ".parquet" else "read_csv_auto"
        literal = str(f).replace("'", "''")
        cursor.execute(f'CREATE OR REPLACE VIEW "{f.stem}" AS SELECT * FROM {reader}(\'{literal}\')')
    cursor.close()


def _open_duckdb(parsed, folder: Path | None):
    """A DuckDB connection of the duckdb module: a file read-only, a folder as views over its files."""
    _require_module("duckdb", "pipeline")
    import duckdb

    database = parsed.database or ":memory:"
    read_only = folder is None and database != ":memory:"
    connection = duckdb.connect(database, read_only=read_only, config={k: str(v) for k, v in parsed.query.items()})
    if folder is not None:
        _create_views(connection, folder)
    return connection


def _require_module(module: str, extra: str) -> None:
    from funnelcheck.pipeline import require_extra

    require_extra(module, extra)


@dataclass
class Rows:
    """What a query returned: the column names and the rows (tuples)."""

    columns: list[str]
    rows: list[tuple]


class Connections:
    """The connections of one run, opened on first use and closed at the end."""

    def __init__(self, connections: dict | None, base: Path, where: str = "funnelcheck.yaml"):
        self.specs = connections or {}
        self.base = base
        self.where = where
        self._engines: dict = {}
        self._duckdb: dict = {}

    def _engine(self, name: str):
        """The SQLAlchemy engine of connection `name` (read-only where the database allows it)."""
        if name not in self._engines:
            url = connection_url(self.specs, name, self.where)
            self._engines[name] = create_engine_for(url, self.base, read_only=True)
        return self._engines[name]

    def query(self, name: str, sql: str, binds: dict | None = None, max_rows: int | None = None) -> Rows:
        """Run `sql` (SQLAlchemy text: `:name` parameters, bound from `binds`) on connection `name`;
        at most `max_rows` rows are fetched."""
        import sqlalchemy as sa

        statement = sa.text(sql)
        values = {k: v for k, v in (binds or {}).items() if k in statement._bindparams}
        connection = self._duckdb_connection(name)
        if connection is not None:
            compiled = statement.compile(dialect=_dollar_dialect())
            params = compiled.construct_params(values)
            result = connection.execute(compiled.string, [params[k] for k in compiled.positiontup or ()])
            columns = [d[0] for d in result.description or ()]
            rows = result.fetchmany(max_rows) if max_rows else result.fetchall()
            return Rows(columns, rows)
        with self._engine(name).connect() as conn:
            result = conn.execute(statement, values)
            columns = list(result.keys())
            rows = [tuple(r) for r in (result.fetchmany(max_rows) if max_rows else result.all())]
        return Rows(columns, rows)

    def _duckdb_connection(self, name: str):
        """The duckdb module's connection for a DuckDB connection `name`; None for other databases."""
        if name not in self._duckdb:
            url = connection_url(self.specs, name, self.where)
            parsed, folder = resolve_url(url, self.base)
            self._duckdb[name] = _open_duckdb(parsed, folder) if parsed.get_backend_name() == "duckdb" else None
        return self._duckdb[name]

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        for connection in self._duckdb.values():
            if connection is not None:
                connection.close()
        self._duckdb.clear()


def _dollar_dialect():
    """SQLAlchemy's generic dialect with DuckDB's `$1` parameters (as duckdb-engine compiles them)."""
    from sqlalchemy.engine import default

    return default.DefaultDialect(paramstyle="numeric_dollar")


def one_line(exc: BaseException) -> str:
    """A database error as one readable line: the driver's first line, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    first = text[0] if text else type(orig).__name__
    if "lock" in first.lower() and ("conflicting" in first.lower() or "could not set lock" in first.lower()):
        return f"the database file is locked by another process ({first})"
    return first


def _redact(url: str) -> str:
    """A URL fit for an error message: any password replaced by ***."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<url>"
