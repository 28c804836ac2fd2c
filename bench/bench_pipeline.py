"""Benchmark of the data pipeline (issue: data pipeline): `simulate` and `monitor` at scale.

Workload: the engine benchmark's synthetic funnel (300 nodes, 1,200 edges with cycles, three
context keys, visited conditions), 1,000 of its parameters observed with `type: events`
(base, context and visited filters), and `simulate` writing ~10M journey rows (with their
events) into DuckDB. Measured, each in a fresh process so peak memory is the step's own:

- `simulate`: draw and write the tables (target < 60 s for 10M journey rows);
- `monitor` end to end: `funnelcheck monitor` on the registry written out as files (imports,
  YAML loading with a warm parse cache, the batched grouped query, statistics, the SQLite store,
  output), in a fresh process, the median of three runs after a first one (targets < 15 s, peak
  memory < 2 GiB). The package is byte-compiled first, as pip does on install (a checkout run
  with PYTHONDONTWRITEBYTECODE would otherwise compile funnelcheck's modules in every run);
- side by side, the baseline: the seed-style query (filters in WHERE, visited via
  `HAVING COUNT(DISTINCT node_slug) = N`) once per parameter, timed on an even sample of the
  parameters and extrapolated linearly to all 1,000 (in full it takes far too long); its counts
  are checked against the batched query's `evidence: filter` counts for the same parameters.
  Target: batched ≥ 20× faster.
- PostgreSQL (127.0.0.1:5432, database `test`, a throw-away schema) at ~1M journey rows:
  batched vs per-parameter, the same way.

Prints PASS/FAIL per target and exits 0 (the figures are indicative on a shared machine).
"""
from __future__ import annotations

import argparse
import compileall
import io
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "pipeline"
AS_OF = datetime(2026, 11, 29, tzinfo=timezone.utc)
TARGETS = {"simulate_s": 60.0, "monitor_s": 15.0, "ratio": 20.0, "memory_mib": 2048.0}
N_PARAMS = 1000
PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def bench_registry(url: str):
    """The synthetic registry with 1,000 `events` parameters and an observation model on `url`."""
    from bench.bench_engine import synthetic_registry
    from funnelcheck.model import Config

    registry = synthetic_registry()
    params = sorted(registry.parameters.values(), key=lambda p: (not p.visited_filter, not p.context_filter, p.id))
    chosen = {p.id for p in params[:N_PARAMS]}
    registry.parameters = {pid: replace(p, observation_source={"type": "events", "window": "7d"}) if pid in chosen
                           else p for pid, p in registry.parameters.items()}
    registry.config = Config(None, {
        "connections": {"bench": {"url": url}},
        "observations": {
            "connection": "bench",
            "journeys": {"table": "user_journeys", "edge": "edge_slug", "converted": "converted",
                         "time": "created_at", "session": ["user_id", "session_id"],
                         "contexts": {"channel": "channel", "device": "device", "region": "region"}},
            "visits": {"table": "events", "node": "node_slug", "time": "created_at",
                       "session": ["user_id", "session_id"]}},
        "model_fit": {"method": "wald", "thresholds": {"amber": 2, "red": 3}, "min_sample_size": 100}})
    return registry


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_simulate(rows: int, out: str) -> dict:
    """Simulate about `rows` journey rows into `out` (a .duckdb file or a Parquet folder)."""
    from bench.bench_engine import GRAPH
    from funnelcheck.pipeline.simulate import simulate, write_tables

    registry = bench_registry("duckdb:///unused")
    pilot = simulate(registry, GRAPH, 20_000, seed=1)
    users = max(1000, int(rows / (pilot.journey_rows / 20_000)))
    start = time.perf_counter()
    tables = simulate(registry, GRAPH, users, seed=2, start=datetime(2026, 11, 1), days=28)
    write_tables(tables, out)
    return {"seconds": time.perf_counter() - start, "rows": tables.journey_rows, "users": users,
            "visits": len(tables.visits["time"]), "peak_mib": _peak_mib()}


