"""Monte Carlo uncertainty: Beta draws against scipy, shared draws, reproducible streams."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from funnelcheck.engine import Mix, run_whatif
from funnelcheck.engine.montecarlo import InfeasibleEstimate, Streams, beta_shape, draws
from funnelcheck.model import Estimate

from test_engine import build, dense_visits, files_of, graph, param, random_funnel, registry_of

N = 20_000


def beta_of(mean: float, stdev: float):
    kappa = mean * (1 - mean) / stdev**2 - 1
    return stats.beta(mean * kappa, (1 - mean) * kappa)


def within(estimate: float, truth: float, se: float, k: float = 4.0) -> bool:
    return abs(estimate - truth) <= k * se


@pytest.mark.parametrize("mean,stdev", [(0.3, 0.05), (0.02, 0.01), (0.9, 0.08)])
def test_quantiles_match_the_moment_matched_beta(mean, stdev):
    reg = build(graph({"a": {"entry": 1}, "s": {"outcome": "success"}}, [("go", "a", "s", None)]),
                [param("go-base", "go", mean, stdev)])
    r = run_whatif(reg, "g", samples=N, seed=3)
    dist = beta_of(mean, stdev)
    assert r.conversion.point == pytest.approx(mean)
    assert within(r.conversion.mean, dist.mean(), dist.std() / np.sqrt(N))
    for q, got in ((0.05, r.conversion.p05), (0.5, r.conversion.p50), (0.95, r.conversion.p95)):
        x = dist.ppf(q)
        se = np.sqrt(q * (1 - q) / N) / dist.pdf(x)  # asymptotic standard error of a sample quantile
        assert within(got, x, se), (q, got, x, se)
    assert len(r.draws) == N


def test_product_of_two_parameters_matches_scipy():
    nodes = {"a": {"entry": 1}, "b": {}, "s": {"outcome": "success"}}
    reg = build(graph(nodes, [("ab", "a", "b", (0.5, 0.1)), ("bs", "b", "s", (0.2, 0.04))]))
    r = run_whatif(reg, "g", samples=N, seed=11)
    rng = np.random.default_rng(99)
    reference = beta_of(0.5, 0.1).rvs(400_000, random_state=rng) * beta_of(0.2, 0.04).rvs(400_000, random_state=rng)
    assert within(r.conversion.mean, reference.mean(), reference.std() / np.sqrt(N))
    for q, got in ((0.05, r.conversion.p05), (0.95, r.conversion.p95)):
        x = np.quantile(reference, q)
        density = np.mean(np.abs(reference - x) < 0.002) / 0.004
        assert within(got, x, np.sqrt(q * (1 - q) / N) / density), (q, got, x)


def test_a_parameter_shared_by_segments_keeps_one_draw():
    contexts = [{"id": "channel", "values": [{"id": "google", "share": 0.5}, {"id": "facebook", "share": 0.5}]}]
    nodes = {"a": {"entry": 1}, "b": {}, "s": {"outcome": "success"}}
    edges = [("ab", "a", "b", None), ("bs", "b", "s", None)]
    params = [param("ab-base", "ab", 0.4, 0.1),  # uncertain, used by both segments
              param("bs-base", "bs", 0.5), param("bs-g", "bs", 0.9, context={"channel": "google"}),
              param("bs-f", "bs", 0.3, context={"channel": "facebook"})]
    r = run_whatif(build(graph(nodes, edges), params, contexts), "g", samples=N, seed=5)
    by = {s.context["channel"]: s.draws for s in r.segments}
    # Both segments scale the same draw of ab-base: perfectly proportional, draw by draw.
    np.testing.assert_allclose(by["google"] / 0.9, by["facebook"] / 0.3, rtol=1e-12)
    # So the population spread is the parameter's spread times 0.6, not shrunk by averaging.
    dist = beta_of(0.4, 0.1)
    assert within(r.draws.std(), 0.6 * dist.std(), 0.6 * dist.std() / np.sqrt(2 * N))
    assert within(r.conversion.mean, 0.6 * dist.mean(), 0.6 * dist.std() / np.sqrt(N))


def test_point_masses_do_not_vary():
    reg = build(graph({"a": {"entry": 1}, "s": {"outcome": "success"}}, [("go", "a", "s", 0.25)]))
    r = run_whatif(reg, "g", samples=50)
    assert np.all(r.draws == 0.25)
    assert (r.conversion.p05, r.conversion.p95) == (0.25, 0.25)


def test_draws_are_reproducible_and_follow_the_parameter_not_the_file():
    nodes = {"a": {"entry": 1}, "b": {}, "s": {"outcome": "success"}, "t": {"outcome": "success"}}
    g = graph(nodes, [("ab", "a", "b", None), ("bs", "b", "s", None), ("at", "a", "t", None)])
    params = [param("ab-p", "ab", 0.4, 0.05), param("bs-p", "bs", 0.3, 0.05), param("at-p", "at", 0.2, 0.05)]
    one = run_whatif(registry_of(files_of([g], params)), "g", samples=300, seed=7)
    again = run_whatif(registry_of(files_of([g], params[::-1], folders={"ab-p": "deep/er/"})), "g", samples=300, seed=7)
    np.testing.assert_array_equal(one.draws, again.draws)
    other_seed = run_whatif(registry_of(files_of([g], params)), "g", samples=300, seed=8)
    assert not np.array_equal(one.draws, other_seed.draws)
    # Common random numbers: change at-p only; the a -> b -> s branch draws exactly as before,
    # so the change in every draw is at-p's change alone.
    changed = [params[0], params[1], param("at-p", "at", 0.25, 0.05)]
    two = run_whatif(registry_of(files_of([g], changed)), "g", samples=300, seed=7)
    branch = run_whatif(registry_of(files_of([g], [params[0], params[1], param("at-p", "at", 0.0)])), "g",
                        samples=300, seed=7)
    at_old, at_new = one.draws - branch.draws, two.draws - branch.draws
    # at-p alone, in a graph of its own, draws exactly what it contributed above.
    alone = graph({"a": {"entry": 1}, "t": {"outcome": "success"}}, [("at", "a", "t", None)], gid="alone")
    for at, p in ((at_old, params[2]), (at_new, changed[2])):
        solo = run_whatif(registry_of(files_of([alone], [p])), "alone", samples=300, seed=7)
        np.testing.assert_allclose(at, solo.draws, atol=1e-12)
    assert abs(np.std(at_new) - 0.05) < 0.01 and abs(np.mean(at_new) - 0.25) < 0.01


def test_segment_draws_are_shared_between_a_selection_and_the_full_mix():
    contexts = [{"id": "channel", "values": [{"id": "google", "share": 0.6}, {"id": "facebook", "share": 0.4}]}]
    nodes = {"a": {"entry": 1}, "s": {"outcome": "success"}}
    params = [param("as-base", "as", 0.3, 0.05), param("as-g", "as", 0.5, 0.05, context={"channel": "google"})]
    reg = build(graph(nodes, [("as", "a", "s", None)]), params, contexts)
    full = run_whatif(reg, "g", samples=200)
    only = run_whatif(reg, "g", samples=200, mix=Mix(select={"channel": ["google"]}))
    google = next(s for s in full.segments if s.context["channel"] == "google")
    np.testing.assert_array_equal(only.draws, google.draws)
    np.testing.assert_allclose(full.draws, sum(s.weight * s.draws for s in full.segments), rtol=1e-12)


def test_draws_past_one_are_scaled_back_and_counted():
    # Two exits with means 0.55 + 0.4 and wide spreads: independent draws often sum past 1.
    nodes = {"a": {"entry": 1}, "s": {"outcome": "success"}, "f": {"outcome": "failure"}}
    edges = [("as", "a", "s", (0.55, 0.15)), ("af", "a", "f", (0.4, 0.15))]
    r = run_whatif(build(graph(nodes, edges)), "g", samples=N, seed=2)
    rng = np.random.default_rng(4)
    x, y = beta_of(0.55, 0.15).rvs(400_000, random_state=rng), beta_of(0.4, 0.15).rvs(400_000, random_state=rng)
    scaled = x / np.maximum(x + y, 1.0)
    assert np.all(r.draws <= 1.0)
    assert within(r.conversion.mean, scaled.mean(), scaled.std() / np.sqrt(N))
    assert within(r.rescaled, np.mean(x + y > 1), np.sqrt(0.25 / N))
    assert r.rescaled > 0.1


def test_beta_shape_is_moment_matched_and_guarded():
    a, b = beta_shape(Estimate(0.32, 0.06))
    dist = stats.beta(a, b)
    assert (dist.mean(), dist.std()) == (pytest.approx(0.32), pytest.approx(0.06))
    assert beta_shape(Estimate(0.4, 0.0)) is None
    for bad in (Estimate(0.5, 0.5), Estimate(1.0, 0.1), Estimate(1.2, 0.0)):
        with pytest.raises(InfeasibleEstimate):
            beta_shape(bad)


@pytest.mark.parametrize("seed", range(6))
def test_every_draw_matches_a_dense_solve_with_the_same_draws(seed):
    """Cycles, dead ends and self-loops: each Monte Carlo draw is the chain solved at that draw.

    The parameters' draws are taken from their slots' streams (an inline base: `e.<edge>`);
    the dense solve, and the scaling of a page's draws that sum past 1, are done here.
    """
    g, names, probs = random_funnel(seed, stdev=0.2)
    samples = 25
    r = run_whatif(build(g), "g", samples=samples, seed=seed)
    drawn = {(e["from"], e["to"]): draws(Estimate(e["p"]["mean"], e["p"]["stdev"]), f"e.{e['id']}", seed, samples)
             for e in g["edges"]}
    win = names.index("win")
    for d in range(samples):
        p = {pair: v[d] for pair, v in drawn.items()}
        for a in names:
            total = sum(v for (x, _), v in p.items() if x == a)
            if total > 1:
                p.update({(x, y): v / total for (x, y), v in p.items() if x == a})
        assert r.draws[d] == pytest.approx(dense_visits(names, p, {"n0": 2 / 3, "n1": 1 / 3})[win], rel=1e-9, abs=1e-14)


def test_a_stream_depends_on_its_key_and_seed_only():
    est = Estimate(0.3, 0.05)
    fresh = draws(est, "e.signup", 4, 50)
    shared = Streams(4)
    shared.uniforms("another", 70)  # drawing other slots first changes nothing
    np.testing.assert_array_equal(shared.uniforms("e.signup", 50), Streams(4).uniforms("e.signup", 50))
    np.testing.assert_allclose(draws(est, "e.signup", 4, 800)[:50], fresh, atol=1e-6)  # more samples extend the stream
    assert not np.array_equal(draws(est, "e.signup", 5, 50), fresh)
    assert not np.array_equal(draws(est, "e.signu", 4, 50), fresh)
    # Inverse CDF of Philox keyed by blake2b(seed, key), independently of the engine's re-keying shortcut.
    import hashlib

    from scipy.special import betaincinv

    key = int.from_bytes(hashlib.blake2b(b"4\x00e.signup", digest_size=16).digest(), "little")
    a, b = beta_shape(est)
    u = np.random.Generator(np.random.Philox(key=key)).random(50)
    np.testing.assert_allclose(fresh, betaincinv(a, b, u), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mean,stdev", [(0.05, 0.04), (0.3, 0.05), (0.02, 0.1), (0.9, 0.2), (0.001, 0.02), (0.5, 0.49), (0.4, 0.3)])
def test_tabulated_quantiles_match_the_exact_inverse_cdf(mean, stdev):
    """Many draws go through the quantile table; every one is within 1e-6 of betaincinv."""
    from scipy.special import betaincinv

    samples = 20_000
    got = draws(Estimate(mean, stdev), "e.x", 9, samples)
    a, b = beta_shape(Estimate(mean, stdev))
    np.testing.assert_allclose(got, betaincinv(a, b, Streams(9).uniforms("e.x", samples)), rtol=0, atol=1e-6)
