"""`monitor` (SPEC 8.4): prior → observations → divergence → status for every parameter with an
observation source. A failing source marks that parameter `error` and the run goes on. The
result types live in `result` and are re-exported here; storing and rendering are the caller's."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Callable

from funnelcheck.findings import UsageError
from funnelcheck.model import Estimate, Parameter, Registry
from funnelcheck.pipeline import stats
from funnelcheck.pipeline.connections import Connections
from funnelcheck.pipeline.observations import Evidence, Progress, Window, collect, observation_window, place
from funnelcheck.pipeline.result import MonitorResult, Observed, ParameterCheck, PriorUsed
from funnelcheck.reference import Reference, format_reference

__all__ = ["MonitorResult", "Observed", "ParameterCheck", "PriorUsed", "run_monitor", "parse_as_of",
           "PriorValue", "yaml_prior", "reference_of", "prior_beta"]


@dataclass(frozen=True)
class PriorValue:
    """A parameter's current value and where it came from (the priors issue plugs sources in here)."""

    estimate: Estimate | None
    source: str = "yaml"
    fallback: bool = False
    error: str | None = None


PriorLookup = Callable[[Parameter], PriorValue]


def yaml_prior(p: Parameter) -> PriorValue:
    """The file's own value (`prior_source: yaml`, the default), else its fallback_value."""
    if p.value is not None:
        return PriorValue(p.value)
    if p.fallback_value is not None:
        return PriorValue(p.fallback_value, "yaml", True)
    return PriorValue(None, error=f"{place(p)}: value: none, and no fallback_value")


def parse_as_of(text: str | None, today: date | None = None) -> datetime:
    """`--as-of YYYY-MM-DD` → that day 00:00 UTC (exclusive end of every window); default today."""
    if text is None:
        day = today or datetime.now(timezone.utc).date()
    else:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise UsageError(f"--as-of {text!r}: expected a date YYYY-MM-DD") from None
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def reference_of(p: Parameter) -> str:
    """The canonical reference of a parameter's slot: `e.signup.visited(pricing).context(channel='google').p.mean`."""
    return format_reference(Reference.make(p.edge, p.visited_filter, p.context))


def prior_beta(p: Parameter, value: PriorValue) -> stats.Beta:
    """SPEC 8.3's prior: `bayesian_update.prior`, else moment-matched from the value; capped. ValueError if none."""
    update = p.bayesian_update or {}
    estimate = value.estimate
    return stats.prior_of(estimate.mean if estimate else None, estimate.stdev if estimate else None,
                          update.get("prior"), update.get("max_prior_weight"))


def monitored(registry: Registry) -> list[Parameter]:
    """The parameters with an observation source, by id."""
    return sorted((p for p in registry.parameters.values() if p.observation_source), key=lambda p: p.id)


@dataclass
class Observations:
    """What the warehouse said for the monitored parameters (`observe`), before any judgement."""

    params: list[Parameter]
    windows: dict[str, Window]
    evidence: dict[str, Evidence]
    failed: dict[str, ParameterCheck]  # parameters whose window could not be read


def observe(registry: Registry, connections: Connections, as_of: datetime,
            progress: Progress | None = None) -> Observations:
    """Every monitored parameter's evidence over [as_of − window, as_of): the queries, nothing else."""
    params = monitored(registry)
    failed: dict[str, ParameterCheck] = {}
    windows: dict[str, Window] = {}
    for p in params:
        try:
            windows[p.id] = observation_window(p, as_of)
        except Exception as exc:  # a malformed window: this parameter only
            failed[p.id] = ParameterCheck(p.id, reference_of(p), stats.ERROR, str(exc), file=p.where.path)
    evidence = collect(registry, [p for p in params if p.id in windows], windows, connections, progress)
    return Observations(params, windows, evidence, failed)


def run_monitor(registry: Registry, connections: Connections, as_of: datetime, previous: dict | None = None,
                priors: PriorLookup = yaml_prior, revision: str | None = None,
                progress: Progress | None = None, observed: Observations | None = None) -> MonitorResult:
    """Check every monitored parameter over [as_of − window, as_of) (`observed`: the queries already run)."""
    observed = observed or observe(registry, connections, as_of, progress)
    previous = previous or {}
    global_fit = (registry.config.data if registry.config else {}).get("model_fit")
    checks: dict[str, ParameterCheck] = dict(observed.failed)
    for p in observed.params:
        if p.id not in checks:
            checks[p.id] = judge(p, priors(p), observed.evidence[p.id], observed.windows[p.id], global_fit)
        before = previous.get(p.id)
        if before:
            c = checks[p.id]
            checks[p.id] = ParameterCheck(**{**c.__dict__, "previous_z": before.get("z"),
                                             "previous_status": before.get("status")})
    return MonitorResult(datetime.now(timezone.utc), as_of.date(), [checks[p.id] for p in observed.params], revision)


def judge(p: Parameter, value: PriorValue, evidence: Evidence, window: Window, global_fit: dict | None) -> ParameterCheck:
    """One parameter's check: prior, counts, z by the configured method, status and a message."""
    settings = stats.FitSettings.merged(global_fit, p.model_fit)
    common = dict(id=p.id, reference=reference_of(p), method=settings.method, window_start=window.start,
                  window_end=window.end, file=p.where.path)
    if value.error:
        return ParameterCheck(status=stats.ERROR, message=value.error, **common)
    try:
        beta = prior_beta(p, value)
    except ValueError as exc:
        return ParameterCheck(status=stats.ERROR, message=f"{place(p, 'bayesian_update')}: {exc}", **common)
    prior = PriorUsed(beta.mean, beta.stdev, beta.alpha, beta.beta, value.source, value.fallback)
    if evidence.error:
        return ParameterCheck(status=stats.ERROR, message=evidence.error, prior=prior, **common)
    observed = evidence.observed
    z = stats.divergence(observed.n, observed.k, beta, settings.method)
    status = stats.status_of(z, observed.n, settings)
    return ParameterCheck(status=status, message=describe(status, prior, observed, z, settings), prior=prior,
                          observed=observed, z=z, **common)


def describe(status: str, prior: PriorUsed, observed: Observed, z: float | None, settings: stats.FitSettings) -> str:
    """`Expected 55.0%, observed 42.0% (-3.2σ), n=892`, or why no judgement was made."""
    if status == stats.INSUFFICIENT:
        return f"n={observed.n} is below min_sample_size {settings.min_sample_size}"
    return (f"Expected {100 * prior.mean:.1f}%, observed {100 * observed.rate:.1f}% ({z:+.1f}σ), n={observed.n}")
