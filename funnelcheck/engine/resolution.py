"""Resolution for a whole run: which slot supplies each transition in each segment, and the
keys each slot draws and is reported under (docs/statistics.md)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import product

import numpy as np

from funnelcheck.engine.mix import Segment
from funnelcheck.engine.montecarlo import InfeasibleEstimate, beta_shape
from funnelcheck.engine.overrides import OVERRIDE, OverrideSlot
from funnelcheck.engine.statespace import OTHER, ContextClass, StateGraph
from funnelcheck.findings import FunnelcheckError, UsageError
from funnelcheck.model import Graph
from funnelcheck.reference import Reference, format_reference
from funnelcheck.resolve import INLINE, Resolver, Slot


@dataclass
class ResolutionTable:
    """slot[t, s]: the index (into `slots`) of the winner for transition t in segment s."""

    slots: list[Slot]
    index: np.ndarray  # (transitions, segments) int; -1 where nothing resolves

    @classmethod
    def build(cls, resolver: Resolver, sg: StateGraph, classes: dict[str, list[ContextClass]],
              segs: list[Segment]) -> "ResolutionTable":
        """Resolve each distinct (edge, visited projection) once per combination of the context
        classes its edge's parameters look at, then spread the winners over the segments."""
        keys = list(classes)
        codes = np.array([[classes[k].index(c) for k, c in zip(keys, s.classes)] for s in segs],
                         dtype=np.intp).reshape(len(segs), len(keys))
        slot_ids: dict[int, int] = {}  # id() of the resolver's own Slot objects -> index
        slots: list[Slot] = []
        # Per tuple of axes (the keys an edge's parameters look at): every combination of their classes
        # as a context, and each segment's combination.
        contexts: dict[tuple[int, ...], list[dict[str, str]]] = {}
        combination: dict[tuple[int, ...], np.ndarray] = {}

        def slot_index(slot: Slot | None) -> int:
            if slot is None:
                return -1
            if id(slot) not in slot_ids:
                slot_ids[id(slot)] = len(slots)
                slots.append(slot)
            return slot_ids[id(slot)]

        # Transitions resolve alike when they share the edge and the visited nodes its parameters name.
        alike: dict[tuple[str, frozenset[str]], int] = {}
        memo = np.empty(len(sg.transitions), dtype=np.intp)
        for t, tr in enumerate(sg.transitions):
            edge = tr.edge.id
            key = (edge, sg.states[tr.source].query_visited() & resolver.used_nodes.get(edge, frozenset()))
            memo[t] = alike.setdefault(key, len(alike))
        rows = np.empty((len(alike), len(segs)), dtype=np.int32)
        for m, (edge, visited) in enumerate(alike):
            used = resolver.used_keys.get(edge, set())
            axes = tuple(i for i, k in enumerate(keys) if k in used)
            if not axes:
                rows[m] = slot_index(resolver.winner(edge, visited, {}))
                continue
            if axes not in contexts:
                contexts[axes] = [{keys[i]: c.value for i, c in zip(axes, combo)}
                                  for combo in product(*(classes[keys[i]] for i in axes))]
                combination[axes] = np.ravel_multi_index(tuple(codes[:, axes].T), [len(classes[keys[i]]) for i in axes])
            winners = np.array([slot_index(resolver.winner(edge, visited, ctx)) for ctx in contexts[axes]], dtype=np.int32)
            rows[m] = winners[combination[axes]]
        index = rows[memo]
        return cls(slots, index)

    def used(self) -> np.ndarray:
        """Indices of the slots that some transition uses in some segment (a selection may leave
        some of those resolved unused)."""
        return slots_in(self.index, len(self.slots))

    def check_complete(self, graph: Graph, sg: StateGraph, segs: list[Segment]) -> None:
        """Refuse a transition that resolves to nothing in some segment (an edge with no base)."""
        missing = np.argwhere(self.index < 0)
        if len(missing):
            t, s = missing[0]
            tr = sg.transitions[t]
            raise FunnelcheckError(
                f"edge '{tr.edge.id}' ({tr.edge.source} → {tr.edge.target}) of graph '{graph.id}' has no base "
                f"and no parameter matches {query_text(sg.states[tr.source].query_visited(), segs[s])}: "
                f"run funnelcheck validate")

    def means(self) -> np.ndarray:
        """Each slot's mean, in slot order."""
        return np.array([s.estimate.mean for s in self.slots], dtype=float)


def slots_in(index: np.ndarray, count: int) -> np.ndarray:
    """The distinct slots (0 .. count - 1) in rows of a resolution table, ascending. A few rows at a
    time: at 15,625 segments np.unique would sort a copy of the whole table (and import numpy.ma),
    np.bincount make a 64-bit one."""
    seen = np.zeros(count, dtype=bool)
    rows = max(1, 2**20 // max(1, index.shape[1]))
    for a in range(0, len(index), rows):
        seen[index[a:a + rows]] = True
    return np.flatnonzero(seen)


def query_text(visited: frozenset[str], seg: Segment) -> str:
    parts = [f"visited {{{', '.join(sorted(visited))}}}"]
    members = seg.members
    parts += [f"{k} in {{{', '.join(members[k])}}}" if v == OTHER else f"{k}={v}" for k, v in seg.context.items()]
    return ", ".join(parts)


@dataclass(frozen=True)
class SlotKeys:
    slot: Slot
    used: str  # its name in `parameters_used`

    @cached_property
    def stream(self) -> str:
        """What seeds the slot's random stream: its edge and canonical filters (`slot_key`). Made on
        first use: only the Monte Carlo run needs it."""
        return slot_key(self.slot)


def slot_key(slot: Slot) -> str:
    """A slot's stream key: the canonical reference of its edge and filters, without the field
    (`e.signup.visited(pricing).context(channel='google')`). Not the file's id, so a renamed
    parameter, an inline base moved into a file and an override of it all keep their draws."""
    ref = format_reference(Reference.make(slot.edge, slot.visited_filter, dict(slot.context_filter)))
    return ref[: -len(".p.mean")]


def slot_keys(slot: Slot) -> SlotKeys:
    """Stream key (`slot_key`) and report name: the parameter id; `inline:<edge>` for an inline
    base; an override is reported under the name of what it replaced, else `override:<slot>`."""
    if slot.kind == OVERRIDE:
        if slot.replaces is not None:
            return SlotKeys(slot, slot_keys(slot.replaces).used)
        return SlotKeys(slot, "override:" + slot_key(slot))
    if slot.kind == INLINE:
        return SlotKeys(slot, f"inline:{slot.edge}")
    return SlotKeys(slot, slot.id)


def check_overrides_used(applied: list[OverrideSlot], table: ResolutionTable) -> None:
    if not applied:
        return
    used = {table.slots[i] for i in table.used()}
    for a in applied:
        if a.slot not in used:
            raise UsageError(
                f"--set {a.overrides[0]}: the graph never uses this reference in the selected mix "
                f"(a more specific parameter wins wherever its filters hold, or they never hold)")


def check_feasible(slots: list[Slot], keys: list[SlotKeys]) -> None:
    for s, key in zip(slots, keys):
        try:
            beta_shape(s.estimate)
        except InfeasibleEstimate as exc:
            where = f"{s.file}: " if s.file else ""
            raise FunnelcheckError(f"{where}{key.used}: {exc}: run funnelcheck validate") from None
