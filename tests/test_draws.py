"""The draws-past-1 warning (docs/validation.md): checked against the exact probability from scipy."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from funnelcheck.checks import validate
from funnelcheck.load.registry import load
from funnelcheck.load.sources import DictSource

from conftest import GOOD, GRAPH, param

SIGNUP_NODE_LINE = 8  # `  - id: signup` in GRAPH


def beta(mean: float, stdev: float):
    kappa = mean * (1 - mean) / stdev ** 2 - 1
    return stats.beta(mean * kappa, (1 - mean) * kappa)


def exact_share_past_one(a: tuple[float, float], b: tuple[float, float]) -> float:
    """P(X + Y > 1) for independent Betas X, Y: ∫ f_X(x) · P(Y > 1 − x) dx."""
    x, y = beta(*a), beta(*b)
    value, _ = integrate.quad(lambda t: x.pdf(t) * y.sf(1 - t), 0, 1, limit=200)
    return value


def signup_node(buy: tuple[float, float], give_up: tuple[float, float]) -> dict:
    """GOOD, with the two edges out of the signup node set to these (mean, stdev)."""
    graph = GRAPH.replace("to: bought\n    p: {mean: 0.5, stdev: 0.05}", f"to: bought\n    p: {{mean: {buy[0]}, stdev: {buy[1]}}}") \
        .replace("to: lost\n    p: {mean: 0.3, stdev: 0.05}", f"to: lost\n    p: {{mean: {give_up[0]}, stdev: {give_up[1]}}}")
    assert graph.count(f"mean: {buy[0]}, stdev: {buy[1]}") >= 1 and f"mean: {give_up[0]}, stdev: {give_up[1]}" in graph
    return {k[len("registry/"):]: v for k, v in (GOOD | {"registry/graphs/shop.yaml": graph}).items()}


def draw_warnings(files: dict) -> list:
    return [f for f in validate(load(DictSource(files))) if f.code == "outgoing-sum-draws"]


def close(reported: float, exact: float) -> bool:
    """The message rounds to 0.1 percentage point; the grid computation is good to about 1% of the share."""
    return abs(reported - exact) <= 0.0005 + 0.02 * exact


def reported_share(message: str) -> float:
    return float(re.search(r"sum past 1 in (?:up to )?([0-9.]+)% of Monte Carlo draws", message).group(1)) / 100


def test_a_wide_spread_near_one_is_a_warning_at_the_node(check):
    code, findings, _ = check({"registry/graphs/shop.yaml": GRAPH.replace(
        "p: {mean: 0.5, stdev: 0.05}", "p: {mean: 0.5, stdev: 0.1}").replace(
        "p: {mean: 0.3, stdev: 0.05}", "p: {mean: 0.3, stdev: 0.1}")})
    assert code == 0  # a warning: the means fit
    [f] = findings
    assert (f["code"], f["severity"], f["path"], f["line"]) == (
        "outgoing-sum-draws", "warning", "registry/graphs/shop.yaml", SIGNUP_NODE_LINE)
    assert "node 'signup'" in f["message"] and "in every context (means 0.8)" in f["message"]
    assert "buy 0.5±0.1 (inline p) + give-up 0.3±0.1 (inline p)" in f["message"]
    assert close(reported_share(f["message"]), exact_share_past_one((0.5, 0.1), (0.3, 0.1)))


def test_the_warning_names_the_combination(check):
    # Only google mobile traffic after home gets the wide, high signup rate.
    code, findings, _ = check({"registry/parameters/signup/signup-google-mobile-home.yaml": param(
        "signup-google-mobile-home", "signup", 0.85, 0.08, context="channel: google, device: mobile", visited="home")})
    [f] = findings
    assert code == 0 and f["code"] == "outgoing-sum-draws"
    assert "node 'pricing'" in f["message"] and "for channel=google, device=mobile, visited home" in f["message"]
    assert close(reported_share(f["message"]), exact_share_past_one((0.85, 0.08), (0.1, 0.02)))


def test_point_masses_and_means_past_one_are_not_this_warning(check):
    # Stdev 0 draws are the means: 0.6 + 0.4 = 1 fits, and no draw passes it.
    assert check({"registry/graphs/shop.yaml": GRAPH.replace(
        "p: {mean: 0.5, stdev: 0.05}", "p: {mean: 0.6, stdev: 0}").replace(
        "p: {mean: 0.3, stdev: 0.05}", "p: {mean: 0.4, stdev: 0}")})[:2] == (0, [])
    # Means past 1 are the outgoing-sum error, not also a warning.
    code, findings, _ = check({"registry/graphs/shop.yaml": GRAPH.replace(
        "p: {mean: 0.5, stdev: 0.05}", "p: {mean: 0.7, stdev: 0.1}").replace(
        "p: {mean: 0.3, stdev: 0.05}", "p: {mean: 0.4, stdev: 0.1}")})
    assert code == 1 and [f["code"] for f in findings] == ["outgoing-sum"]


def test_a_three_way_split_agrees_with_a_simulation():
    # No closed form for three Betas: a million scipy draws (seeded) stand in, to ±0.1 percentage point.
    import numpy as np

    rng = np.random.default_rng(7)
    means = [(0.3, 0.06), (0.3, 0.06), (0.3, 0.06)]
    draws = sum(beta(m, s).rvs(size=1_000_000, random_state=rng) for m, s in means)
    simulated = float(np.mean(draws > 1))
    graph = GRAPH.replace("    p: {mean: 0.3, stdev: 0.05}\n", "    p: {mean: 0.3, stdev: 0.06}\n").replace(
        "to: bought\n    p: {mean: 0.5, stdev: 0.05}", "to: bought\n    p: {mean: 0.3, stdev: 0.06}") + \
        "  - id: retry\n    from: signup\n    to: pricing\n    p: {mean: 0.3, stdev: 0.06}\n"
    files = {k[len("registry/"):]: v for k, v in (GOOD | {"registry/graphs/shop.yaml": graph}).items()}
    [f] = draw_warnings(files)
    assert "buy 0.3±0.06 (inline p) + give-up 0.3±0.06 (inline p) + retry 0.3±0.06 (inline p)" in f.message
    assert abs(reported_share(f.message) - simulated) <= 0.002 + 0.02 * simulated


def test_reruns_give_the_same_share():
    files = signup_node((0.5, 0.1), (0.3, 0.1))
    assert draw_warnings(files) == draw_warnings(files)


estimates = st.tuples(st.sampled_from([0.2, 0.3, 0.4, 0.5, 0.6, 0.7]), st.sampled_from([0.01, 0.03, 0.05, 0.08, 0.12]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(estimates, estimates)
def test_the_warning_agrees_with_the_exact_probability(buy, give_up):
    assume(buy[0] + give_up[0] <= 1)
    assume(all(s * s < m * (1 - m) for m, s in (buy, give_up)))
    expected = exact_share_past_one(buy, give_up)
    assume(abs(expected - 0.01) > 0.0005)  # not on the 1% line itself
    warnings = draw_warnings(signup_node(buy, give_up))
    assert bool(warnings) == (expected > 0.01)
    if warnings:
        assert close(reported_share(warnings[0].message), expected)


@pytest.mark.parametrize("stdevs, warned", [((0.05, 0.05), False), ((0.1, 0.1), True)])
def test_the_good_registry_sits_on_the_right_side(stdevs, warned):
    share = exact_share_past_one((0.5, stdevs[0]), (0.3, stdevs[1]))
    assert (share > 0.01) == warned
    assert bool(draw_warnings(signup_node((0.5, stdevs[0]), (0.3, stdevs[1])))) == warned
