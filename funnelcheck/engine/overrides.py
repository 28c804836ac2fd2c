"""What-if overrides (docs/statistics.md): `--set "<reference>=<value>"`.

An override acts as a parameter with exactly the reference's edge and filters: it replaces
any parameter (or the inline base) with those filters and otherwise competes in the fallback
hierarchy like one. The field it does not set is copied from what the reference resolved to
before, so `--set "e.signup.context(channel='direct').p.mean=0.5"` changes direct traffic
only, with the spread that direct traffic had, even when direct had fallen back to the base.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from funnelcheck.engine.montecarlo import InfeasibleEstimate, beta_shape
from funnelcheck.findings import UsageError
from funnelcheck.model import Estimate, Graph
from funnelcheck.reference import Reference, ReferenceError, format_reference, parse_reference
from funnelcheck.resolve import Resolver, Slot, Unresolvable

OVERRIDE = "override"


@dataclass(frozen=True)
class Override:
    reference: Reference  # edge, filters and the field (mean or stdev) it sets
    value: float
    text: str = ""  # as the user wrote it

    def __str__(self) -> str:
        return self.text or f"{format_reference(self.reference)}={self.value:g}"


def parse_override(text: str) -> Override:
    """`<reference>=<value>`, split at the last '='; the value must lie in [0, 1]."""
    ref_text, sep, value_text = text.rpartition("=")
    if not sep or not ref_text.strip():
        raise UsageError(f"--set {text!r}: expected <reference>=<value>, e.g. e.signup.p.mean=0.3")
    try:
        ref = parse_reference(ref_text)
    except ReferenceError as exc:
        raise UsageError(f"--set {text!r}: {exc}") from None
    try:
        value = float(value_text)
    except ValueError:
        raise UsageError(f"--set {text!r}: {value_text.strip()!r} is not a number") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise UsageError(f"--set {text!r}: {ref.field} {value_text.strip()} is outside [0, 1]")
    return Override(ref, value, text)


@dataclass(frozen=True)
class OverrideSlot:
    """An override turned into a resolution slot (`slot.replaces`: what it took the place of)."""

    slot: Slot
    overrides: tuple[Override, ...]
    before: Estimate  # what the reference resolved to without overrides


def override_slots(resolver: Resolver, graph: Graph, overrides: Sequence[Override]) -> list[OverrideSlot]:
    """Check overrides against the graph and build their slots (one per edge and filter set), resolving
    what each stood for before with `resolver`, the graph's resolver without overrides."""
    if not overrides:
        return []
    contexts = {c.id: c for c in resolver.registry.contexts}
    nodes = {n.id for n in graph.nodes}
    grouped: dict[tuple, list[Override]] = {}
    for o in overrides:
        ref = o.reference
        edge = graph.edge(ref.edge)
        if edge is None:
            raise UsageError(f"--set {o}: graph '{graph.id}' has no edge '{ref.edge}'")
        for node in ref.visited:
            if node not in nodes:
                raise UsageError(f"--set {o}: graph '{graph.id}' has no node '{node}'")
        for key, value in ref.context:
            if key not in contexts:
                raise UsageError(f"--set {o}: unknown context '{key}'")
            if value not in contexts[key].value_ids():
                raise UsageError(f"--set {o}: unknown value '{value}' of context '{key}'")
        grouped.setdefault((ref.edge, ref.visited, ref.context), []).append(o)
    out = []
    for (edge_id, visited, context), group in grouped.items():
        fields = [o.reference.field for o in group]
        if len(set(fields)) < len(fields):
            raise UsageError(f"--set {group[-1]}: {group[-1].reference.field} of this reference is set twice")
        query = replace(group[0].reference, field="mean")
        try:
            before = resolver.resolve(query, {graph.edge(edge_id).source}).winner.estimate
        except Unresolvable as exc:
            if set(fields) != {"mean", "stdev"}:
                raise UsageError(f"--set {group[0]}: {exc}; set both p.mean and p.stdev") from None
            before = Estimate(0.0, 0.0)
        values = {"mean": before.mean, "stdev": before.stdev}
        values.update({o.reference.field: o.value for o in group})
        estimate = Estimate(values["mean"], values["stdev"])
        try:
            beta_shape(estimate)
        except InfeasibleEstimate as exc:
            raise UsageError(f"--set {', '.join(map(str, group))}: {exc}") from None
        replaced = resolver.same_filters(edge_id, context, frozenset(visited))
        replaces = replaced[0] if replaced else None
        slot = Slot(replaces.id if replaces else None, edge_id, context, frozenset(visited), estimate, None, OVERRIDE,
                    replaces)
        out.append(OverrideSlot(slot, tuple(group), before))
    return out
