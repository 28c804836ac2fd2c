"""The what-if runs a diff needs, each computed once: reused by a hash of their inputs, spread over the cores.

A run of one graph at one revision depends only on the graph, the contexts, the parameters of
the graph's edges, the number of draws, the seed and the engine's own code. `side_key` hashes
exactly those, so the base side of a pull request, recomputed on every push, is read back
instead of run. A graph's two sides are run together, base first: the head run takes every
segment whose inputs are the base's as it is (`run_whatif(known=...)`), so only the segments
a change reaches are drawn again.

Entries are data only: a JSON record behind a checksum (`load.cache.write_entry`) and the
draws as raw float64 rows, each with its CRC-32 in the record. Rows are read when something
asks for them (a warm diff reads the conversion draws and the segments that changed, a
fraction of the file) and checked then; a damaged one raises `DamagedEntry` and the graph is
computed again. Graphs that must be run are spread over worker processes (fork: the
registries are inherited, never sent; only each graph's small diff travels back).
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from funnelcheck.findings import FunnelcheckError
from funnelcheck.model import Graph, Parameter, Registry

SIDES = ("base", "head")
Outcome = tuple[Any, str | None]  # (what-if result or None, why it could not be computed or None)


class DamagedEntry(Exception):
    """A stored row that fails its check: the graph is computed again."""


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
    """What a diff reads from a what-if result: a JSON record, and the conversion draws then each
    segment's as little-endian float64 rows (their CRC-32s in the record)."""
    import numpy as np

    c = result.conversion
    rows = [np.ascontiguousarray(r, dtype="<f8").tobytes() for r in (result.draws, *(s.draws for s in result.segments))]
    return {
        "conversion": [c.point, c.mean, c.p05, c.p50, c.p95],
        "samples": len(result.draws),
        "edges": {eid: [e.p, e.flow, e.source, e.target] for eid, e in result.edges.items()},
        "segments": [[s.context, s.weight, s.conversion, s.members, s.inputs] for s in result.segments],
        "rows": [zlib.crc32(r) for r in rows],
    }, b"".join(rows)


class Rows:
    """A stored entry's draws, mapped from its file: row i is read and checked when asked for."""

    def __init__(self, path: Path, samples: int, crcs: list[int]):
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size != 8 * samples * len(crcs):
                raise ValueError("the draws do not match their record")
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self.path, self.samples, self.crcs = path, samples, [int(c) for c in crcs]

    def row(self, i: int):
        import numpy as np

        width = 8 * self.samples
        raw = self._map[i * width:(i + 1) * width]
        if zlib.crc32(raw) != self.crcs[i]:
            raise DamagedEntry(f"{self.path}: row {i} fails its check")
        return np.frombuffer(raw, dtype="<f8")


class StoredSegment:
    """A segment read back: what a diff uses (context, weight, conversion at the means, members,
    inputs digest), its draws read on first use."""

    def __init__(self, context: dict, weight: float, conversion: float, members: dict, inputs: str, rows: Rows,
                 i: int):
        self.context = {str(k): str(v) for k, v in context.items()}
        self.weight, self.conversion = float(weight), float(conversion)
        self.members = {str(k): [str(x) for x in v] for k, v in members.items()}
        self.inputs = str(inputs)
        self._rows, self._i = rows, i

    @property
    def draws(self):
        return self._rows.row(self._i)


class StoredResult:
    """A what-if result read back from the store: the attributes a diff uses, nothing else."""

    def __init__(self, data: dict, rows: Rows):
        from funnelcheck.engine.result import EdgeResult, Summary

        if len(rows.crcs) != 1 + len(data["segments"]):
            raise ValueError("the draws do not match their record")
        self._rows = rows
        self.conversion = Summary(*(float(x) for x in data["conversion"]))
        self.edges = {eid: EdgeResult(None if p is None else float(p), float(flow), str(src), str(tgt))
                      for eid, (p, flow, src, tgt) in data["edges"].items()}
        self.segments = [StoredSegment(ctx, w, conv, members, inputs, rows, i)
                         for i, (ctx, w, conv, members, inputs) in enumerate(data["segments"], start=1)]

    @property
    def draws(self):
        return self._rows.row(0)


class SideStore:
    """Cached what-if results under one folder: per input hash a record (JSON behind a checksum, via
    `load.cache`) and its draws (raw float64 rows, each checked against its CRC-32 when read).

    Keeps only what its last run used (`prune`).
    """

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.used: set[str] = set()

    def get(self, key: str) -> StoredResult | None:
        from funnelcheck.load.cache import read_entry

        self.used.add(key)
        if self.folder is None:
            return None
        data = read_entry(self.folder / f"{key}.json")
        try:
            return StoredResult(data, Rows(self.folder / f"{key}.f8", int(data["samples"]), data["rows"]))
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

