"""Run the benchmarks: `python -m bench` runs all, `python -m bench validate engine --quick` some.

Each bench_<name>.py has `main(argv) -> int` and prints its figures side by side with the
baseline it compares against, as ratios measured in the same run. Benchmarks are found by
their module name: engine, git, pipeline (`python -m bench pipeline --quick` for 1M rows),
validate.
"""
from __future__ import annotations

import compileall
import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    # Leading words are benchmark names; everything from the first option on goes to each benchmark.
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    chosen, options = argv[:first_option] or names, argv[first_option:]
    unknown = set(chosen) - set(names)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have: {', '.join(names)}", file=sys.stderr)
        return 2
    # An installed package comes with its bytecode; a checkout run with PYTHONDONTWRITEBYTECODE=1 would
    # otherwise compile every module in every timed run, which no user pays.
    compileall.compile_dir(here.parent / "funnelcheck", quiet=1)
    status = 0
    for name in chosen:
        print(f"\n=== bench {name} ===", flush=True)
        status |= importlib.import_module(f"bench.bench_{name}").main(options)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
