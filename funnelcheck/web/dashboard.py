"""Assemble what the dashboard shows (docs/dashboard.md): a typed `Dashboard`, computed, never rendered here.

Per graph a `GraphPanel` holds the engine's segments under the default mix — each with its
weight-free figures (conversion, node visits, edge flows at the means, and its Monte Carlo
draws) — so the page can re-weight them for any ticked selection exactly as
`whatif --select` does. The Red/Amber/Green `Board` comes from the latest monitor run in the
persistence database, the `ParameterHistory` list from Git.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from funnelcheck.engine.mix import Mix
from funnelcheck.engine.overrides import Override
from funnelcheck.engine.result import WhatIfResult
from funnelcheck.engine.run import run_whatif
from funnelcheck.findings import FunnelcheckError, UsageError
from funnelcheck.load.registry import Project
from funnelcheck.model import Graph, Registry
from funnelcheck.reference import Reference, format_reference
from funnelcheck.web.layout import back_edges, layout

STATUSES = ("red", "amber", "error", "insufficient", "green")  # worst first: an edge shows its worst


@dataclass(frozen=True)
class ContextChoice:
    """One fieldset of checkboxes: a context's values with their default shares."""

    id: str
    name: str
    values: tuple[tuple[str, str, float], ...]  # (value id, label, default share)
    used: bool  # some parameter of the graph depends on it


@dataclass(frozen=True)
class OverrideInput:
    """A `p.mean` the page may override in `serve`: the reference of a parameter in use."""

    reference: str  # canonical, ending in .p.mean
    parameter: str  # its id, or inline:<edge>
    mean: float
    stdev: float


class DiagramNode(NamedTuple):
    """A node of the funnel diagram and its place (see `web.layout`)."""

    id: str
    name: str
    outcome: str | None
    entry: bool
    column: int
    row: int


class DiagramEdge(NamedTuple):
    """An edge of the funnel diagram: `back` when it closes a cycle, `status` the worst of its parameters."""

    id: str
    source: str
    target: str
    back: bool
    status: str | None
    parameters: tuple[str, ...]


@dataclass
class GraphPanel:
    """Everything the what-if panel of one graph needs to re-weight in the browser."""

    id: str
    name: str
    description: str
    contexts: list[ContextChoice]
    nodes: list[DiagramNode]  # in the graph file's order, as the engine's per-segment visits
    edges: list[DiagramEdge]  # in the graph file's order, as the engine's per-segment flows
    result: WhatIfResult | None  # under the default mix (all values ticked); None when the engine refused
    overrides: list[OverrideInput] = field(default_factory=list)
    error: str | None = None  # why this graph cannot be computed (the other graphs still are)


@dataclass(frozen=True)
class BoardRow:
    """One parameter of the latest monitor run."""

    param_id: str
    reference: str
    expected: float | None
    observed: float | None
    n: int | None
    k: int | None
    z: float | None
    status: str
    message: str
    window: str
    z_history: tuple[float | None, ...]  # oldest first, the last 30 runs


@dataclass
class Board:
    """The Red/Amber/Green board, or why there is none (`note`)."""

    run_date: str | None = None
    rows: list[BoardRow] = field(default_factory=list)
    note: str | None = None

    def edge_status(self, registry: Registry) -> dict[str, str]:
        """Edge id → the worst status among its parameters in this run."""
        worst: dict[str, str] = {}
        for row in self.rows:
            param = registry.parameters.get(row.param_id)
            if param is None or row.status not in STATUSES:
                continue
            have = worst.get(param.edge)
            if have is None or STATUSES.index(row.status) < STATUSES.index(have):
                worst[param.edge] = row.status
        return worst


@dataclass(frozen=True)
class HistoryPoint:
    """One commit that changed a parameter, with the value it left."""

    commit: str
    date: str
    author: str
    message: str
    mean: float | None
    stdev: float | None


