"""`funnelcheck diff`: conversion deltas between revisions, checked against closed forms, and the PR comment."""
from __future__ import annotations

import html
import json
import re
import textwrap

import cmarkgfm
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelcheck.git.diff import (Change, Delta, Diff, EdgeDelta, GraphDiff, SegmentDelta, Side, delta_of,
                              parameter_changes)
from funnelcheck.engine import Summary
from funnelcheck.load.registry import Loaded
from funnelcheck.render import markdown, mermaid
from gitrepos import GitCli, parameter, shop_registry

ADD = "registry/parameters/cart/add-to-cart-base.yaml"

NEWS_GRAPH = """
id: news
nodes:
  - id: visit
    entry: {weight: 1}
  - id: subscribed
    outcome: success
edges:
  - id: subscribe
    from: visit
    to: subscribed
    p: {mean: 0.2, stdev: 0}
"""


def gfm(text: str) -> str:
    """GitHub's renderer (cmark-gfm) with the extensions github.com enables; raw HTML passes, as on GitHub."""
    return cmarkgfm.markdown_to_html_with_extensions(
        text, options=cmarkgfm.cmark.Options.CMARK_OPT_UNSAFE,
        extensions=["table", "autolink", "tagfilter", "strikethrough", "tasklist"])


def run_json(cli, repo, *args) -> dict:
    res = cli("diff", *args, "--format", "json", cwd=repo.path)
    assert res.code == 0, res
    return json.loads(res.out)


@pytest.fixture
def shop(tmp_path):
    repo = GitCli(tmp_path / "shop")
    repo.commit("base", shop_registry(add=0.5, checkout=0.4))
    return repo


def test_point_masses_give_exact_deltas(shop, cli):
    """stdev 0: every draw is the point; conversion = add × checkout, mixed per segment."""
    shop.commit("google converts better", shop_registry(add=0.5, checkout=0.4, google=0.7))
    out = run_json(cli, shop, "HEAD~1", "HEAD")
    (g,) = out["graphs"]
    base, head = 0.5 * 0.4, 0.5 * (0.6 * 0.7 + 0.4 * 0.4)
    assert g["base"]["point"] == pytest.approx(base) and g["head"]["point"] == pytest.approx(head)
    for key in ("point", "mean", "p05", "p95"):
        assert g["delta"][key] == pytest.approx(head - base)
    assert g["delta"]["prob_improvement"] == 1.0
    by_context = {s["context"]["channel"]: s for s in g["segments"]}
    assert by_context["google"]["delta"]["mean"] == pytest.approx(0.5 * (0.7 - 0.4))
    assert by_context["organic"]["delta"]["mean"] == 0.0 and by_context["organic"]["weight"] == pytest.approx(0.4)
    assert g["changed_parameters"] == [
        {"id": "checkout-google", "field": "mean", "base": None, "head": 0.7, "change": "added", "edge": "checkout",
         "description": None},
        {"id": "checkout-google", "field": "stdev", "base": None, "head": 0.0, "change": "added", "edge": "checkout",
         "description": None}]
    assert g["status"] == "modified" and out["base"]["commit"] == shop.git("rev-parse", "HEAD~1")


def test_common_random_numbers_make_the_delta_exact_in_distribution(shop, cli):
    """add-to-cart ~ Beta(12, 12) (mean 0.5, stdev 0.1) at both sides; checkout 0.4 → 0.5 (point masses).

    With common random numbers delta = 0.1 × add, draw by draw: P(head > base) is exactly 1 and the
    interval is 0.1 × the Beta(12, 12) quantiles. Independent draws could not give either.
    """
    files = shop_registry(add=0.5, checkout=0.4)
    files[ADD] = parameter("add-to-cart-base", "add-to-cart", 0.5, 0.1)
    shop.commit("uncertain add-to-cart", files)
    files["registry/parameters/checkout/checkout-base.yaml"] = parameter("checkout-base", "checkout", 0.5)
    shop.commit("better checkout", files)
    g = run_json(cli, shop, "HEAD~1", "HEAD", "--samples", "4000")["graphs"][0]
    lo, hi = 0.1 * scipy.stats.beta.ppf([0.05, 0.95], 12, 12)
    assert g["delta"]["prob_improvement"] == 1.0
    assert g["delta"]["mean"] == pytest.approx(0.05, abs=0.001)
    assert g["delta"]["p05"] == pytest.approx(lo, abs=0.0015) and g["delta"]["p95"] == pytest.approx(hi, abs=0.0015)
    assert g["delta"]["point"] == pytest.approx(0.5 * 0.1)
    again = run_json(cli, shop, "HEAD~1", "HEAD", "--samples", "4000")["graphs"][0]
    assert again["delta"] == g["delta"]  # seeded: identical numbers on a rerun