def write_project(registry, folder: Path, store: str) -> Path:
    """The bench registry as files (JSON is YAML), so `monitor` runs exactly as a user runs it."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    (folder / "registry/parameters").mkdir(parents=True)
    (folder / "registry/graphs").mkdir(parents=True)
    (folder / "funnelcheck.yaml").write_text(json.dumps({"registry": "registry", "database": store,
                                                         **registry.config.data}))
    (folder / "registry/contexts.yaml").write_text(json.dumps({"contexts": [
        {"id": c.id, "values": [{"id": v.id, "share": v.share} for v in c.values]} for c in registry.contexts]}))
    for p in registry.parameters.values():
        doc = {"id": p.id, "edge": p.edge, "value": {"mean": p.value.mean, "stdev": p.value.stdev}}
        if p.context_filter:
            doc["context_filter"] = dict(p.context_filter)
        if p.visited_filter:
            doc["visited_filter"] = sorted(p.visited_filter)
        if p.observation_source:
            doc["observation_source"] = p.observation_source
        (folder / f"registry/parameters/{p.id}.yaml").write_text(json.dumps(doc))
    for g in registry.graphs.values():
        nodes = [{"id": n.id, **({"entry": {"weight": n.entry_weight}} if n.entry_weight else {}),
                  **({"outcome": n.outcome} if n.outcome else {})} for n in g.nodes]
        edges = [{"id": e.id, "from": e.source, "to": e.target,
                  "p": {"parameter_id": e.parameter_id} if e.parameter_id else {"mean": e.inline.mean, "stdev": e.inline.stdev}}
                 for e in g.edges]
        (folder / f"registry/graphs/{g.id}.yaml").write_text(json.dumps({"id": g.id, "nodes": nodes, "edges": edges}))
    return folder / "funnelcheck.yaml"


def child_monitor(config: str) -> dict:
    """`funnelcheck monitor` end to end, in this fresh process: imports, YAML, queries, store, text."""
    import contextlib

    start = time.perf_counter()
    from funnelcheck.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["monitor", "--as-of", AS_OF.date().isoformat(), "--config", config, "--format", "json"])
    seconds = time.perf_counter() - start
    result = json.loads(out.getvalue())
    return {"seconds": seconds, "peak_mib": _peak_mib(), "summary": result["summary"], "code": code,
            "stored": result["stored"]}


def seed_query(p, contexts: dict) -> tuple[str, dict]:
    """The seed's per-parameter query: filters in WHERE, visited via HAVING COUNT(DISTINCT node_slug) = N."""
    where = ["j.edge_slug = :edge", "j.created_at >= :ws", "j.created_at < :we"]
    binds = {"edge": p.edge}
    for i, (key, value) in enumerate(p.context_filter):
        where.append(f"j.{contexts[key]} = :c{i}")
        binds[f"c{i}"] = value
    if p.visited_filter:
        nodes = sorted(p.visited_filter)
        binds.update({f"n{i}": n for i, n in enumerate(nodes)})
        where.append("EXISTS (SELECT 1 FROM events e WHERE e.user_id = j.user_id AND e.session_id = j.session_id"
                     f" AND e.node_slug IN ({', '.join(f':n{i}' for i in range(len(nodes)))})"
                     f" AND e.created_at <= j.created_at HAVING COUNT(DISTINCT e.node_slug) = {len(nodes)})")
    return ("SELECT COUNT(*) AS trials, SUM(j.converted) AS successes FROM user_journeys j WHERE "
            + " AND ".join(where), binds)