@dataclass(frozen=True)
class ParameterHistory:
    """A parameter's committed values (empty when it was never committed)."""

    param_id: str
    points: tuple[HistoryPoint, ...]  # oldest first


@dataclass
class Dashboard:
    """The whole page's data."""

    title: str
    generated: str  # ISO 8601, UTC
    graphs: list[GraphPanel]
    board: Board
    history: list[ParameterHistory] | None  # None outside a Git repository
    samples: int
    seed: int
    descriptions: dict[str, str] = field(default_factory=dict)  # parameter id -> its description


def graph_panel(registry: Registry, graph_id: str, board: Board, overrides: Sequence[Override] = (),
                samples: int = 2000, seed: int = 0) -> GraphPanel:
    """Run the engine for one graph under the default mix (every value ticked) and lay it out."""
    result = run_whatif(registry, graph_id, Mix(), overrides, samples, seed)
    graph = registry.graphs[graph_id]
    used_keys = {k for s in result.segments for k in s.context}
    contexts = [ContextChoice(c.id, c.name or c.id, tuple((v.id, v.label or v.id, share)
                                                          for v, share in zip(c.values, c.shares().values())),
                              c.id in used_keys)
                for c in registry.contexts]
    return GraphPanel(graph_id, graph.name or graph_id, _description(graph), contexts,
                      _nodes(graph), _edges(registry, graph, board), result, override_inputs(registry, result))


def _description(graph: Graph) -> str:
    data = graph.where.doc.data
    text = data.get("description") if isinstance(data, dict) else None
    return text if isinstance(text, str) else ""


def _nodes(graph: Graph) -> list[DiagramNode]:
    where = layout(graph)
    return [DiagramNode(n.id, n.name or n.id, n.outcome, bool(n.entry_weight), where[n.id].column, where[n.id].row)
            for n in graph.nodes]


def _edges(registry: Registry, graph: Graph, board: Board) -> list[DiagramEdge]:
    back = back_edges(graph)
    status = board.edge_status(registry)
    by_edge = registry.parameters_by_edge()
    return [DiagramEdge(e.id, e.source, e.target, e.id in back, status.get(e.id),
                        tuple(p.id for p in by_edge.get(e.id, ())))
            for e in graph.edges]


def override_inputs(registry: Registry, result: WhatIfResult) -> list[OverrideInput]:
    """The `p.mean` reference of every parameter (or inline base) the run used, sorted by reference."""
    out = []
    for used, estimate in result.parameters_used.items():
        param = registry.parameters.get(used)
        if param is not None:
            ref = Reference.make(param.edge, param.visited_filter, param.context)
        elif used.startswith("inline:"):
            ref = Reference.make(used[len("inline:"):])
        else:
            continue  # an override's own slot: its reference is already offered by what it replaced
        out.append(OverrideInput(format_reference(ref), used, estimate.mean, estimate.stdev))
    return sorted(out, key=lambda o: o.reference)


def board_from_rows(rows: Sequence[Mapping], histories: Mapping[str, Sequence[float | None]]) -> Board:
    """The board of one monitor run's rows (mappings with the monitor_results columns), worst first."""
    if not rows:
        return Board(note="No monitor run yet: the persistence database has no results (run funnelcheck monitor).")
    out = []
    for r in rows:
        window = " – ".join(str(w)[:10] for w in (r.get("window_start"), r.get("window_end")) if w is not None)
        out.append(BoardRow(str(r["param_id"]), r.get("reference") or "", _num(r.get("expected")), _num(r.get("rate")),
                            _int(r.get("n")), _int(r.get("k")), _num(r.get("z")), str(r["status"]),
                            r.get("message") or "", window,
                            tuple(_num(z) for z in histories.get(r["param_id"], ()))))
    out.sort(key=lambda b: (STATUSES.index(b.status) if b.status in STATUSES else len(STATUSES), b.param_id))
    return Board(str(rows[0]["run_date"])[:10], out)


