"""Observations (SPEC 8.2): aggregate counts (n trials, k successes) per parameter and window.

`type: sql` runs the user's query with bound `:window_start` / `:window_end`. `type: events`
is compiled from the observation model of funnelcheck.yaml and batched: one grouped query per
(connection, window), one pass over the journeys, with GROUP BY edge, the context columns and
the visited flags each edge's parameters look at (masked per edge, flags packed into integers);
the cells are then assigned to parameters in Python, by resolution (`evidence: resolved`, the
default) or by filter (`evidence: filter`, the seed's).
Only aggregates leave the database. Every value is bound; identifiers come from config only and
must match IDENTIFIER (refused otherwise, never quoted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from funnelcheck.model import Parameter, Registry
from funnelcheck.pipeline import PipelineError
from funnelcheck.pipeline.connections import Connections, one_line
from funnelcheck.pipeline.result import Observed
from funnelcheck.pipeline.stats import check_counts
from funnelcheck.resolve import Resolver, source_nodes

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
DURATION = re.compile(r"^(\d+)([smhd])$")
DEFAULT_WINDOW = "7d"
CONFIG = "funnelcheck.yaml"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC."""

    start: datetime
    end: datetime


@dataclass
class Evidence:
    """What the observation step found for one parameter: counts, or why there are none."""

    observed: Observed | None = None
    error: str | None = None


@dataclass(frozen=True)
class JourneyModel:
    """The observation model of funnelcheck.yaml `observations`, identifiers checked."""

    connection: str | None
    table: str
    edge: str
    converted: str
    time: str
    session: tuple[str, ...]
    contexts: dict[str, str]
    visits_table: str | None
    visits_node: str | None
    visits_time: str | None
    visits_session: tuple[str, ...]


def parse_duration(text: str, where: str | Callable[[], str]) -> timedelta:
    """`7d`, `12h`, `30m`, `45s` → timedelta; anything else is a PipelineError naming `where`
    (a callable is called only then: finding a file position can mean parsing the file again)."""
    m = DURATION.match(str(text))
    if not m or int(m.group(1)) == 0:
        where = where() if callable(where) else where
        raise PipelineError(f"{where}: malformed window '{text}' (expected a number and s, m, h or d, e.g. 7d)")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
    return timedelta(**{unit: int(m.group(1))})


def place(p: Parameter, *parts) -> str:
    """`file:line:col` of a field of a parameter file (its nearest existing node)."""
    f = p.where.at(*parts).finding("x", "")
    return f"{f.path}:{f.line}:{f.column}"


def observation_window(p: Parameter, as_of: datetime) -> Window:
    """The monitor's window: [as_of − window, as_of)."""
    source = p.observation_source or {}
    span = parse_duration(source.get("window", DEFAULT_WINDOW),
                          lambda: f"{place(p, 'observation_source', 'window')}: observation_source.window")
    return Window(as_of - span, as_of)


def identifier(value, where: str) -> str:
    """Refuse anything but a plain (optionally dotted) SQL identifier."""
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise PipelineError(f"{CONFIG}: {where}: '{value}' is not an identifier matching {IDENTIFIER.pattern} "
                            "(refused: identifiers are never quoted into SQL)")
    return value


def journey_model(config: dict | None) -> JourneyModel:
    """The checked observation model, or a PipelineError naming the field at fault."""
    obs = (config or {}).get("observations")
    if not isinstance(obs, dict) or not isinstance(obs.get("journeys"), dict):
        raise PipelineError(f"{CONFIG}: observations.journeys: not configured (needed by type: events)")
    j, v = obs["journeys"], obs.get("visits") or {}
    ids = {f"observations.journeys.{k}": identifier(j.get(k), f"observations.journeys.{k}")
           for k in ("table", "edge", "converted", "time")}
    session = tuple(identifier(c, "observations.journeys.session") for c in j.get("session") or ())
    contexts = {str(k): identifier(c, f"observations.journeys.contexts.{k}") for k, c in (j.get("contexts") or {}).items()}
    visits = {k: identifier(v[k], f"observations.visits.{k}") if k in v else None for k in ("table", "node", "time")}
    v_session = tuple(identifier(c, "observations.visits.session") for c in v.get("session") or session)
    if visits["table"] and len(v_session) != len(session):
        raise PipelineError(f"{CONFIG}: observations.visits.session: needs as many columns as journeys.session")
    return JourneyModel(obs.get("connection"), ids["observations.journeys.table"], ids["observations.journeys.edge"],
                        ids["observations.journeys.converted"], ids["observations.journeys.time"], session, contexts,
                        visits["table"], visits["node"], visits["time"], v_session)


