"""Beta-Binomial statistics against the seed's worked numbers, closed forms and scipy."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st
from scipy import special, stats as sps

from funnelcheck.pipeline import stats


def test_seed_posterior():
    post = stats.posterior(stats.Beta(8, 17), 150, 52)
    assert (post.alpha, post.beta) == (60, 115)
    assert post.mean == pytest.approx(0.342857, abs=5e-7)


def test_seed_wald_is_red():
    z = stats.wald_z(150, 68, 0.32)
    rate = 68 / 150
    assert z == pytest.approx((rate - 0.32) / math.sqrt(rate * (1 - rate) / 150))
    assert round(z, 2) == 3.28
    assert stats.status_of(z, 150, stats.FitSettings()) == stats.RED


def test_wald_uses_the_continuity_estimate_at_the_edges():
    assert stats.wald_z(100, 0, 0.05) == pytest.approx((0 - 0.05) / math.sqrt((0.5 / 101) * (1 - 0.5 / 101) / 100))
    assert stats.wald_z(100, 100, 0.9) == pytest.approx(0.1 / math.sqrt((100.5 / 101) * (0.5 / 101) / 100))
    assert stats.wald_z(0, 0, 0.3) is None


def _betabinom_pmf(k, n, a, b):
    """The BetaBinomial pmf from its closed form (no scipy.stats.betabinom)."""
    return math.exp(math.log(math.comb(n, k)) + special.betaln(k + a, n - k + b) - special.betaln(a, b))


@pytest.mark.parametrize("n,k,a,b", [(150, 68, 8, 17), (150, 30, 8, 17), (40, 12, 2.5, 7.5), (500, 170, 60, 115)])
def test_predictive_against_the_closed_form(n, k, a, b):
    pmf = [_betabinom_pmf(i, n, a, b) for i in range(n + 1)]
    lower, upper = sum(pmf[:k + 1]), sum(pmf[k:])
    p = min(1.0, 2 * min(lower, upper))
    expected = math.copysign(sps.norm.isf(p / 2), k - n * a / (a + b)) if p < 1 else 0.0
    assert stats.predictive_z(n, k, stats.Beta(a, b)) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_predictive_matches_scipy_betabinom():
    prior = stats.Beta(8, 17)
    dist = sps.betabinom(150, 8, 17)
    p = 2 * min(dist.cdf(68), dist.sf(67))
    assert stats.predictive_z(150, 68, prior) == pytest.approx(sps.norm.isf(p / 2))


@pytest.mark.parametrize("z,n,want", [(1.99, 500, "green"), (2.0, 500, "amber"), (-3.0, 500, "amber"),
                                      (3.01, 500, "red"), (-5, 500, "red"), (9, 99, "insufficient"),
                                      (None, 0, "insufficient")])
def test_status_thresholds(z, n, want):
    assert stats.status_of(z, n, stats.FitSettings()) == want


def test_settings_merge_parameter_over_global():
    s = stats.FitSettings.merged({"method": "wald", "thresholds": {"amber": 1.5}, "min_sample_size": 50},
                                 {"method": "predictive", "thresholds": {"red": 4}})
    assert s == stats.FitSettings("predictive", 1.5, 4.0, 50)


@given(st.floats(0.02, 0.98), st.floats(0.001, 0.2))
def test_moment_match_round_trips(mean, stdev):
    if stdev ** 2 >= mean * (1 - mean):
        with pytest.raises(ValueError):
            stats.moment_match(mean, stdev)
        return
    b = stats.moment_match(mean, stdev)
    assert b.mean == pytest.approx(mean, rel=1e-9)
    assert b.stdev == pytest.approx(stdev, rel=1e-7)
    assert sps.beta(b.alpha, b.beta).std() == pytest.approx(stdev, rel=1e-7)


@given(st.floats(0.5, 5000), st.floats(0.5, 5000), st.floats(1, 400))
def test_cap_keeps_the_mean(a, b, cap):
    capped = stats.cap_weight(stats.Beta(a, b), cap)
    assert capped.mean == pytest.approx(a / (a + b))
    assert capped.weight == pytest.approx(min(a + b, cap))


def test_explicit_prior_wins_over_the_value():
    assert stats.prior_of(0.5, 0.1, {"alpha": 8, "beta": 17}) == stats.Beta(8, 17)
    assert stats.prior_of(0.32, 0.0).weight == pytest.approx(stats.POINT_MASS_WEIGHT)


@settings(max_examples=60)
@given(st.floats(0.5, 200), st.floats(0.5, 200), st.integers(0, 500), st.integers(0, 500), st.data())
def test_two_updates_equal_one(a, b, n1, n2, data):
    """Conjugacy: updating over two windows in turn equals one update over both."""
    k1, k2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    twice = stats.posterior(stats.posterior(stats.Beta(a, b), n1, k1), n2, k2)
    once = stats.posterior(stats.Beta(a, b), n1 + n2, k1 + k2)
    assert twice.alpha == pytest.approx(once.alpha) and twice.beta == pytest.approx(once.beta)


@pytest.mark.parametrize("n,k", [(10, 11), (-1, 0), (5, -1), (None, 1), (3.5, 1)])
def test_bad_counts_are_refused(n, k):
    with pytest.raises(ValueError):
        stats.posterior(stats.Beta(1, 1), n, k)