def test_graphs_with_unchanged_inputs_are_not_recomputed(tmp_path, cli):
    repo = GitCli(tmp_path / "r")
    files = {**shop_registry(), "registry/graphs/news.yaml": textwrap.dedent(NEWS_GRAPH).lstrip()}
    repo.commit("two graphs", files)
    files[ADD] = parameter("add-to-cart-base", "add-to-cart", 0.5, 0.0, description="only the description changed")
    repo.commit("describe", {**files, "README.md": "unrelated\n"})
    out = run_json(cli, repo, "HEAD~1", "HEAD")
    graphs = {g["id"]: g for g in out["graphs"]}
    assert graphs["news"]["computed"] is False and graphs["news"]["status"] == "unchanged"
    assert graphs["news"]["base"] is None and graphs["news"]["delta"] is None
    # A changed description is a changed input: the shop is run, and its draws agree exactly.
    assert graphs["shop"]["computed"] is True and graphs["shop"]["delta"]["p95"] == 0.0
    md = cli("diff", "HEAD~1", "HEAD", "--format", "md", cwd=repo.path).out
    assert "Unchanged (same graph, contexts and parameters at both revisions): `news`." in md
    assert "news: unchanged" in cli("diff", "HEAD~1", "HEAD", cwd=repo.path).out


def test_work_tree_is_the_default_head(shop, cli):
    (shop.path / ADD).write_text(parameter("add-to-cart-base", "add-to-cart", 0.6))
    out = run_json(cli, shop, "HEAD")
    assert out["head"] == {"label": "work tree", "commit": None, "registry": True}
    assert out["graphs"][0]["delta"]["point"] == pytest.approx(0.1 * 0.4)


def test_registry_missing_at_base_means_everything_is_new(tmp_path, cli):
    repo = GitCli(tmp_path / "r")
    repo.commit("readme", {"README.md": "models\n"})
    repo.commit("registry", shop_registry())
    out = run_json(cli, repo, "HEAD~1", "HEAD")
    assert out["base"]["registry"] is False
    (g,) = out["graphs"]
    assert g["status"] == "added" and g["base"] is None and g["delta"] is None
    assert g["head"]["point"] == pytest.approx(0.2)
    assert {c["change"] for c in out["changed_parameters"]} == {"added"}
    md = cli("diff", "HEAD~1", "HEAD", "--format", "md", cwd=repo.path).out
    assert "There is no registry at the base revision: everything below is new." in md


