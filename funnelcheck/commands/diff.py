"""`funnelcheck diff BASE [HEAD]`: what-if diff between two revisions (HEAD: the work tree)."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from funnelcheck.commands._common import CommonOptions, add_format, project_of
from funnelcheck.findings import FunnelcheckError, UsageError
from funnelcheck.render.format import json_text


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck diff`'s options, typed (built from argparse once, in `cli`)."""

    base: str
    head: str | None = None
    format: str = "text"
    output: str | None = None
    samples: int = 2000
    seed: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", metavar="BASE", help="the base revision (branch, tag, SHA, origin/main, main~3)")
    parser.add_argument("head", metavar="HEAD", nargs="?", help="the head revision (default: the work tree)")
    add_format(parser, choices=("text", "md", "json"))
    parser.add_argument("--output", metavar="FILE", help="write to FILE (atomically) instead of standard output")
    parser.add_argument("--samples", type=int, default=2000, help="Monte Carlo draws (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed, the same at both sides (default: 0)")


def run(args: Options) -> int:
    if args.samples < 2:
        raise UsageError("--samples must be at least 2")
    # The diff spreads its graphs over one process per core; OpenBLAS's own threads (read when numpy
    # is first imported, which is later) would only compete with them, and cost 20% more CPU on the
    # engine's small products.
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from funnelcheck.git.diff import diff
    from funnelcheck.git.sides import SideStore
    from funnelcheck.load.cache import cache_dir

    base, head = load_sides(args)
    store = SideStore(cache_dir(project_of(args).base) / "diff-sides")
    result = diff(base, head, samples=args.samples, seed=args.seed, store=store)
    store.prune()
    if args.format == "json":
        text = json_text(result.to_json())
    elif args.format == "md":
        from funnelcheck.render.markdown import render_diff

        text = render_diff(result)
    else:
        from funnelcheck.render.diff import text as render_text

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


def load_sides(args: Options):
    """BASE from Git (a missing registry there is allowed: all is new); HEAD from Git or the work tree."""
    from funnelcheck.git.diff import Side, errors_of
    from funnelcheck.load.gitsource import (Placement, blob_cache, load_tree, open_repository, open_revision,
                                            registry_exists)
    from funnelcheck.load.registry import load_project

    project = project_of(args)
    repo = open_repository(project)
    placement = Placement(repo, project)
    cache = blob_cache(project)
    revision = open_revision(project, args.base, repo, placement)
    base_loaded = load_tree(revision, cache) if registry_exists(revision) else None
    base = Side(args.base, str(revision.commit.id), base_loaded, errors_of(base_loaded))
    if args.head:
        revision = open_revision(project, args.head, repo, placement)
        if not registry_exists(revision):
            raise FunnelcheckError(f"there is no registry folder {revision.registry_subpath or '.'}/ at revision "
                                   f"'{args.head}' (commit {revision.short})")
        head_loaded, label, commit = load_tree(revision, cache), args.head, str(revision.commit.id)
        cache.save()
    else:
        cache.save()
        head_loaded, label, commit = load_project(project), "work tree", None
    return base, Side(label, commit, head_loaded, head_findings(head_loaded))


def head_findings(loaded):
    """Every validation finding at HEAD (the semantic checks too)."""
    from funnelcheck.checks import validate

    return validate(loaded)
