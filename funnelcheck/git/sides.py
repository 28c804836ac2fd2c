"""The what-if runs a diff needs, each computed once: reused by a hash of its inputs, spread over the cores.

A run of one graph at one revision depends only on the graph, the contexts, the parameters of
the graph's edges, the number of draws, the seed and the engine's own code. `side_key` hashes
exactly those, so the base side of a pull request, recomputed on every push, is read back
instead. Entries are data only (JSON behind a checksum, `load.cache.write_entry`); draws are
stored beside as raw float64 bytes whose digest the record holds, so a result read back is
bit-identical to the one computed and a damaged one is computed again. Runs that are not cached are spread over worker processes (fork: the registry is
inherited, never sent), one graph side per task.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

from funnelcheck.model import Graph, Parameter, Registry

Task = tuple[str, str]  # (graph id, side name)
_REGISTRIES: dict[str, Registry] = {}  # what forked workers read: set before the pool starts
_SETTINGS: dict[str, int] = {}


def _estimate(e) -> list | None:
    return None if e is None else [e.mean, e.stdev]


def _parameter(p: Parameter) -> list:
    return [p.id, p.edge, [list(kv) for kv in p.context_filter], sorted(p.visited_filter),
            _estimate(p.value), _estimate(p.fallback_value)]


def _graph(g: Graph) -> list:
    return [g.id, [[n.id, n.entry_weight, n.outcome] for n in g.nodes],
            [[e.id, e.source, e.target, _estimate(e.inline), e.parameter_id] for e in g.edges]]


def engine_fingerprint() -> str:
    """A hash of the engine's source: a cached run is never reused by another version of the engine."""
    import funnelcheck
    from funnelcheck import engine

    digest = hashlib.blake2b(funnelcheck.__version__.encode(), digest_size=16)
    folder = Path(engine.__file__).parent
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            digest.update(name.encode() + (folder / name).read_bytes())
    for name in ("resolve.py", "model.py"):
        digest.update((folder.parent / name).read_bytes())
    return digest.hexdigest()


def side_key(registry: Registry, graph: Graph, by_edge: dict[str, list[Parameter]], samples: int, seed: int,
             engine: str) -> str:
    """The hash of everything one what-if run of `graph` reads (see the module doc)."""
    params = [_parameter(p) for e in graph.edges for p in by_edge.get(e.id, ())]
    contexts = [[c.id, [[v.id, v.share] for v in c.values]] for c in registry.contexts]
    text = json.dumps([engine, samples, seed, _graph(graph), contexts, params], separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


# -- results as data ----------------------------------------------------------------------------

def to_data(result) -> tuple[dict, bytes]:
    """What a diff reads from a what-if result: plain JSON data, and every draw as little-endian float64 bytes."""
    import numpy as np

    c = result.conversion
    raw = np.concatenate([result.draws, *(s.draws for s in result.segments)]).astype("<f8").tobytes()
    return {
        "conversion": [c.point, c.mean, c.p05, c.p50, c.p95],
        "samples": len(result.draws),
        "edges": {eid: [e.p, e.flow, e.source, e.target] for eid, e in result.edges.items()},
        "segments": [[s.context, s.weight, s.conversion, s.members] for s in result.segments],
        "digest": _digest(raw),
    }, raw


def _digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class StoredResult:
    """A what-if result read back from the cache: the attributes a diff uses, nothing else."""

    def __init__(self, data: dict, raw: bytes):
        import numpy as np

        from funnelcheck.engine.result import EdgeResult, SegmentResult, Summary

        n = int(data["samples"])
        if _digest(raw) != data["digest"] or len(raw) != 8 * n * (1 + len(data["segments"])):
            raise ValueError("the draws do not match their record")
        draws = np.frombuffer(raw, dtype="<f8").reshape(1 + len(data["segments"]), n)
        self.conversion = Summary(*(float(x) for x in data["conversion"]))
        self.draws = draws[0]
        self.edges = {eid: EdgeResult(None if p is None else float(p), float(flow), str(src), str(tgt))
                      for eid, (p, flow, src, tgt) in data["edges"].items()}
        self.segments = [SegmentResult({str(k): str(v) for k, v in ctx.items()}, float(w), float(conv), row,
                                       {str(k): [str(x) for x in v] for k, v in members.items()})
                         for (ctx, w, conv, members), row in zip(data["segments"], draws[1:])]


class SideStore:
    """Cached what-if results under one folder: per input hash a record (JSON behind a checksum, via
    `load.cache`) and its draws (raw float64, checked against the digest in the record).

    Keeps only what its last run used (`prune`).
    """

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.used: set[str] = set()

    def get(self, key: str):
        from funnelcheck.load.cache import read_entry

        self.used.add(key)
        if self.folder is None:
            return None
        data = read_entry(self.folder / f"{key}.json")
        try:
            with open(self.folder / f"{key}.f8", "rb") as fh:
                raw = fh.read()
            return StoredResult(data, raw) if isinstance(data, dict) else None
        except (OSError, KeyError, TypeError, ValueError, AttributeError):  # missing or not ours: computed again
            return None

    def put(self, key: str, result) -> None:
        from funnelcheck.atomicfile import write_atomic
        from funnelcheck.load.cache import write_entry

        self.used.add(key)
        if self.folder is None:
            return
        data, raw = to_data(result)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.folder / f"{key}.f8", raw)
            write_entry(self.folder / f"{key}.json", data)  # last: a record always has its draws
        except (OSError, ValueError):
            pass  # a read-only or full disk: the diff is still right, just not reused

    def prune(self) -> None:
        """Drop the entries this run did not use (results of older pushes)."""
        if self.folder is None or not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if path.suffix in (".json", ".f8") and path.stem not in self.used:
                try:
                    path.unlink()
                except OSError:
                    pass


