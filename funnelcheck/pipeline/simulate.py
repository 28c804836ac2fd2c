"""Simulated journeys drawn from the model itself (SPEC 8.2, `funnelcheck simulate`).

Users get context values from the shares; their paths follow the graph with the resolved
probability for their segment and visited state (cycles included; `--drift` slots replace
parameters as `whatif --set` does). Vectorised with numpy: every step moves all users still
walking at once. Output: the observation model's two tables — journeys (at every visit of a
node, one row per outgoing edge, converted = 1 on the edge taken) and visits (one row per node
visited) — with the names of funnelcheck.yaml `observations`, else the SPEC 9 defaults.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from funnelcheck.findings import UsageError
from funnelcheck.model import Registry
from funnelcheck.resolve import Resolver

MAX_STEPS = 500  # a bound on any path; cycles leak mass, so real paths end long before
DEFAULT_MODEL = {
    "journeys": {"table": "user_journeys", "edge": "edge_slug", "converted": "converted", "time": "created_at",
                 "session": ["user_id", "session_id"]},
    "visits": {"table": "events", "node": "node_slug", "time": "created_at", "session": ["user_id", "session_id"]},
}


@dataclass
class SimulatedTables:
    """Columns of the two tables as numpy arrays (strings dictionary-coded: codes + labels)."""

    journeys: dict
    visits: dict
    journey_names: dict  # role -> column name
    visit_names: dict
    users: int

    @property
    def journey_rows(self) -> int:
        return len(self.journeys["time"])


def table_names(config: dict | None, contexts: list[str]) -> tuple[dict, dict]:
    """Column names for each role, from funnelcheck.yaml `observations` or the defaults."""
    obs = (config or {}).get("observations") or {}
    j = {**DEFAULT_MODEL["journeys"], **(obs.get("journeys") or {})}
    v = {**DEFAULT_MODEL["visits"], **(obs.get("visits") or {})}
    j["contexts"] = {**{c: c for c in contexts}, **(j.get("contexts") or {})}
    v["session"] = v.get("session") or j["session"]
    return j, v


def simulate(registry: Registry, graph_id: str, users: int, seed: int = 0, drift_slots=(),
             start: datetime | None = None, days: int = 28) -> SimulatedTables:
    """Draw `users` sessions from the graph; see the module docstring."""
    from funnelcheck.engine.statespace import build_state_graph, context_classes

    graph = registry.graphs.get(graph_id)
    if graph is None:
        raise UsageError(f"unknown graph '{graph_id}' (known: {', '.join(sorted(registry.graphs)) or 'none'})")
    if users <= 0 or days <= 0:
        raise UsageError("--users and --days must be positive")
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 1, 1)
    resolver = Resolver(registry, graph, overrides=[d.slot for d in drift_slots])
    sg = build_state_graph(registry, graph)
    edges = [e.id for e in graph.edges]
    nodes = [n.id for n in graph.nodes]
    edge_ix, node_ix = {e: i for i, e in enumerate(edges)}, {n: i for i, n in enumerate(nodes)}
    extra = [(k, v) for d in drift_slots for k, v in d.slot.context_filter]
    classes = context_classes(registry, graph, extra)
    # Every context is drawn from its shares; resolution only sees the keys the graph's parameters use.
    drawn = {}
    for ctx in registry.contexts:
        shares = ctx.shares()
        p = np.array([shares[v] for v in ctx.value_ids()], dtype=float)
        drawn[ctx.id] = (rng.choice(len(p), size=users, p=p / p.sum()).astype(np.int32), list(ctx.value_ids()))
    seg_of_user = np.zeros(users, dtype=np.int64)
    radix = 1
    for key, cls in classes.items():
        codes, labels = drawn[key]
        class_of_value = np.array([next(i for i, c in enumerate(cls) if v in c.members) for v in labels])
        seg_of_user += radix * class_of_value[codes]
        radix *= len(cls)
    seg_contexts = _mixed_radix_contexts(classes)
    n_states = len(sg.states)
    outs: list[list] = [[] for _ in range(n_states)]
    for t in sg.transitions:
        outs[t.source].append(t)
    width = max(1, max(len(o) for o in outs))
    probs = np.zeros((len(seg_contexts), n_states, width))
    target = np.zeros((n_states, width), dtype=np.int64)
    edge_code = np.zeros((n_states, width), dtype=np.int32)
    n_out = np.array([len(o) for o in outs], dtype=np.int64)
    projections = {}
    for s, transitions in enumerate(outs):
        visited = sg.states[s].query_visited()
        for j, t in enumerate(transitions):
            target[s, j] = t.target
            edge_code[s, j] = edge_ix[t.edge.id]
            if t.edge.id not in projections:
                projections[t.edge.id] = _project(seg_contexts, resolver.used_keys.get(t.edge.id, ()))
            distinct, inverse = projections[t.edge.id]
            values = []
            for context in distinct:  # resolve once per context the edge can tell apart, not per segment
                slot = resolver.winner(t.edge.id, visited, context)
                if slot is None:
                    raise UsageError(f"edge '{t.edge.id}' has no parameter for {context or 'all traffic'}")
                values.append(slot.estimate.mean)
            probs[:, s, j] = np.asarray(values)[inverse]
    cum = np.cumsum(probs, axis=2)
    cum[:, np.arange(width)[None, :] >= n_out[:, None]] = 2.0  # past the last edge: never chosen
    node_of_state = np.array([node_ix[s.node] for s in sg.states], dtype=np.int32)
    entry_states = np.array(list(sg.entries))
    entry_p = np.array([sg.entries[i] for i in entry_states])
    state = entry_states[rng.choice(len(entry_states), size=users, p=entry_p / entry_p.sum())]
    span = days * 86400
    time = np.datetime64(start, "us") + (rng.random(users) * span * 1e6).astype("timedelta64[us]")
    who = np.arange(users, dtype=np.int64)
    j_parts: dict[str, list] = {"user": [], "edge": [], "converted": [], "time": []}
    v_parts: dict[str, list] = {"user": [], "node": [], "time": []}
    for _ in range(MAX_STEPS):
        if not len(who):
            break
        v_parts["user"].append(who)
        v_parts["node"].append(node_of_state[state])
        v_parts["time"].append(time)
        m = n_out[state]
        u = rng.random(len(who))
        chosen = (u[:, None] >= cum[seg_of_user[who], state]).sum(axis=1)
        rows = np.repeat(np.arange(len(who)), m)
        slot = np.arange(len(rows)) - np.repeat(np.cumsum(m) - m, m)
        j_parts["user"].append(who[rows])
        j_parts["edge"].append(edge_code[state[rows], slot])
        j_parts["converted"].append((slot == chosen[rows]).astype(np.int8))
        j_parts["time"].append(time[rows])
        moving = chosen < m
        who, state = who[moving], target[state[moving], chosen[moving]]
        gaps = (1 + rng.exponential(90.0, size=len(who))) * 1e6
        time = time[moving] + gaps.astype("timedelta64[us]")
    journeys = {k: np.concatenate(v) if v else np.array([]) for k, v in j_parts.items()}
    visits = {k: np.concatenate(v) if v else np.array([]) for k, v in v_parts.items()}
    journeys["edge_labels"], visits["node_labels"] = edges, nodes
    journeys["contexts"] = {key: (codes[journeys["user"]], labels) for key, (codes, labels) in drawn.items()}
    jn, vn = table_names(registry.config.data if registry.config else None, list(drawn))
    return SimulatedTables(journeys, visits, jn, vn, users)


def _project(contexts: list[dict], keys) -> tuple[list[dict], np.ndarray]:
    """The distinct contexts seen through `keys`, and for each segment the index of its projection."""
    index: dict[tuple, int] = {}
    inverse = np.array([index.setdefault(tuple(sorted((k, v) for k, v in c.items() if k in keys)), len(index))
                        for c in contexts])
    return [dict(key) for key in index], inverse


def _mixed_radix_contexts(classes: dict) -> list[dict]:
    """Segment contexts in the order seg = Σ radix_i · class_i (the first key varies fastest)."""
    out = [{}]
    for key, cls in classes.items():
        out = [{**ctx, key: c.value} for c in cls for ctx in out]
    return out


def parse_start(text: str | None) -> datetime | None:
    """`--start YYYY-MM-DD` (UTC midnight)."""
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise UsageError(f"--start {text!r}: expected a date YYYY-MM-DD") from None


def default_start(days: int, today: datetime | None = None) -> datetime:
    """Without --start the data ends at today's UTC midnight."""
    today = today or datetime.now(timezone.utc)
    return datetime(today.year, today.month, today.day) - timedelta(days=days)


