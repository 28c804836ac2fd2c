"""Prior sources (SPEC 8.1): Sheets, CSV and SQL against real servers and files, the cache, the fallback."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from funnelcheck.load.registry import find_project, load_project
from funnelcheck.model import Estimate
from funnelcheck.pipeline.connections import Connections
from funnelcheck.pipeline.priors import PriorError, PriorSources, checked_estimate, parse_csv, read_probability
from funnelcheck.pipeline.store import open_store
from tests.conftest import write_tree
from tests.fakeservers import sheets  # noqa: F401  (fixture)

SHEET = "https://docs.google.com/spreadsheets/d/SHEET1/edit#gid=0"
T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


def project_files(api_url: str, csv_text: str | None = "param_id,mean,stdev\nb-csv,0.4,0.05\n") -> dict:
    files = {
        "funnelcheck.yaml": f"""
            registry: registry
            database: sqlite:///state.db
            sheets: {{api_url: "{api_url}"}}
            connections:
              priorsdb: {{url: "sqlite:///priors.db"}}
        """,
        "registry/contexts.yaml": """
            contexts:
              - id: device
                values: [{id: mobile, share: 0.5}, {id: desktop, share: 0.5}]
        """,
        "registry/graphs/g.yaml": """
            id: g
            nodes:
              - {id: a, entry: {weight: 1.0}}
              - {id: b}
              - {id: c}
              - {id: d, outcome: success}
            edges:
              - {id: ab, from: a, to: b}
              - {id: bc, from: b, to: c}
              - {id: cd, from: c, to: d}
        """,
        "registry/parameters/a-sheet.yaml": f"""
            id: a-sheet
            edge: ab
            # the product team's estimate
            prior_source: {{type: sheets, url: "{SHEET}", range: "Priors!B2:C2", refresh_frequency: 1h}}
            fallback_value: {{mean: 0.3, stdev: 0.05}}
            value: {{mean: 0.3, stdev: 0.05}}
        """,
        "registry/parameters/b-csv.yaml": """
            id: b-csv
            edge: bc
            prior_source: {type: csv, path: priors.csv}
            value: {mean: 0.4, stdev: 0.05}
        """,
        "registry/parameters/c-csv.yaml": """
            id: c-csv
            edge: cd
            prior_source: {type: csv, path: priors.csv}
            fallback_value: {mean: 0.2, stdev: 0.05}
        """,
    }
    if csv_text is not None:
        files["registry/priors.csv"] = csv_text
    return files


def open_sources(root, now=T0, env=None, with_store=True):
    project = find_project(config=str(root / "funnelcheck.yaml"))
    loaded = load_project(project)
    errors = [f for f in loaded.findings if f.severity == "error"]
    assert not errors, errors
    store = open_store("sqlite:///state.db", project.base) if with_store else None
    conns = Connections(loaded.registry.config.data.get("connections"), project.base)
    return PriorSources(loaded.registry, conns, project.base, store, now=now, env=env or {}), store


def test_sheet_value_is_read_with_the_api_key_and_cached_for_refresh_frequency(tmp_path, sheets):
    write_tree(tmp_path, project_files(sheets.url))
    sheets.cells[("SHEET1", "Priors!B2:C2")] = [[0.35, 0.04]]
    src, store = open_sources(tmp_path, env={"GOOGLE_SHEETS_API_KEY": "k123"})
    got = src(src.registry.parameters["a-sheet"])
    assert (got.estimate, got.source, got.fallback) == (Estimate(0.35, 0.04), "sheets", False)
    req = sheets.requests[-1]
    assert req.path == "/v4/spreadsheets/SHEET1/values/Priors!B2:C2" and req.query["key"] == "k123"
    # a person edits the sheet: within the hour the cache answers, after it the new value comes
    sheets.cells[("SHEET1", "Priors!B2:C2")] = [[0.5, 0.04]]
    later, _ = open_sources(tmp_path, now=T0 + timedelta(minutes=59))
    assert later(later.registry.parameters["a-sheet"]).estimate == Estimate(0.35, 0.04)
    assert len(sheets.requests) == 1
    expired, _ = open_sources(tmp_path, now=T0 + timedelta(minutes=61))
    assert expired(expired.registry.parameters["a-sheet"]).estimate == Estimate(0.5, 0.04)
    assert len(sheets.requests) == 2
    store.close()


def test_bearer_token_is_preferred_and_sent_as_authorization(tmp_path, sheets):
    write_tree(tmp_path, project_files(sheets.url))
    sheets.cells[("SHEET1", "Priors!B2:C2")] = [["32%", "6%"]]
    src, _ = open_sources(tmp_path, env={"GOOGLE_SHEETS_TOKEN": "tok", "GOOGLE_SHEETS_API_KEY": "k"})
    got = src(src.registry.parameters["a-sheet"])
    assert got.estimate == Estimate(0.32, 0.06)
    assert sheets.requests[-1].headers["authorization"] == "Bearer tok" and "key" not in sheets.requests[-1].query
    assert "'32%' read as 0.32" in src.notes["a-sheet"]


@pytest.mark.parametrize("rows, says", [
    ([[0.3]], "gave 1 cell; expected two"),
    ([["high", 0.05]], "is the text 'high', not a number"),
    ([[0.3, 0.05, 0.1]], "gave 3 cells"),
    ([[1.3, 0.05]], "mean 1.3 is not a probability"),
    ([[0.3, 0.6]], "stdev 0.6 is not feasible"),
    ([[32, 6]], "mean 32 is not a probability"),
])
def test_a_bad_range_falls_back_marked_and_says_why(tmp_path, sheets, rows, says):
    write_tree(tmp_path, project_files(sheets.url))
    sheets.cells[("SHEET1", "Priors!B2:C2")] = rows
    src, _ = open_sources(tmp_path)
    got = src(src.registry.parameters["a-sheet"])
    assert (got.estimate, got.fallback, got.error) == (Estimate(0.3, 0.05), True, None)
    assert says in src.problems["a-sheet"]


def test_unreachable_sheets_api_falls_back_and_the_failure_is_not_cached(tmp_path, sheets):
    write_tree(tmp_path, project_files("http://127.0.0.1:9"))
    src, _ = open_sources(tmp_path)
    got = src(src.registry.parameters["a-sheet"])
    assert got.fallback and "cannot reach http://127.0.0.1:9/v4/spreadsheets" in src.problems["a-sheet"]
    sheets.down = True
    write_tree(tmp_path, project_files(sheets.url))
    src, _ = open_sources(tmp_path)
    assert src(src.registry.parameters["a-sheet"]).fallback and "answered 503" in src.problems["a-sheet"]
    sheets.down = False
    sheets.cells[("SHEET1", "Priors!B2:C2")] = [[0.31, 0.05]]
    src, _ = open_sources(tmp_path)  # same minute: a failure left no cache entry
    assert src(src.registry.parameters["a-sheet"]).estimate == Estimate(0.31, 0.05)


def test_one_csv_read_serves_every_parameter_and_a_missing_row_falls_back(tmp_path, sheets, monkeypatch):
    write_tree(tmp_path, project_files(sheets.url))
    src, _ = open_sources(tmp_path)
    reads = []
    original = PriorSources._csv_text
    monkeypatch.setattr(PriorSources, "_csv_text", staticmethod(lambda s, loc: reads.append(loc) or original(s, loc)))
    b = src(src.registry.parameters["b-csv"])
    c = src(src.registry.parameters["c-csv"])
    assert (b.estimate, b.fallback) == (Estimate(0.4, 0.05), False)
    assert (c.estimate, c.fallback, c.source) == (Estimate(0.2, 0.05), True, "csv")
    assert src.problems["c-csv"] == "priors.csv has no row for c-csv"
    assert len(reads) == 1


def test_duplicate_csv_rows_refuse_that_parameter_only(tmp_path, sheets):
    text = "param_id,mean,stdev\nb-csv,0.4,0.05\nc-csv,0.1,0.02\nb-csv,0.45,0.05\n"
    write_tree(tmp_path, project_files(sheets.url, text))
    src, _ = open_sources(tmp_path)
    b = src(src.registry.parameters["b-csv"])
    assert b.estimate is None and "2 rows for b-csv (lines 2, 4)" in b.error and "no fallback_value" in b.error
    assert src(src.registry.parameters["c-csv"]).estimate == Estimate(0.1, 0.02)


def test_missing_csv_file_with_no_fallback_is_an_error_value(tmp_path, sheets):
    write_tree(tmp_path, project_files(sheets.url, csv_text=None))
    src, _ = open_sources(tmp_path)
    b = src(src.registry.parameters["b-csv"])
    assert b.estimate is None and "cannot read priors.csv" in b.error
    assert src(src.registry.parameters["c-csv"]).fallback


def test_sql_prior_reads_one_row(tmp_path, sheets):
    import sqlite3

    write_tree(tmp_path, project_files(sheets.url))
    with sqlite3.connect(tmp_path / "priors.db") as db:
        db.execute("CREATE TABLE priors (id TEXT, mean REAL, stdev REAL)")
        db.executemany("INSERT INTO priors VALUES (?, ?, ?)", [("x", 0.25, 0.03), ("y", 0.5, 0.1)])
    param = tmp_path / "registry/parameters/b-csv.yaml"
    param.write_text(param.read_text().replace(
        "{type: csv, path: priors.csv}", "{type: sql, connection: priorsdb, query: \"SELECT mean, stdev FROM priors WHERE id = 'x'\"}"))
    src, _ = open_sources(tmp_path)
    assert src(src.registry.parameters["b-csv"]).estimate == Estimate(0.25, 0.03)
    param.write_text(param.read_text().replace(" WHERE id = 'x'", ""))
    src, _ = open_sources(tmp_path)
    assert "returned 2 rows; expected one" in src(src.registry.parameters["b-csv"]).error


def test_a_csv_path_leaving_the_project_is_refused(tmp_path, sheets):
    write_tree(tmp_path, project_files(sheets.url))
    param = tmp_path / "registry/parameters/b-csv.yaml"
    param.write_text(param.read_text().replace("path: priors.csv", "path: ../../../etc/passwd"))
    src, _ = open_sources(tmp_path)
    assert "leaves the project folder" in src(src.registry.parameters["b-csv"]).error


@given(st.floats(0.0, 100.0, allow_nan=False).map(lambda x: round(x, 3)))
def test_percent_text_equals_the_number_divided_by_100(x):
    value, note = read_probability(f"{x}%", "cell")
    assert math.isclose(value, x / 100, rel_tol=1e-12, abs_tol=1e-15) and note


@given(st.floats(0.01, 0.99), st.floats(0.0, 0.6))
def test_feasibility_matches_the_beta_bound(mean, stdev):
    feasible = stdev ** 2 < mean * (1 - mean)
    try:
        checked_estimate(mean, stdev, "x")
        assert feasible
    except PriorError:
        assert not feasible


def test_csv_without_the_header_is_refused_for_every_row():
    with pytest.raises(PriorError, match="missing columns mean, stdev"):
        parse_csv("param_id,value\na,0.3\n", "p.csv")


def test_an_unreachable_sheets_api_is_tried_once_per_run(tmp_path, sheets, monkeypatch):
    import funnelcheck.pipeline.priors as priors

    write_tree(tmp_path, project_files("http://127.0.0.1:9"))
    second = tmp_path / "registry/parameters/b-csv.yaml"
    second.write_text(second.read_text().replace("{type: csv, path: priors.csv}",
                                                 f"{{type: sheets, url: \"{SHEET}\", range: \"Priors!B3:C3\"}}"))
    calls = []
    monkeypatch.setattr(priors, "call", _raising(calls))
    src, _ = open_sources(tmp_path)
    assert src(src.registry.parameters["a-sheet"]).fallback
    assert "down" in src(src.registry.parameters["b-csv"]).error
    assert len(calls) == 1


def _raising(calls):
    from funnelcheck.pipeline.httpclient import HttpFailure

    def call(*args, **kwargs):
        calls.append(args)
        raise HttpFailure("cannot reach http://127.0.0.1:9/v4: down")
    return call
