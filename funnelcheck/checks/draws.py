"""Monte Carlo draws past 1: warn where a node's drawn outgoing probabilities often sum above 1.

What-if draws each parameter from a Beta distribution moment-matched to its mean and stdev
(docs/statistics.md), independently. Means that fit under 1 can still give draws that do not;
the engine scales those draws down, which biases the interval. For every node and combination
that can occur (the search of `checks/sums.py`) whose means fit but whose spread reaches past 1
(mean sum + 4·sd > 1), the share of draws past 1 is estimated from fixed-seed draws of the
winners, and a share above 1% is a warning. Everything else costs one bound per node.
"""
from __future__ import annotations

import math
import random

from funnelcheck.checks.index import SUM_TOLERANCE, CheckIndex
from funnelcheck.checks.sums import Option, combination_text, combinations, edge_estimates, merged, node_searches
from funnelcheck.findings import WARNING, Finding
from funnelcheck.model import Edge, Estimate
from funnelcheck.resolve import Slot

DRAWS = 4000  # the share's standard error at 1% is 0.16 percentage points
LIMIT = 0.01  # warn when more than this share of draws passes 1
REACH = 4.0  # only combinations whose mean sum + REACH·sd passes 1 are drawn


def check_draw_sums(index: CheckIndex) -> list[Finding]:
    """For every node and combination that can occur, at most 1% of draws of its outgoing probabilities pass 1."""
    draws = _Draws()
    found = []
    for graph in index.graphs:
        def worth(edges: list[Edge]) -> bool:
            best = [edge_estimates(index, graph, e.id) for e in edges]
            return _reaches([max((s.mean for s in ests), default=0.0) for ests in best],
                            [max((s.stdev for s in ests), default=0.0) for ests in best])

        for search in node_searches(index, graph, worth):
            risky = {}
            for combo, winners in combinations(search, _could_reach):
                estimates = [w.slot.estimate for w in winners if w is not None]
                mean = sum(e.mean for e in estimates)
                if mean > 1 + SUM_TOLERANCE or not _reaches([e.mean for e in estimates], [e.stdev for e in estimates]):
                    continue  # past 1 already on the means (an outgoing-sum error), or too tight to matter
                if not all(_feasible(e) for e in estimates):
                    continue  # reported by the values checks
                share = draws.share_past_one([w.slot for w in winners if w is not None])
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


def _reaches(means: list[float], stdevs: list[float]) -> bool:
    """Mean sum + REACH·sd passes 1 (independent draws: variances add)."""
    return sum(means) + REACH * math.sqrt(sum(s * s for s in stdevs)) > 1


def _could_reach(options: list[list[Option]]) -> bool:
    """A bound for a branch: each edge's highest mean and highest stdev, whichever options win."""
    return _reaches([max((o.mean for o in opts), default=0.0) for opts in options],
                    [max((o.slot.estimate.stdev for o in opts), default=0.0) for opts in options])


def _feasible(e: Estimate) -> bool:
    return 0 <= e.mean <= 1 and e.stdev >= 0 and (e.stdev == 0 or e.stdev * e.stdev < e.mean * (1 - e.mean))


class _Draws:
    """Fixed-seed Beta draws per slot (edge + filters), made once per run and shared by every combination."""

    def __init__(self):
        self._streams: dict[tuple, list[float]] = {}

    def of(self, slot: Slot) -> list[float]:
        key = (slot.edge, slot.context_filter, tuple(sorted(slot.visited_filter)))
        if key not in self._streams:
            m, s = slot.estimate.mean, slot.estimate.stdev
            if s == 0:
                self._streams[key] = [m] * DRAWS
            else:
                kappa = m * (1 - m) / (s * s) - 1  # docs/statistics.md: the Beta with this mean and stdev
                rng = random.Random(repr(key))  # a str seed is hashed with SHA-512: the same on every run
                self._streams[key] = [rng.betavariate(m * kappa, (1 - m) * kappa) for _ in range(DRAWS)]
        return self._streams[key]

    def share_past_one(self, slots: list[Slot]) -> float:
        """The share of draws in which these slots' values sum above 1."""
        totals = map(math.fsum, zip(*(self.of(s) for s in slots)))
        return sum(1 for t in totals if t > 1) / DRAWS
