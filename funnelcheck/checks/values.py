"""Probabilities and priors: every value a Beta distribution can have, and a value to use at all."""
from __future__ import annotations

from funnelcheck.checks.index import CheckIndex
from funnelcheck.findings import Finding
from funnelcheck.model import Estimate, Parameter, Where


def check_values(index: CheckIndex) -> list[Finding]:
    """Each parameter's value, fallback value and Beta prior, each inline p; a parameter needs a value."""
    out: list[Finding] = []
    for p in index.registry.parameters.values():  # findings are sorted at the end
        if p.value is not None:
            out += check_estimate(p.where, "value", p.value)
        if p.fallback_value is not None:
            out += check_estimate(p.where, "fallback_value", p.fallback_value)
        if p.bayesian_update:
            out += _check_prior(p)
        if p.value is None and p.fallback_value is None and (p.prior_source or {}).get("type", "yaml") == "yaml":
            out.append(p.where.finding(
                "missing-value", f"parameter '{p.id}' has no value: give it `value`, or a `prior_source` "
                "other than yaml (with a `fallback_value` for when it fails)"))
    for graph in index.graphs:
        for e in graph.edges:
            if e.inline is not None:
                out += check_estimate(e.where, "p", e.inline)
    return out


def check_estimate(where: Where, field: str, est: Estimate) -> list[Finding]:
    """A probability in [0, 1] with a stdev a Beta distribution can have (docs/statistics.md), at `where.field`."""
    out = []
    m, s = est.mean, est.stdev
    if not 0 <= m <= 1:
        out.append(where.at(field, "mean").finding("probability-range", f"mean {m:g} is not a probability (0 <= mean <= 1)"))
    if not s >= 0:
        out.append(where.at(field, "stdev").finding("infeasible-stdev", f"stdev {s:g} is negative"))
    elif s > 0 and 0 <= m <= 1 and s * s >= m * (1 - m):
        limit = (m * (1 - m)) ** 0.5
        out.append(where.at(field, "stdev").finding(
            "infeasible-stdev", f"stdev {s:g} is too large for mean {m:g}: a Beta distribution needs "
            f"stdev < sqrt(mean·(1−mean)) = {limit:.4g}"))
    return out


def _check_prior(p: Parameter) -> list[Finding]:
    prior = (p.bayesian_update or {}).get("prior") or {}
    return [p.where.at("bayesian_update", "prior", name).finding(
                "nonpositive-prior", f"Beta prior {name} must be above 0, not {prior[name]:g}")
            for name in ("alpha", "beta") if name in prior and not prior[name] > 0]
