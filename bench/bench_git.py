"""Git-native benchmarks, each figure side by side with its baseline in the same run.

- history: `funnelcheck history` against `git log --follow -p -- FILE` for the same parameter
  in the same repository (like with like: both follow it across a folder move and a
  `git mv registry models/registry`, both print every change). Two repositories: 20,000
  commits × 5,000 parameter files (target ratio <= 1.0) and 2,000 commits × 5,000 files
  (target: git's own time + 0.15 s, the interpreter's start-up floor). Each is measured warm
  (the walk index of the previous run is there, as on any run but the first: the targets apply
  to this row) and cold (the walk index removed before each run, so every commit is read; the
  parse cache stays), both interleaved with git.
- diff: `funnelcheck diff base head-wide --format md` (the PR comment) on bench/synth.py's
  5,000-parameter registry, where the change touches 19 of 20 graphs. Cold = no cache at all
  (parse caches and side results removed before each run): target < 10 s. Warm = run again
  with the caches of the previous run: target < 3 s.

Every figure is the median of at least 5 fresh subprocess runs, interleaved with the baseline's
runs so both see the same machine load. The repositories are built once (`git fast-import`, then
`git gc` as a real repository would be) and cached under bench/out/; caches go to
bench/out/xdg, never to the user's. FAIL is printed, never the exit status: `make bench` exits 0.

    python -m bench git                  # 5 runs each
    python -m bench git --repeat=7
    python -m bench git --only=history   # or --only=diff
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

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
FUNNELCHECK = [sys.executable, "-m", "funnelcheck"]
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}

HISTORY_FILES = 5_000
HISTORY_FOLDERS = 50
TRACKED = "p-0042"  # the parameter whose history is measured: edited every 1,000 commits, moved twice

DIFF_PARAMETERS = 5_000
DIFF_PR_CHANGED = 5  # a typical pull request: a few values of one graph
DIFF_WIDE_CHANGED = 50  # a wide change: values across the registry (19 of the 20 graphs)


def _param(pid: str, mean: float) -> bytes:
    edge = f"e-{int(pid[2:]) % 50}"
    return (f"id: {pid}\nedge: {edge}\nvalue: {{mean: {mean:.4f}, stdev: 0.0100}}\n"
            f"description: synthetic parameter {pid}\n").encode()


def _gc(path: Path) -> None:
    subprocess.run(["git", "gc", "--quiet"], cwd=path, check=True, env={**os.environ, **GIT_ENV})


def build_history_repo(path: Path, commits: int) -> str:
    """`commits` commits over 5,000 parameter files in 50 folders, written with `git fast-import`.

    The first commit adds every file; each later one edits one file (the tracked one every
    1,000 commits); half-way the tracked file moves to another folder, at three quarters the
    whole registry moves (`registry` → `models/registry`, funnelcheck.yaml follows). Returns the
    tracked file's final path.
    """
    rng = random.Random(7)
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, stdin=subprocess.PIPE, env=env)
    out = proc.stdin
    folder = {f"p-{i:04d}": i % HISTORY_FOLDERS for i in range(HISTORY_FILES)}
    root = "registry"

    def where(pid: str) -> str:
        return f"{root}/parameters/f{folder[pid]:02d}/{pid}.yaml"

    def inline(rel: str, data: bytes) -> bytes:
        return f"M 100644 inline {rel}\n".encode() + b"data %d\n" % len(data) + data + b"\n"

    move_file, move_registry = commits // 2, (3 * commits) // 4
    for n in range(commits):
        if n == 0:
            ops = [inline("funnelcheck.yaml", b"registry: registry\n")]
            ops += [inline(where(pid), _param(pid, rng.random())) for pid in folder]
            message = "initial registry"
        elif n == move_file:
            old = where(TRACKED)
            folder[TRACKED] = (folder[TRACKED] + 1) % HISTORY_FOLDERS
            ops, message = [f"R {old} {where(TRACKED)}\n".encode()], f"move {TRACKED}"
        elif n == move_registry:
            ops = [f"R {root} models/registry\n".encode(), inline("funnelcheck.yaml", b"registry: models/registry\n")]
            root, message = "models/registry", "git mv registry models/registry"
        else:
            pid = TRACKED if n % 1000 == 500 else f"p-{rng.randrange(HISTORY_FILES):04d}"
            ops, message = [inline(where(pid), _param(pid, rng.random()))], f"update {pid}"
        out.write(b"commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\n" % (1_700_000_000 + 60 * n))
        out.write(b"data %d\n%s\n" % (len(message), message.encode()))
        out.writelines(ops)
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    _gc(path)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=path, check=True, env=env)
    return where(TRACKED)


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


def _cached(name: str, builder) -> tuple[Path, str]:
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


def _once(cmd: list[str], cwd: Path, env: dict) -> float:
    """Wall time of one subprocess run, output discarded; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()}")
    return took