def _int(value) -> int | None:
    return None if value is None else int(value)


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def history_points(rows: Sequence) -> tuple[HistoryPoint, ...]:
    """`git.history` rows (newest first) as chart points, oldest first."""
    out = []
    for r in reversed(rows):
        est = r.value.estimate if r.value else None
        out.append(HistoryPoint(r.commit, r.date, r.author, r.message, est.mean if est else None,
                                est.stdev if est else None))
    return tuple(out)


def now_utc() -> str:
    """The generation time shown on the page."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def assemble(project: Project, registry: Registry, database: str | None = None, samples: int = 2000, seed: int = 0,
             history_limit: int = 50, rev: str = "HEAD") -> Dashboard:
    """The whole page: every graph's panel, the board of the latest monitor run, and Git history.

    `database` is a URL given by the user (`--database`); without it the project's is used. A
    graph the engine refuses gets a panel with its error; the other graphs are still computed."""
    board = load_board(registry, project.base, database)
    graphs = []
    for gid in sorted(registry.graphs):
        try:
            graphs.append(graph_panel(registry, gid, board, samples=samples, seed=seed))
        except FunnelcheckError as exc:
            graph = registry.graphs[gid]
            graphs.append(GraphPanel(gid, graph.name or gid, _description(graph), [], [], [], None, error=str(exc)))
    descriptions = {p.id: p.description for p in registry.parameters.values() if p.description}
    return Dashboard("funnelcheck dashboard", now_utc(), graphs, board,
                     load_history(project, registry, history_limit, rev), samples, seed, descriptions)


def load_board(registry: Registry, base: Path, given: str | None = None) -> Board:
    """The board of the latest monitor run, or a note saying why there is none (never an error).

    The database is `given` (relative to the current folder), else `database:` of funnelcheck.yaml
    (relative to its folder), else the default. A database file that does not exist yet is not
    created: the board says that monitor has not run.
    """
    try:
        from funnelcheck.pipeline import PipelineError
        from funnelcheck.pipeline.connections import resolve_url
        from funnelcheck.pipeline.store import open_store, store_url
    except ImportError:
        return Board(note="The monitor board needs the data pipeline: pip install 'funnelcheck[pipeline]'.")
    url = given or store_url(registry.config.data if registry.config else None, base)
    base = Path.cwd() if given else base
    try:
        parsed, _ = resolve_url(url, base)
        if parsed.get_backend_name() in ("sqlite", "duckdb") and parsed.database not in (None, "", ":memory:") \
                and not Path(parsed.database).is_file():
            return Board(note="No monitor run yet: the persistence database does not exist (run funnelcheck monitor).")
        store = open_store(url, base)
        try:
            rows = store.latest_run()
            histories = {r["param_id"]: [z for _, z in store.z_history(r["param_id"], limit=30)] for r in rows}
        finally:
            store.close()
    except PipelineError as exc:
        return Board(note=f"The persistence database could not be read: {exc}")
    return board_from_rows(rows, histories)


def load_history(project: Project, registry: Registry, limit: int, rev: str = "HEAD") -> list[ParameterHistory] | None:
    """Each parameter's committed values up to `rev`, oldest first; None outside a Git repository
    (or before the first commit)."""
    from funnelcheck.git.history import history_cache, parameter_history
    from funnelcheck.git.walkindex import walk_index
    from funnelcheck.load.gitsource import Placement, open_repository, open_revision

    try:
        repo = open_repository(project)
        placement = Placement(repo, project)
        revision = open_revision(project, rev, repo, placement)
    except UsageError:
        return None
    cache = history_cache(project.base)
    out = []
    for pid in sorted(registry.parameters):
        # Each parameter's walk index, as `funnelcheck history` keeps it: a page made again reads
        # only the commits made since (docs/cli-git.md).
        index = walk_index(project.base, pid, placement, repo)
        found = parameter_history(repo, revision.commit, placement.registry_at, pid, limit, cache=cache, index=index)
        index.save()
        out.append(ParameterHistory(pid, history_points(found.rows)))
    cache.save()
    return out
