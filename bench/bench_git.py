"""Git-native benchmarks: `history` against `git log --follow -p`, and `diff` on a 5,000-parameter registry.

The synthetic repositories are built once with pygit2 (objects written straight into the
database, then packed with `git gc` as a real repository would be) and cached under bench/out/.

    python -m bench git            # both measurements
    python -m bench git --quick    # fewer repeats
"""
from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pygit2

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
FUNNELCHECK = [sys.executable, "-m", "funnelcheck"]

HISTORY_COMMITS = 10_000
HISTORY_FILES = 500
HISTORY_FOLDERS = 10
TRACKED = "p-0042"  # the parameter whose history is measured; it moves folder half-way

DIFF_PARAMETERS = 5_000
DIFF_PR_CHANGED = 5  # a typical pull request: a few values of one graph
DIFF_WIDE_CHANGED = 50  # a wide change: values across most graphs

CONTEXTS = b"""contexts:
  - id: channel
    values:
      - {id: google, share: 0.5}
      - {id: facebook, share: 0.3}
      - {id: organic, share: 0.2}
  - id: device
    values:
      - {id: mobile, share: 0.6}
      - {id: desktop, share: 0.4}
"""


def _param(pid: str, edge: str, mean: float, stdev: float, context: dict | None = None) -> bytes:
    lines = [f"id: {pid}", f"edge: {edge}"]
    if context:
        lines.append("context_filter: {" + ", ".join(f"{k}: {v}" for k, v in context.items()) + "}")
    lines += [f"value: {{mean: {mean:.4f}, stdev: {stdev:.4f}}}", f"description: synthetic parameter {pid}"]
    return ("\n".join(lines) + "\n").encode()


def _tree(repo: pygit2.Repository, entries: dict[str, tuple[pygit2.Oid, int]]) -> pygit2.Oid:
    tb = repo.TreeBuilder()
    for name, (oid, mode) in entries.items():
        tb.insert(name, oid, mode)
    return tb.write()


def _gc(path: Path) -> None:
    subprocess.run(["git", "gc", "--quiet"], cwd=path, check=True,
                   env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})


def build_history_repo(path: Path) -> str:
    """10,000 commits, each changing one of 500 parameter files in 10 folders; returns the tracked file's path."""
    rng = random.Random(7)
    repo = pygit2.init_repository(str(path), initial_head="main")
    folders: list[dict[str, tuple[pygit2.Oid, int]]] = [{} for _ in range(HISTORY_FOLDERS)]
    where = {}
    blob = pygit2.GIT_FILEMODE_BLOB
    tree = pygit2.GIT_FILEMODE_TREE
    for i in range(HISTORY_FILES):
        pid = f"p-{i:04d}"
        where[pid] = i % HISTORY_FOLDERS
        folders[where[pid]][f"{pid}.yaml"] = (repo.create_blob(_param(pid, f"e-{i % 50}", rng.random(), 0.01)), blob)
    folder_trees = [_tree(repo, f) for f in folders]
    contexts = repo.create_blob(CONTEXTS)

    def root() -> pygit2.Oid:
        params = _tree(repo, {f"f{k}": (folder_trees[k], tree) for k in range(HISTORY_FOLDERS)})
        reg = _tree(repo, {"contexts.yaml": (contexts, blob), "parameters": (params, tree)})
        return _tree(repo, {"registry": (reg, tree)})

    (path / "funnelcheck.yaml").write_text("registry: registry\n")  # a project of its own, untracked
    parents: list = []
    for n in range(HISTORY_COMMITS):
        sig = pygit2.Signature("Bench", "bench@example.com", 1_700_000_000 + 60 * n, 0)
        if n == HISTORY_COMMITS // 2:  # move the tracked parameter to another folder
            old = where[TRACKED]
            entry = folders[old].pop(f"{TRACKED}.yaml")
            where[TRACKED] = (old + 1) % HISTORY_FOLDERS
            folders[where[TRACKED]][f"{TRACKED}.yaml"] = entry
            folder_trees[old] = _tree(repo, folders[old])
            message = f"move {TRACKED}"
        else:
            pid = f"p-{rng.randrange(HISTORY_FILES):04d}"
            message = f"update {pid}"
        if n != HISTORY_COMMITS // 2:
            i = int(pid[2:])
            folders[where[pid]][f"{pid}.yaml"] = (repo.create_blob(_param(pid, f"e-{i % 50}", rng.random(), 0.01)), blob)
        k = where[TRACKED] if n == HISTORY_COMMITS // 2 else where[pid]
        folder_trees[k] = _tree(repo, folders[k])
        commit = repo.create_commit("refs/heads/main", sig, sig, message, root(), parents)
        parents = [commit]
    _gc(path)
    return f"registry/parameters/f{where[TRACKED]}/{TRACKED}.yaml"


