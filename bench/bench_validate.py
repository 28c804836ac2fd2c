"""`funnelcheck validate` against `check-jsonschema` on a synthetic registry, and on the example.

Every figure is the median wall time of a few runs of a fresh subprocess (interpreter start
included), measured in this run side by side with its baseline:

- cold: a full validate of 5,000 parameter files over 20 graphs without a cache, against
  `check-jsonschema --schemafile schemas/parameter.schema.json` on the same 5,000 files (which
  checks only the schema; validate checks everything). Target ratio <= 1.0.
- one changed: validate again after one parameter file changed (warm cache), as a ratio of
  the cold run. Target <= 0.2.
- the example registry (`registry/`), cold and warm cache: target < 0.3 s each, and numpy,
  scipy, pygit2 and SQLAlchemy never imported on that path.

Subprocesses run without PYTHONDONTWRITEBYTECODE (as on a user's machine) after one warm-up
run, so the interpreter's bytecode cache is in place for both tools.

    python -m bench validate [--parameters=5000] [--graphs=20] [--repeat=3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.synth import generate

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEAVY = ("numpy", "scipy", "pygit2", "sqlalchemy")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "GITHUB_ACTIONS")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(cmd: list[str], cwd: Path, ok=(0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return elapsed


def _median(runs: list[float]) -> float:
    return statistics.median(runs)


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

        cold = []
        for _ in range(args.repeat):
            shutil.rmtree(work / ".funnelcheck", ignore_errors=True)
            cold.append(_run(validate, work))
        t_cold = _median(cold)

        checker = _tool("check-jsonschema")
        t_cjs = None
        if checker:
            cjs = [checker, "--schemafile", str(REPO / "schemas" / "parameter.schema.json")] + files
            _run([checker, "--version"], work)
            t_cjs = _median([_run(cjs, work) for _ in range(args.repeat)])
        rows.append(("cold full validate (no cache) vs check-jsonschema", t_cold, t_cjs,
                     t_cold / t_cjs if t_cjs else None, "<= 1.0", (t_cold / t_cjs <= 1.0) if t_cjs else None))

        _run(validate, work)  # the cache is warm now
        changed = []
        for i in range(args.repeat):
            path = root / files[i * 7 % len(files)].split("/", 1)[1]
            path.write_text(path.read_text() + f"# edited by the benchmark, run {i}\n")
            changed.append(_run(validate, work))
        t_changed = _median(changed)
        rows.append(("re-validate after 1 file changed (warm cache) vs cold", t_changed, t_cold,
                     t_changed / t_cold, "<= 0.2", t_changed / t_cold <= 0.2))
        if t_cjs:
            rows.append(("  (same, vs check-jsonschema)", t_changed, t_cjs, t_changed / t_cjs, "-", None))

        example = Path(tmp) / "example"
        shutil.copytree(REPO / "registry", example / "registry")
        if (REPO / "funnelcheck.yaml").is_file():
            shutil.copy(REPO / "funnelcheck.yaml", example / "funnelcheck.yaml")
        ex_cold = []
        for _ in range(max(args.repeat, 5)):
            shutil.rmtree(example / ".funnelcheck", ignore_errors=True)
            ex_cold.append(_run(validate, example))
        ex_warm = [_run(validate, example) for _ in range(max(args.repeat, 5))]
        for label, runs in (("example registry, cold cache (incl. interpreter start)", ex_cold),
                            ("example registry, warm cache (incl. interpreter start)", ex_warm)):
            t = _median(runs)
            rows.append((label, t, None, None, "< 0.3 s", t < 0.3))

        probe = ("import sys\nfrom funnelcheck.cli import main\nmain(['validate'])\n"
                 f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
        out = subprocess.run([sys.executable, "-c", probe], cwd=example, env=_env(), capture_output=True, text=True)
        heavy = next((line[6:] for line in out.stdout.splitlines() if line.startswith("HEAVY:")), "?")
        rows.append(("numpy/scipy/pygit2/sqlalchemy imported by validate", heavy or "none", None, None, "none",
                     heavy == ""))

    _print(rows)
    return 0 if all(r[5] is not False for r in rows) else 1


def _print(rows) -> None:
    def fmt(x) -> str:
        if x is None:
            return "-"
        return f"{x:.3f}" if isinstance(x, float) else str(x)

    header = ("measurement", "funnelcheck (s)", "baseline (s)", "ratio", "target", "result")
    table = [header] + [(r[0], fmt(r[1]), fmt(r[2]), fmt(r[3]), r[4], {True: "pass", False: "FAIL", None: "-"}[r[5]])
                        for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