# Visited flags of one batch are packed into integers of this many bits each (portable arithmetic,
# no bitwise operators; well inside every dialect's integer).
FLAG_BITS = 30


@dataclass
class _Batch:
    """The `events` parameters sharing a connection and a window: one grouped query, one scan.

    `edges` maps each edge to what its parameters look at: the context keys and visited nodes
    that can change which parameter a journey row counts for.
    """

    connection: str
    window: Window
    edges: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    params: list[Parameter] = field(default_factory=list)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(sorted(frozenset().union(*(keys for keys, _ in self.edges.values()))))

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(sorted(frozenset().union(*(nodes for _, nodes in self.edges.values()))))


def collect(registry: Registry, params: list[Parameter], windows: dict[str, Window], connections: Connections,
            progress: Progress | None = None) -> dict[str, Evidence]:
    """Evidence for each parameter over its window; a failing source marks that parameter only."""
    out: dict[str, Evidence] = {}
    config = registry.config.data if registry.config else {}
    events = [p for p in params if (p.observation_source or {}).get("type") == "events"]
    sqls = [p for p in params if (p.observation_source or {}).get("type") == "sql"]
    batches: dict[tuple, _Batch] = {}
    if events:
        try:
            model = journey_model(config)
        except PipelineError as exc:
            out.update({p.id: Evidence(error=str(exc)) for p in events})
            events = []
        by_edge = registry.parameters_by_edge()
        for p in events:
            connection = p.observation_source.get("connection") or model.connection
            if not connection:
                out[p.id] = Evidence(error=f"{place(p, 'observation_source')}: observation_source.connection: none "
                                           f"given and {CONFIG} observations.connection is not set")
                continue
            nodes = frozenset().union(*(q.visited_filter for q in by_edge[p.edge]))
            keys = frozenset(k for q in by_edge[p.edge] for k, _ in q.context_filter)
            missing = sorted(k for k in keys if k not in model.contexts)
            if missing:
                out[p.id] = Evidence(error=f"{CONFIG}: observations.journeys.contexts: no column for context "
                                           f"'{missing[0]}' (used by parameters of edge '{p.edge}')")
                continue
            if nodes and not model.visits_table:
                out[p.id] = Evidence(error=f"{CONFIG}: observations.visits: not configured (edge '{p.edge}' "
                                           "has visited filters)")
                continue
            batch = batches.setdefault((connection, windows[p.id]), _Batch(connection, windows[p.id]))
            batch.edges[p.edge] = (keys, nodes)
            batch.params.append(p)
    total = len(batches) + len(sqls)
    done = 0
    resolver = Resolver(registry) if batches else None
    for batch in batches.values():
        out.update(_run_batch(registry, resolver, model, batch, connections))
        done += 1
        if progress:
            progress(done, total)
    default = (config.get("observations") or {}).get("connection")
    for p in sqls:
        out[p.id] = _run_sql(p, windows[p.id], connections, default)
        done += 1
        if progress:
            progress(done, total)
    return out


