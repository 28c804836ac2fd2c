"""Common random numbers in `diff` (issue 9, SPEC 6): the delta's spread comes only from what changed.

Every expected figure is computed here independently of the engine: the slot's uniforms from
their definition (Philox keyed by blake2b(seed, slot key)), mapped through scipy's exact Beta
quantile, and the shop funnel's conversion in closed form (add-to-cart × checkout).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import betaincinv

from funnelcheck.engine import run_whatif
from funnelcheck.git.diff import Side, graph_diff, parameter_changes
from funnelcheck.load.registry import Loaded

from gitrepos import GitCli, parameter, shop_registry
from test_engine import files_of, graph, param, registry_of

ADD = "registry/parameters/cart/add-to-cart-base.yaml"
CHECKOUT = 0.4  # a point mass: conversion = add-to-cart × 0.4 in every draw
SAMPLES = 4000


def uniforms(key: str, seed: int, samples: int) -> np.ndarray:
    """The slot's stream as SPEC 6 defines it, built from scratch."""
    k = int.from_bytes(hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=16).digest(), "little")
    return np.random.Generator(np.random.Philox(key=k)).random(samples)


def quantile(mean: float, stdev: float, u: np.ndarray) -> np.ndarray:
    kappa = mean * (1 - mean) / stdev**2 - 1
    return betaincinv(mean * kappa, (1 - mean) * kappa, u)


def expected_delta(base: tuple[float, float], head: tuple[float, float], seed: int = 0) -> dict:
    """The coupled delta of the shop funnel when only add-to-cart's (mean, stdev) changes."""
    u = uniforms("e.add-to-cart", seed, SAMPLES)
    b, h = CHECKOUT * quantile(*base, u), CHECKOUT * quantile(*head, u)
    d = h - b
    lo, hi = np.quantile(d, [0.05, 0.95])
    return {"point": CHECKOUT * (head[0] - base[0]), "mean": d.mean(), "p05": lo, "p95": hi,
            "prob_improvement": (h > b).mean(), "base": np.quantile(b, [0.05, 0.95]),
            "head": np.quantile(h, [0.05, 0.95])}


def two_commits(tmp_path, base_file: str, head_files: dict, remove=()) -> GitCli:
    repo = GitCli(tmp_path / "shop")
    files = shop_registry(add=0.05, checkout=CHECKOUT)
    files[ADD] = base_file
    repo.commit("base", files)
    repo.commit("head", head_files, remove=remove)
    return repo


def delta_json(cli, repo, *extra) -> dict:
    res = cli("diff", "HEAD~1", "HEAD", "--format", "json", "--samples", str(SAMPLES), *extra, cwd=repo.path)
    assert res.code == 0, res
    (g,) = json.loads(res.out)["graphs"]
    return g


def test_a_nudged_mean_gives_a_tight_positive_delta(tmp_path, cli):
    """0.050 → 0.051 (stdev 0.04): positive in (almost) every world, so the delta is narrow and sure."""
    repo = two_commits(tmp_path, parameter("add-to-cart-base", "add-to-cart", 0.05, 0.04),
                       {ADD: parameter("add-to-cart-base", "add-to-cart", 0.051, 0.04)})
    g = delta_json(cli, repo)
    want = expected_delta((0.05, 0.04), (0.051, 0.04))
    for key in ("point", "mean", "p05", "p95", "prob_improvement"):
        assert g["delta"][key] == pytest.approx(want[key], abs=1e-6), key
    assert g["delta"]["p95"] - g["delta"]["p05"] < 0.003  # narrower than 0.3 pp
    assert g["delta"]["prob_improvement"] > 0.9
    # Each side alone is wide: the coupling, not a narrow prior, makes the delta tight.
    assert g["base"]["p95"] - g["base"]["p05"] > 0.03


def test_a_renamed_parameter_gives_exactly_zero(tmp_path, cli):
    """signup-base → signup-all: same edge, filters and value, another id and file: identical draws."""
    old = parameter("add-to-cart-base", "add-to-cart", 0.05, 0.04)
    repo = two_commits(tmp_path, old, {"registry/parameters/cart/add-to-cart-all.yaml":
                                       parameter("add-to-cart-all", "add-to-cart", 0.05, 0.04)}, remove=(ADD,))
    g = delta_json(cli, repo, "--seed", "11")
    assert {c["id"] for c in g["changed_parameters"]} == {"add-to-cart-base", "add-to-cart-all"}
    assert g["delta"] == {"point": 0.0, "mean": 0.0, "p05": 0.0, "p95": 0.0, "prob_improvement": 0.0}
    assert g["base"]["p95"] - g["base"]["p05"] > 0.03  # the sides themselves are uncertain


