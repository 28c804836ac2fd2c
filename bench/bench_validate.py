"""`funnelcheck validate` against `check-jsonschema` on a synthetic registry, and on the example.

Every figure is the median wall time of a few runs of a fresh subprocess (interpreter start
included), measured in this run side by side with its baseline:

- cold: a full validate of 5,000 parameter files over 20 graphs without a cache, against
  `check-jsonschema --schemafile schemas/parameter.schema.json` on the same 5,000 files (which
  checks only the schema; validate checks everything). Target ratio <= 0.2.
- one changed: validate again after one parameter file changed (warm caches), against the same
  check-jsonschema run. Target <= 0.2 ("re-validating after one file changed <= 0.2x of that").
  Its ratio to funnelcheck's own cold run is printed too, for information only: it is not a
  target, since every gain in the cold run (parallel parsing) would make it look worse.
- the example registry (`registry/`), cold and warm cache: target < 0.3 s each, and numpy,
  scipy, pygit2, SQLAlchemy and DuckDB never imported on that path.

Subprocesses run without PYTHONDONTWRITEBYTECODE (as on a user's machine) after one warm-up
run, so the interpreter's bytecode cache is in place for both tools.

    python -m bench validate [--parameters=5000] [--graphs=20] [--repeat=3]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from bench.synth import generate

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEAVY = ("numpy", "scipy", "pygit2", "sqlalchemy", "duckdb")


# The parse cache lives in the user's cache folder (docs/security.md): the benchmark keeps its own,
# and a cold run starts without it.
CACHE_HOME = REPO / "bench" / "out" / "xdg-validate"


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "GITHUB_ACTIONS")}
    env["PYTHONUNBUFFERED"] = "1"
    env["XDG_CACHE_HOME"] = str(CACHE_HOME)
    return env


def _forget_caches(project: Path) -> None:
    """A cold start: no local state and no parse cache."""
    shutil.rmtree(project / ".funnelcheck", ignore_errors=True)
    shutil.rmtree(CACHE_HOME, ignore_errors=True)


class Timing(NamedTuple):
    wall: float
    cpu: float  # user + system time of the subprocess: far less sensitive to a busy machine


def _run(cmd: list[str], cwd: Path, ok=(0,)) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return Timing(wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def _median(runs: list[Timing]) -> Timing:
    return Timing(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs))


def _tool(name: str) -> str | None:
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench validate")
    parser.add_argument("--parameters", type=int, default=5000)
    parser.add_argument("--graphs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    funnelcheck = _tool("funnelcheck")
    if funnelcheck is None:
        print("funnelcheck is not installed next to this interpreter", file=sys.stderr)
        return 2
    validate = [funnelcheck, "validate"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="funnelcheck-bench-") as tmp:
        work = Path(tmp) / "synthetic"
        root = generate(work, args.parameters, args.graphs, seed=1)
        files = sorted(p.relative_to(work).as_posix() for p in (root / "parameters").rglob("*.yaml"))
        print(f"synthetic registry: {len(files)} parameter files over {args.graphs} graphs in {work}", flush=True)
        _run(validate, work)  # warm-up: bytecode for funnelcheck and its imports
        time.sleep(2.1)  # older than the cache's racy-timestamp window, as files in a real checkout are

        checker = _tool("check-jsonschema")
        cjs = [checker, "--schemafile", str(REPO / "schemas" / "parameter.schema.json")] + files if checker else None
        if cjs:
            _run([checker, "--version"], work)
        # Interleaved, so a machine that gets busier or quieter affects every side alike.
        cold, baseline, changed = [], [], []
        for i in range(args.repeat):
            _forget_caches(work)
            cold.append(_run(validate, work))  # leaves a warm cache behind
            if cjs:
                baseline.append(_run(cjs, work))
            path = root / files[i * 7 % len(files)].split("/", 1)[1]
            path.write_text(path.read_text() + f"# edited by the benchmark, run {i}\n")
            changed.append(_run(validate, work))
        t_cold, t_changed = _median(cold), _median(changed)
        t_cjs = _median(baseline) if cjs else None
        rows.append(("cold full validate (no cache) vs check-jsonschema", t_cold, t_cjs, "<= 0.2"))
        if t_cjs:
            rows.append(("re-validate after 1 file changed (warm cache) vs check-jsonschema", t_changed, t_cjs,
                         "<= 0.2"))
        rows.append(("  (same, vs funnelcheck's cold run; information)", t_changed, t_cold, None))

        example = Path(tmp) / "example"
        shutil.copytree(REPO / "registry", example / "registry")
        if (REPO / "funnelcheck.yaml").is_file():
            shutil.copy(REPO / "funnelcheck.yaml", example / "funnelcheck.yaml")
        ex_cold = []
        for _ in range(max(args.repeat, 5)):
            _forget_caches(example)
            ex_cold.append(_run(validate, example))
        ex_warm = [_run(validate, example) for _ in range(max(args.repeat, 5))]
        for label, runs in (("example registry, cold cache (incl. interpreter start)", ex_cold),
                            ("example registry, warm cache (incl. interpreter start)", ex_warm)):
            rows.append((label, _median(runs), None, "< 0.3 s"))

        probe = ("import sys\nfrom funnelcheck.cli import main\nmain(['validate'])\n"
                 f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
        out = subprocess.run([sys.executable, "-c", probe], cwd=example, env=_env(), capture_output=True, text=True)
        heavy = next((line[6:] for line in out.stdout.splitlines() if line.startswith("HEAVY:")), "?")
        rows.append(("numpy/scipy/pygit2/sqlalchemy/duckdb imported by validate", heavy or "none", None, "none"))

    results = _print(rows)
    return 0 if all(r is not False for r in results) else 1


def _verdict(value, baseline, target: str | None):
    """Pass/fail on wall time (the targets are wall times); None when there is no target."""
    if target is None:
        return None
    if isinstance(value, str):
        return value == target
    if target.startswith("<="):
        return baseline is not None and value.wall / baseline.wall <= float(target[2:])
    return value.wall < float(target[1:].split()[0])


def _print(rows) -> list:
    """The table: wall times, their ratio, CPU times and their ratio, target, result."""
    def num(x) -> str:
        return "-" if x is None else f"{x:.3f}"

    header = ("measurement", "funnelcheck wall", "baseline wall", "ratio", "funnelcheck cpu", "baseline cpu",
              "cpu ratio", "target", "result")
    table, results = [header], []
    for label, value, baseline, target in rows:
        verdict = _verdict(value, baseline, target)
        results.append(verdict)
        if isinstance(value, str):
            cells = (value, "-", "-", "-", "-", "-")
        else:
            cells = (num(value.wall), num(baseline.wall if baseline else None),
                     num(value.wall / baseline.wall if baseline else None), num(value.cpu),
                     num(baseline.cpu if baseline else None), num(value.cpu / baseline.cpu if baseline else None))
        table.append((label, *cells, target or "-", {True: "pass", False: "FAIL", None: "-"}[verdict]))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    return results


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