def test_a_broken_side_still_diffs_what_it_can(tmp_path, cli):
    repo = GitCli(tmp_path / "r")
    files = {**shop_registry(), "registry/graphs/news.yaml": textwrap.dedent(NEWS_GRAPH).lstrip()}
    repo.commit("two graphs", files)
    repo.commit("break add-to-cart, improve news", {
        ADD: "id: add-to-cart-base\nedge: add-to-cart\nvalue: {mean: 0.5, stdev: [\n",
        "registry/graphs/news.yaml": textwrap.dedent(NEWS_GRAPH).lstrip().replace("mean: 0.2", "mean: 0.25")})
    out = run_json(cli, repo, "HEAD~1", "HEAD")
    graphs = {g["id"]: g for g in out["graphs"]}
    assert graphs["news"]["delta"]["point"] == pytest.approx(0.05)
    assert graphs["shop"]["status"] == "error" and graphs["shop"]["head"] is None
    assert graphs["shop"]["base"]["point"] == pytest.approx(0.2)
    assert "cannot compute shop at HEAD" in graphs["shop"]["errors"][0]
    assert any(f["code"] == "yaml-syntax" and f["path"] == ADD for f in out["validation"])
    assert {(c["id"], c["change"]) for c in out["changed_parameters"]} == {
        ("add-to-cart-base", "removed"), ("inline:subscribe", "modified")}
    res = cli("diff", "HEAD~1", "HEAD", "--format", "md", cwd=repo.path)
    assert res.code == 0 and "Validation at" in res.out and "yaml-syntax" in res.out
    # And the other way round: broken at BASE, fixed at HEAD.
    out = run_json(cli, repo, "HEAD", "HEAD~1")
    assert [f["code"] for f in out["base_errors"]] == ["yaml-syntax"]
    assert {g["id"]: g["status"] for g in out["graphs"]} == {"news": "modified", "shop": "error"}


def test_output_file_and_text(shop, cli, tmp_path):
    shop.commit("v2", shop_registry(add=0.55, checkout=0.4))
    target = tmp_path / "impact.md"
    res = cli("diff", "HEAD~1", "HEAD", "--format", "md", "--output", str(target), cwd=shop.path)
    assert res.code == 0 and res.out == ""
    assert target.read_text().startswith(markdown.MARKER)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".impact.md")]  # no temp file left
    text = cli("diff", "HEAD~1", "HEAD", cwd=shop.path).out
    assert "shop: 20.00% -> 22.00%  delta +2.00 pp" in text and "add-to-cart-base mean: 0.5 -> 0.55" in text
    res = cli("diff", "HEAD~1", "HEAD", "--output", str(tmp_path / "no" / "such" / "dir.md"), cwd=shop.path)
    assert res.code == 2 and "does not exist" in res.err


def test_bad_revisions(shop, cli, tmp_path):
    res = cli("diff", "nope", cwd=shop.path)
    assert res.code == 2 and "unknown revision 'nope'" in res.err
    shop.commit("drop the registry", remove=("registry",))
    res = cli("diff", "HEAD~1", "HEAD", cwd=shop.path)
    assert res.code == 1 and "there is no registry folder registry/ at revision 'HEAD'" in res.err


def test_markdown_comment_renders_as_github_would(tmp_path, cli):
    """A table, a Mermaid chart with the changed edge highlighted, and no user string turned into markup."""
    repo = GitCli(tmp_path / "r")
    repo.commit("base", shop_registry())
    evil = "<script>alert(1)</script> @octocat ![x](https://evil.test/x.png) [y](javascript:alert(1)) | *bold*"
    files = shop_registry(checkout=0.45)
    files["registry/parameters/checkout/checkout-base.yaml"] = parameter("checkout-base", "checkout", 0.45,
                                                                          description=evil)
    files["registry/parameters/bad.yaml"] = 'id: "<img src=x onerror=alert(1)>@octocat"\nedge: checkout\n'
    repo.commit("evil", files)
    repo.git("branch", "x<b>@team")
    md = cli("diff", "HEAD~1", "x<b>@team", "--format", "md", cwd=repo.path).out
    assert md.startswith(markdown.MARKER + "\n") and len(md) < markdown.LIMIT
    rendered = gfm(md)
    assert "<table>" in rendered
    for bad in ("<script", "<img", "<b>", 'href="javascript', "<em>bold", "@octocat", "@team"):
        assert bad not in rendered, bad
    assert "@\u200doctocat" in rendered and "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    chart = re.search(r"```mermaid\n(.*?)```", md, re.S).group(1)
    assert '==>|"0.4 → 0.45"|' in chart and re.search(r"linkStyle 1 stroke:#d1242f", chart)
    assert "<details><summary>Changed parameters (1)</summary>" in md
    assert "<details><summary>Validation at x&lt;b&gt;@\u200dteam" in rendered


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FF), max_size=60))
def test_escaped_text_renders_as_itself(text):
    """Property: in a table cell, escape(s) renders to exactly s (whitespace collapsed, a ZWJ after '@')."""
    cell = markdown.escape(text)
    rendered = cmarkgfm.markdown_to_html_with_extensions(f"| h |\n|---|\n| {cell} |\n", extensions=["table"])
    body = re.search(r"<tbody>\n<tr>\n<td>(.*?)</td>", rendered, re.S)
    got = html.unescape(body.group(1)) if body else ""
    expected = " ".join(text.split()).replace("@", "@\u200d").replace("\x00", "\ufffd")
    assert "<" not in (body.group(1) if body else "")
    assert got == expected.strip()


