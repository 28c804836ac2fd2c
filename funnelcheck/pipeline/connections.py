"""SQLAlchemy engines for the connections named in funnelcheck.yaml (SPEC 9).

A connection is `{url: ...}` or `{url_env: NAME}` (secrets only through the environment).
Relative file paths in `duckdb:///` and `sqlite:///` URLs are relative to funnelcheck.yaml's
folder. A `duckdb:///` URL naming a folder opens an in-memory DuckDB in which every
`*.parquet` and `*.csv` file of that folder is a view named by its file stem (what
`funnelcheck simulate --out DIR` writes).

Observation and prior queries go through `Connections.query`, one connection per name for the
whole run. On DuckDB it runs them on the duckdb module's own connection: the SQLAlchemy dialect
(duckdb-engine) sets up several throw-away in-memory databases on first use, about 0.1 s of a
monitor run that takes under a second. A plain `duckdb:///` URL is read (`duckdb_target`) and
`:name` parameters are found (`_BIND`, SQLAlchemy text()'s own rule) without SQLAlchemy, so a
DuckDB query can run while SQLAlchemy is still being imported; `:name` means the same on every
database, and tests hold both readings to SQLAlchemy's. (A DuckDB file cannot be opened through
both in one process: its settings would differ, which DuckDB refuses.)
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from funnelcheck.pipeline import PipelineError

FILE_DIALECTS = ("duckdb", "sqlite")
# `:name` as SQLAlchemy's text() finds it (not `::`, not `\\:`), so both paths read a query alike.
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


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


def duckdb_target(url: str, base: Path) -> tuple[str, dict, Path | None] | None:
    """A plain `duckdb:///…` URL as (database, settings, folder), read as `resolve_url` reads it but
    without SQLAlchemy, so a DuckDB query can run while SQLAlchemy is still being imported; None for
    any other URL (a test holds this to `make_url` on many URLs)."""
    scheme, sep, rest = url.partition("://")
    path, _, query = rest.partition("?")
    if scheme != "duckdb" or not sep or (path and not path.startswith("/")):
        return None  # another database, or a form left to SQLAlchemy
    pairs = parse_qsl(query, keep_blank_values=True)
    settings = dict(pairs)
    if len(settings) != len(pairs):
        return None  # a repeated setting: SQLAlchemy makes a list of it
    database = unquote(path[1:]) if path else ""
    if not database or database == ":memory:":
        return ":memory:", settings, None
    full = Path(database) if Path(database).is_absolute() else base / database
    if full.is_dir():
        return ":memory:", settings, full
    return str(full), settings, None


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


def _open_duckdb(database: str, settings: dict, folder: Path | None):
    """A DuckDB connection of the duckdb module: a file read-only, a folder as views over its files."""
    _require_module("duckdb", "pipeline")
    import duckdb

    read_only = folder is None and database != ":memory:"
    connection = duckdb.connect(database, read_only=read_only, config={k: str(v) for k, v in settings.items()})
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
        # Set while a DuckDB query runs (it leaves the interpreter free): other work can wait for it.
        self.querying = threading.Event()

    def _engine(self, name: str):
        """The SQLAlchemy engine of connection `name` (read-only where the database allows it)."""
        if name not in self._engines:
            url = connection_url(self.specs, name, self.where)
            self._engines[name] = create_engine_for(url, self.base, read_only=True)
        return self._engines[name]

    def query(self, name: str, sql: str, binds: dict | None = None, max_rows: int | None = None) -> Rows:
        """Run `sql` (SQLAlchemy text: `:name` parameters, bound from `binds`) on connection `name`;
        at most `max_rows` rows are fetched."""
        connection = self._duckdb_connection(name)
        if connection is not None:
            # DuckDB binds `$p_name` from a dict: the `:name` parameters found by SQLAlchemy's own rule
            # (the prefix keeps a name like `:1` from reading as DuckDB's positional `$1`).
            names = {m.group(1) for m in _BIND.finditer(sql)}
            missing = sorted(n for n in names if n not in (binds or {}))
            if missing:
                raise PipelineError(f"the query has no value for parameter :{missing[0]}")
            text = _BIND.sub(lambda m: "$p_" + m.group(1), sql).replace("\\:", ":")
            self.querying.set()
            result = connection.execute(text, {f"p_{n}": binds[n] for n in names})
            columns = [d[0] for d in result.description or ()]
            return Rows(columns, result.fetchmany(max_rows) if max_rows else result.fetchall())
        import sqlalchemy as sa

        statement = sa.text(sql)
        values = {k: v for k, v in (binds or {}).items() if k in statement._bindparams}
        with self._engine(name).connect() as conn:
            result = conn.execute(statement, values)
            columns = list(result.keys())
            rows = [tuple(r) for r in (result.fetchmany(max_rows) if max_rows else result.all())]
        return Rows(columns, rows)

    def _duckdb_connection(self, name: str):
        """The duckdb module's connection for a DuckDB connection `name`; None for other databases."""
        if name not in self._duckdb:
            url = connection_url(self.specs, name, self.where)
            target = duckdb_target(url, self.base)
            if target is None:
                parsed, folder = resolve_url(url, self.base)
                if parsed.get_backend_name() == "duckdb":
                    target = (parsed.database or ":memory:", dict(parsed.query), folder)
            self._duckdb[name] = _open_duckdb(*target) if target is not None else None
        return self._duckdb[name]

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        for connection in self._duckdb.values():
            if connection is not None:
                connection.close()
        self._duckdb.clear()


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
