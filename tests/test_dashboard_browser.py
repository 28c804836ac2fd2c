"""The dashboard in a real browser (Debian's chromium through Playwright, no browser download).

Ticking and unticking gives `whatif --select`'s numbers (to 1e-9, and within Monte Carlo
tolerance of an independent run), and the page works from file:// with the network off
(test_dashboard_browser_more.py has the rest). Screenshots of each section go to
test-artifacts/dashboard/ (git-ignored: the folder carries its own .gitignore).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from funnelcheck.engine import Mix, run_whatif
from funnelcheck.findings import UsageError
from funnelcheck.load.registry import find_project, load_project
from funnelcheck.web.dashboard import assemble
from funnelcheck.web.page import render_page
from tests.conftest import EXAMPLE, REPO, write_tree

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("FUNNELCHECK_TEST_ARTIFACTS", REPO / "test-artifacts")) / "dashboard"
TIMEOUT_MS = 30_000  # generous: CI machines and a busy laptop are slow


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
