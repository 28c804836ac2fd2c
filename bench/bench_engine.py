"""Benchmark of the what-if engine on a synthetic funnel (issue: funnel engine and what-if).

The graph is generated in memory, deterministically: 300 nodes (296 pages in 12 stages,
3 entries, 2 success and 2 failure outcomes) and 1,200 edges — forward to the next stages,
sideways within a stage and back to the previous stage's hub page, so there are cycles —
with three context keys of 5 × 3 × 4 values, context-specific parameters on 30% of the
edges and 4 visited conditions.

Measured (medians of --repeat runs, 5 by default): `funnelcheck whatif --samples 0` (the point
estimate, also step by step) and `whatif` with 2,000 draws as whole commands in a fresh interpreter
(files older than the parse cache's racy window, after an untimed first run, with bytecode written
and read: as on a user's machine), `run_whatif`
with 2,000 draws in process, and side by side a straightforward baseline written here — for
every segment and every draw, build the dense transition matrix of the state graph and
`numpy.linalg.solve` it. The headline speed-up runs the baseline on the engine's own state
graph (like with like); the full state graph's figure is shown apart. The baseline is timed on
a few (segment, draw) pairs and extrapolated linearly (it would take hours in full); its
conversions are checked against the engine's for those pairs, and only a disagreement fails.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from funnelcheck.engine import run_whatif
from funnelcheck.engine.montecarlo import draws
from funnelcheck.engine.resolution import slot_key
from funnelcheck.model import Context, ContextValue, Edge, Estimate, Graph, Node, Parameter, Registry, Where
from funnelcheck.resolve import Resolver
from funnelcheck.engine.statespace import build_state_graph, context_classes, segment_context, segments
from funnelcheck.yamlload import Doc

GRAPH = "synthetic"
TARGETS = {"point": 0.5, "mc": 5.0, "ratio": 10.0, "memory_mib": 1024.0}
CONTEXTS = (("channel", ("google", "facebook", "organic", "email", "direct"), (0.35, 0.2, 0.25, 0.1, 0.1)),
            ("device", ("mobile", "desktop", "tablet"), (0.55, 0.35, 0.1)),
            ("region", ("na", "eu", "apac", "latam"), (0.4, 0.3, 0.2, 0.1)))


# The many-segments case of issue 9: 6 context keys of 5 values, 15,625 segments.
WIDE_CONTEXTS = tuple((k, tuple(f"{k}-{i}" for i in range(5)) if k not in ("channel", "device") else vals,
                       (0.3, 0.25, 0.2, 0.15, 0.1))
                      for k, vals in (("channel", ("google", "facebook", "organic", "email", "direct")),
                                      ("device", ("mobile", "desktop", "tablet", "tv", "watch")),
                                      ("region", ()), ("plan", ()), ("browser", ()), ("os", ())))


def synthetic_registry(seed: int = 20251127, n_edges: int = 1200, context_keys=CONTEXTS) -> Registry:
    """The benchmark registry: same seed, same registry."""
    rng = np.random.default_rng(seed)
    where = Where(Doc("bench/synthetic", {}, {}, {}))
    contexts = tuple(Context(k, None, tuple(ContextValue(v, None, s) for v, s in zip(vals, shares)), where)
                     for k, vals, shares in context_keys)
    n_stages = 12
    stage_of = np.sort(rng.integers(1, n_stages, 296))
    stage_of[:3] = 0
    pages = [f"page-{i:03d}" for i in range(296)]
    stages = [[p for p, s in zip(pages, stage_of) if s == k] for k in range(n_stages)]
    stages = [s for s in stages if s]
    outcomes = (("purchase", "success"), ("trial", "success"), ("churned", "failure"), ("bounced", "failure"))
    nodes = [Node(p, 1.0 if i < 3 else None, None, where) for i, p in enumerate(pages)]
    nodes += [Node(o, None, kind, where) for o, kind in outcomes]
    edges: dict[tuple[str, str], None] = {}
    for k in range(1, len(stages)):  # every page is reachable from the stage before
        for v in stages[k]:
            edges[(stages[k - 1][rng.integers(len(stages[k - 1]))], v)] = None
    for o, _ in outcomes:
        edges[(stages[-1][rng.integers(len(stages[-1]))], o)] = None
    last = len(stages) - 1
    while len(edges) < n_edges:
        k = int(rng.integers(len(stages)))
        a = stages[k][rng.integers(len(stages[k]))]
        r = rng.random()
        if k >= last - 2 and r < 0.35:
            b = outcomes[rng.integers(4)][0]
        elif r < 0.05 and k > 0:
            b = stages[k - 1][0]  # back to the previous stage's hub (pricing, cart...)
        elif r < 0.20:
            b = stages[k][rng.integers(len(stages[k]))]
        elif k < last:
            kk = min(last, k + (1 if rng.random() < 0.85 else 2))
            b = stages[kk][rng.integers(len(stages[kk]))]
        else:
            b = outcomes[rng.integers(4)][0]
        if a != b:
            edges[(a, b)] = None
    pairs = list(edges)
    out: dict[str, list[int]] = {}
    for i, (a, _) in enumerate(pairs):
        out.setdefault(a, []).append(i)
    base = np.zeros(len(pairs))
    for idx in out.values():
        w = rng.gamma(2.0, 1.0, len(idx))
        base[idx] = w / w.sum() * rng.uniform(0.8, 0.9)

    def est(m: float) -> Estimate:
        return Estimate(round(m, 6), round(min(0.12 * m, 0.5 * np.sqrt(m * (1 - m))), 6))

    graph_edges, params = [], {}
    for i, (a, b) in enumerate(pairs):
        eid = f"edge-{i:04d}"
        if i % 3 == 0:
            graph_edges.append(Edge(eid, a, b, est(base[i]), None, where))
        else:
            pid = f"{eid}-base"
            params[pid] = Parameter(pid, eid, (), frozenset(), est(base[i]), where)
            graph_edges.append(Edge(eid, a, b, None, pid, where))
    for i in rng.choice(len(pairs), int(0.3 * len(pairs)), replace=False):
        eid = f"edge-{int(i):04d}"
        ctx = contexts[rng.integers(len(contexts))]
        values = [v.id for v in ctx.values]
        for v in rng.choice(values, rng.integers(1, len(values) + 1), replace=False):
            pid = f"{eid}-{ctx.id}-{v}"
            params[pid] = Parameter(pid, eid, ((ctx.id, str(v)),), frozenset(), est(base[i] * rng.uniform(0.85, 1.1)), where)
        if rng.random() < 0.2:
            pid = f"{eid}-google-mobile"
            params[pid] = Parameter(pid, eid, (("channel", "google"), ("device", "mobile")), frozenset(),
                                    est(base[i] * rng.uniform(0.85, 1.1)), where)
    stage_index = {p: k for k, ps in enumerate(stages) for p in ps}
    for seen_stage, edge_stage in ((2, 4), (3, 5), (5, 7), (6, 9)):  # the 4 visited conditions
        hub = stages[seen_stage][0]
        candidates = [i for i, (a, _) in enumerate(pairs) if stage_index.get(a) == edge_stage]
        i = candidates[rng.integers(len(candidates))]
        pid = f"edge-{i:04d}-after-{hub}"
        params[pid] = Parameter(pid, f"edge-{i:04d}", (), frozenset({hub}), est(base[i] * 1.1), where)
    graph = Graph(GRAPH, "synthetic funnel", tuple(nodes), tuple(graph_edges), where)
    return Registry("bench", contexts, params, {GRAPH: graph})


def write_registry(registry: Registry, root: Path) -> Path:
    """The registry as files under `root` (JSON is YAML), for timing whole commands."""
    def dump(rel: str, data) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=0))

    dump("contexts.yaml", {"contexts": [{"id": c.id, "values": [{"id": v.id, "share": v.share} for v in c.values]}
                                        for c in registry.contexts]})
    for g in registry.graphs.values():
        nodes = [{"id": n.id, **({"entry": {"weight": n.entry_weight}} if n.entry_weight else {}),
                  **({"outcome": n.outcome} if n.outcome else {})} for n in g.nodes]
        edges = [{"id": e.id, "from": e.source, "to": e.target,
                  "p": {"mean": e.inline.mean, "stdev": e.inline.stdev} if e.inline else {"parameter_id": e.parameter_id}}
                 for e in g.edges]
        dump(f"graphs/{g.id}.yaml", {"id": g.id, "name": g.name, "nodes": nodes, "edges": edges})
    for p in registry.parameters.values():
        dump(f"parameters/{p.id}.yaml", {"id": p.id, "edge": p.edge, **({"context_filter": p.context} if p.context_filter else {}),
                                         **({"visited_filter": sorted(p.visited_filter)} if p.visited_filter else {}),
                                         "value": {"mean": p.value.mean, "stdev": p.value.stdev}})
    return root


class Baseline:
    """The straightforward computation: per (segment, draw), a dense matrix of the state graph
    and a dense solve. The state graph is the full one (node × visited status of every
    relevant node), or with `forget` the engine's smaller one, to separate the solver's gain
    from the state graph's. Setup (state graph, resolver, every parameter's draws) is done
    once, as a full run would, and every transition is resolved once per segment; the work
    per (segment, draw) pair is the dense matrix and its solve.
    """

    def __init__(self, registry: Registry, samples: int, seed: int, forget: bool = False):
        graph = registry.graphs[GRAPH]
        self.resolver = Resolver(registry, graph)
        nodes = {n.id for n in graph.nodes}
        needs = {e.id: self.resolver.used_nodes.get(e.id, frozenset()) & nodes for e in graph.edges} if forget else None
        self.sg = build_state_graph(registry, graph, needs=needs)
        self.segments = segments(context_classes(registry, graph))
        self.n = len(self.sg.states)
        self.src = np.array([t.source for t in self.sg.transitions])
        self.tgt = np.array([t.target for t in self.sg.transitions])
        self.entry = np.zeros(self.n)
        for i, w in self.sg.entries.items():
            self.entry[i] = w
        self.success = np.array([graph.node(s.node).outcome == "success" for s in self.sg.states])
        keys = {}
        for slots in self.resolver.slots.values():
            for slot in slots:
                keys[id(slot)] = slot_key(slot)
        names = sorted(set(keys.values()))
        row = {k: i for i, k in enumerate(names)}
        estimates = {keys[id(slot)]: slot.estimate for slots in self.resolver.slots.values() for slot in slots}
        self.values = np.array([draws(estimates[k], k, seed, samples) for k in names])
        self.row_of = {i: row[k] for i, k in keys.items()}
        self.rows: dict[int, np.ndarray] = {}

    def conversion(self, segment: int, draw: int) -> float:
        if segment not in self.rows:  # resolve every transition once per segment
            ctx = segment_context(self.segments[segment])
            self.rows[segment] = np.array([
                self.row_of[id(self.resolver.winner(t.edge.id, self.sg.states[t.source].query_visited(), ctx))]
                for t in self.sg.transitions])
        p = self.values[self.rows[segment], draw]
        matrix = np.zeros((self.n, self.n))
        np.add.at(matrix, (self.src, self.tgt), p)
        matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)  # the engine's guard for draws past 1
        visits = np.linalg.solve(np.eye(self.n) - matrix.T, self.entry)
        return float(visits[self.success].sum())


def time_baseline(registry: Registry, pairs: list[tuple[int, int]], samples: int, n_segments: int, forget: bool):
    """(setup seconds, median seconds per pair, conversions) of the baseline on `pairs`; setup
    counts the resolution of every segment, extrapolated from those the pairs use."""
    t0 = time.perf_counter()
    base = Baseline(registry, samples, 0, forget)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for segment in sorted({s for s, _ in pairs}):
        base.conversion(segment, 0)  # resolution, once per segment
    setup += (time.perf_counter() - t0) * n_segments / len({s for s, _ in pairs})
    values, times = {}, []
    for pair in pairs:
        t0 = time.perf_counter()
        values[pair] = base.conversion(*pair)
        times.append(time.perf_counter() - t0)
    return setup, float(np.median(times)), values


def command_env() -> dict[str, str]:
    """As on a user's machine (and as `bench validate`): bytecode is written and read, so a command
    does not compile funnelcheck's modules on every run (PYTHONDONTWRITEBYTECODE is dropped)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def time_command(command: list[str], runs: int, warm_up: bool = True) -> tuple[float, list[float], float, int]:
    """Median wall time of a command in a fresh interpreter, the times, the median CPU time
    (user + system: less sensitive to other processes' load) and the largest max RSS (KiB).
    An untimed first run (`warm_up`) leaves the bytecode and the parse cache in place."""
    times, cpu, peak = [], [], 0
    env = command_env()
    if warm_up:
        subprocess.run([sys.executable, *command], capture_output=True, env=env, timeout=3600, check=False)
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=env, timeout=3600)
        times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")
        peak = max(peak, after.ru_maxrss)
    return float(np.median(times)), times, float(np.median(cpu)), peak