def compile_batch(model: JourneyModel, batch: _Batch) -> tuple[str, dict]:
    """The grouped SQL of one batch and its bound values.

    One pass over the journeys of the window. The batch's edges are a joined derived table
    (a hash join stays fast with hundreds of edges; UNION ALL of bound SELECTs is portable);
    besides the edge id it carries, per context key and visited node that only some edges look
    at, a 0/1 column saying whether this edge does, so that a row's cell is split only by what
    its edge's parameters can tell apart. Visited flags come from each session's first event on
    each relevant node (a pre-aggregate joined on the session), `visited` meaning an event on
    the node at or before the journey's time, and are packed into integers of FLAG_BITS bits.
    """
    keys, nodes, edges = batch.keys, batch.nodes, sorted(batch.edges)
    some_keys = [i for i, k in enumerate(keys) if not all(k in batch.edges[e][0] for e in edges)]
    some_nodes = [i for i, n in enumerate(nodes) if not all(n in batch.edges[e][1] for e in edges)]
    binds: dict = {"window_start": _naive(batch.window.start), "window_end": _naive(batch.window.end)}
    wanted = []
    for i, edge in enumerate(edges):
        binds[f"edge_{i}"] = edge
        used_keys, used_nodes = batch.edges[edge]
        uses = [f", {int(keys[c] in used_keys)} AS uk_{c}" for c in some_keys]
        uses += [f", {int(nodes[c] in used_nodes)} AS un_{c}" for c in some_nodes]
        wanted.append(f"SELECT :edge_{i} AS edge_id{''.join(uses)}")
    exprs = [f"j.{model.edge}"]
    for i, k in enumerate(keys):
        column = f"j.{model.contexts[k]}"
        exprs.append(f"CASE WHEN w.uk_{i} = 1 THEN {column} END" if i in some_keys else column)
    join = ""
    if nodes:
        firsts = []
        for i, node in enumerate(nodes):
            binds[f"node_{i}"] = node
            firsts.append(f"MIN(CASE WHEN v.{model.visits_node} = :node_{i} THEN v.{model.visits_time} END) AS first_{i}")
        for chunk in range(0, len(nodes), FLAG_BITS):
            flags = [f"CASE WHEN {f'w.un_{i} = 1 AND ' if i in some_nodes else ''}fv.first_{i} <= j.{model.time} "
                     f"THEN {1 << (i - chunk)} ELSE 0 END" for i in range(chunk, min(chunk + FLAG_BITS, len(nodes)))]
            exprs.append(" + ".join(flags))
        v_session = ", ".join(f"v.{c}" for c in model.visits_session)
        node_list = ", ".join(f":node_{i}" for i in range(len(nodes)))
        on = " AND ".join(f"fv.s_{i} = j.{c}" for i, c in enumerate(model.session)) or "1 = 1"
        aliased = ", ".join(f"v.{c} AS s_{i}" for i, c in enumerate(model.visits_session))
        join = (f" LEFT JOIN (SELECT {aliased}, {', '.join(firsts)} FROM {model.visits_table} v"
                f" WHERE v.{model.visits_node} IN ({node_list}) AND v.{model.visits_time} < :window_end"
                f" GROUP BY {v_session}) fv ON {on}")
    select = ", ".join(f"{e} AS c_{i}" for i, e in enumerate(exprs))
    sql = (f"SELECT {select}, COUNT(*) AS trials, SUM(j.{model.converted}) AS successes"
           f" FROM {model.table} j JOIN ({' UNION ALL '.join(wanted)}) w ON w.edge_id = j.{model.edge}{join}"
           f" WHERE j.{model.time} >= :window_start AND j.{model.time} < :window_end"
           f" GROUP BY {', '.join(exprs)}")
    return sql, binds


def _run_batch(registry: Registry, resolver: Resolver, model: JourneyModel, batch: _Batch,
               connections: Connections) -> dict[str, Evidence]:
    sql, binds = compile_batch(model, batch)
    try:
        rows = connections.query(batch.connection, sql, binds).rows
    except PipelineError as exc:
        return {p.id: Evidence(error=str(exc)) for p in batch.params}
    except Exception as exc:  # unreachable, locked, a missing table or column: that batch only
        message = f"{CONFIG}: observations (connection '{batch.connection}'): {one_line(exc)}"
        return {p.id: Evidence(error=message) for p in batch.params}
    return assign(registry, resolver, batch.params, cells_of(rows, batch.keys, batch.nodes))