class _Known(Mapping):
    """The base's segment draws by inputs digest, for the head run: a row is read only when the
    engine takes it."""

    def __init__(self, result):
        self._segments = {s.inputs: s for s in result.segments} if result is not None else {}

    def __getitem__(self, digest: str):
        return self._segments[digest].draws

    def __iter__(self) -> Iterator[str]:
        return iter(self._segments)

    def __len__(self) -> int:
        return len(self._segments)


class GraphRuns:
    """Both sides of each graph of a diff: read back from `store`, else run (the base first, then the
    head with the base's segments known)."""

    def __init__(self, registries: dict[str, Registry | None], samples: int, seed: int,
                 store: SideStore | None = None, by_edge: dict[str, dict[str, list[Parameter]]] | None = None):
        self.registries, self.samples, self.seed = registries, samples, seed
        self.store = store if store is not None else SideStore(None)
        self._engine = engine_fingerprint()
        self._by_edge = by_edge or {side: reg.parameters_by_edge() for side, reg in registries.items() if reg}
        self._keys: dict[tuple[str, str], str] = {}
        self._stored: dict[str, dict[str, StoredResult]] = {}

    def sides(self, graph_id: str) -> list[str]:
        """The sides at which `graph_id` exists."""
        return [s for s in SIDES if self.registries.get(s) is not None and graph_id in self.registries[s].graphs]

    def key(self, graph_id: str, side: str) -> str:
        if (graph_id, side) not in self._keys:
            reg = self.registries[side]
            self._keys[(graph_id, side)] = side_key(reg, reg.graphs[graph_id], self._by_edge[side], self.samples,
                                                    self.seed, self._engine)
        return self._keys[(graph_id, side)]

    def stored(self, graph_id: str) -> dict[str, StoredResult]:
        """The sides of `graph_id` found in the store, read once (all are marked used, so `prune` keeps them)."""
        if graph_id not in self._stored:
            found = {side: self.store.get(self.key(graph_id, side))
                     for side in (self.sides(graph_id) if self.store.folder is not None else ())}
            self._stored[graph_id] = {side: hit for side, hit in found.items() if hit is not None}
        return self._stored[graph_id]

    def results(self, graph_id: str, reuse: bool = True) -> dict[tuple[str, str], Outcome]:
        """(result, error) of each side of `graph_id`; `reuse=False` runs both, whatever is stored.

        Raises DamagedEntry when a stored row it reads fails its check."""
        from funnelcheck.engine import run_whatif

        found = self.stored(graph_id) if reuse else {}
        out: dict[tuple[str, str], Outcome] = {}
        for side in self.sides(graph_id):
            if side in found:
                out[(graph_id, side)] = (found[side], None)
                continue
            base = out.get((graph_id, "base"), (None, None))[0]
            try:
                result = run_whatif(self.registries[side], graph_id, samples=self.samples, seed=self.seed,
                                    known=_Known(base) if side == "head" else {})
            except FunnelcheckError as exc:
                out[(graph_id, side)] = (None, str(exc))
                continue
            if self.store.folder is not None:
                self.store.put(self.key(graph_id, side), result)
            out[(graph_id, side)] = (result, None)
        return out


T = TypeVar("T")
R = TypeVar("R")
_WORK: list = []  # (function, items) that forked workers run: set before the pool starts, never sent


def _call(i: int):
    work, items = _WORK[0]
    return work(items[i])


def parallel(work: Callable[[T], R], items: list[T], jobs: int | None = None,
             meanwhile: Callable[[], None] | None = None) -> list[R]:
    """[work(item) for item in items] over `jobs` worker processes (default: one per core, at most
    one per item), with `meanwhile()` run in this process while they work.

    Workers are forked: `work` and everything it reads are inherited, only the results are sent back.
    """
    jobs = min(len(items), os.cpu_count() or 1) if jobs is None else min(jobs, len(items))
    if jobs <= 1 or not hasattr(os, "fork"):
        out = [work(x) for x in items]
        if meanwhile is not None:
            meanwhile()
        return out
    import multiprocessing

    _WORK[:] = [(work, items)]
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            pending = pool.map(_call, range(len(items)))
            if meanwhile is not None:
                meanwhile()
            return list(pending)
    finally:
        _WORK.clear()
