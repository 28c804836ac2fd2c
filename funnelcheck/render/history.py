"""Render a parameter's history (`funnelcheck history`): an aligned table, CSV, or the JSON rows of docs/cli.md."""
from __future__ import annotations

import csv
import io

from funnelcheck.render.format import columns, one_line, signed

COLUMNS = ("commit", "date", "author", "mean", "stdev", "change", "status", "path", "message")
CSV_FIELDS = ("commit", "date", "author", "email", "message", "path", "mean", "stdev", "change", "status")


def _cell(row: dict, column: str) -> str:
    value = row[column]
    if column == "commit":
        return value[:10]
    if column == "date":
        return value[:16].replace("T", " ")
    if column == "change":
        return signed(value)
    if column in ("mean", "stdev"):
        return "-" if value is None else f"{value:.4g}"
    return "-" if value is None else one_line(value, 60)


def table(rows: list[dict]) -> str:
    """Aligned columns, newest first; the message column is last and shortened."""
    return "\n".join(columns([c.upper() for c in COLUMNS], [[_cell(r, c) for c in COLUMNS] for r in rows])) + "\n"


def as_csv(rows: list[dict]) -> str:
    """Full values (whole commit id, ISO date, full message line), one row per change."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in rows:
        writer.writerow(["" if r[f] is None else r[f] for f in CSV_FIELDS])
    return out.getvalue()


def shallow_warning(truncated_at: str) -> str:
    return (f"funnelcheck history: warning: history stops at {truncated_at[:10]} because the clone is "
            "shallow; fetch with full history (git fetch --unshallow)\n")
