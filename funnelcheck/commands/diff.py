"""`funnelcheck diff BASE [HEAD]`: what-if diff between two revisions (HEAD: the work tree)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from funnelcheck.commands._common import add_format, project_of
from funnelcheck.findings import FunnelcheckError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", metavar="BASE", help="the base revision (branch, tag, SHA, origin/main, main~3)")
    parser.add_argument("head", metavar="HEAD", nargs="?", help="the head revision (default: the work tree)")
    add_format(parser, choices=("text", "md", "json"))
    parser.add_argument("--output", metavar="FILE", help="write to FILE (atomically) instead of standard output")
    parser.add_argument("--samples", type=int, default=2000, help="Monte Carlo draws (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed, the same at both sides (default: 0)")


def run(args: argparse.Namespace) -> int:
    if args.samples < 2:
        raise UsageError("--samples must be at least 2")
    from funnelcheck.git.diff import diff

    base, head = load_sides(args)
    result = diff(base, head, samples=args.samples, seed=args.seed)
    if args.format == "json":
        text = json.dumps(result.to_json(), indent=2) + "\n"
    elif args.format == "md":
        from funnelcheck.render.markdown import render_diff

        text = render_diff(result)
    else:
        text = render_text(result)
    if args.output:
        from funnelcheck.atomicfile import write_atomic

        out = Path(args.output)
        if not out.parent.is_dir():
            raise UsageError(f"cannot write {out}: the folder {out.parent} does not exist")
        write_atomic(out, text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return 0


def load_sides(args: argparse.Namespace):
    """BASE from Git (a missing registry there is allowed: all is new); HEAD from Git or the work tree."""
    from funnelcheck.git.diff import Side, errors_of
    from funnelcheck.load.gitsource import blob_cache, load_tree, open_repository, open_revision, registry_exists
    from funnelcheck.load.registry import load_project

    project = project_of(args)
    repo = open_repository(project)
    cache = blob_cache(project)
    revision = open_revision(project, args.base, repo)
    base_loaded = load_tree(revision, cache) if registry_exists(revision) else None
    base = Side(args.base, str(revision.commit.id), base_loaded, errors_of(base_loaded))
    if args.head:
        revision = open_revision(project, args.head, repo)
        if not registry_exists(revision):
            raise FunnelcheckError(f"there is no registry folder {revision.registry_subpath or '.'}/ at revision "
                                   f"'{args.head}' (commit {revision.short})")
        head_loaded, label, commit = load_tree(revision, cache), args.head, str(revision.commit.id)
    else:
        head_loaded, label, commit = load_project(project), "work tree", None
    return base, Side(label, commit, head_loaded, head_findings(head_loaded))


def head_findings(loaded):
    """Every validation finding at HEAD (the semantic checks too)."""
    from funnelcheck.checks import validate

    return validate(loaded)


def _pct(x) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def render_text(d) -> str:
    """A terminal summary: one block per graph, then the changed parameters and HEAD's findings."""
    lines = [f"funnel diff {d.base.label} -> {d.head.label} ({d.samples} draws, seed {d.seed})"]
    if d.base.loaded is None:
        lines.append("no registry at the base revision: everything is new")
    for g in d.graphs:
        if not g.computed:
            lines.append(f"  {g.id}: unchanged (same graph, contexts and parameters at both revisions)")
            continue
        base = g.base.point if g.base else None
        head = g.head.point if g.head else None
        line = f"  {g.id}: {_pct(base)} -> {_pct(head)}"
        if g.delta is not None:
            dl = g.delta
            line += (f"  delta {dl.mean * 100:+.2f} pp (90%: {dl.p05 * 100:+.2f} .. {dl.p95 * 100:+.2f})"
                     f"  P(head > base) = {dl.prob_improvement:.1%}")
        lines.append(line + ("" if g.status in ("modified", "unchanged") else f"  [{g.status}]"))
        lines += [f"    ! {e}" for e in g.errors]
    if d.changes:
        lines.append("changed parameters:")
        for c in d.changes:
            lines.append(f"  {c.id} {c.field}: {_value(c.base)} -> {_value(c.head)} ({c.change})")
    if d.head.findings:
        lines.append(f"validation at {d.head.label}:")
        lines += [f"  {f.path}:{f.line}:{f.column}: {f.severity}[{f.code}]: {f.message}" for f in d.head.findings]
    if d.base.findings:
        lines.append(f"errors at {d.base.label}:")
        lines += [f"  {f.path}:{f.line}:{f.column}: {f.severity}[{f.code}]: {f.message}" for f in d.base.findings]
    return "\n".join(lines) + "\n"


def _value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if isinstance(v, (dict, list)) else str(v)
