"""Plain graph algorithms on nodes 0..n-1 for the chain solver: strongly connected components,
longest-path levels of a DAG, and a small feedback vertex set."""
from __future__ import annotations

from collections import deque

import numpy as np


def strong_components(n: int, src: list[int], tgt: list[int]) -> tuple[int, np.ndarray]:
    """(count, label of each node) of the strongly connected components (Tarjan, iterative)."""
    succ: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(src, tgt):
        succ[a].append(b)
    index, low, label = [-1] * n, [0] * n, [-1] * n
    stack: list[int] = []
    on_stack = [False] * n
    count = counter = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            v, i = work[-1]
            if i < len(succ[v]):
                work[-1] = (v, i + 1)
                w = succ[v][i]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    label[w] = count
                    if w == v:
                        break
                count += 1
    return count, np.array(label, dtype=np.intp)


def longest_path_levels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Longest-path depth of each node of a DAG with edges a[i] → b[i] (self-edges ignored)."""
    keep = a != b
    a, b = a[keep].tolist(), b[keep].tolist()
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for x, y in zip(a, b):
        succ[x].append(y)
        indeg[y] += 1
    depth = [0] * n
    queue = deque(i for i in range(n) if indeg[i] == 0)
    while queue:
        x = queue.popleft()
        for y in succ[x]:
            if depth[x] + 1 > depth[y]:
                depth[y] = depth[x] + 1
            indeg[y] -= 1
            if indeg[y] == 0:
                queue.append(y)
    return np.array(depth, dtype=np.intp)


def feedback_set(m: int, edges: list[tuple[int, int]]) -> list[int]:
    """A small set of nodes that meets every cycle of a digraph on 0..m-1 (greedy, then pruned).

    Nodes with a self-loop are taken first; then, repeatedly, nodes that cannot lie on a
    cycle (no in- or no out-edge among the remaining nodes) are peeled off and the node with
    the largest in-degree × out-degree is taken. Finally every taken node that is not needed
    to keep the rest acyclic is given back.
    """
    succ = [set() for _ in range(m)]
    pred = [set() for _ in range(m)]
    loops = set()
    for x, y in edges:
        if x == y:
            loops.add(x)
        else:
            succ[x].add(y)
            pred[y].add(x)
    alive = set(range(m)) - loops
    chosen = sorted(loops)

    def remove(v: int) -> None:
        alive.discard(v)
        for w in succ[v]:
            pred[w].discard(v)
        for w in pred[v]:
            succ[w].discard(v)

    succ_all = [set(s) for s in succ]
    for v in loops:
        remove(v)
    while alive:
        peel = [v for v in alive if not succ[v] or not pred[v]]
        while peel:
            v = peel.pop()
            if v not in alive:
                continue
            neighbours = succ[v] | pred[v]
            remove(v)
            peel.extend(w for w in neighbours if w in alive and (not succ[w] or not pred[w]))
        if alive:
            v = max(alive, key=lambda u: (len(pred[u]) * len(succ[u]), -u))
            chosen.append(v)
            remove(v)
    for v in reversed([c for c in chosen if c not in loops]):
        trial = set(chosen) - {v}
        if _acyclic_without(m, succ_all, trial):
            chosen.remove(v)
    return sorted(chosen)


def _acyclic_without(m: int, succ: list[set[int]], removed: set[int]) -> bool:
    indeg = [0] * m
    for x in range(m):
        if x in removed:
            continue
        for y in succ[x]:
            if y not in removed:
                indeg[y] += 1
    queue = [x for x in range(m) if x not in removed and indeg[x] == 0]
    seen = 0
    while queue:
        x = queue.pop()
        seen += 1
        for y in succ[x]:
            if y not in removed:
                indeg[y] -= 1
                if indeg[y] == 0:
                    queue.append(y)
    return seen == m - len(removed)
