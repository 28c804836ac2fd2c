"""Properties of the engine on random funnels (hypothesis): bounds, conservation, invariances."""
from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelcheck.engine import Mix, run_whatif
from funnelcheck.resolve import Resolver
from funnelcheck.engine.statespace import build_state_graph, context_classes, segment_context, segments

from test_engine import files_of, graph, param, registry_of

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def funnels(draw):
    """A random funnel with cycles, two context keys, context and visited parameters.

    Every page keeps its out-probabilities at most 0.95 in every state and segment, so the
    chain always absorbs and validation would pass.
    """
    n = draw(st.integers(2, 6))
    pages = [f"p{i}" for i in range(n)]
    names = pages + ["win", "lose"]
    nodes = {p: {} for p in pages}
    nodes["p0"] = {"entry": draw(st.floats(0.1, 5))}
    if n > 2 and draw(st.booleans()):
        nodes["p1"] = {"entry": draw(st.floats(0.1, 5))}
    nodes["win"], nodes["lose"] = {"outcome": "success"}, {"outcome": "failure"}
    pairs = [(pages[i], pages[i + 1]) for i in range(n - 1)] + [(pages[-1], "win")]
    extra = draw(st.lists(st.tuples(st.sampled_from(pages), st.sampled_from(names)), max_size=3 * n))
    for pr in extra:
        if pr not in pairs:
            pairs.append(pr)
    degree = {p: sum(1 for a, _ in pairs if a == p) for p in pages}
    contexts = [{"id": "channel", "values": [{"id": v, "share": s} for v, s in
                                             zip(("google", "facebook", "direct"), (0.5, 0.3, 0.2))]},
                {"id": "device", "values": [{"id": "mobile", "share": 0.6}, {"id": "desktop", "share": 0.4}]}]
    edges, params = [], []
    prob = st.floats(0.0, 1.0)
    for i, (a, b) in enumerate(pairs):
        eid, cap = f"e{i}", 0.95 / degree[a]
        edges.append((eid, a, b, None))
        stdev = draw(st.sampled_from([0.0, 0.01, 0.05]))
        mean = round(draw(prob) * cap, 4)
        params.append(param(f"{eid}-base", eid, mean, min(stdev, mean / 3)))
        kind = draw(st.sampled_from(["none", "channel", "device", "visited", "both"]))
        if kind in ("channel", "both"):
            v = draw(st.sampled_from(["google", "facebook"]))
            m = round(draw(prob) * cap, 4)
            params.append(param(f"{eid}-{v}", eid, m, m / 5, context={"channel": v}))
        if kind == "device":
            m = round(draw(prob) * cap, 4)
            params.append(param(f"{eid}-mobile", eid, m, m / 5, context={"device": "mobile"}))
        if kind in ("visited", "both"):
            seen = draw(st.sampled_from(pages))
            m = round(draw(prob) * cap, 4)
            context = {"channel": "google"} if kind == "both" else None
            params.append(param(f"{eid}-after-{seen}", eid, m, m / 5, context=context, visited=[seen]))
    return graph(nodes, edges), params, contexts


@SETTINGS
@given(funnels())
def test_conversion_is_a_probability_and_mass_is_conserved(funnel):
    g, params, contexts = funnel
    r = run_whatif(registry_of(files_of([g], params, contexts)), "g", samples=40, seed=1)
    assert 0.0 <= r.conversion.point <= 1.0
    assert np.all((r.draws >= 0.0) & (r.draws <= 1.0 + 1e-12))
    for s in r.segments:
        assert 0.0 <= s.conversion <= 1.0
    absorbed = sum(r.outcomes.values())
    dropped = sum(n.dropoff for n in r.nodes.values())
    assert absorbed + dropped == pytest.approx(1.0, abs=1e-9)
    assert r.conversion.point == pytest.approx(sum(p for n, p in r.outcomes.items() if n == "win"))
    assert sum(s.weight for s in r.segments) == pytest.approx(1.0)


