"""`priors sync` and `priors push` (SPEC 8.1): the round trip between prior sources and Git.

sync takes a source's value into the YAML only when a person changed it since the last sync or
push (recorded per parameter and source in `prior_sync`; a source never synced counts as
changed), so a sync never reverts an accepted posterior. Taking a new value also drops
`bayesian_update.prior`: the person's estimate becomes the prior (moment-matched), while
`updated_through` stays, so no evidence is counted twice. push writes the registry's values to
the writable sources (a Sheets range, a local CSV) and records them the same way.
"""
from __future__ import annotations

import csv
import io
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from funnelcheck.atomicfile import write_atomic
from funnelcheck.model import Estimate, Parameter
from funnelcheck.pipeline.httpclient import HttpFailure, call
from funnelcheck.pipeline.priors import REMOTE_TYPES, PriorError, PriorSources, ensure_tables, parse_csv, \
    sheet_id, sheets_auth, sheets_url, upsert
from funnelcheck.pipeline.store import Store, metadata

UPDATE, UNCHANGED, KEPT, ERROR = "update", "unchanged", "kept", "error"
PUSHED, SKIPPED = "pushed", "skipped"
_TOLERANCE = 1e-9
_CELL = re.compile(r"^(?:.*!)?\$?([A-Za-z]+)\$?\d+(?::\$?([A-Za-z]+)\$?\d+)?$")

