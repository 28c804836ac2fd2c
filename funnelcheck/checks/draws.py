"""Draws past 1: warn where a node's drawn outgoing probabilities would often sum above 1.

What-if draws each parameter from a Beta distribution moment-matched to its mean and stdev
(docs/statistics.md), independently. Means that fit under 1 can still give draws that do not;
the engine scales those draws down, which biases the interval. For every node and combination
that can occur (the search of `checks/sums.py`) whose means fit but whose spread could reach
past 1, the share of draws past 1 is computed on a grid (`_share`), and a share above 1% is a
warning. Cheap screens keep everything else at one bound per node.
"""
from __future__ import annotations

import math
from functools import lru_cache

from funnelcheck.checks.index import SUM_TOLERANCE, CheckIndex
from funnelcheck.checks.sums import (Option, combination_text, combinations, edge_estimates, merged, node_searches,
                                     variance_proxy as _proxy)
from funnelcheck.findings import WARNING, Finding
from funnelcheck.model import Edge, Estimate, Graph

LIMIT = 0.01  # warn when more than this share of draws passes 1
REACH = 4.0  # only combinations whose mean sum + REACH·sd passes 1 are computed


def check_draw_sums(index: CheckIndex) -> list[Finding]:
    """For every node and combination that can occur, at most 1% of draws of its outgoing probabilities pass 1."""
    tail = _Tail()
    found = []
    for graph in index.graphs:
        found += index.per_graph("outgoing-sum-draws", graph, lambda graph=graph: _graph_draws(index, graph, tail))
    return found


def _graph_draws(index: CheckIndex, graph: Graph, tail: "_Tail") -> list[Finding]:
    found = []

    def worth(edges: list[Edge]) -> bool:
        return _best_reach([[(x.mean, x.stdev) for x in edge_estimates(index, graph, e.id)] for e in edges])

    for search in node_searches(index, graph, worth):
        risky = {}
        for combo, winners in combinations(search, _could_reach):
            estimates = [w.slot.estimate for w in winners if w is not None]
            mean = sum(e.mean for e in estimates)
            if mean > 1 + SUM_TOLERANCE or not _estimates_reach(estimates):
                continue  # past 1 already on the means (an outgoing-sum error), or too tight to matter
            if not all(_feasible(e) for e in estimates):
                continue  # reported by the values checks
            share = tail.share_past_one(estimates)
            if share > LIMIT:
                risky[combo] = (share, mean, winners)
        for pattern, members in merged(search, risky):
            worst = max(members, key=lambda c: (members[c][0], c))
            share, mean, winners = members[worst]
            lowest = min(s for s, _, _ in members.values())
            terms = " + ".join(f"{e.id} {w.mean:g}±{w.slot.estimate.stdev:g} ({w.slot.id or 'inline p'})"
                               for e, w in zip(search.edges, winners) if w is not None)
            amount = f"{share:.1%}" if lowest == share else f"up to {share:.1%}"
            found.append(search.node.where.at("id").finding(
                "outgoing-sum-draws", f"outgoing probabilities of node '{search.node.id}' sum past 1 in {amount} "
                f"of Monte Carlo draws {combination_text(search, pattern)} (means {mean:.6g}): {terms}; "
                "what-if scales those draws down, so its interval is biased", WARNING))
    return found


def _reaches(means: list[float], stdevs: list[float], proxies: list[float]) -> bool:
    """Whether draws of a sum with these (or lower) means, stdevs and variance proxies can pass 1 often.

    Two screens, both cheap: mean sum + REACH·sd > 1 (independent draws: variances add), and
    the sub-Gaussian tail bound P(S − μ ≥ t) ≤ exp(−t² / 2V) above LIMIT, where V adds each
    Beta's variance proxy, at most 1/(4(α+β+1)) = stdev² / (4·mean·(1−mean)) (Marchal and
    Arbel, 2017). The second is a proof: where it fails, no combination below can warn.
    """
    gap = 1 - sum(means)
    if gap <= 0:
        return True
    return gap < REACH * math.sqrt(sum(s * s for s in stdevs)) and gap * gap < 2 * sum(proxies) * math.log(1 / LIMIT)


def _estimates_reach(estimates) -> bool:
    return _reaches([e.mean for e in estimates], [e.stdev for e in estimates],
                    [_proxy(e.mean, e.stdev) for e in estimates])


def _best_reach(per_edge: list[list[tuple[float, float]]]) -> bool:
    """A bound over choices: each edge's highest mean, stdev and proxy among its (mean, stdev) pairs."""
    return _bound([[(m, s, _proxy(m, s)) for m, s in pairs] for pairs in per_edge])


