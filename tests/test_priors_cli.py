"""The commands: `priors sync|push`, `alerts test`, and monitor/update reading the live prior and alerting."""
from __future__ import annotations

import json
import sqlite3

import pytest

from funnelcheck.pipeline import stats
from tests.conftest import write_tree
from tests.fakeservers import hooks, sheets  # noqa: F401  (fixtures)
from tests.test_priors import project_files

KEY = ("SHEET1", "Priors!B2:C2")
N, K = 892, 375


@pytest.fixture
def project(tmp_path, sheets, hooks, monkeypatch):
    """The priors project plus an SQL observation source on parameter a-sheet and a webhook channel."""
    write_tree(tmp_path, project_files(sheets.url))
    config = tmp_path / "funnelcheck.yaml"
    config.write_text(config.read_text() + "  obs: {url: \"sqlite:///obs.db\"}\nalerts:\n  webhook: {url_env: HOOK}\n")
    with sqlite3.connect(tmp_path / "obs.db") as db:
        db.execute("CREATE TABLE counts (trials INTEGER, successes INTEGER)")
        db.execute("INSERT INTO counts VALUES (?, ?)", (N, K))
    param = tmp_path / "registry/parameters/a-sheet.yaml"
    param.write_text(param.read_text() + "observation_source:\n  type: sql\n  connection: obs\n  query: >-\n"
                     "    SELECT trials, successes FROM counts WHERE :window_start < :window_end\n")
    monkeypatch.setenv("HOOK", hooks.url + "/hook")
    monkeypatch.setenv("GOOGLE_SHEETS_TOKEN", "tok")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_monitor_judges_against_the_sheet_and_alerts_once(project, sheets, hooks, cli):
    sheets.cells[KEY] = [[0.55, 0.02]]
    r = cli("monitor", "--as-of", "2026-11-20", "--format", "json")
    assert r.code == 0, r
    check, = json.loads(r.out)["parameters"]
    assert check["prior"]["source"] == "sheets" and check["prior"]["fallback"] is False
    expected = stats.moment_match(0.55, 0.02)
    assert check["prior"]["alpha"] == pytest.approx(expected.alpha)
    z = (K / N - 0.55) / ((K / N) * (1 - K / N) / N) ** 0.5
    assert check["z"] == pytest.approx(z) and check["status"] == "red"
    assert len(hooks.received) == 1 and "alert sent (webhook)" in r.err
    assert cli("monitor", "--as-of", "2026-11-21").code == 0
    assert len(hooks.received) == 1  # still red: not again


def test_a_failing_sheet_and_webhook_change_neither_exit_code_nor_results(project, sheets, hooks, cli):
    sheets.down = True
    hooks.answers = [500] * 3
    r = cli("monitor", "--as-of", "2026-11-20", "--format", "json")
    assert r.code == 0, r
    check, = json.loads(r.out)["parameters"]
    assert check["prior"]["fallback"] is True and check["prior"]["mean"] == pytest.approx(0.3)
    assert "a-sheet: prior source failed" in r.err and "answered 503" in r.err
    assert "not sent (webhook), kept in the outbox" in r.err
    text = cli("monitor", "--as-of", "2026-11-20")
    assert "fallback" in text.out
    assert len(hooks.received) == 1  # the pending alert went out with the next run


def test_priors_sync_write_then_update_starts_from_it(project, sheets, cli):
    sheets.cells[KEY] = [["35%", "4%"]]
    r = cli("priors", "sync", "--write", "--registry", "registry")
    assert r.code == 0, r
    assert "a-sheet (sheets): 0.3 ± 0.05 → 0.35 ± 0.04: changed in the source" in r.out
    assert "the mean '35%' read as 0.35" in r.out
    assert "c-csv" in r.err and "no row for c-csv" in r.err
    r = cli("update", "--as-of", "2026-11-20", "--write", "--format", "json")
    assert r.code == 0, r
    change = next(c for c in json.loads(r.out) if c["id"] == "a-sheet")
    prior = stats.moment_match(0.35, 0.04)
    assert change["prior"]["alpha"] == pytest.approx(prior.alpha)
    assert change["posterior"]["alpha"] == pytest.approx(prior.alpha + K)
    assert change["posterior"]["beta"] == pytest.approx(prior.beta + N - K)
    r = cli("priors", "sync", "--write")
    assert "kept the registry's value" in r.out
    r = cli("priors", "push", "--format", "json")
    assert r.code == 0, r
    post = change["posterior"]
    assert sheets.cells[KEY] == [[round(post["mean"], 6), round(post["stdev"], 6)]]


def test_push_without_a_writing_token_exits_1_with_a_line(project, sheets, cli, monkeypatch):
    monkeypatch.delenv("GOOGLE_SHEETS_TOKEN")
    r = cli("priors", "push")
    assert r.code == 1 and "a-sheet: writing to Google Sheets needs a token that may write" in r.err


def test_alerts_test_command(project, hooks, cli, monkeypatch):
    r = cli("alerts", "test")
    assert r.code == 0 and "webhook: sent" in r.out and len(hooks.received) == 1
    monkeypatch.setenv("HOOK", "http://127.0.0.1:9/x")
    r = cli("alerts", "test")
    assert r.code == 1 and "webhook: FAILED: webhook: cannot reach http://127.0.0.1:9/x" in r.out


def test_an_inline_secret_is_a_validation_finding(project, cli):
    config = project / "funnelcheck.yaml"
    config.write_text(config.read_text().replace("webhook: {url_env: HOOK}",
                                                 "slack: {webhook_url: \"https://hooks.slack.com/services/T/B/x\"}"))
    r = cli("validate")
    assert r.code == 1 and "inline-credential" in r.out


def test_sync_json_and_a_csv_at_a_url(project, sheets, hooks, cli):
    hooks.files["/priors.csv"] = b"param_id,mean,stdev\nb-csv,45%,0.05\n"
    param = project / "registry/parameters/b-csv.yaml"
    param.write_text(param.read_text().replace("path: priors.csv", f"url: \"{hooks.url}/priors.csv\""))
    sheets.cells[KEY] = [[0.3, 0.05]]
    r = cli("priors", "sync", "--format", "json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert data["summary"] == {"update": 1, "unchanged": 1, "kept": 0, "error": 1}
    b = next(p for p in data["parameters"] if p["id"] == "b-csv")
    assert b["action"] == "update" and b["source_value"] == {"mean": 0.45, "stdev": 0.05}
    assert data["written"] == []
    r = cli("priors", "push")
    assert "b-csv (csv): 0.4 ± 0.05: not writable" in r.out


def test_sync_write_refuses_a_registry_with_errors(project, sheets, cli):
    sheets.cells[KEY] = [[0.35, 0.04]]
    (project / "registry/parameters/d.yaml").write_text("id: d\nedge: nowhere\nvalue: {mean: 0.5, stdev: 0.1}\n")
    before = (project / "registry/parameters/a-sheet.yaml").read_text()
    r = cli("priors", "sync", "--write")
    assert r.code == 1 and "priors sync --write refused, nothing written: registry/parameters/d.yaml" in r.err
    assert (project / "registry/parameters/a-sheet.yaml").read_text() == before
