"""Synthetic registries for benchmarks: N parameter files over G graphs, deterministic by seed.

Realistic in shape: the four seed contexts; graphs of 10-14 nodes with two entries, forward
edges, a back edge or two (cycles), a success and a failure outcome; per edge a base (inline or
a filter-free parameter file) and parameters that refine it by one primary context key, then
pairs with a secondary key, then a visited node, then triples — the nested filters a team
grows over time.

    python -m bench.synth OUT_DIR [--parameters 5000] [--graphs 20] [--seed 1]
"""
from __future__ import annotations

import argparse
import random
from itertools import product
from pathlib import Path

CONTEXTS = {
    "channel": ["google", "facebook", "organic", "email", "direct"],
    "device": ["mobile", "desktop", "tablet"],
    "utm_source": ["adwords", "newsletter", "partner", "none"],
    "browser": ["chrome", "safari", "firefox", "edge"],
}


def contexts_yaml() -> str:
    out = ["# Context definitions (synthetic). Order = tie-break priority.", "contexts:"]
    for key, values in CONTEXTS.items():
        share = round(1 / len(values), 6)
        shares = [share] * (len(values) - 1) + [round(1 - share * (len(values) - 1), 6)]
        out += [f"  - id: {key}", f"    name: {key.replace('_', ' ').title()}", "    values:"]
        out += [f"      - {{id: {v}, share: {s}}}" for v, s in zip(values, shares)]
    return "\n".join(out) + "\n"


def _graph(rng: random.Random, g: int) -> tuple[str, list[tuple[str, str, str]], dict[str, list[str]]]:
    """A graph file and its edges (id, from, to); also each node's possible predecessors on a path."""
    n_mid = rng.randint(8, 12)
    nodes = [f"n{i}" for i in range(n_mid)] + ["purchase", "churned"]
    edges: list[tuple[str, str, str]] = []
    for i in range(n_mid):
        targets = {nodes[i + 1] if i + 1 < n_mid else "purchase"}
        targets.add(rng.choice(nodes[i + 1:n_mid] + ["purchase"]) if i + 1 < n_mid else "purchase")
        if rng.random() < 0.5:
            targets.add("churned")
        if i >= 3 and rng.random() < 0.2:
            targets.add(nodes[i - rng.randint(1, 2)])  # users go back: a cycle
        for t in sorted(targets):
            edges.append((f"g{g}-{nodes[i]}-{t}", nodes[i], t))
    lines = [f"id: funnel-{g:02d}", f"name: Synthetic funnel {g}", "nodes:",
             "  - id: n0", "    entry: {weight: 0.7}", "  - id: n1", "    entry: {weight: 0.3}"]
    lines += [f"  - id: {n}" for n in nodes[2:n_mid]]
    lines += ["  - id: purchase", "    outcome: success", "  - id: churned", "    outcome: failure", "edges:"]
    ancestors = {n: nodes[:max(1, int(n[1:]))] if n.startswith("n") else nodes[:n_mid] for n in nodes}
    return "\n".join(lines) + "\n", edges, ancestors


def _filters(primary: str, secondary: str, tertiary: str, visited: str | None):
    """Filter combinations for one edge, most general first: the order a team would add them."""
    yield {}, None
    for v in CONTEXTS[primary]:
        yield {primary: v}, None
    for v, w in product(CONTEXTS[primary], CONTEXTS[secondary]):
        yield {primary: v, secondary: w}, None
    if visited:
        yield {}, visited
        for v in CONTEXTS[primary]:
            yield {primary: v}, visited
    for v, w, x in product(CONTEXTS[primary], CONTEXTS[secondary], CONTEXTS[tertiary]):
        yield {primary: v, secondary: w, tertiary: x}, None