prior_sync = sa.Table(
    "prior_sync", metadata,
    sa.Column("param_id", sa.String(200), nullable=False),
    sa.Column("source_key", sa.String(500), nullable=False),
    sa.Column("mean", sa.Float, nullable=False),
    sa.Column("stdev", sa.Float, nullable=False),
    sa.Column("action", sa.String(10), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("param_id", "source_key", name="uq_prior_sync"),
)


@dataclass(frozen=True)
class SyncItem:
    """One parameter's sync: the source's value against the YAML's and the last synced/pushed one."""

    param_id: str
    file: str
    source: str
    action: str  # update | unchanged | kept | error | pushed | skipped
    registry: Estimate | None = None
    fetched: Estimate | None = None
    last: Estimate | None = None
    note: str | None = None

    def to_json(self) -> dict:
        return {"id": self.param_id, "file": self.file, "source": self.source, "action": self.action,
                "registry": _pair(self.registry), "source_value": _pair(self.fetched),
                "last_synced": _pair(self.last), "note": self.note}


def _pair(e: Estimate | None) -> dict | None:
    return None if e is None else {"mean": e.mean, "stdev": e.stdev}


@dataclass
class SyncReport:
    """Every parameter with a remote prior source, and what sync or push did with it."""

    items: list[SyncItem] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    pushed: bool = False

    def count(self, action: str) -> int:
        return sum(1 for i in self.items if i.action == action)

    def to_json(self) -> dict:
        return {"parameters": [i.to_json() for i in self.items], "written": self.written,
                "summary": {a: self.count(a) for a in ((PUSHED, SKIPPED, ERROR) if self.pushed
                                                       else (UPDATE, UNCHANGED, KEPT, ERROR))}}


def same(a: Estimate | None, b: Estimate | None) -> bool:
    """Equal to within float noise (values went through YAML, CSV or JSON)."""
    return a is not None and b is not None and abs(a.mean - b.mean) <= _TOLERANCE and abs(a.stdev - b.stdev) <= _TOLERANCE


def remote(sources: PriorSources) -> list[Parameter]:
    return sorted((p for p in sources.registry.parameters.values()
                   if (p.prior_source or {}).get("type") in REMOTE_TYPES), key=lambda p: p.id)


def last_recorded(store: Store) -> dict[tuple[str, str], Estimate]:
    """(param_id, source_key) → the value last synced from or pushed to that source."""
    ensure_tables(store, prior_sync)
    with store.engine.connect() as conn:
        return {(r.param_id, r.source_key): Estimate(r.mean, r.stdev) for r in conn.execute(sa.select(prior_sync))}


def record(store: Store, sources: PriorSources, rows: list[tuple[Parameter, Estimate]], action: str) -> None:
    upsert(store, prior_sync, [{"param_id": p.id, "source_key": sources.key(p), "mean": e.mean, "stdev": e.stdev,
                                "action": action, "at": sources.now} for p, e in rows], ("param_id", "source_key"))


def plan_sync(sources: PriorSources, store: Store) -> SyncReport:
    """Fetch every remote source afresh and decide, per parameter, whether its value goes into the YAML."""
    last = last_recorded(store)
    report = SyncReport()
    for p in remote(sources):
        got = sources.fetch(p, use_cache=False)
        common = dict(param_id=p.id, file=p.where.path, source=got.source, registry=p.value)
        if got.estimate is None:
            report.items.append(SyncItem(action=ERROR, note=got.error, **common))
            continue
        before = last.get((p.id, got.key))
        if same(got.estimate, p.value):
            action = UNCHANGED
        elif before is not None and same(got.estimate, before):
            action = KEPT  # the source still holds what we last synced or pushed: the registry's value is newer
        else:
            action = UPDATE
        report.items.append(SyncItem(action=action, fetched=got.estimate, last=before, note=got.note, **common))
    return report


def write_sync(report: SyncReport, sources: PriorSources, store: Store) -> SyncReport:
    """Write the `update` items into their YAML files (round-trip, atomic) and record what was synced."""
    params = sources.registry.parameters
    done = []
    for item in report.items:
        if item.action == UPDATE:
            path = Path(item.file)  # display paths are relative to the current directory, as update's
            text = path.read_text(encoding="utf-8")
            write_atomic(path, rewrite_value(text, item.fetched).encode("utf-8"))
            report.written.append(item.file)
        if item.action in (UPDATE, UNCHANGED):
            done.append((params[item.param_id], item.fetched))
    record(store, sources, done, "sync")
    return report


def rewrite_value(text: str, value: Estimate) -> str:
    """The file with `value` set to the source's and `bayesian_update.prior` dropped, all else kept."""
    from ruamel.yaml.comments import CommentedMap

    from funnelcheck.pipeline.yamlwrite import _set, _yaml  # update's round-trip, one way to edit a file

    yaml = _yaml()
    doc = yaml.load(text)
    _set(doc, "value", {"mean": value.mean, "stdev": value.stdev})
    update = doc.get("bayesian_update")
    if isinstance(update, CommentedMap) and "prior" in update:
        del update["prior"]
        if not update:
            del doc["bayesian_update"]
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def push(sources: PriorSources, store: Store) -> SyncReport:
    """Write each registry value to its writable source (Sheets range, local CSV) and record it."""
    report = SyncReport(pushed=True)
    by_csv: dict[Path, list[Parameter]] = {}
    done = []
    for p in remote(sources):
        s = p.prior_source
        common = dict(param_id=p.id, file=p.where.path, source=s["type"], registry=p.value)
        if p.value is None:
            report.items.append(SyncItem(action=SKIPPED, note="no value in the YAML to push", **common))
        elif s["type"] == "sheets":
            try:
                put_sheet(sources, s, p.value)
                report.items.append(SyncItem(action=PUSHED, **common))
                done.append((p, p.value))
            except PriorError as exc:
                report.items.append(SyncItem(action=ERROR, note=str(exc), **common))
        elif s["type"] == "csv" and s.get("path") and not s.get("url"):
            try:
                by_csv.setdefault(sources.csv_path(s["path"]), []).append(p)
            except PriorError as exc:
                report.items.append(SyncItem(action=ERROR, note=str(exc), **common))
        else:
            report.items.append(SyncItem(action=SKIPPED, note=f"a {s['type']} source at a URL or query is not "
                                                               "writable", **common))
    for path, params in by_csv.items():
        try:
            write_csv(path, {p.id: p.value for p in params})
            for p in params:
                report.items.append(SyncItem(p.id, p.where.path, "csv", PUSHED, p.value))
                done.append((p, p.value))
        except (OSError, PriorError) as exc:
            note = str(exc) if isinstance(exc, PriorError) else f"cannot write {path.name}: {exc.strerror}"
            report.items.extend(SyncItem(p.id, p.where.path, "csv", ERROR, p.value, note=note) for p in params)
    report.items.sort(key=lambda i: i.param_id)
    record(store, sources, done, "push")
    return report


def put_sheet(sources: PriorSources, s: dict, value: Estimate) -> None:
    """`spreadsheets.values.update`: PUT the two numbers on the range, valueInputOption=RAW."""
    headers, _ = sheets_auth(sources.env, write=True)
    cell_range = s.get("range") or ""
    m = _CELL.match(cell_range)
    column = bool(m and m.group(2) and m.group(1).upper() == m.group(2).upper())  # B2:B3: mean above stdev
    body = {"range": cell_range, "majorDimension": "COLUMNS" if column else "ROWS",
            "values": [[value.mean, value.stdev]]}
    url = sheets_url(sources.api_url, sheet_id(s.get("url", "")), cell_range)
    url += "?" + urllib.parse.urlencode({"valueInputOption": "RAW"})
    try:
        call("PUT", url, json.dumps(body).encode(), {**headers, "Content-Type": "application/json"})
    except HttpFailure as exc:
        raise PriorError(f"Google Sheets: {exc}") from None


def write_csv(path: Path, values: dict[str, Estimate]) -> None:
    """Set the mean and stdev of each parameter's row (added when missing), keeping every other row and column."""
    text = path.read_text(encoding="utf-8-sig") if path.exists() else "param_id,mean,stdev\n"
    rows = parse_csv(text, path.name)
    bad = [r for pid, r in rows.items() if pid in values and isinstance(r, str)]
    if bad:
        raise PriorError(bad[0])
    reader = csv.DictReader(io.StringIO(text))
    names = reader.fieldnames or ["param_id", "mean", "stdev"]
    lower = {n.strip().lower(): n for n in names}
    out_rows, seen = [], set()
    for row in reader:
        pid = (row.get(lower["param_id"]) or "").strip()
        if pid in values:
            row[lower["mean"]], row[lower["stdev"]] = repr(values[pid].mean), repr(values[pid].stdev)
            seen.add(pid)
        out_rows.append(row)
    for pid in sorted(set(values) - seen):
        out_rows.append({lower["param_id"]: pid, lower["mean"]: repr(values[pid].mean),
                         lower["stdev"]: repr(values[pid].stdev)})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(out_rows)
    write_atomic(path, buf.getvalue().encode("utf-8"))
