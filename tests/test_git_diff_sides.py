"""diff reuses what it computed before: each side by a hash of its inputs, each segment of the head by
the digest of its own inputs (the base's draws), and spreads graphs over processes. None of it may
change a single number of the output."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelcheck.engine import run as engine_run
from funnelcheck.engine import run_whatif
from funnelcheck.git import sides
from funnelcheck.git.diff import Side, diff, graph_diff, parameter_changes
from funnelcheck.load.gitsource import load_revision
from funnelcheck.load.registry import Loaded, find_project
from funnelcheck.render.markdown import render_diff

from gitrepos import GitCli, parameter, shop_registry
from test_engine import files_of, graph, param, registry_of

CHECKOUT = "registry/parameters/checkout/checkout-base.yaml"


@pytest.fixture
def shop(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    repo = GitCli(tmp_path / "shop")
    repo.commit("base", shop_registry(add=0.5, checkout=0.4, google=0.5, stdev=0.05))
    repo.commit("head", {CHECKOUT: parameter("checkout-base", "checkout", 0.42, 0.05)})
    return repo


def store_files(shop, suffix: str = "") -> list:
    from funnelcheck.load.cache import cache_dir

    folder = cache_dir(shop.path) / "diff-sides"
    return sorted(p for p in folder.iterdir() if p.suffix.endswith(suffix)) if folder.is_dir() else []


@pytest.fixture
def engine_runs(monkeypatch):
    """Every engine run of this process: (graph id, the segments it was given rather than drew, of how many)."""
    calls = []
    monte_carlo = engine_run._monte_carlo

    def spy(graph, sg, table, segs, *args):
        calls.append((graph.id, len(args[-1] or {}), len(segs)))
        return monte_carlo(graph, sg, table, segs, *args)

    monkeypatch.setattr(engine_run, "_monte_carlo", spy)
    return calls


def test_a_warm_run_reads_both_sides_back_and_prints_the_same(shop, cli, engine_runs):
    cold = cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path)
    assert cold.code == 0, cold
    assert sorted(p.suffix for p in store_files(shop)) == [".f8", ".f8", ".json", ".json"]  # base and head
    assert len(engine_runs) == 2
    warm = cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path)
    assert warm.code == 0 and warm.out == cold.out
    assert len(engine_runs) == 2, "the engine ran although both sides were stored"


def test_damaged_entries_are_computed_again(shop, cli):
    cold = cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path).out
    rng = np.random.default_rng(3)
    for path in store_files(shop):
        raw = bytearray(path.read_bytes())
        for i in rng.integers(0, len(raw), 3):
            raw[i] ^= 0x5A
        path.write_bytes(bytes(raw))
    assert cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path).out == cold
    assert cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path).out == cold


def test_a_damaged_row_is_found_when_read_and_the_graph_computed_again(shop, cli, engine_runs):
    """Rows are checked as they are read (the conversion draws, row 0, always are): a flipped
    exponent byte would move every figure; the graph is computed again and its entries repaired."""
    cold = cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path).out
    for path in store_files(shop, ".f8"):
        raw = bytearray(path.read_bytes())
        raw[7] ^= 0x10
        path.write_bytes(bytes(raw))
    ran = len(engine_runs)
    assert cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path).out == cold
    assert len(engine_runs) == ran + 2  # both sides run again, with nothing read from the store
    assert cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path).out == cold
    assert len(engine_runs) == ran + 2  # repaired: read back


def test_a_new_push_reuses_the_base_and_drops_what_it_no_longer_uses(shop, cli, engine_runs, tmp_path, monkeypatch):
    cli("diff", "HEAD~1", "HEAD", cwd=shop.path)
    first = {p.name for p in store_files(shop)}
    shop.commit("push 2", {CHECKOUT: parameter("checkout-base", "checkout", 0.44, 0.05)})
    del engine_runs[:]
    out = json.loads(cli("diff", "HEAD~2", "HEAD", "--format", "json", cwd=shop.path).out)
    second = {p.name for p in store_files(shop)}
    assert len(first & second) == 2  # the base side's record and draws, reused
    assert len(second) == 4  # the first push's head is pruned
    # Only the head ran; checkout-base is organic traffic's only: google's segment was the base's own.
    assert engine_runs == [("shop", 1, 2)]
    # Closed form at the means: add × (0.6 · google + 0.4 · checkout).
    assert out["graphs"][0]["head"]["point"] == pytest.approx(0.5 * (0.6 * 0.5 + 0.4 * 0.44))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    assert json.loads(cli("diff", "HEAD~2", "HEAD", "--format", "json", cwd=shop.path).out) == out  # nothing stored


def test_inputs_hash_sees_every_input_of_a_run(shop, monkeypatch):
    monkeypatch.chdir(shop.path)
    reg = load_revision(find_project(), "HEAD~1").registry
    graph_, by_edge = reg.graphs["shop"], reg.parameters_by_edge()
    key = sides.side_key(reg, graph_, by_edge, 2000, 0, "e")
    assert key == sides.side_key(reg, graph_, reg.parameters_by_edge(), 2000, 0, "e")
    assert len({key, sides.side_key(reg, graph_, by_edge, 2001, 0, "e"),
                sides.side_key(reg, graph_, by_edge, 2000, 1, "e"),
                sides.side_key(reg, graph_, by_edge, 2000, 0, "other engine")}) == 4
    head = load_revision(find_project(), "HEAD").registry
    assert sides.side_key(head, head.graphs["shop"], head.parameters_by_edge(), 2000, 0, "e") != key
    assert sides.SideStore(None).get("x") is None  # no folder: nothing kept, nothing read


# -- segments reused by the digest of their inputs -------------------------------------------------

CONTEXTS = [{"id": "channel", "values": [{"id": "google", "share": 0.5}, {"id": "organic", "share": 0.3},
                                         {"id": "email", "share": 0.2}]},
            {"id": "device", "values": [{"id": "mobile", "share": 0.6}, {"id": "desktop", "share": 0.4}]}]
# home → pricing ⇄ cart → buy, with ways out to `lost`: a cycle, so the chain solver tears it.
NODES = {"home": {"entry": 1}, "pricing": {}, "cart": {}, "buy": {"outcome": "success"},
         "lost": {"outcome": "failure"}}
EDGES = [("to-pricing", "home", "pricing", (0.4, 0.05)), ("to-cart", "home", "cart", (0.3, 0.05)),
         ("pricing-cart", "pricing", "cart", (0.4, 0.05)), ("pricing-lost", "pricing", "lost", 0.3),
         ("back", "cart", "pricing", (0.2, 0.04)), ("buy", "cart", "buy", (0.3, 0.05)), ("cart-lost", "cart", "lost", 0.2)]
BASE_PARAMS = [param("buy-google", "buy", 0.35, 0.05, {"channel": "google"}),
               param("buy-mobile", "buy", 0.25, 0.04, {"device": "mobile"}),
               param("buy-after-pricing", "buy", 0.28, 0.03, visited=["pricing"]),
               param("back-email", "back", 0.25, 0.05, {"channel": "email"})]
CHANGE = st.tuples(st.sampled_from(["to-pricing", "pricing-cart", "back", "buy"]),
                   st.sampled_from(["google", "organic", "email"]),
                   st.sampled_from([None, "mobile", "desktop"]),
                   st.floats(0.05, 0.3), st.floats(0.0, 0.06))


def funnel(changes=()) -> Loaded:
    params = {p["id"]: p for p in BASE_PARAMS}
    for edge, channel, device, mean, stdev in changes:
        context = {k: v for k, v in (("channel", channel), ("device", device)) if v}
        pid = "-".join([edge, *context.values()])
        stdev = min(stdev, 0.9 * (mean * (1 - mean)) ** 0.5)
        params[pid] = param(pid, edge, round(mean, 4), round(stdev, 4), context or None)
    return Loaded(registry_of(files_of([graph(NODES, EDGES, gid="g")], list(params.values()), CONTEXTS)))


def without_digests(result):
    """The run as the diff saw it before segments had digests: every segment delta from the draws."""
    return dataclasses.replace(result, segments=[dataclasses.replace(s, inputs="") for s in result.segments])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), changes=st.lists(CHANGE, min_size=1, max_size=3))
def test_reusing_the_bases_segments_gives_the_numbers_of_two_full_runs(seed, changes):
    """Property: the head run with the base's segments known, and the zero deltas of segments with
    equal digests, give exactly (==) what two independent full runs give."""
    base, head = Side("base", None, funnel()), Side("head", None, funnel(changes))
    got = diff(base, head, samples=300, seed=seed, jobs=1)
    (g,) = got.graphs
    assert g.computed
    full = {("g", name): (without_digests(run_whatif(side.registry, "g", samples=300, seed=seed)), None)
            for name, side in (("base", base), ("head", head))}
    assert g == graph_diff("g", base, head, parameter_changes(base.registry, head.registry), full)


def test_the_engine_takes_known_segments_as_they_are_and_digests_see_their_inputs():
    reg = funnel().registry
    first = run_whatif(reg, "g", samples=200, seed=1, known={})
    target = first.segments[0].inputs
    fake = np.full(200, 0.123)
    again = run_whatif(reg, "g", samples=200, seed=1, known={target: fake})
    taken = [s.context for s in again.segments if s.inputs == target]
    # buy-google wins over buy-mobile for google traffic on either device: one digest, the same draws
    assert taken == [{"channel": "google", "device": "mobile"}, {"channel": "google", "device": "desktop"}]
    np.testing.assert_array_equal(first.segments[0].draws, first.segments[1].draws)
    for a, b in zip(first.segments, again.segments):
        np.testing.assert_array_equal(b.draws, fake if b.inputs == target else a.draws)  # the others drawn
    weights = np.array([s.weight for s in again.segments])
    np.testing.assert_allclose(again.draws, weights @ np.stack([s.draws for s in again.segments]), rtol=1e-12)

    def digests(registry, **kw):
        return {tuple(sorted(s.context.items())): s.inputs for s in run_whatif(registry, "g", known={}, **kw).segments}

    plain = digests(reg, samples=200, seed=1)
    assert len(set(plain.values())) == 5 and digests(reg, samples=200, seed=1) == plain
    assert set(digests(reg, samples=201, seed=1).values()).isdisjoint(plain.values())
    assert set(digests(reg, samples=200, seed=2).values()).isdisjoint(plain.values())
    for mean, stdev in ((0.36, 0.05), (0.35, 0.06)):  # buy-google's mean, then its stdev
        moved = digests(funnel([("buy", "google", None, mean, stdev)]).registry, samples=200, seed=1)
        assert {k for k in plain if moved[k] != plain[k]} == {k for k in plain if ("channel", "google") in k}


# -- one process or several --------------------------------------------------------------------

def three_funnels(tmp_path) -> GitCli:
    """Three graphs, each with a cycle and a context split, all changed by the head commit."""
    repo = GitCli(tmp_path / "three")
    for step, lift in (("base", 0.0), ("head", 0.02)):
        graphs = [graph(NODES, [(f"{gid}-{e}", a, b, p) for e, a, b, p in EDGES], gid=gid)
                  for gid in ("g1", "g2", "g3")]
        params = [param(f"{gid}-{p['id']}", f"{gid}-{p['edge']}", round(p["value"]["mean"] + lift * k, 4),
                        p["value"]["stdev"], p.get("context_filter"), p.get("visited_filter"))
                  for k, gid in enumerate(("g1", "g2", "g3"), start=1) for p in BASE_PARAMS]
        files = {f"registry/{path}": text for path, text in files_of(graphs, params, CONTEXTS).items()}
        repo.commit(step, {**files, "funnelcheck.yaml": "registry: registry\n"})
    return repo


def test_one_process_or_two_give_identical_results(tmp_path, monkeypatch):
    repo = three_funnels(tmp_path)
    monkeypatch.chdir(repo.path)
    project = find_project()
    base = Side("HEAD~1", None, load_revision(project, "HEAD~1"))
    head = Side("HEAD", None, load_revision(project, "HEAD"))
    pools = []
    executor = sides.ProcessPoolExecutor

    def counted(*args, **kwargs):
        pools.append(args)
        return executor(*args, **kwargs)

    monkeypatch.setattr(sides, "ProcessPoolExecutor", counted)
    one = diff(base, head, samples=500, seed=4, jobs=1)
    assert pools == []
    two = diff(base, head, samples=500, seed=4, jobs=2)
    assert len(pools) == 1  # the graphs went to two worker processes
    assert [g.id for g in two.graphs] == ["g1", "g2", "g3"] and all(g.status == "modified" for g in two.graphs)
    assert len({g.delta.point for g in two.graphs}) == 3
    assert one.to_json() == two.to_json()
    assert render_diff(one) == render_diff(two)


def test_graphs_read_back_and_graphs_run_make_one_diff_in_order(tmp_path, monkeypatch):
    """A push that changes g2 only: g1 and g3 are read back whole, g2's base is read back and its head
    run; the diff is the one computed from nothing."""
    repo = three_funnels(tmp_path)
    repo.commit("push 2", {"registry/parameters/g2-buy-google.yaml":
                           (repo.path / "registry/parameters/g2-buy-google.yaml").read_text().replace("0.39", "0.41")})
    monkeypatch.chdir(repo.path)
    project = find_project()
    base = Side("HEAD~2", None, load_revision(project, "HEAD~2"))
    pushes = [Side(rev, None, load_revision(project, rev)) for rev in ("HEAD~1", "HEAD")]
    store = sides.SideStore(tmp_path / "store")
    diff(base, pushes[0], samples=300, seed=2, store=store)
    missing = {}
    results = sides.GraphRuns.results

    def spy(self, graph_id, reuse=True):
        missing[graph_id] = sorted(set(self.sides(graph_id)) - set(self.stored(graph_id)))
        return results(self, graph_id, reuse)

    monkeypatch.setattr(sides.GraphRuns, "results", spy)
    got = diff(base, pushes[1], samples=300, seed=2, store=sides.SideStore(tmp_path / "store"))
    assert missing == {"g1": [], "g2": ["head"], "g3": []}
    assert got.to_json() == diff(base, pushes[1], samples=300, seed=2).to_json()
    assert [g.id for g in got.graphs] == ["g1", "g2", "g3"]
