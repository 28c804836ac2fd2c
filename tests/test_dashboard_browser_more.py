"""The dashboard in a real browser, part two: hostile strings run nothing, the board reads a real
database, history a real Git repository, and an override in `serve` equals `whatif --set`."""
from __future__ import annotations

import textwrap
import threading

import pytest

from funnelcheck.engine import Mix, parse_override, run_whatif
from funnelcheck.load.registry import find_project, load_project
from funnelcheck.web.dashboard import Board, BoardRow, Dashboard, assemble, graph_panel
from funnelcheck.web.page import render_page
from funnelcheck.web.serve import DashboardApp, make_server
from tests.conftest import write_tree
from tests.test_dashboard_browser import (SMALL, Tab, browser, example_registry, screenshot,  # noqa: F401 - a fixture
                                          small_parameter, write_dashboard)


# --- hostile strings ---------------------------------------------------------------------------------

HOSTILE = "<script>window.pwned = 1</script></script><img src=x onerror=\"window.pwned = 2\"><!-- &amp;"


def test_hostile_registry_and_database_strings_run_nothing(browser, tmp_path):
    files = {k: v for k, v in SMALL.items()}
    quoted = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')
    files["registry/graphs/trial.yaml"] = SMALL["registry/graphs/trial.yaml"].replace(
        "name: Trial funnel", f'name: "{quoted}"\n        description: "{quoted}"').replace(
        "{id: pricing}", f'{{id: pricing, name: "{quoted}"}}')
    files["registry/contexts.yaml"] = SMALL["registry/contexts.yaml"].replace(
        "- id: channel", f'- id: channel\n            name: "{quoted}"').replace(
        "{id: google, share: 0.5}", f'{{id: google, label: "{quoted}", share: 0.5}}')
    files.update(small_parameter("to-pricing-base", "to-pricing", 0.4, 0.06))
    files.update(small_parameter("start-base", "start", 0.3, 0.05))
    files["registry/parameters/start-base.yaml"] += f'description: "{quoted}"\n'
    registry_dir = write_tree(tmp_path, files) / "registry"
    project = find_project(registry=str(registry_dir), cwd=tmp_path)
    registry = load_project(project).registry
    assert registry.graphs["trial"].name == HOSTILE
    dashboard = assemble(project, registry, None, 50, 0)
    dashboard.board = Board("2026-11-29", [BoardRow("start-base", HOSTILE, 0.3, 0.5, 200, 100, 4.1, "red", HOSTILE,
                                                    "2026-11-22 – 2026-11-29", (1.0, 4.1))])
    page = tmp_path / "index.html"
    page.write_text(render_page(dashboard))
    tab = Tab(browser, page.as_uri())
    try:
        violations = tab.page.evaluate("window.pwned === undefined")
        assert violations is True
        assert tab.errors == [] and tab.console == [] and tab.dialogs == []
        assert tab.page.locator("img").count() == 0
        assert tab.page.evaluate("document.scripts.length") == 2  # the data block and the page's own script
        assert tab.page.locator("section[data-graph=trial] h2").inner_text().startswith(HOSTILE)
        assert tab.page.locator("section[data-graph=trial] .description").inner_text() == HOSTILE
        assert tab.page.locator("tr[data-param=start-base][data-status=red] code").inner_text() == HOSTILE
        # The policy itself blocks an inline handler that got into the DOM some other way.
        tab.page.evaluate("""() => { window.cspViolations = 0;
            document.addEventListener('securitypolicyviolation', () => { window.cspViolations += 1; });
            document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.pwned = 3">'); }""")
        tab.page.wait_for_function("() => window.cspViolations > 0")
        assert tab.page.evaluate("window.pwned === undefined")
        screenshot(tab, "section[data-graph=trial]", "hostile")
    finally:
        tab.close()


# --- serve: live overrides --------------------------------------------------------------------------