def _side_by_side(ours: list[str], theirs: list[str], cwd: Path, env: dict, repeats: int,
                  before=lambda: None) -> tuple[float, float]:
    """Medians of `repeats` interleaved runs of both commands (after one warm-up run of each);
    `before` runs before each of ours, outside the timing."""
    before(), _once(ours, cwd, env), _once(theirs, cwd, env)
    a, b = [], []
    for _ in range(repeats):
        before()
        a.append(_once(ours, cwd, env))
        b.append(_once(theirs, cwd, env))
    return statistics.median(a), statistics.median(b)


def _drop_walk_indexes(xdg: Path) -> None:
    """Remove the history walk indexes under the bench's cache home; the parse caches stay."""
    for folder in xdg.glob("funnelcheck/*/history-index"):
        shutil.rmtree(folder)


def history_rows(xdg: Path, env: dict, repeats: int) -> list[tuple]:
    """`history` warm and cold on both repositories, each interleaved with `git log --follow -p`."""
    rows = []
    for commits, target in ((20_000, "ratio <= 1.0"), (2_000, "<= git + 0.15 s")):
        repo, tracked = _cached(f"history-{commits}", lambda p, c=commits: build_history_repo(p, c))
        ours, git = [*FUNNELCHECK, "history", TRACKED], ["git", "log", "--follow", "-p", "--", tracked]
        warm, git_warm = _side_by_side(ours, git, repo, env, repeats)
        cold, git_cold = _side_by_side(ours, git, repo, env, repeats, before=lambda: _drop_walk_indexes(xdg))
        ok = warm / git_warm <= 1.0 if commits == 20_000 else warm <= git_warm + 0.15
        rows.append((f"history {TRACKED} ({commits:,} commits × {HISTORY_FILES:,} files) vs git log --follow -p, warm",
                     warm, git_warm, target, ok))
        rows.append(("  cold: the walk index removed before each run (every commit read; no target)",
                     cold, git_cold, "-", None))
    imports = ("import funnelcheck.cli, funnelcheck.commands.history, funnelcheck.load.gitsource, "
               "funnelcheck.git.history")
    floor, git = _side_by_side([sys.executable, "-c", imports], git, repo, env, repeats)
    rows.append(("  of which: Python start + imports (pygit2 included), vs the 2,000-commit git log", floor, git, "-",
                 None))
    return rows