@SETTINGS
@given(funnels())
def test_selecting_every_value_equals_no_selection(funnel):
    g, params, contexts = funnel
    reg = registry_of(files_of([g], params, contexts))
    plain = run_whatif(reg, "g", samples=30, seed=2)
    every = Mix(select={c["id"]: [v["id"] for v in c["values"]] for c in contexts})
    selected = run_whatif(reg, "g", mix=every, samples=30, seed=2)
    assert selected.conversion.point == pytest.approx(plain.conversion.point, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(selected.draws, plain.draws, rtol=1e-12, atol=1e-15)
    assert [s.context for s in selected.segments] == [s.context for s in plain.segments]


@SETTINGS
@given(funnels(), st.randoms(use_true_random=False))
def test_reordering_files_values_nodes_and_edges_changes_nothing(funnel, rnd: random.Random):
    g, params, contexts = funnel
    first = run_whatif(registry_of(files_of([g], params, contexts)), "g", samples=30, seed=3)
    shuffled_graph = dict(g, nodes=rnd.sample(g["nodes"], len(g["nodes"])), edges=rnd.sample(g["edges"], len(g["edges"])))
    shuffled_contexts = [dict(c, values=rnd.sample(c["values"], len(c["values"]))) for c in contexts]
    folders = {p["id"]: rnd.choice(["", "a/", "b/c/"]) for p in params}
    files = files_of([shuffled_graph], rnd.sample(params, len(params)), shuffled_contexts, folders)
    second = run_whatif(registry_of(dict(rnd.sample(list(files.items()), len(files)))), "g", samples=30, seed=3)
    assert second.conversion.point == pytest.approx(first.conversion.point, rel=1e-9, abs=1e-15)
    np.testing.assert_allclose(second.draws, first.draws, rtol=1e-9, atol=1e-15)
    for n, r in first.nodes.items():
        assert (second.nodes[n].visits, second.nodes[n].dropoff) == pytest.approx((r.visits, r.dropoff))
    for e, r in first.edges.items():
        assert second.edges[e].flow == pytest.approx(r.flow)
    seg = {tuple(sorted(s.context.items())): (s.weight, s.conversion) for s in second.segments}
    for s in first.segments:
        assert seg[tuple(sorted(s.context.items()))] == pytest.approx((s.weight, s.conversion))
    assert [s.context for s in second.segments] == [s.context for s in first.segments]


@SETTINGS
@given(funnels())
def test_forgetting_visited_flags_changes_no_number(funnel):
    """The engine's smaller state graph against a dense solve of the full one (every relevant
    page's visited flag kept), segment by segment, mixed with the default shares."""
    g, params, contexts = funnel
    reg = registry_of(files_of([g], params, contexts))
    r = run_whatif(reg, "g", samples=5)
    graph = reg.graphs["g"]
    full = build_state_graph(reg, graph)
    resolver = Resolver(reg, graph)
    shares = {c.id: c.shares() for c in reg.contexts}
    n = len(full.states)
    entry = np.zeros(n)
    for i, w in full.entries.items():
        entry[i] = w
    visits = {node["id"]: 0.0 for node in g["nodes"]}
    for seg in segments(context_classes(reg, graph)):
        weight = np.prod([sum(shares[c.key][v] for v in c.members) for c in seg])
        q = np.zeros((n, n))
        for t in full.transitions:
            q[t.source, t.target] += resolver.winner(t.edge.id, full.states[t.source].query_visited(),
                                                     segment_context(seg)).estimate.mean
        v = np.linalg.solve(np.eye(n) - q.T, entry)
        for i, state in enumerate(full.states):
            visits[state.node] += weight * v[i]
    for node, expected in visits.items():
        assert r.nodes[node].visits == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert r.conversion.point == pytest.approx(visits["win"], rel=1e-9, abs=1e-12)
    assert r.states <= len(full.states)
