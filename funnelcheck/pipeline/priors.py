"""Prior sources (SPEC 8.1): the YAML value, a Google Sheet range, a CSV file, an SQL query.

`PriorSources` is the lookup `monitor` and `update` call per parameter: a fetched value is
cached in the persistence database for `refresh_frequency` (default 1h); a source that fails
or answers something that is not a probability with a feasible stdev gives `fallback_value`,
marked fallback, and the reason is kept in `problems`; with no fallback the parameter is an
error. One CSV fetch serves every parameter naming the same file. Cells and CSV fields may be
numbers, numeric text, or percentages ("32%" is read as 0.32 and said so in `notes`); one
cell, text, or more than two cells are refused. Sync and push live in `priorsync`.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from funnelcheck.model import Estimate, Parameter, Registry
from funnelcheck.pipeline import PipelineError
from funnelcheck.pipeline.connections import Connections, one_line
from funnelcheck.pipeline.httpclient import HttpFailure, call
from funnelcheck.pipeline.monitor import PriorValue, yaml_prior
from funnelcheck.pipeline.observations import parse_duration, place
from funnelcheck.pipeline.store import Store, metadata

DEFAULT_SHEETS_API = "https://sheets.googleapis.com"
DEFAULT_REFRESH = "1h"
REMOTE_TYPES = ("sheets", "csv", "sql")
_SHEET_ID = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_PERCENT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*%\s*$")

prior_cache = sa.Table(
    "prior_cache", metadata,
    sa.Column("source_key", sa.String(500), nullable=False),
    sa.Column("param_id", sa.String(200), nullable=False),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("mean", sa.Float, nullable=False),
    sa.Column("stdev", sa.Float, nullable=False),
    sa.UniqueConstraint("source_key", "param_id", name="uq_prior_cache"),
)


class PriorError(ValueError):
    """A prior source failed or answered something unusable; the message is one line."""


@dataclass(frozen=True)
class Fetched:
    """What one parameter's prior source gave: an estimate, or why not."""

    param_id: str
    source: str
    key: str
    estimate: Estimate | None = None
    error: str | None = None
    note: str | None = None
    cached: bool = False


def ensure_tables(store: Store, *tables: sa.Table) -> None:
    """Create this module's tables when the store was opened before they were defined."""
    metadata.create_all(store.engine, tables=list(tables), checkfirst=True)


def upsert(store: Store, table: sa.Table, rows: list[dict], keys: tuple[str, ...]) -> None:
    """Insert or replace rows by their unique key, in one transaction."""
    if rows:
        with store.engine.begin() as conn:
            store._upsert(conn, table, rows, keys)


def read_probability(cell, what: str) -> tuple[float, str | None]:
    """A cell or field as a float; "32%" becomes 0.32 with a note saying so. PriorError otherwise."""
    if isinstance(cell, bool) or cell is None:
        raise PriorError(f"{what} is empty")
    if isinstance(cell, (int, float)):
        return float(cell), None
    text = str(cell).strip()
    m = _PERCENT.match(text)
    if m:
        value = float(m.group(1)) / 100
        return value, f"{what} '{text}' read as {value:g}"
    try:
        return float(text), None
    except ValueError:
        raise PriorError(f"{what} is the text '{text[:40]}', not a number") from None


def checked_estimate(mean: float, stdev: float, where: str) -> Estimate:
    """The pair as an Estimate when it is a probability with a feasible stdev; PriorError otherwise."""
    if not 0.0 <= mean <= 1.0:
        raise PriorError(f"{where}: mean {mean:g} is not a probability")
    if stdev < 0:
        raise PriorError(f"{where}: stdev {stdev:g} is negative")
    if mean in (0.0, 1.0) or stdev ** 2 >= mean * (1 - mean):  # no Beta has it (SPEC 8.3's moment match)
        raise PriorError(f"{where}: stdev {stdev:g} is not feasible for mean {mean:g} "
                         f"(it must be below {(mean * (1 - mean)) ** 0.5:.4g}, the mean strictly between 0 and 1)")
    return Estimate(mean, stdev)