def main(argv: list[str]) -> int:
    repeats = max(5, next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--repeat=")), 5))
    xdg = OUT / "xdg"
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(HERE.parent), "XDG_CACHE_HOME": str(xdg)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measured as installed: the warm-up run leaves byte code to reuse
    only = next((a.split("=", 1)[1] for a in argv if a.startswith("--only=")), None)
    rows = history_rows(xdg, env, repeats) if only in (None, "history") else []
    if only in (None, "diff"):
        rows += diff_rows(repeats, env, xdg)
    return _print_table(rows, repeats)


def _print_table(rows: list[tuple], repeats: int) -> int:
    header = ("measurement", "funnelcheck", "baseline", "ratio", "target", "result")
    table = [header] + [
        (name, f"{ours:.3f} s", f"{base:.3f} s" if base else "-", f"{ours / base:.2f}" if base else "-", target,
         "-" if ok is None else "PASS" if ok else "FAIL")
        for name, ours, base, target, ok in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    print(f"(medians of {repeats} runs each, interleaved with the baseline's; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the end)")
    return 0


def diff_rows(repeats: int, env: dict, xdg: Path) -> list[tuple]:
    """`diff base head-wide --format md`, cold and warm, then where each spends its time."""
    diff_repo, _ = _cached("diff-repo", build_diff_repo)
    cmd = [*FUNNELCHECK, "diff", "base", "head-wide", "--format", "md"]
    cold = []
    for _ in range(repeats):
        shutil.rmtree(xdg, ignore_errors=True)
        cold.append(_once(cmd, diff_repo, env))
    warm = [_once(cmd, diff_repo, env) for _ in range(repeats)]
    floor = statistics.median(_once([sys.executable, "-c", DIFF_IMPORTS], diff_repo, env) for _ in range(repeats))
    name = f"diff base head-wide --format md ({DIFF_PARAMETERS:,} parameters, 19 graphs changed)"
    rows = [(f"{name}, cold", statistics.median(cold), None, "< 10 s", statistics.median(cold) < 10)]
    rows += diff_breakdown(diff_repo, "head-wide", xdg, cold=True)
    rows.append((f"{name}, warm", statistics.median(warm), None, "< 3 s", statistics.median(warm) < 3))
    rows += diff_breakdown(diff_repo, "head-wide", xdg, cold=False)
    rows.append(("  of which: Python start + the imports of a warm diff (numpy, pygit2)", floor, None, "-", None))
    return rows


# What a warm `funnelcheck diff --format md` imports (a cold one adds the engine's run, with scipy).
DIFF_IMPORTS = ("import funnelcheck.cli, funnelcheck.commands.diff, funnelcheck.load.gitsource, funnelcheck.checks, "
                "funnelcheck.git.diff, funnelcheck.git.sides, funnelcheck.engine.result, funnelcheck.render.markdown")


def diff_breakdown(repo: Path, head: str, xdg: Path, cold: bool) -> list[tuple]:
    """Where a `diff base HEAD --format md` spends its time, measured in-process (imports done):
    loading both revisions and validating HEAD, the graphs (read back or run), the comment.

    `cold` removes the caches first (and then leaves them filled for the warm runs)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the command does, before numpy is imported
    from funnelcheck.commands import diff as diff_command
    from funnelcheck.git import diff as diff_module
    from funnelcheck.git.sides import SideStore
    from funnelcheck.load.cache import cache_dir
    from funnelcheck.render.markdown import render_diff

    cwd, saved = os.getcwd(), os.environ.get("XDG_CACHE_HOME")
    os.chdir(repo)
    os.environ["XDG_CACHE_HOME"] = str(xdg)
    if cold:
        shutil.rmtree(xdg, ignore_errors=True)
    try:
        args = diff_command.Options(base="base", head=head)
        started = time.perf_counter()
        base, head_side = diff_command.load_sides(args)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        store = SideStore(cache_dir(repo) / "diff-sides")
        result = diff_module.diff(base, head_side, store=store)
        store.prune()
        computed = time.perf_counter() - started
        started = time.perf_counter()
        render_diff(result)
        rendered = time.perf_counter() - started
    finally:
        os.chdir(cwd)
        if saved is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = saved
    which = "cold" if cold else "warm"
    return [(f"  of which (in-process, {which}): load both revisions + validate HEAD", loaded, None, "-", None),
            (f"  of which (in-process, {which}): the graphs, " + ("run over the cores" if cold else "read back") +
             ", deltas, segments", computed, None, "-", None),
            (f"  of which (in-process, {which}): the Markdown comment", rendered, None, "-", None)]