def write_tables(tables: SimulatedTables, out) -> list[str]:
    """Write both tables to a DuckDB file (`*.duckdb`, tables replaced) or a folder of Parquet
    files (`<table>.parquet`, each replaced atomically). Returns what was written."""
    import os
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from funnelcheck.pipeline import PipelineError

    out = Path(out)
    jn, vn = tables.journey_names, tables.visit_names
    j, v = tables.journeys, tables.visits
    j_cols = {**_session_columns(jn["session"], j["user"]),
              jn["edge"]: _labels(j["edge"], j["edge_labels"]),
              jn["converted"]: pa.array(j["converted"], pa.int8()),
              jn["time"]: pa.array(j["time"], pa.timestamp("us"))}
    for key, (codes, labels) in j["contexts"].items():
        if key in jn["contexts"]:
            j_cols[jn["contexts"][key]] = _labels(codes, labels)
    v_cols = {**_session_columns(vn["session"], v["user"]),
              vn["node"]: _labels(v["node"], v["node_labels"]),
              vn["time"]: pa.array(v["time"], pa.timestamp("us"))}
    arrow = {jn["table"]: pa.table(j_cols), vn["table"]: pa.table(v_cols)}
    if out.suffix == ".duckdb":
        import duckdb

        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(out))
        except duckdb.Error as exc:
            raise PipelineError(f"{out}: cannot open for writing: {str(exc).splitlines()[0]}") from None
        try:
            for name, table in arrow.items():
                schema, _, _ = name.rpartition(".")
                if schema:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                con.register("simulated", table)
                con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM simulated")
                con.unregister("simulated")
        finally:
            con.close()
        return [f"{out} ({name})" for name in arrow]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in arrow.items():
        path = out / f"{name}.parquet"
        tmp = out / f".{name}.parquet.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        written.append(str(path))
    return written


def _labels(codes, labels):
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(labels, pa.string())).dictionary_decode()


def _session_columns(names, user) -> dict:
    """The first session column is the user id (1-based); any further ones are the session number 1."""
    import pyarrow as pa

    cols = {}
    for i, name in enumerate(names):
        cols[name] = pa.array(user + 1 if i == 0 else np.ones(len(user), dtype=np.int64), pa.int64())
    return cols
