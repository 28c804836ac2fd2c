"""Where the funnel diagram puts its nodes: columns by depth from the entry nodes, rows by neighbours.

A layered drawing (Sugiyama-style, kept small): edges that close a cycle are set aside so the
rest is a DAG, a node's column is its longest distance from an entry node in that DAG, and
the nodes of a column are ordered by the mean row of their predecessors (two sweeps). Plain
Python: the page draws from these positions and never lays anything out itself.
"""
from __future__ import annotations

from typing import NamedTuple

from funnelcheck.model import Graph


class Position(NamedTuple):
    column: int
    row: int


def back_edges(graph: Graph) -> set[str]:
    """Edges that close a cycle in a depth-first walk from the entry nodes (in file order)."""
    out = graph.out_edges()
    state: dict[str, int] = {}  # 1 = on the walk's stack, 2 = done
    back: set[str] = set()
    starts = [n.id for n in graph.nodes if n.entry_weight] + [n.id for n in graph.nodes]
    for start in starts:
        if start in state:
            continue
        stack = [(start, iter(out.get(start, ())))]
        state[start] = 1
        while stack:
            node, edges = stack[-1]
            edge = next(edges, None)
            if edge is None:
                state[node] = 2
                stack.pop()
            elif state.get(edge.target) == 1:
                back.add(edge.id)
            elif edge.target not in state:
                state[edge.target] = 1
                stack.append((edge.target, iter(out.get(edge.target, ()))))
    return back


def layout(graph: Graph) -> dict[str, Position]:
    """A column and a row for every node; no two nodes share a position."""
    back = back_edges(graph)
    forward = [e for e in graph.edges if e.id not in back]
    column = {n.id: 0 for n in graph.nodes}
    for _ in range(len(graph.nodes)):  # longest path in a DAG: at most |nodes| relaxation rounds
        changed = False
        for e in forward:
            if column[e.target] < column[e.source] + 1:
                column[e.target] = column[e.source] + 1
                changed = True
        if not changed:
            break
    columns: dict[int, list[str]] = {}
    for n in graph.nodes:
        columns.setdefault(column[n.id], []).append(n.id)
    row = {nid: i for nodes in columns.values() for i, nid in enumerate(nodes)}
    preds: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for e in forward:
        preds[e.target].append(e.source)
    for _ in range(2):
        for c in sorted(columns)[1:]:
            def key(nid: str) -> tuple[float, int]:
                rows = [row[p] for p in preds[nid]]
                return (sum(rows) / len(rows) if rows else row[nid], row[nid])
            columns[c].sort(key=key)
            row.update({nid: i for i, nid in enumerate(columns[c])})
    return {nid: Position(column[nid], row[nid]) for nid in column}
