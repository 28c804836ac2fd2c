"""Render an update plan: prior → posterior per parameter, then the unified diff. JSON is SPEC 10's list."""
from __future__ import annotations

from funnelcheck.pipeline.update import UpdateChange, UpdatePlan, _iso


def _beta(b) -> str:
    return f"mean {b.mean:.6f} sd {b.stdev:.6f} (α {b.alpha:.4g}, β {b.beta:.4g})"


def line(c: UpdateChange) -> str:
    """`signup-base: 52/150 [from, to): mean ... → mean ...`, or why nothing changes."""
    if c.error:
        return f"  {c.id}: error: {c.error}"
    if not c.changes:
        return f"  {c.id}: no new evidence since {_iso(c.window.start) if c.window else '-'}"
    return (f"  {c.id}: {c.k}/{c.n} in [{_iso(c.window.start)}, {_iso(c.window.end)}): "
            f"{_beta(c.prior)} → {_beta(c.posterior)}")


def text(plan: UpdatePlan, written: list[str] | None) -> str:
    """The changes, then the diff (dry run) or the files written."""
    changing = [c for c in plan.changes if c.changes]
    out = [f"funnelcheck update: evidence up to {_iso(plan.as_of)}: {len(changing)} of {len(plan.changes)} "
           "parameters change"]
    out += [line(c) for c in plan.changes]
    if written is None:
        diff = plan.diff()
        out += ["", diff.rstrip("\n") if diff else "(no file would change)", "",
                "dry run: nothing written (use --write)"]
    else:
        out += ["", *(f"wrote {path}" for path in written)] if written else ["", "nothing to write"]
    return "\n".join(out) + "\n"


def as_json(plan: UpdatePlan) -> list[dict]:
    """SPEC 10: [{"id", "prior", "evidence": {"n", "k", "from", "to"}, "posterior", "file"}]."""
    return [c.to_json() for c in plan.changes]