# -- computing ----------------------------------------------------------------------------------

def _work(task: Task):
    from funnelcheck.engine import run_whatif
    from funnelcheck.findings import FunnelcheckError

    graph_id, side = task
    try:
        return run_whatif(_REGISTRIES[side], graph_id, samples=_SETTINGS["samples"], seed=_SETTINGS["seed"]), None
    except FunnelcheckError as exc:
        return None, str(exc)


def compute(registries: dict[str, Registry | None], tasks: list[Task], samples: int, seed: int,
            store: SideStore | None = None, jobs: int | None = None,
            run: Callable[..., Any] | None = None) -> dict[Task, tuple[Any, str | None]]:
    """(result, error) for every (graph, side) task: from `store` when its inputs were seen, else computed.

    `run` replaces the engine (then everything runs in this process, in order).
    """
    out: dict[Task, tuple[Any, str | None]] = {}
    keys: dict[Task, str] = {}
    if store is not None and run is None:
        engine = engine_fingerprint()
        by_edge = {side: reg.parameters_by_edge() for side, reg in registries.items() if reg is not None}
        for task in tasks:
            reg = registries[task[1]]
            keys[task] = side_key(reg, reg.graphs[task[0]], by_edge[task[1]], samples, seed, engine)
            hit = store.get(keys[task])
            if hit is not None:
                out[task] = (hit, None)
    todo = [t for t in tasks if t not in out]
    jobs = jobs if jobs is not None else min(len(todo), os.cpu_count() or 1)
    if run is not None:
        from funnelcheck.findings import FunnelcheckError

        for graph_id, side in todo:
            try:
                out[(graph_id, side)] = (run(registries[side], graph_id, samples=samples, seed=seed), None)
            except FunnelcheckError as exc:
                out[(graph_id, side)] = (None, str(exc))
        return out
    _REGISTRIES.clear()
    _REGISTRIES.update({k: v for k, v in registries.items() if v is not None})
    _SETTINGS.update(samples=samples, seed=seed)
    try:
        if jobs > 1 and hasattr(os, "fork"):
            import multiprocessing

            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                done = list(pool.map(_work, todo))
        else:
            done = [_work(t) for t in todo]
    finally:
        _REGISTRIES.clear()
    for task, (result, error) in zip(todo, done):
        out[task] = (result, error)
        if result is not None and task in keys:
            store.put(keys[task], result)
    return out
