"""Traffic mixes (docs/statistics.md): `--select`, `--mix`, and the segments they weight.

A segment is a full assignment of a value class to every context key the graph's
parameters use (values no parameter names share one class, OTHER = '*'). Its weight is the
product of its classes' shares — contexts are taken as independent — where a class's share
is the sum of its values' shares after `--mix` and `--select`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from funnelcheck.findings import UsageError
from funnelcheck.model import Registry
from funnelcheck.engine.statespace import OTHER, ContextClass


@dataclass
class Mix:
    """What the user asked for: values kept per context key, and explicit shares per key."""

    select: dict[str, list[str]] = field(default_factory=dict)
    shares: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_options(cls, selects: Iterable[str] = (), mixes: Iterable[str] = ()) -> "Mix":
        """Merge repeated `--select` and `--mix` options; a key given twice keeps both lists."""
        mix = cls()
        for text in selects:
            for key, values in parse_select(text).items():
                kept = mix.select.setdefault(key, [])
                kept.extend(v for v in values if v not in kept)
        for text in mixes:
            for key, weights in parse_mix(text).items():
                known = mix.shares.setdefault(key, {})
                for value, w in weights.items():
                    if value in known:
                        raise UsageError(f"--mix gives a weight to {key}={value} twice")
                    known[value] = w
        return mix


def label(c: ContextClass) -> str:
    """How a class is shown: its value id; OTHER ('*') for several values no parameter names
    (a single such value is shown by its own id: it is the whole class)."""
    return c.members[0] if c.value == OTHER and len(c.members) == 1 else c.value


@dataclass(frozen=True)
class Segment:
    classes: tuple[ContextClass, ...]
    weight: float

    @property
    def context(self) -> dict[str, str]:
        """Key → value id, or OTHER for a class of several values that no parameter names."""
        return {c.key: label(c) for c in self.classes}

    @property
    def members(self) -> dict[str, list[str]]:
        """For OTHER classes only: the values they stand for."""
        return {c.key: list(c.members) for c in self.classes if label(c) == OTHER}


def _split(text: str, what: str, example: str) -> tuple[str, list[str]]:
    key, sep, rest = text.partition("=")
    key, items = key.strip(), [i.strip() for i in rest.split(",")]
    if not sep or not key or not all(items):
        raise UsageError(f"{what} {text!r}: expected {example}")
    return key, items


def parse_select(text: str) -> dict[str, list[str]]:
    """`channel=google,facebook` → {'channel': ['google', 'facebook']}."""
    key, values = _split(text, "--select", "KEY=VALUE[,VALUE...], e.g. channel=google,facebook")
    return {key: list(dict.fromkeys(values))}


def parse_mix(text: str) -> dict[str, dict[str, float]]:
    """`channel=google:0.6,direct:0.4` → {'channel': {'google': 0.6, 'direct': 0.4}}."""
    example = "KEY=VALUE:WEIGHT[,VALUE:WEIGHT...], e.g. channel=google:0.6,direct:0.4"
    key, items = _split(text, "--mix", example)
    weights: dict[str, float] = {}
    for item in items:
        value, sep, number = item.rpartition(":")
        try:
            w = float(number)
        except ValueError:
            w = math.nan
        if not sep or not value or math.isnan(w):
            raise UsageError(f"--mix {text!r}: expected {example}")
        if w < 0 or math.isinf(w):
            raise UsageError(f"--mix {text!r}: weight {number} of {value} must be a finite number >= 0")
        if value in weights:
            raise UsageError(f"--mix {text!r}: {value} is given twice")
        weights[value] = w
    if sum(weights.values()) <= 0:
        raise UsageError(f"--mix {text!r}: the weights are all zero")
    return {key: weights}


def value_shares(registry: Registry, mix: Mix | None) -> dict[str, dict[str, float]]:
    """Every context's value shares after the mix: defaults, then `--mix`, then `--select`.

    `--mix` sets the listed values' shares (normalised; unlisted values get 0); `--select`
    keeps the listed values and renormalises. Raises UsageError for an unknown context or
    value and for a key left with no traffic.
    """
    mix = mix or Mix()
    known = {c.id: c for c in registry.contexts}
    for option, per_key in (("--select", mix.select), ("--mix", mix.shares)):
        for key, values in per_key.items():
            ctx = known.get(key)
            if ctx is None:
                raise UsageError(f"{option} {key}=...: unknown context '{key}' (contexts: {', '.join(known) or 'none'})")
            for v in values:
                if v not in ctx.value_ids():
                    raise UsageError(f"{option} {key}={v}: unknown value '{v}' of context '{key}' "
                                     f"(values: {', '.join(ctx.value_ids())})")
    out = {}
    for ctx in registry.contexts:
        shares = ctx.shares()
        if ctx.id in mix.shares:
            given = mix.shares[ctx.id]
            if any(w < 0 for w in given.values()) or sum(given.values()) <= 0:
                raise UsageError(f"--mix {ctx.id}=...: weights must be >= 0 and not all zero")
            shares = {v: float(given.get(v, 0.0)) for v in ctx.value_ids()}
        if ctx.id in mix.select:
            kept = set(mix.select[ctx.id])
            shares = {v: (s if v in kept else 0.0) for v, s in shares.items()}
        total = sum(shares.values())
        if total <= 0:
            raise UsageError(f"context '{ctx.id}' has no traffic left after --select/--mix "
                             f"(the kept values all have share 0)")
        out[ctx.id] = {v: s / total for v, s in shares.items()}
    return out


def weigh(segments: list[tuple[ContextClass, ...]], shares: dict[str, dict[str, float]]) -> list[Segment]:
    """Each segment with its weight: the product of its classes' shares."""
    out = []
    for classes in segments:
        w = 1.0
        for c in classes:
            w *= sum(shares[c.key][v] for v in c.members)
        out.append(Segment(classes, w))
    return out