# `whatif --samples 0` step by step in a fresh interpreter, as commands/whatif.py runs it.
PHASES = """
import json, sys, time
t = [time.perf_counter()]
import numpy
t.append(time.perf_counter())
from funnelcheck.commands import whatif
from funnelcheck.commands._common import open_registry
from funnelcheck.engine import Mix, run_whatif
from funnelcheck.render import whatif as render
t.append(time.perf_counter())
options = whatif.Options(graph=sys.argv[1], registry=sys.argv[2], samples=0)
loaded = open_registry(options)
t.append(time.perf_counter())
whatif.blocking_findings(loaded, options.graph)
t.append(time.perf_counter())
result = run_whatif(loaded.registry, options.graph, Mix(), [], 0, 0)
t.append(time.perf_counter())
render.text(result)
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
PHASE_NAMES = ("numpy", "funnelcheck imports", "loading", "validation", "engine", "text")


def time_phases(root: Path, runs: int) -> dict[str, float]:
    """Median seconds of each phase of the point estimate (PHASES), after one warm-up run."""
    command = [sys.executable, "-c", PHASES, GRAPH, str(root)]
    subprocess.run(command, capture_output=True, env=command_env(), timeout=600, check=False)
    measured = [json.loads(subprocess.run(command, capture_output=True, text=True, env=command_env(),
                                          timeout=600, check=True).stdout) for _ in range(runs)]
    return {name: float(np.median([m[i] for m in measured])) for i, name in enumerate(PHASE_NAMES)}


def whatif_command(root: Path, *args: str) -> list[str]:
    """`python -m funnelcheck whatif` on the benchmark graph of the registry at `root`."""
    return ["-m", "funnelcheck", "whatif", GRAPH, "--registry", str(root), *args]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench engine")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--baseline-pairs", type=int, default=10, help="(segment, draw) pairs the baseline solves")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each measurement (the median counts)")
    parser.add_argument("--many-segments", action="store_true",
                        help="also time whatif on 6 context keys x 5 values (15,625 segments; minutes)")
    args = parser.parse_args(argv)
    registry = synthetic_registry()
    graph = registry.graphs[GRAPH]
    run_whatif(registry, GRAPH, samples=args.samples)  # warm-up: imports and first-call costs
    mc_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = run_whatif(registry, GRAPH, samples=args.samples, seed=0)
        mc_times.append(time.perf_counter() - t0)
    t_mc = float(np.median(mc_times))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        root = write_registry(registry, Path(tmp))
        time.sleep(2.1)  # older than the parse cache's racy-timestamp window, as files in a real checkout are
        t_floor, floor_times, cpu_floor, _ = time_command(["-c", "import numpy"], args.repeat)
        t_point, point_times, cpu_point, _ = time_command(whatif_command(root, "--samples", "0"), args.repeat)
        phases = time_phases(root, args.repeat)
        t_cmd, cmd_times, cpu_cmd, _ = time_command(whatif_command(root, "--samples", str(args.samples)), args.repeat)
    full = build_state_graph(registry, graph)
    n_segments = len(result.segments)
    print(f"graph: {len(graph.nodes)} nodes, {len(graph.edges)} edges, {len(registry.parameters)} parameters, "
          f"{n_segments} segments; state graph {len(full.states)} states / {len(full.transitions)} transitions "
          f"({result.states} states after forgetting visited flags no edge ahead needs)")
    print(f"conversion {result.conversion.point:.5f} (MC mean {result.conversion.mean:.5f}, "
          f"90% {result.conversion.p05:.5f}-{result.conversion.p95:.5f}; {result.rescaled:.2%} of drawn out-distributions rescaled)")
    # Baseline: a few (segment, draw) pairs of the segments the engine reports, checked against it.
    segs = segments(context_classes(registry, graph))
    order = {tuple(sorted(segment_context(s).items())): i for i, s in enumerate(segs)}
    rng = np.random.default_rng(1)
    picks = [(int(rng.integers(n_segments)), int(rng.integers(args.samples))) for _ in range(args.baseline_pairs)]
    pairs = [(order[tuple(sorted(result.segments[j].context.items()))], d) for j, d in picks]
    setup, per_pair, values = time_baseline(registry, pairs, args.samples, n_segments, forget=False)
    setup_small, per_pair_small, small = time_baseline(registry, pairs, args.samples, n_segments, forget=True)
    worst = max(max(abs(values[p] - result.segments[j].draws[d]), abs(small[p] - result.segments[j].draws[d]))
                for p, (j, d) in zip(pairs, picks))
    t_base = setup + per_pair * n_segments * args.samples
    t_small = setup_small + per_pair_small * n_segments * args.samples
    ratio = t_small / t_mc
    median = lambda ts: f"median of {len(ts)}: {' '.join(f'{t:.2f}' for t in ts)}"
    checks = [
        ("python -c 'import numpy' (the floor of any whatif)", f"{t_floor:.3f} s", None,
         f"CPU {cpu_floor:.3f} s; {median(floor_times)}"),
        ("whatif --samples 0 (point estimate, whole command)", f"{t_point:.3f} s", t_point < TARGETS["point"],
         f"< {TARGETS['point']} s; CPU {cpu_point:.3f} s; {median(point_times)}"),
        ("  its steps (medians; the rest is the interpreter's start)", f"{sum(phases.values()):.3f} s", None,
         ", ".join(f"{name} {t:.3f}" for name, t in phases.items())),
        (f"whatif, {args.samples} draws (whole command)", f"{t_cmd:.3f} s", None,
         f"CPU {cpu_cmd:.3f} s; {median(cmd_times)}"),
        (f"run_whatif, {args.samples} draws (in process)", f"{t_mc:.3f} s", t_mc < TARGETS["mc"],
         f"< {TARGETS['mc']} s; {median(mc_times)}"),
        ("baseline: dense solve per segment per draw, same state graph", f"{t_small:.1f} s", None,
         f"setup {setup_small:.2f} s + {per_pair_small * 1000:.2f} ms per pair (median of {len(pairs)}) "
         f"x {n_segments} segments x {args.samples} draws"),
        ("speed-up vs baseline (same state graph)", f"{ratio:,.0f}x", ratio >= TARGETS["ratio"],
         f">= {TARGETS['ratio']:.0f}x"),
        ("baseline on the full state graph (no forgetting)", f"{t_base:.1f} s", None,
         f"{per_pair * 1000:.1f} ms per pair; {t_base / t_mc:,.0f}x the engine (state graph + solver)"),
        ("peak memory (max RSS of the in-process runs)", f"{peak_mib:.0f} MiB", peak_mib < TARGETS["memory_mib"],
         f"< {TARGETS['memory_mib']:.0f} MiB"),
    ]
    if args.many_segments:
        with tempfile.TemporaryDirectory() as tmp:
            root = write_registry(synthetic_registry(context_keys=WIDE_CONTEXTS), Path(tmp))
            t_wide, _, _, rss = time_command(whatif_command(root, "--samples", str(args.samples), "--format", "json"), 1,
                                             warm_up=False)
        checks.append(("whatif, 15,625 segments (whole command, 1 run)", f"{t_wide:.0f} s", None,
                       f"max RSS {rss / 1024:.0f} MiB"))
        checks.append(("  its peak memory", f"{rss / 1024:.0f} MiB", rss / 1024 < TARGETS["memory_mib"],
                       f"< {TARGETS['memory_mib']:.0f} MiB"))
    for name, value, ok, target in checks:
        status = "" if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {name:<60} {value:>12}  {status:<4}  {target}")
    print(f"  both baselines agree with the engine on those pairs: max |difference| = {worst:.2e}")
    failed = [name for name, _, ok, _ in checks if ok is False]
    print(f"  targets: {'all met' if not failed else 'missed: ' + '; '.join(failed)} "
          f"(timings are indicative on a shared machine; only a wrong number fails the run)")
    return 0 if worst < 1e-9 else 1
