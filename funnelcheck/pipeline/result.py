"""The typed results of `monitor` (SPEC 10's JSON shape): what renderers, the store, alerts and
the dashboard read. They only record; nothing here computes a statistic."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from funnelcheck.pipeline.stats import AMBER, ERROR, GREEN, INSUFFICIENT, RED, STATUSES

SEVERITY = {ERROR: -1, INSUFFICIENT: 0, GREEN: 0, AMBER: 1, RED: 2}


@dataclass(frozen=True)
class PriorUsed:
    """The prior a check was judged against."""

    mean: float
    stdev: float
    alpha: float
    beta: float
    source: str = "yaml"
    fallback: bool = False

    def to_json(self) -> dict:
        return {"mean": self.mean, "stdev": self.stdev, "alpha": self.alpha, "beta": self.beta,
                "source": self.source, "fallback": self.fallback}


@dataclass(frozen=True)
class Observed:
    """Aggregate counts from the observation source: n trials, k successes."""

    n: int
    k: int

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None

    def to_json(self) -> dict:
        return {"n": self.n, "k": self.k, "rate": self.rate}


@dataclass(frozen=True)
class ParameterCheck:
    """One parameter's monitoring outcome."""

    id: str
    reference: str
    status: str
    message: str = ""
    prior: PriorUsed | None = None
    observed: Observed | None = None
    z: float | None = None
    method: str = "wald"
    window_start: datetime | None = None
    window_end: datetime | None = None
    file: str | None = None
    previous_z: float | None = None  # the last stored run's z, for "change since the last run"
    previous_status: str | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status}")

    @property
    def expected(self) -> float | None:
        return self.prior.mean if self.prior else None

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "reference": self.reference,
            "prior": self.prior.to_json() if self.prior else None,
            "observed": self.observed.to_json() if self.observed else None,
            "z": self.z,
            "status": self.status,
            "message": self.message,
            "method": self.method,
            "window": {"start": _iso(self.window_start), "end": _iso(self.window_end)},
            "file": self.file,
            "previous": {"z": self.previous_z, "status": self.previous_status},
        }


@dataclass
class MonitorResult:
    """A whole monitor run: every parameter's check, and whether it reached the store."""

    run_at: datetime
    as_of: date
    parameters: list[ParameterCheck] = field(default_factory=list)
    revision: str | None = None
    store_error: str | None = None  # set when the persistence database could not be written

    def summary(self) -> dict[str, int]:
        counts = {s: 0 for s in (GREEN, AMBER, RED, INSUFFICIENT, ERROR)}
        for p in self.parameters:
            counts[p.status] += 1
        return counts

    def fails(self, fail_on: str) -> bool:
        """True when a status at or above `fail_on` (red | amber) occurred; `never` never fails."""
        if fail_on == "never":
            return False
        floor = SEVERITY[RED if fail_on == "red" else AMBER]
        return any(SEVERITY[p.status] >= floor for p in self.parameters)

    def to_json(self) -> dict:
        return {
            "run_at": self.run_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "revision": self.revision,
            "parameters": [p.to_json() for p in self.parameters],
            "summary": self.summary(),
            "stored": self.store_error is None,
            "store_error": self.store_error,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
