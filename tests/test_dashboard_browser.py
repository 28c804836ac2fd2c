"""The dashboard in a real browser (Debian's chromium through Playwright, no browser download).

Ticking and unticking gives `whatif --select`'s numbers, an override in `serve` gives
`whatif --set`'s, hostile registry strings run nothing, and the page works from file:// with
the network off. Screenshots of each section go to test-artifacts/dashboard/ (git-ignored).
"""
from __future__ import annotations

import os
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from funnelcheck.engine import Mix, parse_override, run_whatif
from funnelcheck.findings import UsageError
from funnelcheck.load.registry import find_project, load_project
from funnelcheck.web.dashboard import Board, Dashboard, assemble, graph_panel
from funnelcheck.web.page import render_page
from funnelcheck.web.serve import DashboardApp, make_server
from tests.conftest import EXAMPLE, REPO, write_tree

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("FUNNELCHECK_TEST_ARTIFACTS", REPO / "test-artifacts")) / "dashboard"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: the browser tests must run in CI (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        yield b
        b.close()


class Tab:
    """A page in its own context that records console output, errors and every request."""

    def __init__(self, browser, url: str, offline: bool = True):
        self.context = browser.new_context(offline=offline, viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.console, self.errors, self.requests, self.dialogs = [], [], [], []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready=true]", state="attached")

    def number(self, selector: str, attribute: str) -> float:
        return float(self.page.locator(selector).first.get_attribute(attribute))

    def close(self) -> None:
        self.context.close()


def screenshot(tab: Tab, selector: str, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ignore = ARTIFACTS.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    path = ARTIFACTS / f"{name}.png"
    tab.page.locator(selector).first.screenshot(path=str(path))
    assert path.stat().st_size > 1000
    return path


def write_dashboard(registry_dir: Path, out: Path, samples: int = 2000, seed: int = 0, database: str | None = None) -> Path:
    project = find_project(registry=str(registry_dir), cwd=registry_dir.parent)
    registry = load_project(project).registry
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    page.write_text(render_page(assemble(project, registry, database, samples, seed)))
    return page


# --- the example registry: sections, screenshots, file:// offline ------------------------------------

@pytest.fixture(scope="module")
def example_tab(browser, tmp_path_factory):
    page = write_dashboard(EXAMPLE, tmp_path_factory.mktemp("example"),
                           database=f"sqlite:///{tmp_path_factory.mktemp('db')}/none.db")
    tab = Tab(browser, page.as_uri())
    yield tab
    tab.close()


def example_registry():
    return load_project(find_project(registry=str(EXAMPLE))).registry


def test_page_works_offline_from_file_and_loads_nothing_else(example_tab):
    tab = example_tab
    assert tab.errors == [] and tab.console == []
    assert all(url.startswith(("file:", "data:")) for url in tab.requests), tab.requests
    assert tab.page.locator("section[data-graph=saas-signup]").count() == 1
    boxes = tab.page.locator("section[data-graph=saas-signup] input[type=checkbox][data-context]")
    assert boxes.count() == 12
    for i in range(boxes.count()):  # every checkbox has a label
        box = boxes.nth(i)
        assert box.is_checked()
        assert tab.page.locator(f"label[for='{box.get_attribute('id')}']").count() == 1
    # No database here: the board says why it is empty instead of failing.
    assert tab.page.locator("#board [data-testid=board-note]").inner_text().strip()
    assert tab.page.locator("tr[data-param]").count() == 0
    for section, name in (("section[data-graph=saas-signup]", "whatif"), ("#board", "board"), ("#history", "history")):
        if tab.page.locator(section).count():
            screenshot(tab, section, name)


@pytest.mark.parametrize("untick", [
    [],
    [("channel", "facebook")],
    [("channel", "facebook"), ("device", "desktop")],
    [("channel", "google"), ("channel", "organic"), ("browser", "chrome"), ("utm_source", "partner")],
])
def test_unticking_values_gives_whatif_select(example_tab, untick):
    page = example_tab.page
    for box in page.locator("section[data-graph=saas-signup] input[data-context]").all():
        box.set_checked(True)
    for key, value in untick:
        page.locator(f"input[type=checkbox][data-context={key}][value={value}]").set_checked(False)
    registry = example_registry()
    kept = {}
    for ctx in registry.contexts:
        dropped = {v for k, v in untick if k == ctx.id}
        if dropped:
            kept[ctx.id] = [v for v in ctx.value_ids() if v not in dropped]
    expected = run_whatif(registry, "saas-signup", Mix(select=kept))
    section = "section[data-graph=saas-signup]"
    tab = example_tab
    assert tab.number(f"{section} [data-testid=conversion]", "data-value") == pytest.approx(expected.conversion.point, abs=1e-9)
    assert tab.number(f"{section} [data-testid=interval]", "data-p05") == pytest.approx(expected.conversion.p05, abs=1e-9)
    assert tab.number(f"{section} [data-testid=interval]", "data-p95") == pytest.approx(expected.conversion.p95, abs=1e-9)
    for node, result in expected.nodes.items():
        assert tab.number(f"{section} [data-node={node}]", "data-visits") == pytest.approx(result.visits, abs=1e-9)
    for edge, result in expected.edges.items():
        assert tab.number(f"{section} [data-edge={edge}]", "data-flow") == pytest.approx(result.flow, abs=1e-9)
        assert tab.number(f"{section} [data-edge={edge}]", "data-p") == pytest.approx(result.p, abs=1e-9)
    if untick:
        screenshot(tab, section, f"whatif-untick-{len(untick)}")


def test_unticking_every_value_of_a_context_says_so(example_tab):
    page = example_tab.page
    for box in page.locator("section[data-graph=saas-signup] input[data-context]").all():
        box.set_checked(True)
    for value in ("mobile", "desktop"):
        page.locator(f"input[data-context=device][value={value}]").set_checked(False)
    alert = page.locator("section[data-graph=saas-signup] [role=alert]")
    assert alert.is_visible() and "Device Type" in alert.inner_text()
    with pytest.raises(UsageError, match="no traffic left"):
        run_whatif(example_registry(), "saas-signup", Mix(select={"device": []}), samples=1)
    page.locator("input[data-context=device][value=mobile]").set_checked(True)
    assert not alert.is_visible()


# --- a small registry: any selection, against the engine -----------------------------------------------

SMALL = {
    "registry/contexts.yaml": """
        contexts:
          - id: channel
            values:
              - {id: google, share: 0.5}
              - {id: facebook, share: 0.3}
              - {id: direct, share: 0.2}
          - id: device
            values:
              - {id: mobile, share: 0.65}
              - {id: desktop, share: 0.35}
          - id: plan
            values: [{id: free}, {id: team}, {id: enterprise}]
        """,
    "registry/graphs/trial.yaml": """
        id: trial
        name: Trial funnel
        nodes:
          - {id: home, entry: {weight: 0.8}}
          - {id: blog, entry: {weight: 0.2}}
          - {id: pricing}
          - {id: trial, outcome: success}
          - {id: lost, outcome: failure}
        edges:
          - {id: to-pricing, from: home, to: pricing}
          - {id: blog-pricing, from: blog, to: pricing, p: {mean: 0.3, stdev: 0.05}}
          - {id: back-home, from: pricing, to: home, p: {mean: 0.2, stdev: 0.04}}
          - {id: start, from: pricing, to: trial}
          - {id: leave, from: pricing, to: lost, p: {mean: 0.1, stdev: 0.0}}
        """,
}


def small_parameter(pid, edge, mean, stdev, context=None, visited=None):
    lines = [f"id: {pid}", f"edge: {edge}", f"value: {{mean: {mean}, stdev: {stdev}}}"]
    if context:
        lines.append("context_filter: {" + ", ".join(f"{k}: {v}" for k, v in context.items()) + "}")
    if visited:
        lines.append(f"visited_filter: [{', '.join(visited)}]")
    return {f"registry/parameters/{pid}.yaml": "\n".join(lines) + "\n"}


def small_registry(root: Path) -> Path:
    files = dict(SMALL)
    for args in [("to-pricing-base", "to-pricing", 0.4, 0.06), ("to-pricing-google", "to-pricing", 0.55, 0.05, {"channel": "google"}),
                 ("start-base", "start", 0.3, 0.05), ("start-mobile", "start", 0.2, 0.04, {"device": "mobile"}),
                 ("start-facebook-desktop", "start", 0.45, 0.06, {"channel": "facebook", "device": "desktop"}),
                 ("start-after-blog", "start", 0.5, 0.05, None, ["blog"])]:
        files.update(small_parameter(*args))
    return write_tree(root, files) / "registry"


@pytest.fixture(scope="module")
def small_tab(browser, tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    registry_dir = small_registry(root)
    page = write_dashboard(registry_dir, root / "out", samples=500, seed=11)
    tab = Tab(browser, page.as_uri())
    yield tab, load_project(find_project(registry=str(registry_dir), cwd=root)).registry
    tab.close()


VALUES = [("channel", "google"), ("channel", "facebook"), ("channel", "direct"), ("device", "mobile"),
          ("device", "desktop"), ("plan", "free"), ("plan", "team"), ("plan", "enterprise")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.booleans(), min_size=len(VALUES), max_size=len(VALUES)))
def test_any_selection_matches_whatif_select(small_tab, ticks):
    tab, registry = small_tab
    for (key, value), on in zip(VALUES, ticks):
        tab.page.locator(f"input[data-context={key}][value={value}]").set_checked(on)
    select = {key: [v for (k, v), on in zip(VALUES, ticks) if k == key and on] for key, _ in VALUES}
    alert = tab.page.locator("section[data-graph=trial] [role=alert]")
    try:
        expected = run_whatif(registry, "trial", Mix(select=select), samples=500, seed=11)
    except UsageError:
        assert alert.is_visible()
        return
    assert not alert.is_visible()
    section = "section[data-graph=trial]"
    assert tab.number(f"{section} [data-testid=conversion]", "data-value") == pytest.approx(expected.conversion.point, abs=1e-9)
    assert tab.number(f"{section} [data-testid=interval]", "data-p05") == pytest.approx(expected.conversion.p05, abs=1e-9)
    assert tab.number(f"{section} [data-testid=interval]", "data-p95") == pytest.approx(expected.conversion.p95, abs=1e-9)
    for edge, result in expected.edges.items():
        assert tab.number(f"{section} [data-edge={edge}]", "data-flow") == pytest.approx(result.flow, abs=1e-9)


def test_the_interval_is_the_monte_carlo_interval_of_the_selection(small_tab):
    """Within Monte Carlo tolerance of an independent run (another seed, many more draws)."""
    tab, registry = small_tab
    for key, value in VALUES:
        tab.page.locator(f"input[data-context={key}][value={value}]").set_checked(value != "google")
    independent = run_whatif(registry, "trial", Mix(select={"channel": ["facebook", "direct"]}), samples=20_000, seed=99)
    section = "section[data-graph=trial]"
    width = independent.conversion.p95 - independent.conversion.p05
    assert tab.number(f"{section} [data-testid=interval]", "data-p05") == pytest.approx(independent.conversion.p05, abs=0.1 * width)
    assert tab.number(f"{section} [data-testid=interval]", "data-p95") == pytest.approx(independent.conversion.p95, abs=0.1 * width)


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
    from funnelcheck.web.dashboard import BoardRow

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