def test_an_override_in_serve_equals_whatif_set(browser):
    registry = example_registry()
    panel = graph_panel(registry, "saas-signup", Board(), samples=500, seed=2)
    dashboard = Dashboard("funnelcheck dashboard", "now", [panel], Board(note="no runs"), None, 500, 2)
    httpd = make_server(DashboardApp(registry, dashboard), "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    tab = Tab(browser, f"http://127.0.0.1:{httpd.server_address[1]}/", offline=False)
    try:
        ref = "e.checkout.p.mean"
        box = tab.page.locator(f'input[data-override="{ref}"]')
        assert box.count() == 1
        tab.page.locator("input[data-context=channel][value=facebook]").set_checked(False)
        before = tab.number("[data-testid=conversion]", "data-value")
        box.fill("0.7")
        box.dispatch_event("change")
        tab.page.wait_for_function("(before) => document.querySelector('[data-testid=conversion]').dataset.value !== before",
                                   arg=repr(before))
        expected = run_whatif(registry, "saas-signup", Mix(select={"channel": ["google", "organic"]}),
                              [parse_override(f"{ref}=0.7")], samples=500, seed=2)
        assert tab.number("[data-testid=conversion]", "data-value") == pytest.approx(expected.conversion.point, abs=1e-9)
        assert tab.number("[data-testid=interval]", "data-p05") == pytest.approx(expected.conversion.p05, abs=1e-9)
        assert tab.number("[data-testid=interval]", "data-p95") == pytest.approx(expected.conversion.p95, abs=1e-9)
        box.fill("1.5")
        box.dispatch_event("change")
        tab.page.wait_for_function("() => document.querySelector('.overrides [role=status]').textContent.includes('[0, 1]')")
        assert tab.errors == []
        screenshot(tab, ".overrides", "serve-overrides")
    finally:
        tab.close()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# --- the board from a real persistence database, and history from a real Git repository ------------

def monitor_rows(run_date, statuses: dict[str, tuple[str, float]]) -> list[dict]:
    import datetime as dt

    day = dt.date.fromisoformat(run_date)
    stamp = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return [{"run_date": day, "param_id": pid, "reference": f"e.{pid}.p.mean", "n": 500, "k": 150, "rate": 0.3,
             "expected": 0.25, "stdev": 0.02, "alpha": 1.0, "beta": 3.0, "z": z, "status": status,
             "message": HOSTILE if pid == "start-base" else "", "method": "wald", "window_start": stamp - dt.timedelta(days=7),
             "window_end": stamp, "revision": None, "run_at": stamp}
            for pid, (status, z) in statuses.items()]


def test_board_and_history_from_a_database_and_git(browser, tmp_path):
    from funnelcheck.pipeline.store import monitor_results, open_store
    from tests.gitrepos import GitCli

    repo = GitCli(tmp_path / "repo")
    files = {k: textwrap.dedent(v).lstrip() for k, v in SMALL.items()}
    files.update(small_parameter("to-pricing-base", "to-pricing", 0.4, 0.06))
    files.update(small_parameter("start-base", "start", 0.3, 0.05))
    first = repo.commit("first model", files)
    second = repo.commit("start rate from Q3 data", small_parameter("start-base", "start", 0.34, 0.05), author="Grace Hopper")
    store = open_store(f"sqlite:///{tmp_path}/fc.db")
    history = {"start-base": [], "to-pricing-base": []}
    with store.engine.begin() as conn:
        for day, z in (("2026-11-27", 1.1), ("2026-11-28", 2.5), ("2026-11-29", 3.6)):
            conn.execute(monitor_results.insert(), monitor_rows(day, {"start-base": ("red" if z > 3 else "amber" if z > 2 else "green", z),
                                                                      "to-pricing-base": ("green", -0.4)}))
            history["start-base"].append(z)
    store.close()
    registry_dir = repo.path / "registry"
    page = write_dashboard(registry_dir, tmp_path / "out", samples=100, database=f"sqlite:///{tmp_path}/fc.db")
    tab = Tab(browser, page.as_uri())
    try:
        rows = tab.page.locator("#board tr[data-param]")
        assert rows.count() == 2
        assert tab.page.locator("tr[data-param=start-base][data-status=red]").count() == 1
        assert tab.page.locator("tr[data-param=to-pricing-base][data-status=green]").count() == 1
        assert tab.page.locator("tr[data-param=start-base] .spark polyline").get_attribute("points").count(",") == 3
        # The edge is marked with its parameters' worst status.
        assert "status-red" in tab.page.locator("[data-edge=start]").get_attribute("class")
        assert "status-green" in tab.page.locator("[data-edge=to-pricing]").get_attribute("class")
        # A database string is text: its title attribute holds the hostile message verbatim.
        assert tab.page.locator("tr[data-param=start-base] .chip").get_attribute("title") == HOSTILE
        # Filter by status, then sort by σ both ways.
        tab.page.locator("input[data-status-filter=green]").set_checked(False)
        assert tab.page.locator("#board tr[data-param]").count() == 1
        tab.page.locator("input[data-status-filter=green]").set_checked(True)
        tab.page.locator("button[data-sort='σ']").click()
        assert [r.get_attribute("data-param") for r in rows.all()] == ["to-pricing-base", "start-base"]
        tab.page.locator("button[data-sort='σ']").click()
        assert [r.get_attribute("data-param") for r in rows.all()] == ["start-base", "to-pricing-base"]
        screenshot(tab, "#board", "board-from-database")
        # History: the changed parameter has a chart, each commit a point with its details on hover.
        dots = tab.page.locator("figure[data-history=start-base] circle")
        assert [d.get_attribute("data-commit") for d in dots.all()] == [first, second]
        dots.nth(1).hover()
        tip = tab.page.locator(".tooltip")
        assert tip.is_visible()
        text = tip.inner_text()
        assert second[:10] in text and "Grace Hopper" in text and "start rate from Q3 data" in text and "0.3400" in text
        assert tab.page.locator("#history tr[data-history=to-pricing-base]").count() == 1
        screenshot(tab, "#history", "history-from-git")
        assert tab.errors == [] and tab.console == []
    finally:
        tab.close()