def generate(out: Path, parameters: int = 5000, graphs: int = 20, seed: int = 1) -> Path:
    """Write a registry under out/registry; returns that folder.

    Each node's out-edges share one primary context key; per value of it the edges get a
    different split of the node's outgoing mass (Google traffic signs up more, organic reads
    more features), so the best each edge can do sums above 1 while every combination that
    occurs stays below: the outgoing-sum search must branch, and the registry validates clean.
    """
    rng = random.Random(seed)
    root = out / "registry"
    (root / "graphs").mkdir(parents=True, exist_ok=True)
    (root / "parameters").mkdir(parents=True, exist_ok=True)
    (root / "contexts.yaml").write_text(contexts_yaml())
    plans = []  # (edge id, base mean, split per primary value, primary key, filter iterator)
    for g in range(graphs):
        text, edges, ancestors = _graph(rng, g)
        by_source: dict[str, list[tuple[str, str, str]]] = {}
        for e in edges:
            by_source.setdefault(e[1], []).append(e)
        edge_lines = []
        for out_edges in by_source.values():
            primary = rng.choice(list(CONTEXTS))
            bases = [0.75 / len(out_edges) * rng.uniform(0.8, 1.2) for _ in out_edges]
            total = sum(bases)
            # Per value of the primary key, one multiplier per edge, scaled so the node's total stays put.
            weights = {v: [rng.uniform(0.5, 1.5) for _ in out_edges] for v in CONTEXTS[primary]}
            for v, ws in weights.items():
                scale = total / sum(b * w for b, w in zip(bases, ws))
                weights[v] = [w * scale for w in ws]
            for i, (e_id, s, t) in enumerate(out_edges):
                base = round(bases[i], 4)
                split = {v: weights[v][i] for v in CONTEXTS[primary]}
                others = rng.sample([k for k in CONTEXTS if k != primary], 2)
                visited = rng.choice(ancestors[s]) if rng.random() < 0.6 and ancestors[s] else None
                inline = rng.random() < 0.25
                edge_lines += [f"  - id: {e_id}", f"    from: {s}", f"    to: {t}"]
                if inline:
                    edge_lines.append(f"    p: {{mean: {base}, stdev: {round(base * 0.04, 4)}}}")
                filters = _filters(primary, *others, visited)
                if inline:
                    next(filters)  # the inline p is the base
                plans.append((e_id, base, split, primary, filters))
        (root / "graphs" / f"funnel-{g:02d}.yaml").write_text(text + "\n".join(edge_lines) + "\n")
    written = 0
    while written < parameters:
        progressed = False
        for e_id, base, split, primary, filters in plans:
            if written >= parameters:
                break
            combo = next(filters, None)
            if combo is None:
                continue
            progressed = True
            context, visited = combo
            if primary in context:
                mean = base * split[context[primary]] * rng.uniform(0.9, 1.0)
            else:
                mean = base if not visited else base * rng.uniform(0.7, 1.0)
            mean = round(mean, 4)
            _write_parameter(root, e_id, context, visited, mean, round(mean * rng.uniform(0.02, 0.08), 4))
            written += 1
        if not progressed:
            raise ValueError(f"the graphs have room for only {written} parameters")
    return root


def _write_parameter(root: Path, e_id: str, context: dict, visited: str | None, mean: float, stdev: float) -> None:
    pid = "-".join([e_id] + [context[k] for k in sorted(context)] + ([f"after-{visited}"] if visited else []))
    lines = [f"id: {pid}", f"edge: {e_id}"]
    if context:
        lines.append("context_filter: {" + ", ".join(f"{k}: {v}" for k, v in context.items()) + "}")
    if visited:
        lines.append(f"visited_filter: [{visited}]")
    lines.append(f"value: {{mean: {mean}, stdev: {stdev}}}")
    lines.append(f"description: Synthetic rate for {e_id}" + (f" ({', '.join(context.values())})" if context else ""))
    folder = root / "parameters" / e_id.split("-", 1)[0] / e_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{pid}.yaml").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--parameters", type=int, default=5000)
    parser.add_argument("--graphs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(generate(Path(args.out), args.parameters, args.graphs, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