def test_a_stdev_only_change_gives_a_delta_far_narrower_than_either_side(tmp_path, cli):
    repo = two_commits(tmp_path, parameter("add-to-cart-base", "add-to-cart", 0.05, 0.04),
                       {ADD: parameter("add-to-cart-base", "add-to-cart", 0.05, 0.036)})
    g = delta_json(cli, repo)
    want = expected_delta((0.05, 0.04), (0.05, 0.036))
    for key in ("point", "mean", "p05", "p95", "prob_improvement"):
        assert g["delta"][key] == pytest.approx(want[key], abs=1e-6), key
    assert g["base"]["p05"] == pytest.approx(want["base"][0], abs=1e-6)
    assert g["head"]["p95"] == pytest.approx(want["head"][1], abs=1e-6)
    width = g["delta"]["p95"] - g["delta"]["p05"]
    sides = min(g["base"]["p95"] - g["base"]["p05"], g["head"]["p95"] - g["head"]["p05"])
    assert g["delta"]["point"] == 0.0 and width < 0.2 * sides


def test_an_inline_base_moved_into_a_file_keeps_its_draws():
    """The slot is the edge and its filters: an inline base and a filter-free file share one stream."""
    nodes = {"a": {"entry": 1}, "s": {"outcome": "success"}}
    inline = registry_of(files_of([graph(nodes, [("go", "a", "s", (0.3, 0.1))])]))
    filed = registry_of(files_of([graph(nodes, [("go", "a", "s", None)])], [param("go-base", "go", 0.3, 0.1)]))
    one, two = (run_whatif(r, "g", samples=500, seed=5) for r in (inline, filed))
    np.testing.assert_array_equal(one.draws, two.draws)
    np.testing.assert_allclose(one.draws, quantile(0.3, 0.1, uniforms("e.go", 5, 500)), atol=1e-6)


SHOP_PARAMS = st.lists(st.tuples(st.sampled_from(["add-to-cart", "checkout"]),
                                 st.sampled_from([None, "google", "organic"]),
                                 st.floats(0.01, 0.9), st.floats(0.0, 0.08)), min_size=1, max_size=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), extra=SHOP_PARAMS)
def test_the_same_registry_on_both_sides_gives_exactly_zero(seed, extra):
    """Both sides computed in full (not skipped as unchanged), files renamed and moved: delta ≡ 0."""
    contexts = [{"id": "channel", "values": [{"id": "google", "share": 0.6}, {"id": "organic", "share": 0.4}]}]
    nodes = {"home": {"entry": 1}, "cart": {}, "buy": {"outcome": "success"}}
    g = graph(nodes, [("add-to-cart", "home", "cart", (0.5, 0.05)),
                      ("checkout", "cart", "buy", (0.4, 0.05))], gid="shop")
    params, seen = [], set()
    for i, (edge, channel, mean, stdev) in enumerate(extra):
        if (edge, channel) in seen:
            continue
        seen.add((edge, channel))
        stdev = min(stdev, 0.9 * (mean * (1 - mean)) ** 0.5)
        params.append(param(f"p{i}", edge, mean, round(stdev, 6), {"channel": channel} if channel else None))
    base = Loaded(registry_of(files_of([g], params, contexts)))
    # HEAD: the same parameters under other ids, in other folders, in another order.
    renamed = [{**p, "id": "renamed-" + p["id"]} for p in params[::-1]]
    head = Loaded(registry_of(files_of([g], renamed, contexts, folders={p["id"]: "moved/" for p in renamed})))
    sides = Side("base", None, base), Side("head", None, head)
    results = {("shop", name): (run_whatif(side.registry, "shop", samples=300, seed=seed), None)
               for name, side in (("base", sides[0]), ("head", sides[1]))}
    gd = graph_diff("shop", *sides, parameter_changes(base.registry, head.registry), results)
    assert gd.computed and gd.delta is not None
    assert (gd.delta.point, gd.delta.mean, gd.delta.p05, gd.delta.p95, gd.delta.prob_improvement) == (0, 0, 0, 0, 0)
    assert all(s.delta.mean == 0 and s.delta.p05 == 0 and s.delta.p95 == 0 for s in gd.segments)


def test_the_comment_shows_the_point_delta_and_a_standard_error_near_a_threshold():
    from funnelcheck.git.diff import Delta
    from funnelcheck.render.markdown import interval, probability

    close = Delta(point=0.0012, mean=0.0011, p05=-0.002, p95=0.004, prob_improvement=0.51)
    se = (0.51 * 0.49 / 2000) ** 0.5
    assert probability(close, 2000) == f"51.0% ± {se * 100:.1f}"
    assert interval(close) == "+0.12 pp (-0.20 pp … +0.40 pp)"  # the point difference, not the draws' mean
    assert probability(Delta(0.01, 0.01, 0.005, 0.02, 1.0), 2000) == "100.0%"  # settled: no error shown
    assert probability(Delta(0.0, 0.0, 0.0, 0.0, 0.0), 2000) == "no draw changed"
    assert "±" in probability(Delta(0.001, 0.001, -0.001, 0.003, 0.94), 2000)  # within 3 SE of 95%
