"""The posterior-update pull request's body, and what `github update-pr` prints (Markdown for GitHub).

The body: per changed parameter prior → posterior (mean, stdev, α, β), the evidence (n, k,
window) and its Red/Amber/Green status; the priors synced from their sources; then the funnel
impact (the diff comment's tables). Renderers never compute.
"""
from __future__ import annotations

from funnelcheck.github.pulls import NOTHING_NEW, UpdatePr
from funnelcheck.render.markdown import MARKER, code, escape, render_diff, table

ICON = {"green": "🟢", "amber": "🟠", "red": "🔴", "error": "⚠️", "insufficient": "⚪"}
BODY_TABLE_BUDGET = 20_000
IMPACT_LIMIT = 40_000
LIST_LIMIT = 50  # lines per list: the body must stay under GitHub's 65,536 characters


def arrow(before: float, after: float, fmt: str) -> str:
    """`0.320000 → 0.342857` with one format for both sides."""
    return f"{before:{fmt}} → {after:{fmt}}"


def _day(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t else "–"


def parameter_rows(run: UpdatePr) -> list[list[str]]:
    """One row per parameter whose posterior changed."""
    status = {c.id: c.status for c in run.monitor.parameters} if run.monitor else {}
    rows = []
    for c in run.plan.changes if run.plan else []:
        if not c.changes:
            continue
        s = status.get(c.id, "–")
        rows.append([code(c.id), f"{ICON.get(s, '')} {s}".strip(), str(c.n), str(c.k),
                     f"{_day(c.window.start)} → {_day(c.window.end)}",
                     arrow(c.prior.mean, c.posterior.mean, ".6f"), arrow(c.prior.stdev, c.posterior.stdev, ".6f"),
                     arrow(c.prior.alpha, c.posterior.alpha, ".6g"), arrow(c.prior.beta, c.posterior.beta, ".6g")])
    return rows


def body(run: UpdatePr) -> str:
    """The pull request's Markdown body."""
    out = [f"### Posterior update through {run.as_of.date().isoformat()}\n\n",
           f"Built on `{run.default_branch}` at {run.base_commit[:12]} by `funnelcheck github update-pr`: "
           "priors synced from their sources, the monitor run, and Beta-Binomial posteriors from the new "
           "evidence (UTC windows, end exclusive).\n\n"]
    if run.monitor:
        s = run.monitor.summary()
        out.append("**Monitor:** " + ", ".join(f"{ICON[k]} {v} {k}" for k, v in s.items() if v) + "\n")
    rows = parameter_rows(run)
    if rows:
        text, cut = table(["parameter", "status", "n", "k", "window", "mean", "stdev", "α", "β"], rows,
                          BODY_TABLE_BUDGET)
        out.append("\n" + text + (f"\n_{cut} more parameters not shown (size limit)._\n" if cut else ""))
    synced = [i for i in (run.sync.items if run.sync else []) if i.action == "update"]
    if synced:
        out.append("\n**Priors synced from their sources** (a person changed them since the last sync or push):\n")
        out += [f"- {code(i.param_id)} ({escape(i.source)}): {i.registry.mean if i.registry else '–'} → "
                f"{i.fetched.mean:.6g} ± {i.fetched.stdev:.6g}\n" for i in synced[:LIST_LIMIT]]
        out.append(_more(len(synced)))
    if run.problems:
        out.append("\n**Fallback priors used** (the source failed):\n")
        out += [f"- {code(pid)}: {escape(why)}\n" for pid, why in sorted(run.problems.items())[:LIST_LIMIT]]
        out.append(_more(len(run.problems)))
    if run.impact is not None:
        out.append("\n" + render_diff(run.impact, IMPACT_LIMIT).replace(MARKER + "\n", ""))
    return "".join(out)


def _more(total: int) -> str:
    return f"- _and {total - LIST_LIMIT} more_\n" if total > LIST_LIMIT else ""


def text(run: UpdatePr) -> str:
    """What the command prints: the outcome in a line or two."""
    if run.action == NOTHING_NEW:
        what = ("no registry file changed" if not run.changed_files else
                "the same update is already proposed")
        return f"funnelcheck github update-pr: nothing new ({what}): no commit, pull request left alone\n"
    pr = run.pull_request
    lines = []
    if run.commit:
        lines.append(f"funnelcheck github update-pr: pushed {run.commit[:12]} to funnelcheck/posterior-update "
                     f"({len(run.changed_files)} file{'s' if len(run.changed_files) != 1 else ''})")
    lines.append(f"funnelcheck github update-pr: {pr.action} pull request #{pr.number}: {pr.url}")
    return "\n".join(lines) + "\n"
