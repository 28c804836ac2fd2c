"""Monte Carlo draws of parameters (docs/statistics.md): moment-matched Beta by inverse CDF.

Every parameter *slot* (an edge with its canonical filters, not the file's id) has its own
stream of uniforms, seeded from (seed, slot key) through a stable hash, and a draw is the Beta
quantile of its uniform. So a rerun prints identical numbers, and in a diff the same slot gets
the same uniforms at both revisions: an unchanged or renamed parameter draws identical values
and a nudged one nearby values (common random numbers). Python's `hash()` is salted per
process and is never used here.

The Beta quantile (`scipy.special.betaincinv`) costs about a microsecond per value, too much
for thousands of slots × thousands of draws. When a slot has many draws, its quantile function
is tabulated instead on a fixed grid of normal scores z = Φ⁻¹(u) (exact values and exact
slopes), and each draw is a cubic Hermite interpolation of logit(x) in z. The table is checked
against the exact quantile halfway between every two grid points; a slot whose table misses by
more than `TOLERANCE`, or whose α or β is below 1/2 (a spike at 0 or 1), draws exactly instead.
"""
from __future__ import annotations

import hashlib

import numpy as np

from funnelcheck.findings import FunnelcheckError
from funnelcheck.model import Estimate

GRID = 64  # points of a slot's quantile table
Z_MAX = 8.21  # |Φ⁻¹(u)| of the most extreme uniform a 53-bit generator gives (u = 2⁻⁵³)
TOLERANCE = 1e-6  # largest accepted |table − exact quantile| at the check points
ROWS_PER_CHUNK_ELEMENTS = 2**19  # slots × draws interpolated at once (bounds the temporaries)


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
    """Each slot's stream of uniforms: Philox keyed by blake2b(seed, slot key).

    A counter-based generator takes a 128-bit key directly, so every slot gets an independent
    stream without a SeedSequence expansion, and one generator is re-keyed per slot (what it
    draws is exactly what a fresh `Philox(key=...)` would draw, at a fraction of the set-up
    cost for thousands of slots). A slot's uniforms never depend on which slots came before.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.bits = np.random.Philox(0)
        self.generator = np.random.Generator(self.bits)

    def uniforms(self, key: str, samples: int) -> np.ndarray:
        """The first `samples` uniforms in [0, 1) of the slot's stream (`Generator.random`)."""
        digest = hashlib.blake2b(f"{self.seed}\x00{key}".encode("utf-8"), digest_size=16).digest()
        self.bits.state = {"bit_generator": "Philox",
                           "state": {"counter": np.zeros(4, np.uint64), "key": np.frombuffer(digest, np.uint64).copy()},
                           "buffer": np.zeros(4, np.uint64), "buffer_pos": 4, "has_uint32": 0, "uinteger": 0}
        return self.generator.random(samples)


