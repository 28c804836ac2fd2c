"""`priors sync` / `priors push`: the sheet's numbers reach the YAML once, an accepted posterior is
never reverted, push writes it back, and a later human edit in the sheet comes back."""
from __future__ import annotations

import json

from funnelcheck.load.registry import find_project, load_project
from funnelcheck.model import Estimate
from funnelcheck.pipeline.priorsync import KEPT, PUSHED, UNCHANGED, UPDATE, plan_sync, push, rewrite_value, write_sync
from tests.conftest import write_tree
from tests.fakeservers import sheets  # noqa: F401  (fixture)
from tests.test_priors import open_sources, project_files

KEY = ("SHEET1", "Priors!B2:C2")


def sync(root, write=True, env=None):
    src, store = open_sources(root, env=env)
    report = plan_sync(src, store)
    if write:
        write_sync(report, src, store)
    return {i.param_id: i for i in report.items}, report


def value_of(root, pid):
    loaded = load_project(find_project(config=str(root / "funnelcheck.yaml")))
    return loaded.registry.parameters[pid]


def accept_posterior(root, rel, mean, stdev, alpha, beta):
    """What a merged posterior PR leaves in the file (update's three keys)."""
    path = root / rel
    text = path.read_text().replace("value: {mean: 0.35, stdev: 0.04}", f"value: {{mean: {mean}, stdev: {stdev}}}")
    path.write_text(text + f"bayesian_update:\n  prior: {{alpha: {alpha}, beta: {beta}}}\n"
                           "  updated_through: '2026-11-20T00:00:00Z'\n")


def test_sync_update_sync_keeps_the_posterior_push_sends_it_and_a_human_edit_comes_back(tmp_path, sheets):
    write_tree(tmp_path, project_files(sheets.url))
    sheets.cells[KEY] = [[0.35, 0.04]]
    items, _ = sync(tmp_path, write=False)
    assert items["a-sheet"].action == UPDATE and value_of(tmp_path, "a-sheet").value == Estimate(0.3, 0.05)
    items, report = sync(tmp_path)
    assert report.written == [items["a-sheet"].file]
    text = (tmp_path / "registry/parameters/a-sheet.yaml").read_text()
    assert "value: {mean: 0.35, stdev: 0.04}" in text and "# the product team's estimate" in text
    assert items["b-csv"].action == UNCHANGED

    accept_posterior(tmp_path, "registry/parameters/a-sheet.yaml", 0.342857, 0.0358, 60, 115)
    items, report = sync(tmp_path)
    assert items["a-sheet"].action == KEPT and report.written == []
    assert value_of(tmp_path, "a-sheet").value == Estimate(0.342857, 0.0358)

    src, store = open_sources(tmp_path, env={"GOOGLE_SHEETS_TOKEN": "w"})
    pushed = {i.param_id: i for i in push(src, store).items}
    assert pushed["a-sheet"].action == PUSHED and sheets.cells[KEY] == [[0.342857, 0.0358]]
    put = [r for r in sheets.requests if r.method == "PUT"][-1]
    assert put.query["valueInputOption"] == "RAW" and json.loads(put.body)["values"] == [[0.342857, 0.0358]]
    items, _ = sync(tmp_path)
    assert items["a-sheet"].action == UNCHANGED

    sheets.cells[KEY] = [["40%", "5%"]]  # a product manager's new estimate
    items, report = sync(tmp_path)
    assert items["a-sheet"].action == UPDATE and "'40%' read as 0.4" in items["a-sheet"].note
    p = value_of(tmp_path, "a-sheet")
    assert p.value == Estimate(0.4, 0.05)
    assert "prior" not in p.bayesian_update and p.bayesian_update["updated_through"] == "2026-11-20T00:00:00Z"


def test_push_rewrites_the_local_csv_keeping_other_rows_and_adding_a_missing_one(tmp_path, sheets):
    write_tree(tmp_path, project_files(sheets.url, "param_id,mean,stdev,owner\nzzz,0.9,0.01,ann\nb-csv,0.4,0.05,bob\n"))
    (tmp_path / "registry/parameters/c-csv.yaml").write_text(
        "id: c-csv\nedge: cd\nprior_source: {type: csv, path: priors.csv}\nvalue: {mean: 0.21, stdev: 0.03}\n")
    src, store = open_sources(tmp_path)
    report = push(src, store)
    actions = {i.param_id: i.action for i in report.items}
    assert actions["b-csv"] == actions["c-csv"] == PUSHED
    assert actions["a-sheet"] == "error" and "GOOGLE_SHEETS_TOKEN" in report.items[0].note
    lines = (tmp_path / "registry/priors.csv").read_text().splitlines()
    assert lines == ["param_id,mean,stdev,owner", "zzz,0.9,0.01,ann", "b-csv,0.4,0.05,bob", "c-csv,0.21,0.03,"]
    items, _ = sync(tmp_path)
    assert items["c-csv"].action == UNCHANGED


def test_a_failing_source_is_reported_and_the_others_still_sync(tmp_path, sheets):
    write_tree(tmp_path, project_files(sheets.url, "param_id,mean,stdev\nb-csv,0.45,0.05\n"))
    sheets.cells[KEY] = [[0.3]]
    items, report = sync(tmp_path)
    assert items["a-sheet"].action == "error" and "gave 1 cell" in items["a-sheet"].note
    assert items["b-csv"].action == UPDATE and value_of(tmp_path, "b-csv").value == Estimate(0.45, 0.05)
    assert items["c-csv"].action == "error"


def test_rewrite_value_keeps_comments_and_order():
    text = "# head\nid: x  # the id\nedge: e\nvalue:\n  mean: 0.1   # old\n  stdev: 0.02\nbayesian_update:\n  prior: {alpha: 1, beta: 9}\n"
    out = rewrite_value(text, Estimate(0.2, 0.03))
    assert out == "# head\nid: x  # the id\nedge: e\nvalue:\n  mean: 0.2   # old\n  stdev: 0.03\n"
