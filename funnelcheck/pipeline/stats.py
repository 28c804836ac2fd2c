"""Beta-Binomial statistics of SPEC 8.3: priors, posteriors, divergence and status. Pure functions.

Seed checks: Beta(8, 17) with 52/150 → Beta(60, 115), mean 0.342857; prior mean 0.32 with
68/150 → z = 3.28 (wald), red.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

GREEN, AMBER, RED, INSUFFICIENT, ERROR = "green", "amber", "red", "insufficient", "error"
STATUSES = (GREEN, AMBER, RED, INSUFFICIENT, ERROR)
POINT_MASS_WEIGHT = 1e9  # α+β standing in for a stdev of 0 (a value held as certain)


@dataclass(frozen=True)
class Beta:
    """A Beta(α, β) distribution over a probability."""

    alpha: float
    beta: float

    @property
    def weight(self) -> float:
        return self.alpha + self.beta

    @property
    def mean(self) -> float:
        return self.alpha / self.weight

    @property
    def stdev(self) -> float:
        a, b = self.alpha, self.beta
        return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


@dataclass(frozen=True)
class FitSettings:
    """How divergence is judged: method, thresholds and the minimum sample size."""

    method: str = "wald"
    amber: float = 2.0
    red: float = 3.0
    min_sample_size: int = 100

    @classmethod
    def merged(cls, *layers: dict | None) -> "FitSettings":
        """Defaults, overridden by each `model_fit` mapping in turn (global, then the parameter's)."""
        out = {"method": cls.method, "amber": cls.amber, "red": cls.red, "min_sample_size": cls.min_sample_size}
        for layer in layers:
            if not layer:
                continue
            for key in ("method", "min_sample_size"):
                if key in layer:
                    out[key] = layer[key]
            out.update({k: float(v) for k, v in (layer.get("thresholds") or {}).items() if k in ("amber", "red")})
        return cls(out["method"], out["amber"], out["red"], int(out["min_sample_size"]))


def moment_match(mean: float, stdev: float) -> Beta:
    """The Beta with this mean and stdev: κ = m(1−m)/s² − 1, α = mκ, β = (1−m)κ.

    A stdev of 0 is a point mass, stood in for by α+β = 1e9. Raises ValueError when the
    stdev is infeasible (s² ≥ m(1−m)) or the mean is 0 or 1 with a spread.
    """
    if not 0.0 <= mean <= 1.0:
        raise ValueError(f"mean {mean} is not a probability")
    if stdev <= 0:
        kappa = POINT_MASS_WEIGHT
    else:
        kappa = mean * (1 - mean) / stdev ** 2 - 1
    if kappa <= 0 or mean in (0.0, 1.0):
        raise ValueError(f"no Beta has mean {mean} and stdev {stdev}")
    return Beta(mean * kappa, (1 - mean) * kappa)


def cap_weight(prior: Beta, max_weight: float | None) -> Beta:
    """Scale α and β down to α+β = max_weight (same mean) when they exceed it."""
    if max_weight is None or prior.weight <= max_weight:
        return prior
    scale = max_weight / prior.weight
    return Beta(prior.alpha * scale, prior.beta * scale)


def prior_of(mean: float | None, stdev: float | None, explicit: dict | None = None,
             max_weight: float | None = None) -> Beta:
    """The prior of SPEC 8.3: the explicit {alpha, beta} if given, else moment-matched; then capped."""
    if explicit:
        alpha, beta = float(explicit["alpha"]), float(explicit["beta"])
        if alpha <= 0 or beta <= 0:
            raise ValueError(f"Beta prior needs positive alpha and beta, got {alpha}, {beta}")
        base = Beta(alpha, beta)
    else:
        if mean is None or stdev is None:
            raise ValueError("no value and no explicit prior")
        base = moment_match(mean, stdev)
    return cap_weight(base, max_weight)


def posterior(prior: Beta, n: int, k: int) -> Beta:
    """α' = α + k, β' = β + (n − k)."""
    check_counts(n, k)
    return Beta(prior.alpha + k, prior.beta + (n - k))


def check_counts(n, k) -> None:
    """Raise ValueError unless 0 ≤ k ≤ n are whole numbers."""
    if n is None or k is None:
        raise ValueError("trials or successes is NULL")
    if n < 0 or k < 0:
        raise ValueError(f"negative counts (trials {n}, successes {k})")
    if k > n:
        raise ValueError(f"successes {k} > trials {n}")
    if int(n) != n or int(k) != k:
        raise ValueError(f"counts are not whole numbers (trials {n}, successes {k})")


def wald_z(n: int, k: int, expected: float) -> float | None:
    """z = (k/n − expected) / √(p̂(1−p̂)/n), p̂ = k/n, or (k+0.5)/(n+1) at k = 0 or k = n. None for n = 0."""
    if n <= 0:
        return None
    rate = k / n
    p_hat = (k + 0.5) / (n + 1) if k in (0, n) else rate
    return (rate - expected) / math.sqrt(p_hat * (1 - p_hat) / n)


def predictive_z(n: int, k: int, prior: Beta) -> float | None:
    """The two-sided tail probability of k under BetaBinomial(n, α, β), as a z of the same sign."""
    if n <= 0:
        return None
    from scipy.stats import betabinom, norm

    dist = betabinom(n, prior.alpha, prior.beta)
    lower, upper = float(dist.cdf(k)), float(dist.sf(k - 1))
    two_sided = min(1.0, 2.0 * min(lower, upper))
    magnitude = float(norm.isf(two_sided / 2.0)) if two_sided < 1.0 else 0.0
    return math.copysign(magnitude, k - n * prior.mean) if magnitude else 0.0


def divergence(n: int, k: int, prior: Beta, method: str = "wald") -> float | None:
    """The divergence σ of k/n from the prior, by `wald` (default) or `predictive`."""
    if method == "predictive":
        return predictive_z(n, k, prior)
    return wald_z(n, k, prior.mean)


def status_of(z: float | None, n: int, settings: FitSettings) -> str:
    """green < amber ≤ |z| ≤ red < red; insufficient when n < min_sample_size."""
    if n < settings.min_sample_size or z is None:
        return INSUFFICIENT
    size = abs(z)
    if size < settings.amber:
        return GREEN
    if size <= settings.red:
        return AMBER
    return RED