def draw_slots(estimates: list[Estimate], keys: list[str], seed: int, samples: int) -> np.ndarray:
    """(len(estimates), samples) draws: row i is the Beta quantile of slot keys[i]'s uniforms.

    A point mass (stdev 0) repeats its mean. Raises InfeasibleEstimate for an impossible estimate.
    """
    from scipy.special import betaincinv

    streams = Streams(seed)
    out = np.empty((len(estimates), samples))
    shapes = [beta_shape(e) for e in estimates]
    random = [i for i, s in enumerate(shapes) if s is not None]
    for i, e in enumerate(estimates):
        if shapes[i] is None:
            out[i] = float(e.mean)
    if not random:
        return out
    a = np.array([shapes[i][0] for i in random])
    b = np.array([shapes[i][1] for i in random])
    # Tabulating costs 2·GRID − 1 exact quantiles per slot: worth it only with more draws than that.
    tabulated = np.zeros(len(random), dtype=bool)
    if samples >= 2 * GRID:
        pieces, tabulated = _tables(a, b)
    rows = max(1, ROWS_PER_CHUNK_ELEMENTS // samples)
    for start in range(0, len(random), rows):
        chunk = range(start, min(start + rows, len(random)))
        u = np.stack([streams.uniforms(keys[random[j]], samples) for j in chunk])
        exact = ~tabulated[chunk.start:chunk.stop]
        values = np.empty_like(u)
        if exact.any():
            values[exact] = betaincinv(a[chunk][exact, None], b[chunk][exact, None], u[exact])
        if not exact.all():
            from scipy.special import ndtri

            picked = np.flatnonzero(~exact) + chunk.start
            values[~exact] = _interpolate(pieces[picked], ndtri(u[~exact]))
        out[[random[j] for j in chunk]] = values
    return out


def _grid(points: int) -> np.ndarray:
    return np.linspace(-Z_MAX, Z_MAX, points)


def _logit_quantile(a: np.ndarray, b: np.ndarray, z: np.ndarray) -> np.ndarray:
    """logit of the Beta(a, b) quantile at Φ(z), (slots, len(z)); the upper half through the
    mirrored Beta(b, a) so that values near 1 keep their precision."""
    from scipy.special import betaincinv, ndtr

    low = z <= 0
    y = np.empty((len(a), len(z)))
    x = betaincinv(a[:, None], b[:, None], ndtr(z[low])[None, :])
    y[:, low] = np.log(x) - np.log1p(-x)
    x = betaincinv(b[:, None], a[:, None], ndtr(-z[~low])[None, :])
    y[:, ~low] = np.log1p(-x) - np.log(x)
    return y


def _tables(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per slot: the cubic pieces of logit(quantile) in z (`_pieces`) and whether they are accurate."""
    from scipy.special import betaln

    z = _grid(GRID)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = _logit_quantile(a, b, z)
        # dy/dz = φ(z) / (f(x)·x·(1−x)), with log(f(x)·x·(1−x)) = a·log x + b·log(1−x) − log B(a, b).
        log_x, log_1mx = -np.logaddexp(0, -y), -np.logaddexp(0, y)
        slope = np.exp(-0.5 * z**2 - 0.5 * np.log(2 * np.pi)
                       - (a[:, None] * log_x + b[:, None] * log_1mx - betaln(a, b)[:, None]))
        mid = 0.5 * (z[1:] + z[:-1])
        exact = 1.0 / (1.0 + np.exp(-_logit_quantile(a, b, mid)))
        # A shape below 1/2 (a density spiking at 0 or 1, U-shaped Betas) can jump between check points.
        ok = np.isfinite(y).all(axis=1) & np.isfinite(slope).all(axis=1) & (np.minimum(a, b) >= 0.5)
        pieces = _pieces(np.where(ok[:, None], y, 0.0), np.where(ok[:, None], slope, 0.0))
        error = np.abs(_interpolate(pieces, np.broadcast_to(mid, (len(a), len(mid)))) - exact)
    ok &= np.nan_to_num(error, nan=np.inf).max(axis=1) <= TOLERANCE
    return pieces, ok


def _pieces(y: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """(slots, GRID − 1, 4): per grid interval, the cubic Hermite polynomial c0 + c1·t + c2·t² + c3·t³
    (t ∈ [0, 1] across the interval) through the values and slopes at its ends."""
    h = 2 * Z_MAX / (y.shape[1] - 1)
    y0, y1, d0, d1 = y[:, :-1], y[:, 1:], slope[:, :-1] * h, slope[:, 1:] * h
    return np.stack([y0, d0, 3 * (y1 - y0) - 2 * d0 - d1, 2 * (y0 - y1) + d0 + d1], axis=-1)


def _interpolate(pieces: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Each row's table at that row's normal scores, as quantiles (one gather of 4 coefficients)."""
    intervals = pieces.shape[1]
    h = 2 * Z_MAX / intervals
    t = (np.clip(z, -Z_MAX, Z_MAX) + Z_MAX) / h
    j = np.minimum(t.astype(np.intp), intervals - 1)
    t -= j
    c = pieces.reshape(-1, 4)[j + (np.arange(len(pieces)) * intervals)[:, None]]
    logit = ((c[..., 3] * t + c[..., 2]) * t + c[..., 1]) * t + c[..., 0]
    return 1.0 / (1.0 + np.exp(-logit))


def draws(est: Estimate, key: str, seed: int, samples: int) -> np.ndarray:
    """`samples` draws of one slot from its stream (see `draw_slots`)."""
    return draw_slots([est], [key], seed, samples)[0]


def standard_error(share: float, samples: int) -> float:
    """Monte Carlo standard error of a share of independent draws: √(p(1 − p)/n)."""
    return (share * (1.0 - share) / max(1, samples)) ** 0.5


def summarize(values: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, p05, p50, p95) of Monte Carlo draws (numpy's default linear quantiles)."""
    return summarize_rows(values[np.newaxis, :])[0]


def summarize_rows(values: np.ndarray) -> list[tuple[float, float, float, float]]:
    """`summarize` of every row of a (rows, draws) array, a block of rows at a time (np.quantile
    copies what it sorts: a block bounds that copy)."""
    out = []
    rows = max(1, ROWS_PER_CHUNK_ELEMENTS // max(1, values.shape[1]))
    for a in range(0, len(values), rows):
        block = values[a:a + rows]
        p05, p50, p95 = np.quantile(block, [0.05, 0.5, 0.95], axis=1)
        out += [tuple(map(float, row)) for row in zip(block.mean(axis=1), p05, p50, p95)]
    return out
