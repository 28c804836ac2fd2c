"""Monte Carlo draws of parameters (docs/statistics.md): moment-matched Beta, one stream per parameter.

Every parameter's draws come from its own random stream, seeded from (seed, the parameter's
stream key) through a stable hash, so a rerun prints identical numbers and two revisions of
a registry draw identical values for every parameter they share unchanged (common random
numbers for `diff`). Python's `hash()` is salted per process and is never used here.
"""
from __future__ import annotations

import hashlib

import numpy as np

from funnelcheck.findings import FunnelcheckError
from funnelcheck.model import Estimate


class InfeasibleEstimate(FunnelcheckError):
    """A (mean, stdev) pair that no Beta distribution has."""


def beta_shape(est: Estimate) -> tuple[float, float] | None:
    """(α, β) moment-matched to (mean, stdev); None for a point mass (stdev 0).

    κ = m(1−m)/s² − 1, α = mκ, β = (1−m)κ. Raises InfeasibleEstimate when s² ≥ m(1−m)
    or the mean is outside [0, 1] (validation reports both; this guards the computation).
    """
    m, s = float(est.mean), float(est.stdev)
    if not 0.0 <= m <= 1.0:
        raise InfeasibleEstimate(f"mean {m:g} is outside [0, 1]")
    if s < 0:
        raise InfeasibleEstimate(f"stdev {s:g} is negative")
    if s == 0:
        return None
    kappa = m * (1.0 - m) / (s * s) - 1.0
    if kappa <= 0:
        raise InfeasibleEstimate(
            f"stdev {s:g} is too large for mean {m:g}: a Beta distribution needs stdev² < mean·(1−mean)")
    return m * kappa, (1.0 - m) * kappa


class Streams:
    """Each parameter's random stream: Philox keyed by blake2b(seed, stream key).

    A counter-based generator takes a 128-bit key directly, so every parameter gets an
    independent stream without a SeedSequence expansion, and one generator is re-keyed per
    parameter (what it draws is exactly what a fresh `Philox(key=...)` would draw, at a
    fraction of the set-up cost for thousands of parameters). A parameter's draws never
    depend on which parameters were drawn before it.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.bits = np.random.Philox(0)
        self.generator = np.random.Generator(self.bits)

    def draws(self, est: Estimate, key: str, samples: int) -> np.ndarray:
        """`samples` draws of one parameter (float64); a point mass repeats its mean."""
        shape = beta_shape(est)
        if shape is None:
            return np.full(samples, float(est.mean))
        digest = hashlib.blake2b(f"{self.seed}\x00{key}".encode("utf-8"), digest_size=16).digest()
        self.bits.state = {"bit_generator": "Philox",
                           "state": {"counter": np.zeros(4, np.uint64), "key": np.frombuffer(digest, np.uint64).copy()},
                           "buffer": np.zeros(4, np.uint64), "buffer_pos": 4, "has_uint32": 0, "uinteger": 0}
        return self.generator.beta(shape[0], shape[1], samples)


def draws(est: Estimate, key: str, seed: int, samples: int) -> np.ndarray:
    """`samples` draws of one parameter from its stream (see `Streams`)."""
    return Streams(seed).draws(est, key, samples)


def summarize(values: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, p05, p50, p95) of Monte Carlo draws (numpy's default linear quantiles)."""
    return summarize_rows(values[np.newaxis, :])[0]


def summarize_rows(values: np.ndarray) -> list[tuple[float, float, float, float]]:
    """`summarize` of every row of a (rows, draws) array, in one pass over it."""
    p05, p50, p95 = np.quantile(values, [0.05, 0.5, 0.95], axis=1)
    return [tuple(map(float, row)) for row in zip(values.mean(axis=1), p05, p50, p95)]