def sheet_id(url: str) -> str:
    """The spreadsheet id of a `https://docs.google.com/spreadsheets/d/ID/...` URL."""
    m = _SHEET_ID.search(url or "")
    if not m:
        raise PriorError(f"prior_source.url '{url}' is not a Google Sheets URL (…/spreadsheets/d/ID/…)")
    return m.group(1)


def sheets_url(api_url: str, spreadsheet: str, cell_range: str) -> str:
    """`{api_url}/v4/spreadsheets/{id}/values/{range}` with the range escaped."""
    return f"{api_url.rstrip('/')}/v4/spreadsheets/{spreadsheet}/values/{urllib.parse.quote(cell_range, safe='!:')}"


def sheets_auth(env, write: bool = False) -> tuple[dict, dict]:
    """(headers, query) for the Sheets API: bearer $GOOGLE_SHEETS_TOKEN, else key=$GOOGLE_SHEETS_API_KEY."""
    token = env.get("GOOGLE_SHEETS_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}, {}
    if write:
        raise PriorError("writing to Google Sheets needs a token that may write: set GOOGLE_SHEETS_TOKEN")
    key = env.get("GOOGLE_SHEETS_API_KEY")
    return {}, ({"key": key} if key else {})


def cells_of(data, cell_range: str) -> list:
    """The cells of a values.get answer, row by row; PriorError unless there are exactly two."""
    if not isinstance(data, dict):
        raise PriorError(f"range {cell_range}: the answer is not a Sheets values object")
    rows = data.get("values") or []
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise PriorError(f"range {cell_range}: the answer's values are not rows of cells")
    cells = [c for row in rows for c in row]
    if len(cells) != 2:
        raise PriorError(f"range {cell_range} gave {len(cells)} cell{'s' if len(cells) != 1 else ''}; "
                         "expected two: mean then stdev")
    return cells


def parse_csv(text: str, name: str) -> dict[str, tuple[str, str, int] | str]:
    """param_id → (mean, stdev, line), or → an error line for a duplicated id. PriorError for a bad header."""
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    missing = [c for c in ("param_id", "mean", "stdev") if c not in fields]
    if missing:
        raise PriorError(f"{name}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         "(expected a header param_id,mean,stdev)")
    reader.fieldnames = fields
    rows: dict = {}
    lines: dict[str, list[int]] = {}
    for row in reader:
        pid = (row.get("param_id") or "").strip()
        if pid:
            lines.setdefault(pid, []).append(reader.line_num)
            rows.setdefault(pid, ((row.get("mean") or "").strip(), (row.get("stdev") or "").strip(), reader.line_num))
    for pid, at in lines.items():
        if len(at) > 1:
            rows[pid] = f"{name}: {len(at)} rows for {pid} (lines {', '.join(map(str, at))}); keep one"
    return rows


class PriorSources:
    """The live prior of each parameter, for one run: fetched, cached, or the fallback."""

    def __init__(self, registry: Registry, connections: Connections | None, base: Path, store: Store | None = None,
                 now: datetime | None = None, env=None):
        self.registry = registry
        self.connections = connections
        self.base = Path(base)
        self.root = Path(registry.root)
        self.store = store
        self.now = now or datetime.now(timezone.utc)
        self.env = os.environ if env is None else env
        config = registry.config.data if registry.config else {}
        self.api_url = ((config.get("sheets") or {}).get("api_url") or DEFAULT_SHEETS_API)
        self.problems: dict[str, str] = {}  # param_id → why its fallback_value was used
        self.notes: dict[str, str] = {}  # param_id → how a value was read ("32%" → 0.32)
        self._files: dict[str, dict | PriorError] = {}
        self._sheets_down: PriorError | None = None  # an unreachable API is tried once per run, not per parameter
        if store is not None:
            try:
                ensure_tables(store, prior_cache)
            except sa.exc.SQLAlchemyError:
                self.store = None  # no cache this run: every source is read afresh

    def __call__(self, p: Parameter) -> PriorValue:
        """The monitor's PriorLookup: the source's value, else the fallback (marked), else an error."""
        kind = (p.prior_source or {}).get("type", "yaml")
        if kind not in REMOTE_TYPES:
            return yaml_prior(p)
        got = self.fetch(p)
        if got.estimate is not None:
            return PriorValue(got.estimate, kind)
        if p.fallback_value is not None:
            self.problems[p.id] = got.error or "no value"
            return PriorValue(p.fallback_value, kind, True)
        return PriorValue(None, kind, error=f"{place(p, 'prior_source')}: prior source failed ({got.error}) "
                                            "and there is no fallback_value")

    def key(self, p: Parameter) -> str:
        """What identifies a parameter's source location (the cache's key)."""
        s = p.prior_source or {}
        kind = s.get("type", "yaml")
        if kind == "sheets":
            return f"sheets:{s.get('url', '')}!{s.get('range', '')}"
        if kind == "csv":
            return f"csv:{s.get('url') or s.get('path', '')}"
        if kind == "sql":
            return f"sql:{s.get('connection', '')}:{s.get('query', '')}"
        return "yaml"

    def fetch(self, p: Parameter, use_cache: bool = True) -> Fetched:
        """The source's value for `p`: from the cache while fresh, else fetched (and cached)."""
        s = p.prior_source or {}
        kind, key = s.get("type", "yaml"), self.key(p)
        try:
            refresh = parse_duration(s.get("refresh_frequency", DEFAULT_REFRESH),
                                     lambda: f"{place(p, 'prior_source', 'refresh_frequency')}: refresh_frequency")
        except Exception as exc:
            return Fetched(p.id, kind, key, error=str(exc))
        if use_cache:
            cached = self._cached(p.id, key, refresh)
            if cached is not None:
                return Fetched(p.id, kind, key, cached, cached=True)
        try:
            mean, stdev, note = self._read(p, kind, s)
            estimate = checked_estimate(mean, stdev, f"{place(p, 'prior_source')}: {kind} source")
        except PriorError as exc:
            return Fetched(p.id, kind, key, error=str(exc))
        if note:
            self.notes[p.id] = note
        self._remember(p.id, key, estimate)
        return Fetched(p.id, kind, key, estimate, note=note)

    def _read(self, p: Parameter, kind: str, s: dict) -> tuple[float, float, str | None]:
        if kind == "sheets":
            cells = self._sheet_cells(s)
            return self._pair(cells[0], cells[1], f"range {s.get('range')}")
        if kind == "csv":
            return self._csv_row(p, s)
        if kind == "sql":
            return self._sql_row(s)
        raise PriorError(f"prior_source.type '{kind}' has no remote value")

    @staticmethod
    def _pair(mean_cell, stdev_cell, where: str) -> tuple[float, float, str | None]:
        mean, n1 = read_probability(mean_cell, f"{where}: the mean")
        stdev, n2 = read_probability(stdev_cell, f"{where}: the stdev")
        return mean, stdev, "; ".join(n for n in (n1, n2) if n) or None

    def _sheet_cells(self, s: dict) -> list:
        cell_range = s.get("range")
        if not cell_range:
            raise PriorError("prior_source.range is missing (two cells: mean then stdev)")
        headers, query = sheets_auth(self.env)
        url = sheets_url(self.api_url, sheet_id(s.get("url", "")), cell_range)
        url += "?" + urllib.parse.urlencode({"valueRenderOption": "UNFORMATTED_VALUE", **query})
        if self._sheets_down is not None:
            raise self._sheets_down
        try:
            answer = call("GET", url, headers=headers)
            data = json.loads(answer.body)
        except HttpFailure as exc:
            failure = PriorError(f"Google Sheets: {exc}")
            if exc.status is None:  # no answer at all (unreachable, timed out): the next range would wait again
                self._sheets_down = failure
            raise failure from None
        except ValueError:
            raise PriorError(f"Google Sheets: range {cell_range}: the answer is not JSON") from None
        return cells_of(data, cell_range)

    def csv_location(self, s: dict) -> str:
        """The CSV's https URL, or its path (relative to the registry, inside the project)."""
        if s.get("url"):
            return s["url"]
        if not s.get("path"):
            raise PriorError("prior_source needs path (relative to the registry) or url for type csv")
        return str(self.csv_path(s["path"]))

    def csv_path(self, rel: str) -> Path:
        """A CSV path relative to the registry; refused when it leaves the project folder."""
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.base.resolve()):
            raise PriorError(f"prior_source.path '{rel}' leaves the project folder")
        return path

    def _csv_rows(self, s: dict) -> dict:
        location = self.csv_location(s)
        if location not in self._files:
            try:
                self._files[location] = parse_csv(self._csv_text(s, location), s.get("url") or s.get("path"))
            except PriorError as exc:
                self._files[location] = exc
        rows = self._files[location]
        if isinstance(rows, PriorError):
            raise rows
        return rows

    @staticmethod
    def _csv_text(s: dict, location: str) -> str:
        if s.get("url"):
            parts = urllib.parse.urlsplit(location)
            if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost"):
                raise PriorError(f"prior_source.url must be https: {location}")
            try:
                return call("GET", location).body.decode("utf-8-sig")
            except HttpFailure as exc:
                raise PriorError(f"CSV: {exc}") from None
            except UnicodeDecodeError:
                raise PriorError(f"CSV {location} is not UTF-8 text") from None
        try:
            return Path(location).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise PriorError(f"cannot read {s['path']}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise PriorError(f"{s['path']} is not UTF-8 text") from None

    def _csv_row(self, p: Parameter, s: dict) -> tuple[float, float, str | None]:
        rows = self._csv_rows(s)
        name = s.get("url") or s.get("path")
        row = rows.get(p.id)
        if row is None:
            raise PriorError(f"{name} has no row for {p.id}")
        if isinstance(row, str):
            raise PriorError(row)
        return self._pair(row[0], row[1], f"{name}:{row[2]}")

    def _sql_row(self, s: dict) -> tuple[float, float, str | None]:
        if self.connections is None or not s.get("connection") or not s.get("query"):
            raise PriorError("prior_source of type sql needs a connection and a query")
        try:
            found = self.connections.query(s["connection"], s["query"], max_rows=2)
        except PipelineError as exc:  # an unknown connection, an unset url_env
            raise PriorError(str(exc)) from None
        except Exception as exc:  # the database's own error, from SQLAlchemy or the duckdb module
            raise PriorError(f"SQL prior: {one_line(exc)}") from None
        rows = found.rows
        if len(rows) != 1:
            raise PriorError(f"SQL prior: the query returned {len(rows) if rows else 'no'} rows; expected one")
        row = {k.lower(): v for k, v in zip(found.columns, rows[0])}
        if "mean" not in row or "stdev" not in row:
            raise PriorError("SQL prior: the query must return columns mean, stdev")
        return self._pair(row["mean"], row["stdev"], "SQL prior")

    def _cached(self, param_id: str, key: str, refresh: timedelta) -> Estimate | None:
        if self.store is None:
            return None
        try:
            with self.store.engine.connect() as conn:
                row = conn.execute(sa.select(prior_cache).where(prior_cache.c.source_key == key,
                                                                prior_cache.c.param_id == param_id)).first()
        except sa.exc.SQLAlchemyError:
            return None  # the cache is an optimisation: without it the source is read afresh
        if row is None:
            return None
        fetched = row.fetched_at if row.fetched_at.tzinfo else row.fetched_at.replace(tzinfo=timezone.utc)
        return Estimate(row.mean, row.stdev) if self.now - fetched < refresh else None

    def _remember(self, param_id: str, key: str, estimate: Estimate) -> None:
        if self.store is None:
            return
        try:
            upsert(self.store, prior_cache, [{"source_key": key, "param_id": param_id, "fetched_at": self.now,
                                              "mean": estimate.mean, "stdev": estimate.stdev}],
                   ("source_key", "param_id"))
        except sa.exc.SQLAlchemyError:
            pass  # not cached this time: the next run reads the source again


def live_priors(registry: Registry, connections: Connections | None, base: Path, store: Store | None) -> PriorSources:
    """The prior lookup `monitor`, `update` and `update-pr` use (cached in `store` when there is one)."""
    return PriorSources(registry, connections, base, store)