def cells_of(rows, keys: tuple[str, ...], nodes: tuple[str, ...]) -> list[tuple]:
    """The grouped rows as cells (edge, context, visited, n, k): NULL contexts left out, flags unpacked."""
    visited_of: dict[tuple, frozenset[str]] = {}
    cells = []
    for row in rows:
        packed = tuple(row[1 + len(keys):-2])
        visited = visited_of.get(packed)
        if visited is None:
            visited = visited_of[packed] = frozenset(
                node for i, node in enumerate(nodes) if int(packed[i // FLAG_BITS] or 0) >> (i % FLAG_BITS) & 1)
        context = {key: str(v) for key, v in zip(keys, row[1:1 + len(keys)]) if v is not None}
        cells.append((row[0], context, visited, int(row[-2] or 0), int(row[-1] or 0)))
    return cells


def assign(registry: Registry, resolver: Resolver, params: list[Parameter], cells) -> dict[str, Evidence]:
    """Sum the cells (edge, context, visited, n, k) into each parameter's evidence.

    `resolved`: a cell counts for the parameter it resolves to (the source node counts as
    visited, as in resolution). `filter`: a cell counts for every parameter whose filters it meets.
    """
    totals = {p.id: [0, 0] for p in params}
    by_resolution = {p.id for p in params if p.observation_source.get("evidence", "resolved") == "resolved"}
    filtered: dict[str, list[Parameter]] = {}
    for p in params:
        if p.id not in by_resolution:
            filtered.setdefault(p.edge, []).append(p)
    sources = {}
    for edge, context, visited, n, k in cells:
        if edge not in sources:
            sources[edge] = frozenset(source_nodes(registry, edge))
        winner = resolver.winner(edge, visited | sources[edge], context)
        if winner is not None and winner.id in by_resolution:
            totals[winner.id][0] += n
            totals[winner.id][1] += k
        for p in filtered.get(edge, ()):
            if p.visited_filter <= visited and all(context.get(a) == b for a, b in p.context_filter):
                totals[p.id][0] += n
                totals[p.id][1] += k
    return {pid: Evidence(Observed(n, k)) for pid, (n, k) in totals.items()}


def _run_sql(p: Parameter, window: Window, connections: Connections, default: str | None) -> Evidence:
    source = p.observation_source
    where = f"{place(p, 'observation_source', 'query')}: observation_source.query"
    connection = source.get("connection") or default
    if not connection:
        return Evidence(error=f"{place(p, 'observation_source')}: observation_source.connection: none given and "
                              f"{CONFIG} observations.connection is not set")
    if not source.get("query"):
        return Evidence(error=f"{where}: required for type sql")
    try:
        found = connections.query(connection, source["query"], {"window_start": _naive(window.start),
                                                                "window_end": _naive(window.end)}, max_rows=2)
        columns, rows = [c.lower() for c in found.columns], found.rows
    except PipelineError as exc:
        return Evidence(error=f"{place(p, 'observation_source', 'connection')}: {exc}")
    except Exception as exc:
        return Evidence(error=f"{where}: {one_line(exc)}")
    if "trials" not in columns or "successes" not in columns:
        return Evidence(error=f"{where}: the query must return columns trials and successes (got {', '.join(columns)})")
    if len(rows) != 1:
        return Evidence(error=f"{where}: the query must return exactly one row (got {len(rows) if rows else 0})")
    n, k = rows[0][columns.index("trials")], rows[0][columns.index("successes")]
    if (n in (0, None)) and k is None:
        return Evidence(Observed(0, 0))
    try:
        check_counts(n, k)
    except (ValueError, TypeError) as exc:
        return Evidence(error=f"{where}: {exc}")
    return Evidence(Observed(int(n), int(k)))


def _naive(value: datetime) -> datetime:
    """Bound as naive UTC: naive timestamps in the data are read as UTC (SPEC 8.2)."""
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
