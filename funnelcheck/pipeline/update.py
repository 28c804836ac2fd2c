"""`update` (SPEC 8.4): Beta-Binomial posteriors from the evidence after `updated_through` up to
`--as-of` (with no `updated_through` yet: the observation window ending at `--as-of`). The same
evidence is never counted twice: the new `updated_through` is the end of the evidence counted."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from funnelcheck.model import Registry
from funnelcheck.pipeline import stats
from funnelcheck.pipeline.connections import Connections
from funnelcheck.pipeline.monitor import PriorLookup, monitored, prior_beta, yaml_prior
from funnelcheck.pipeline.observations import Progress, Window, collect, observation_window, place
from funnelcheck.pipeline.yamlwrite import rewrite_posterior

DIGITS = 6  # what the YAML keeps of a mean, stdev, α or β


@dataclass(frozen=True)
class UpdateChange:
    """One parameter's update (or why it has none)."""

    id: str
    file: str
    window: Window | None
    prior: stats.Beta | None = None
    posterior: stats.Beta | None = None
    n: int = 0
    k: int = 0
    error: str | None = None

    @property
    def changes(self) -> bool:
        return self.error is None and self.n > 0

    def to_json(self) -> dict:
        def beta(b):
            return None if b is None else {"alpha": b.alpha, "beta": b.beta, "mean": b.mean, "stdev": b.stdev}

        return {"id": self.id, "prior": beta(self.prior),
                "evidence": {"n": self.n, "k": self.k, "from": _iso(self.window.start if self.window else None),
                             "to": _iso(self.window.end if self.window else None)},
                "posterior": beta(self.posterior), "file": self.file, "error": self.error}


@dataclass
class UpdatePlan:
    """Every parameter's change, and the new text of each file that changes."""

    as_of: datetime
    changes: list[UpdateChange]
    texts: dict[str, tuple[str, str]]  # file -> (old text, new text)

    def diff(self) -> str:
        """The unified diff of the YAML that --write would write."""
        out = []
        for path, (old, new) in sorted(self.texts.items()):
            out += difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}")
        return "".join(out)

    @property
    def errors(self) -> list[UpdateChange]:
        return [c for c in self.changes if c.error]


def parse_time(text) -> datetime:
    """An ISO timestamp (Z or offset; naive = UTC)."""
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def update_window(p, as_of: datetime) -> Window:
    """(updated_through, as_of), or the observation window ending at as_of when nothing was counted yet."""
    through = (p.bayesian_update or {}).get("updated_through")
    if through is None:
        return observation_window(p, as_of)
    try:
        start = parse_time(through)
    except ValueError:
        raise ValueError(f"{place(p, 'bayesian_update', 'updated_through')}: bayesian_update.updated_through: "
                         f"'{through}' is not an ISO timestamp") from None
    return Window(start, max(start, as_of))


def plan_update(registry: Registry, connections: Connections, as_of: datetime, read_text,
                progress: Progress | None = None, priors: PriorLookup = yaml_prior) -> UpdatePlan:
    """Compute every posterior and the new file texts; `read_text(display_path)` gives a file's text."""
    changes: dict[str, UpdateChange] = {}
    windows: dict[str, Window] = {}
    params = monitored(registry)
    for p in params:
        try:
            windows[p.id] = update_window(p, as_of)
        except Exception as exc:
            changes[p.id] = UpdateChange(p.id, p.where.path, None, error=str(exc))
    fresh = [p for p in params if p.id in windows and windows[p.id].start < windows[p.id].end]
    evidence = collect(registry, fresh, {p.id: windows[p.id] for p in fresh}, connections, progress)
    texts = {}
    for p in params:
        if p.id in changes:
            continue
        window = windows[p.id]
        try:
            prior = prior_beta(p, priors(p))
        except ValueError as exc:
            changes[p.id] = UpdateChange(p.id, p.where.path, window, error=f"{place(p, 'value')}: {exc}")
            continue
        found = evidence.get(p.id)
        if found is None:  # nothing after updated_through yet
            changes[p.id] = UpdateChange(p.id, p.where.path, window, prior, prior)
            continue
        if found.error:
            changes[p.id] = UpdateChange(p.id, p.where.path, window, prior, error=found.error)
            continue
        n, k = found.observed.n, found.observed.k
        post = stats.posterior(prior, n, k)
        change = UpdateChange(p.id, p.where.path, window, prior, post, n, k)
        changes[p.id] = change
        if change.changes:
            old = read_text(p.where.path)
            new = rewrite_posterior(old, round(post.mean, DIGITS), round(post.stdev, DIGITS),
                                    round(post.alpha, DIGITS), round(post.beta, DIGITS), _iso(window.end))
            texts[p.where.path] = (old, new)
    return UpdatePlan(as_of, [changes[p.id] for p in params], texts)


def write_plan(plan: UpdatePlan) -> list[str]:
    """Write each changed file atomically (display paths are relative to the current directory)."""
    from funnelcheck.pipeline.yamlwrite import write_text

    written = []
    for path, (_, new) in sorted(plan.texts.items()):
        write_text(Path(path), new)
        written.append(path)
    return written


def value_rows(plan: UpdatePlan, written: list[str]) -> list[dict]:
    """parameter_values rows for the posteriors written: stamped with the end of their evidence."""
    done = set(written)
    return [{"param_id": c.id, "timestamp": c.window.end, "mean": round(c.posterior.mean, DIGITS),
             "stdev": round(c.posterior.stdev, DIGITS), "source": "update"}
            for c in plan.changes if c.changes and c.file in done]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