def build_diff_repo(path: Path) -> None:
    """bench/synth.py's 5,000-parameter registry over 20 graphs, tagged `base`, and two heads:

    - `head-pr`: a typical pull request, 5 values changed in one graph;
    - `head-wide`: 50 values changed across the registry (most graphs touched).

    Each changed value is lowered by 10%, so every graph still validates.
    """
    from bench.synth import generate

    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "Bench",
           "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "Bench",
           "GIT_COMMITTER_EMAIL": "bench@example.com"}

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "gc.auto=0", *args], cwd=path, env=env, check=True, stdout=subprocess.DEVNULL)

    def lower(files: list[Path]) -> None:
        for f in files:
            text = f.read_text()
            mean = float(text.split("mean: ", 1)[1].split(",", 1)[0])
            f.write_text(text.replace(f"mean: {mean},", f"mean: {round(mean * 0.9, 4)},", 1))

    git("init", "-q", "-b", "main")
    generate(path, DIFF_PARAMETERS, 20, 1)
    (path / "funnelcheck.yaml").write_text("registry: registry\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    git("tag", "base")
    rng = random.Random(11)
    params = path / "registry" / "parameters"
    lower(rng.sample(sorted((params / "g3").rglob("*.yaml")), DIFF_PR_CHANGED))
    git("commit", "-q", "-am", f"pr: {DIFF_PR_CHANGED} values of one graph lowered")
    git("tag", "head-pr")
    git("checkout", "-q", "-b", "wide", "base")
    lower(rng.sample(sorted(params.rglob("*.yaml")), DIFF_WIDE_CHANGED))
    git("commit", "-q", "-am", f"wide: {DIFF_WIDE_CHANGED} values across the registry lowered")
    git("tag", "head-wide")
    _gc(path)


def _cached(name: str, builder) -> tuple[Path, object]:
    """Build a repository once; a marker file holds the builder's result and says it completed."""
    path = OUT / name
    marker = path / ".bench-complete"
    if marker.is_file():
        return path, marker.read_text()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    started = time.perf_counter()
    result = builder(path) or ""
    marker.write_text(result)
    print(f"built {name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path, result


def _wall(cmd: list[str], cwd: Path, repeats: int, env: dict | None = None) -> float:
    """Median wall time of a subprocess, output discarded; it must succeed."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()}")
    return statistics.median(times)


def main(argv: list[str]) -> int:
    repeats = 3 if "--quick" in argv else 7
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "PYTHONPATH": str(HERE.parent)}
    rows = []

    hist_repo, tracked_path = _cached("history-repo", build_history_repo)
    ours = _wall([*FUNNELCHECK, "history", TRACKED], hist_repo, repeats, env)
    git = _wall(["git", "log", "--follow", "-p", "--", tracked_path], hist_repo, repeats, env)
    rows.append((f"history {TRACKED} ({HISTORY_COMMITS:,} commits, {HISTORY_FILES} files)", ours, git, "ratio <= 1.0",
                 ours / git <= 1.0))
    floor = _wall([sys.executable, "-c", "import funnelcheck.cli, funnelcheck.commands.history, funnelcheck.load.gitsource, "
                   "funnelcheck.git.history"], hist_repo, repeats, env)
    rows.append(("  of which: Python start + imports (pygit2 included)", floor, git, "-", None))

    diff_repo, _ = _cached("diff-repo", build_diff_repo)
    cache = diff_repo / ".funnelcheck"
    for head, what in (("head-pr", f"{DIFF_PR_CHANGED} values in 1 graph"),
                       ("head-wide", f"{DIFF_WIDE_CHANGED} values across the registry")):
        diff_cmd = [*FUNNELCHECK, "diff", "base", head, "--format", "json"]
        cold = []
        for _ in range(max(1, repeats // 3)):
            shutil.rmtree(cache, ignore_errors=True)
            cold.append(_wall(diff_cmd, diff_repo, 1, env))
        cold_s = statistics.median(cold)
        warm_s = _wall(diff_cmd, diff_repo, max(1, repeats // 2), env)  # the cold runs left the blob cache
        name = f"diff base {head} ({DIFF_PARAMETERS:,} parameters; {what})"
        rows.append((f"{name}, cold", cold_s, None, "< 10 s", cold_s < 10))
        rows.append((f"{name}, warm", warm_s, None, "< 3 s", warm_s < 3))

    rows += diff_breakdown(diff_repo, "head-pr")

    header = ("measurement", "funnelcheck", "baseline", "ratio", "target", "result")
    table = [header] + [
        (name, f"{ours:.3f} s", f"{base:.3f} s" if base else "-", f"{ours / base:.2f}" if base else "-", target,
         "-" if ok is None else "pass" if ok else "FAIL")
        for name, ours, base, target, ok in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    print(f"(median of {repeats} runs each; baseline for history: git log --follow -p -- {tracked_path})")
    return 0 if all(r[-1] is not False for r in rows) else 1


def diff_breakdown(repo: Path, head: str) -> list[tuple]:
    """Where a warm `diff base HEAD` spends its time, measured in-process: loading, validation, engine."""
    import argparse

    from funnelcheck.git import diff as diff_module
    from funnelcheck.commands import diff as diff_command
    from funnelcheck.engine import run_whatif

    engine = [0.0]

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return run_whatif(*args, **kwargs)
        finally:
            engine[0] += time.perf_counter() - started

    cwd = os.getcwd()
    os.chdir(repo)
    try:
        args = argparse.Namespace(base="base", head=head, registry=None, config=None)
        started = time.perf_counter()
        base, head_side = diff_command.load_sides(args)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        diff_module.diff(base, head_side, run=timed)
        computed = time.perf_counter() - started
    finally:
        os.chdir(cwd)
    return [(f"  of which (in-process, diff base {head}): load both revisions + validate HEAD", loaded, None, "-", None),
            (f"  of which (in-process, diff base {head}): what-if engine", engine[0], None, "-", None),
            (f"  of which (in-process, diff base {head}): deltas, segments, changes", computed - engine[0], None, "-",
             None)]