def _bound(per_edge) -> bool:
    """`_reaches` on each edge's highest mean, stdev and proxy among its (mean, stdev, proxy) triples."""
    gap, variance, proxies = 1.0, 0.0, 0.0
    for triples in per_edge:
        if triples:
            means, stdevs, edge_proxies = zip(*triples)
            gap -= max(means)
            top = max(stdevs)
            variance += top * top
            proxies += max(edge_proxies)
    if gap <= 0:
        return True
    return gap < REACH * math.sqrt(variance) and gap * gap < 2 * proxies * math.log(1 / LIMIT)


def _could_reach(options: list[list[Option]]) -> bool:
    return _bound([[(o.mean, o.stdev, o.proxy) for o in opts] for opts in options])


def _feasible(e: Estimate) -> bool:
    return 0 <= e.mean <= 1 and e.stdev >= 0 and (e.stdev == 0 or e.stdev * e.stdev < e.mean * (1 - e.mean))


class _Tail:
    """P(Σ X_i > 1) for independent Betas, computed on a grid; memoised by the estimates involved.

    The grid's bins are half the smallest stdev wide, but no finer than a tenth of the sum's stdev (and
    between 1/1000 and 1/100). Each Beta
    becomes its masses on the bins within 10 stdevs of its mean (the density at the bin centre,
    the end bins of [0, 1] by their integrals, as the density may be infinite there), spread
    evenly over each bin; point masses shift the threshold instead. All but the widest are
    convolved; the share is Σ_j P(the others in bin j) · P(the widest > 1 − centre of bin j).
    """

    def __init__(self):
        self._shares: dict[tuple, float] = {}

    def share_past_one(self, estimates: list[Estimate]) -> float:
        key = tuple(sorted((e.mean, e.stdev) for e in estimates))
        if key not in self._shares:
            self._shares[key] = _share(estimates)
        return self._shares[key]


def _share(estimates: list[Estimate]) -> float:
    threshold = 1 - math.fsum(e.mean for e in estimates if e.stdev == 0)
    spread = sorted((e for e in estimates if e.stdev > 0), key=lambda e: e.stdev)
    if not spread:
        return 1.0 if threshold < 0 else 0.0
    # Bins a fifth of the smallest stdev wide, but never finer than a tenth of the sum's stdev: the
    # tail of the sum is what is measured, and finer bins only multiply the convolutions' cost.
    total_sd = math.sqrt(math.fsum(e.stdev * e.stdev for e in spread))
    n = math.ceil(1 / min(1 / 100, max(1 / 1000, spread[0].stdev / 2, total_sd / 10)))  # bins on [0, 1]
    *rest, (first, masses, cumulative) = [_grid(e, n) for e in spread]
    start, sums = 0, [1.0]
    for offset, more, _ in rest:
        start, sums = start + offset, _convolve(sums, more)
    out = []
    for j, mass in enumerate(sums):
        # The widest must pass threshold − (centre of bin j of the others): where is that on its grid?
        u = threshold * n - (start + j + len(rest) / 2) - first
        if u < 0:
            out.append(mass)
        elif u < len(masses):
            i = int(u)
            out.append(mass * (1 - cumulative[i] - (u - i) * masses[i]))
    return min(1.0, max(0.0, math.fsum(out)))


@lru_cache(maxsize=4096)
def _grid(e: Estimate, n: int) -> tuple[int, list[float], list[float]]:
    """The first bin, the masses from there, and the mass below each of those bins."""
    kappa = e.mean * (1 - e.mean) / (e.stdev * e.stdev) - 1  # docs/statistics.md: moment matching
    a, b = e.mean * kappa, (1 - e.mean) * kappa
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    lo = max(0, math.floor((e.mean - 8 * e.stdev) * n))
    hi = min(n - 1, math.ceil((e.mean + 8 * e.stdev) * n))
    dens = [math.exp(log_norm + (a - 1) * math.log(t) + (b - 1) * math.log1p(-t))
            for t in ((i + 0.5) / n for i in range(lo, hi + 1))]
    h = 1 / n
    if lo == 0:
        dens[0] = math.exp(log_norm + a * math.log(h) + (b - 1) * math.log1p(-h / 2)) / (a * h)
    if hi == n - 1:
        dens[-1] = math.exp(log_norm + b * math.log(h) + (a - 1) * math.log1p(-h / 2)) / (b * h)
    total = math.fsum(dens)
    masses = [d / total for d in dens]
    below, cumulative = 0.0, []
    for m in masses:
        cumulative.append(below)
        below += m
    return lo, masses, cumulative


def _convolve(u: list[float], v: list[float]) -> list[float]:
    """The distribution of the sum of two independent grids (pure Python: no numpy on validate's path)."""
    if len(u) < len(v):
        u, v = v, u
    out = [0.0] * (len(u) + len(v) - 1)
    width = len(u)
    for j, b in enumerate(v):  # the shorter one outside: fewer, longer slice operations
        if b:
            out[j:j + width] = [o + a * b for o, a in zip(out[j:j + width], u)]
    return out