def _summary(p: float) -> Summary:
    return Summary(p, p, p, p, p)


def test_huge_diffs_stay_under_the_limit_with_a_note():
    changes = [Change(f"param-{i:05d}", "mean", 0.1, 0.2, "modified", f"edge-{i % 400}", "a" * 40) for i in range(5000)]
    edges = [EdgeDelta(f"edge-{i}", f"n{i}", f"n{i + 1}", 0.5, 0.6 if i % 3 == 0 else 0.5, i % 3 == 0)
             for i in range(400)]
    graphs = [GraphDiff(f"g{k}", "modified", _summary(0.1), _summary(0.12), Delta(0.02, 0.02, 0.01, 0.03, 0.99),
                        changes, [SegmentDelta({"channel": f"c{i}"}, 0.01, 0.1, 0.12, Delta(0.02, 0.02, 0.01, 0.03, 1.0))
                                  for i in range(300)],
                        edges, [(f"n{i}", None) for i in range(401)]) for k in range(6)]
    loaded = Loaded(registry=None)
    d = Diff(Side("main", "a" * 40, loaded), Side("work tree", None, loaded), graphs, changes, 2000, 0)
    md = markdown.render_diff(d)
    assert len(md) < markdown.LIMIT
    assert "left out to keep this comment under 60,000 characters" in md
    assert "more rows not shown (size limit)" in md
    assert md.count("| `g") == 6  # every graph keeps its summary row
    chart, omitted = mermaid.flowchart(graphs[0])
    assert omitted == 400 - 134 and chart.count("==>") == 134


def test_delta_of_and_changes_are_exact():
    d = delta_of([0.1, 0.2, 0.3, 0.4], [0.2, 0.2, 0.35, 0.3], 0.25, 0.27)
    assert d.point == pytest.approx(0.02) and d.mean == pytest.approx(0.0125)
    assert d.prob_improvement == 0.5  # 2 of 4 draws strictly better
    assert parameter_changes(None, None) == []


def test_only_edges_whose_own_inputs_changed_are_highlighted(tmp_path, cli):
    """Raising add-to-cart for google shifts who reaches the cart, so checkout's effective p moves
    (google checks out at 0.8, organic at 0.4) — but checkout's parameters are the same: not changed."""
    repo = GitCli(tmp_path / "shop")
    repo.commit("base", shop_registry(add=0.5, checkout=0.4, google=0.8))
    repo.commit("more google carts", {"registry/parameters/cart/add-to-cart-google.yaml":
                                      parameter("add-to-cart-google", "add-to-cart", 0.9, 0.0, {"channel": "google"})})
    edges = run_json(cli, repo, "HEAD~1", "HEAD")["graphs"][0]["edges"]
    # closed forms: google 60% / organic 40%; cart visits base 0.5, head 0.6*0.9 + 0.4*0.5 = 0.74
    assert edges["checkout"]["base"] == pytest.approx((0.6 * 0.5 * 0.8 + 0.4 * 0.5 * 0.4) / 0.5)
    assert edges["checkout"]["head"] == pytest.approx((0.6 * 0.9 * 0.8 + 0.4 * 0.5 * 0.4) / 0.74)
    assert edges["checkout"]["changed"] is False
    assert edges["add-to-cart"]["changed"] is True
    md = cli("diff", "HEAD~1", "HEAD", "--format", "md", cwd=repo.path).out
    assert f'|"{0.5:g} → {0.74:g}"|' in md and "→ 0.7" in md
    assert md.count("==>") == 1