def child_baseline(url: str, sample: int) -> dict:
    """Per-parameter queries on an even sample, extrapolated; counts checked against filter mode."""
    from funnelcheck.pipeline.connections import Connections
    from funnelcheck.pipeline.observations import Window, collect

    registry = bench_registry(url)
    connections = Connections(registry.config.data["connections"], OUT)
    observed = sorted((p for p in registry.parameters.values() if p.observation_source), key=lambda p: p.id)
    visited = [p for p in observed if p.visited_filter]
    plain = [p for p in observed if not p.visited_filter]
    picked = visited[:sample // 4] + plain[::max(1, len(plain) // sample)][:sample - min(len(visited), sample // 4)]
    window = Window(datetime(2026, 11, 22, tzinfo=timezone.utc), AS_OF)
    contexts = registry.config.data["observations"]["journeys"]["contexts"]
    counts, seconds = {}, {}
    connections.query("bench", "SELECT 1")  # connect outside the timed queries
    for p in picked:
        sql, binds = seed_query(p, contexts)
        start = time.perf_counter()
        [(n, k)] = connections.query("bench", sql, {**binds, "ws": window.start.replace(tzinfo=None),
                                                    "we": window.end.replace(tzinfo=None)}).rows
        seconds[p.id] = time.perf_counter() - start
        counts[p.id] = (int(n), int(k or 0))
    # Extrapolate per kind: queries with a visited filter cost more than plain ones.
    mean = {kind: sum(seconds[p.id] for p in picked if bool(p.visited_filter) == kind) /
            max(1, sum(bool(p.visited_filter) == kind for p in picked)) for kind in (True, False)}
    total = mean[True] * len(visited) + mean[False] * len(plain)
    filtered = [replace(p, observation_source={**p.observation_source, "evidence": "filter"}) for p in picked]
    batched = collect(registry, filtered, {p.id: window for p in filtered}, connections)
    agree = all((batched[p.id].observed.n, batched[p.id].observed.k) == counts[p.id] for p in picked)
    connections.dispose()
    return {"per_param_s": total / len(observed), "sampled": len(picked), "extrapolated_s": total,
            "agree": agree, "with_visited": sum(bool(p.visited_filter) for p in picked)}


def _child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "bench.bench_pipeline", "--child", *args], env=env, check=False,
                          capture_output=True, text=True, timeout=3600, cwd=HERE.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {args[0]} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _monitor_runs(config: Path, repeat: int = 3) -> tuple[dict, dict, list[float]]:
    """A first run (it fills the parse cache, as every day after the first), then `repeat` timed
    runs: the cold run, the median run and every timed run's seconds (the machine is shared)."""
    cold = _child("monitor", str(config))
    runs = sorted((_child("monitor", str(config)) for _ in range(repeat)), key=lambda r: r["seconds"])
    return cold, runs[len(runs) // 2], [r["seconds"] for r in runs]


def _settle() -> None:
    """As in production, where the warehouse and the registry were written long before monitor runs:
    the just-simulated rows are flushed to disk (not written back while monitor reads), and the
    registry's files age past the parse cache's 2-second window for "racily clean" files (as
    `bench validate` and `bench engine` wait too). Both sides are timed after this."""
    os.sync()
    time.sleep(2.1)


def _verdict(ok: bool, what: str) -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {what}")


def run_duckdb(rows: int, sample: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / "journeys.duckdb"
    for stale in (db, OUT / "journeys.duckdb.wal", OUT / "state.db"):
        stale.unlink(missing_ok=True)
    url = f"duckdb:///{db}"
    sim = _child("simulate", str(rows), str(db))
    print(f"simulate: {sim['rows']:,} journey rows, {sim['visits']:,} visits, {sim['users']:,} users in "
          f"{sim['seconds']:.1f} s (peak {sim['peak_mib']:.0f} MiB)")
    config = write_project(bench_registry(url), OUT / "project", f"sqlite:///{OUT / 'state.db'}")
    compileall.compile_dir(HERE.parent / "funnelcheck", quiet=1)
    _settle()
    cold, mon, times = _monitor_runs(config)
    base = _child("baseline", url, str(sample))
    ratio = base["extrapolated_s"] / mon["seconds"]
    print(f"monitor (batched, {N_PARAMS} events parameters): {mon['seconds']:.2f} s end to end, median of "
          f"{', '.join(f'{t:.2f}' for t in times)} (first run, cold parse cache: {cold['seconds']:.2f} s), peak "
          f"{mon['peak_mib']:.0f} MiB, exit {mon['code']}, stored {mon['stored']}; {mon['summary']}")
    print(f"baseline (seed-style query per parameter): {base['per_param_s'] * 1000:.0f} ms per parameter over "
          f"{base['sampled']} sampled ({base['with_visited']} with visited filters) → {base['extrapolated_s']:.0f} s "
          f"for {N_PARAMS}; counts agree with batched filter mode: {base['agree']}")
    print(f"ratio: batched is {ratio:.0f}× faster than the baseline")
    _verdict(sim["seconds"] < TARGETS["simulate_s"] * sim["rows"] / 10_000_000 or sim["seconds"] < TARGETS["simulate_s"],
             f"simulate {sim['rows']:,} rows in {sim['seconds']:.1f} s (target < 60 s for 10M)")
    _verdict(mon["seconds"] < TARGETS["monitor_s"], f"monitor end to end {mon['seconds']:.2f} s < 15 s")
    _verdict(ratio >= TARGETS["ratio"], f"batched vs per-parameter {ratio:.0f}× ≥ 20×")
    _verdict(mon["peak_mib"] < TARGETS["memory_mib"], f"monitor peak memory {mon['peak_mib']:.0f} MiB < 2048 MiB")
    _verdict(base["agree"], "per-parameter counts equal the batched filter-mode counts")


def run_postgres(rows: int, sample: int) -> None:
    try:
        import psycopg

        psycopg.connect(PG, connect_timeout=3).close()
    except Exception as exc:  # no server: say so, the DuckDB figures stand
        print(f"postgres: skipped ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        return
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder = OUT / "pg-parquet"
    sim = _child("simulate", str(rows), str(folder))
    schema = f"fc_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path = {schema}")
        try:
            for name in ("user_journeys", "events"):
                table = pq.read_table(folder / f"{name}.parquet")
                types = {"int64": "bigint", "int8": "smallint", "string": "text", "timestamp[us]": "timestamp"}
                cols = ", ".join(f"{f.name} {types[str(f.type)]}" for f in table.schema)
                conn.execute(f"CREATE TABLE {name} ({cols})")
                with conn.cursor().copy(f"COPY {name} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                    for i, batch in enumerate(table.to_batches(200_000)):
                        buf = io.BytesIO()
                        pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=i == 0))
                        copy.write(buf.getvalue())
                conn.execute(f"ANALYZE {name}")
            conn.execute("CREATE INDEX ON events (user_id, session_id)")
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
            config = write_project(bench_registry(url), OUT / "project-pg", f"sqlite:///{OUT / 'state-pg.db'}")
            _settle()
            cold, mon, times = _monitor_runs(config)
            base = _child("baseline", url, str(sample))
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    ratio = base["extrapolated_s"] / mon["seconds"]
    print(f"postgres at {sim['rows']:,} journey rows: batched monitor {mon['seconds']:.2f} s, median of "
          f"{', '.join(f'{t:.2f}' for t in times)} (first run, cold parse cache: {cold['seconds']:.2f} s; "
          f"peak {mon['peak_mib']:.0f} MiB); "
          f"per-parameter {base['per_param_s'] * 1000:.0f} ms × {N_PARAMS} ≈ {base['extrapolated_s']:.0f} s; "
          f"{ratio:.0f}× ; counts agree: {base['agree']}")
    _verdict(base["agree"], "postgres: per-parameter counts equal the batched filter-mode counts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench pipeline")
    parser.add_argument("--quick", action="store_true", help="1M journey rows instead of 10M, 100k on PostgreSQL")
    parser.add_argument("--rows", type=int, help="journey rows for DuckDB (default 10M)")
    parser.add_argument("--pg-rows", type=int, help="journey rows for PostgreSQL (default 1M)")
    parser.add_argument("--sample", type=int, default=24, help="parameters timed for the baseline (default 24)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    if args.child:
        kind, *rest = args.child
        out = {"simulate": lambda: child_simulate(int(rest[0]), rest[1]),
               "monitor": lambda: child_monitor(rest[0]),
               "baseline": lambda: child_baseline(rest[0], int(rest[1]))}[kind]()
        print(json.dumps(out))
        return 0
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    pg_rows = args.pg_rows or (100_000 if args.quick else 1_000_000)
    run_duckdb(rows, args.sample)
    run_postgres(pg_rows, args.sample)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
