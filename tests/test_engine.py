"""The what-if engine at the parameters' means, against closed forms and dense linear algebra."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from funnelcheck.engine import Mix, parse_mix, parse_override, parse_select, run_whatif
from funnelcheck.engine.chain import make_plan, propagate
from funnelcheck.engine.digraph import feedback_set
from funnelcheck.engine.resolution import slots_in
from funnelcheck.findings import FunnelcheckError, UsageError
from funnelcheck.load.registry import load
from funnelcheck.load.sources import DictSource

CHANNELS = [{"id": "channel", "values": [{"id": "google", "share": 0.5}, {"id": "facebook", "share": 0.3},
                                         {"id": "direct", "share": 0.2}]}]


def graph(nodes: dict[str, dict], edges: list[tuple], gid: str = "g") -> dict:
    """nodes: id -> attributes ({'entry': w} or {'outcome': kind}); edges: (id, from, to, p) where p
    is a float (inline, stdev 0), a (mean, stdev) pair (inline), a parameter id, or None (implicit base)."""
    out_nodes = []
    for nid, attrs in nodes.items():
        node = {"id": nid}
        if "entry" in attrs:
            node["entry"] = {"weight": attrs["entry"]}
        if "outcome" in attrs:
            node["outcome"] = attrs["outcome"]
        out_nodes.append(node)
    out_edges = []
    for eid, a, b, p in edges:
        edge = {"id": eid, "from": a, "to": b}
        if isinstance(p, (int, float)):
            edge["p"] = {"mean": float(p), "stdev": 0.0}
        elif isinstance(p, tuple):
            edge["p"] = {"mean": p[0], "stdev": p[1]}
        elif isinstance(p, str):
            edge["p"] = {"parameter_id": p}
        out_edges.append(edge)
    return {"id": gid, "nodes": out_nodes, "edges": out_edges}


def param(pid: str, edge: str, mean: float, stdev: float = 0.0, context: dict | None = None,
          visited: list | None = None) -> dict:
    p = {"id": pid, "edge": edge, "value": {"mean": mean, "stdev": stdev}}
    if context:
        p["context_filter"] = context
    if visited:
        p["visited_filter"] = visited
    return p


def files_of(graphs: list[dict], params=(), contexts=None, folders: dict[str, str] | None = None) -> dict[str, str]:
    files = {f"graphs/{g['id']}.yaml": yaml.safe_dump(g, sort_keys=False) for g in graphs}
    if contexts is not None:
        files["contexts.yaml"] = yaml.safe_dump({"contexts": contexts}, sort_keys=False)
    for p in params:
        folder = (folders or {}).get(p["id"], "")
        files[f"parameters/{folder}{p['id']}.yaml"] = yaml.safe_dump(p, sort_keys=False)
    return files


def registry_of(files: dict[str, str]):
    loaded = load(DictSource(files))
    errors = [f for f in loaded.findings if f.severity == "error"]
    assert not errors, errors
    return loaded.registry


def build(g: dict, params=(), contexts=None):
    return registry_of(files_of([g], params, contexts))


def point(reg, gid: str = "g", **kw):
    return run_whatif(reg, gid, samples=kw.pop("samples", 2), **kw)


# --- closed forms -----------------------------------------------------------------------------

def test_chain_matches_the_product_of_its_probabilities():
    reg = build(graph({"a": {"entry": 1}, "b": {}, "c": {"outcome": "success"}},
                      [("ab", "a", "b", 0.6), ("bc", "b", "c", 0.3)]))
    r = point(reg)
    assert r.conversion.point == pytest.approx(0.18, abs=1e-12)
    assert r.nodes["b"].visits == pytest.approx(0.6)
    assert r.nodes["a"].dropoff == pytest.approx(0.4)
    assert r.nodes["b"].dropoff == pytest.approx(0.6 * 0.7)
    assert r.nodes["c"].dropoff == 0.0
    assert r.edges["bc"].flow == pytest.approx(0.18)
    assert r.edges["bc"].p == pytest.approx(0.3)
    assert r.outcomes == pytest.approx({"c": 0.18})


def test_branches_and_weighted_entries_add_up():
    nodes = {"a": {"entry": 3}, "x": {"entry": 1}, "b": {}, "c": {}, "win": {"outcome": "success"},
             "lose": {"outcome": "failure"}}
    edges = [("ab", "a", "b", 0.5), ("ac", "a", "c", 0.3), ("xc", "x", "c", 0.9), ("bw", "b", "win", 0.4),
             ("bl", "b", "lose", 0.5), ("cw", "c", "win", 0.7)]
    r = point(build(graph(nodes, edges)))
    reach_b, reach_c = 0.75 * 0.5, 0.75 * 0.3 + 0.25 * 0.9
    assert r.nodes["c"].visits == pytest.approx(reach_c)
    assert r.conversion.point == pytest.approx(reach_b * 0.4 + reach_c * 0.7)
    assert r.outcomes["lose"] == pytest.approx(reach_b * 0.5)
    assert sum(r.outcomes.values()) + sum(n.dropoff for n in r.nodes.values()) == pytest.approx(1.0)


def test_visited_condition_applies_only_on_paths_through_its_node():
    # home -> pricing -> form and home -> form directly; signup after pricing converts better.
    nodes = {"home": {"entry": 1}, "pricing": {}, "form": {}, "done": {"outcome": "success"}}
    edges = [("to-pricing", "home", "pricing", 0.4), ("direct", "home", "form", 0.5),
             ("pricing-form", "pricing", "form", 0.6), ("signup", "form", "done", None)]
    params = [param("signup-base", "signup", 0.2), param("signup-after-pricing", "signup", 0.5, visited=["pricing"])]
    r = point(build(graph(nodes, edges), params))
    via_pricing, direct = 0.4 * 0.6, 0.5
    assert r.conversion.point == pytest.approx(via_pricing * 0.5 + direct * 0.2)
    assert r.nodes["form"].visits == pytest.approx(via_pricing + direct)
    # The effective probability is the flow-weighted mix of both visited states.
    assert r.edges["signup"].p == pytest.approx((via_pricing * 0.5 + direct * 0.2) / (via_pricing + direct))
    assert set(r.parameters_used) >= {"signup-base", "signup-after-pricing"}


def test_visited_condition_inside_a_cycle():
    # pricing <-> features; signup is better once features was seen, which only a loop can do
    # for users who entered at pricing.
    nodes = {"pricing": {"entry": 1}, "features": {}, "done": {"outcome": "success"}}
    edges = [("pf", "pricing", "features", 0.3), ("fp", "features", "pricing", 0.5), ("signup", "pricing", "done", None)]
    params = [param("s-base", "signup", 0.2), param("s-feat", "signup", 0.4, visited=["features"])]
    r = point(build(graph(nodes, edges), params))
    # First visit to pricing (features unseen): sign up 0.2, go to features 0.3.
    # Every later pricing visit has seen features: a geometric series with ratio 0.3 * 0.5.
    later = 0.3 * 0.5 / (1 - 0.3 * 0.5)
    assert r.conversion.point == pytest.approx(0.2 + later * 0.4)
    assert r.nodes["pricing"].visits == pytest.approx(1 + later)


def random_funnel(seed: int, stdev: float = 0.0):
    """A random funnel with many back and sideways edges (big strongly connected parts), pages
    that can only drop off or fail (dead ends), and sometimes a page that reloads itself.
    Returns the graph, its node names and {(from, to): probability}."""
    rng = np.random.default_rng(seed)
    n_pages = int(rng.integers(4, 12))
    pages = [f"n{i}" for i in range(n_pages)]
    names = pages + ["dead", "win", "lose"]
    nodes = {p: {} for p in pages}
    nodes["n0"] = {"entry": 2}
    nodes["n1"] = {"entry": 1}
    nodes["dead"], nodes["win"], nodes["lose"] = {}, {"outcome": "success"}, {"outcome": "failure"}
    pairs = {(f"n{i}", f"n{i + 1}") for i in range(n_pages - 1)} | {(pages[-1], "win"), ("n1", "dead"),
                                                                    ("dead", "lose"), ("dead", "dead")}
    for _ in range(3 * n_pages):
        a, b = rng.choice(pages), rng.choice(names)
        if a != b:
            pairs.add((str(a), str(b)))
    if seed % 2:
        pairs.add(("n2", "n2"))
    pairs = sorted(pairs)
    probs = {}
    for a in pages + ["dead"]:
        outs = [pr for pr in pairs if pr[0] == a]
        w = rng.dirichlet(np.ones(len(outs))) * rng.uniform(0.6, 0.9)
        probs.update(zip(outs, w))
    edges = [(f"e{i}", a, b, (float(probs[(a, b)]), stdev * float(probs[(a, b)]))) for i, (a, b) in enumerate(pairs)]
    return graph(nodes, edges), names, probs


def dense_visits(names: list[str], probs: dict, entry: dict[str, float]) -> np.ndarray:
    """Expected visits of every node: (I - Q^T) v = entry, solved densely."""
    idx = {n: i for i, n in enumerate(names)}
    q = np.zeros((len(names), len(names)))
    for (a, b), p in probs.items():
        q[idx[a], idx[b]] += p
    start = np.zeros(len(names))
    for n, w in entry.items():
        start[idx[n]] = w
    return np.linalg.solve(np.eye(len(names)) - q.T, start)


@pytest.mark.parametrize("seed", range(6))
def test_cycles_match_a_dense_solve(seed):
    g, names, probs = random_funnel(seed)
    r = point(build(g))
    visits = dense_visits(names, probs, {"n0": 2 / 3, "n1": 1 / 3})
    idx = {n: i for i, n in enumerate(names)}
    for n in names:
        assert r.nodes[n].visits == pytest.approx(visits[idx[n]], rel=1e-9, abs=1e-12)
        drop = 0.0 if n in ("win", "lose") else visits[idx[n]] * (1 - sum(p for (a, _), p in probs.items() if a == n))
        assert r.nodes[n].dropoff == pytest.approx(drop, rel=1e-9, abs=1e-12)
    for e in g["edges"]:
        a, b = e["from"], e["to"]
        assert r.edges[e["id"]].flow == pytest.approx(visits[idx[a]] * probs[(a, b)], rel=1e-9, abs=1e-12)
    assert r.conversion.point == pytest.approx(visits[idx["win"]], rel=1e-9)
    assert r.outcomes["lose"] == pytest.approx(visits[idx["lose"]], rel=1e-9, abs=1e-12)


def wide_funnel(seed: int, values: int = 8):
    """`random_funnel` with three context keys of `values` values, every one named: each edge gets
    parameters for every value of one key (its base times a factor in [0.9, 1.1]), so there are
    values³ segments (512 columns by default, where sums of many columns used to go through scipy).
    Returns the registry, the graph, the node names and {edge: (key, {value: p})}."""
    g, names, _ = random_funnel(seed)
    rng = np.random.default_rng(seed + 100)
    keys = ["k0", "k1", "k2"]
    contexts = [{"id": k, "values": [{"id": f"{k}v{i}", "share": float(s)}
                                     for i, s in enumerate(rng.dirichlet(np.ones(values)))]} for k in keys]
    params, specific = [], {}
    for j, e in enumerate(g["edges"]):
        mean = e["p"]["mean"]
        e["p"] = {"parameter_id": f"{e['id']}-base"}
        params.append(param(f"{e['id']}-base", e["id"], mean))
        key = keys[j % 3]
        specific[e["id"]] = (key, {})
        for i in range(values):
            p = round(mean * float(rng.uniform(0.9, 1.1)), 9)
            specific[e["id"]][1][f"{key}v{i}"] = p
            params.append(param(f"{e['id']}-{key}v{i}", e["id"], p, context={key: f"{key}v{i}"}))
    return build(g, params, contexts), g, names, specific


@pytest.mark.parametrize("seed", range(3))
def test_cycles_with_many_segments_match_a_dense_solve_per_segment(seed):
    """The point estimate alone (no draws), on 512 segments at once: every segment's visits, flows
    and conversion equal a dense solve with that segment's probabilities."""
    reg, g, names, specific = wide_funnel(seed)
    r = run_whatif(reg, "g", samples=0)
    assert len(r.segments) == 512 and r.conversion.mean is None
    idx = {n: i for i, n in enumerate(names)}
    ends = {e["id"]: (e["from"], e["to"]) for e in g["edges"]}
    for seg in r.segments:
        probs = {ends[e]: values[seg.context[key]] for e, (key, values) in specific.items()}
        visits = dense_visits(names, probs, {"n0": 2 / 3, "n1": 1 / 3})
        assert seg.conversion == pytest.approx(visits[idx["win"]], rel=1e-9)
        assert [seg.visits[n] for n in names] == pytest.approx(list(visits), rel=1e-9, abs=1e-12)
        assert [seg.flows[e] for e in ends] == pytest.approx([visits[idx[ends[e][0]]] * probs[ends[e]] for e in ends],
                                                             rel=1e-9, abs=1e-12)
    assert r.conversion.point == pytest.approx(sum(s.weight * s.conversion for s in r.segments), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_sparse_and_numpy_sums_give_the_same_bits(seed):
    """The Monte Carlo run sums with scipy's CSR kernel, the point estimate with numpy: both add
    each target's rows in the same order, so a segment's point estimate is the same number in both."""
    _, names, probs = random_funnel(seed)
    idx = {n: i for i, n in enumerate(names)}
    pairs = sorted(probs)
    src = np.array([idx[a] for a, _ in pairs])
    tgt = np.array([idx[b] for _, b in pairs])
    plan = make_plan(len(names), src, tgt, {idx["n0"]: 2 / 3, idx["n1"]: 1 / 3})
    rng = np.random.default_rng(seed)
    base = np.array([probs[pr] for pr in pairs])[plan.order]
    columns = base[:, None, None] * rng.uniform(0.5, 1.0, (len(base), 3, 700))  # 2,100 columns
    dense = propagate(plan, columns)
    assert np.array_equal(propagate(plan, columns, sparse=True), dense)
    one = propagate(plan, columns[:, 1, 17])  # a single column alone: the same number again
    assert np.array_equal(one, dense[:, 1, 17])
    visits = dense_visits(names, dict(zip(pairs, columns[np.argsort(plan.order), 1, 17])), {"n0": 2 / 3, "n1": 1 / 3})
    assert one == pytest.approx(visits, rel=1e-9, abs=1e-12)


def test_feedback_set_breaks_every_cycle():
    rng = np.random.default_rng(7)
    for _ in range(30):
        m = int(rng.integers(2, 25))
        edges = [(int(a), int(b)) for a, b in rng.integers(0, m, (3 * m, 2))]
        chosen = set(feedback_set(m, edges))
        rest = [(a, b) for a, b in edges if a not in chosen and b not in chosen]
        indeg = {v: 0 for v in range(m) if v not in chosen}
        for _, b in rest:
            indeg[b] += 1
        queue = [v for v, d in indeg.items() if d == 0]
        seen = 0
        while queue:
            v = queue.pop()
            seen += 1
            for a, b in rest:
                if a == v:
                    indeg[b] -= 1
                    if indeg[b] == 0:
                        queue.append(b)
        assert seen == len(indeg), (m, edges, chosen)


# --- segments and mixes -----------------------------------------------------------------------

SIMPSON_CONTEXTS = [{"id": "channel", "values": [{"id": "google", "share": 0.5}, {"id": "facebook", "share": 0.5}]}]


def simpson():
    nodes = {"a": {"entry": 1}, "b": {}, "s": {"outcome": "success"}}
    edges = [("ab", "a", "b", None), ("bs", "b", "s", None)]
    params = [param("ab-base", "ab", 0.5), param("ab-g", "ab", 0.9, context={"channel": "google"}),
              param("ab-f", "ab", 0.1, context={"channel": "facebook"}),
              param("bs-base", "bs", 0.5), param("bs-g", "bs", 0.9, context={"channel": "google"}),
              param("bs-f", "bs", 0.1, context={"channel": "facebook"})]
    return build(graph(nodes, edges), params, SIMPSON_CONTEXTS)


def test_segments_are_mixed_end_to_end_not_edge_by_edge():
    r = point(simpson())
    # Per segment: google 0.81, facebook 0.01; averaging each edge first would give 0.5 * 0.5 = 0.25.
    assert r.conversion.point == pytest.approx(0.5 * 0.81 + 0.5 * 0.01)
    assert r.conversion.point != pytest.approx(0.25)
    by_channel = {s.context["channel"]: s.conversion for s in r.segments}
    assert by_channel == pytest.approx({"google": 0.81, "facebook": 0.01})
    # Effective p of b -> s: population flow over population visits of b.
    assert r.edges["bs"].p == pytest.approx((0.5 * 0.81 + 0.5 * 0.01) / (0.5 * 0.9 + 0.5 * 0.1))


def test_select_and_mix_reweight_the_segments():
    reg = simpson()
    assert point(reg, mix=Mix(select={"channel": ["google"]})).conversion.point == pytest.approx(0.81)
    mixed = point(reg, mix=Mix(shares={"channel": {"google": 3, "facebook": 1}}))
    assert mixed.conversion.point == pytest.approx(0.75 * 0.81 + 0.25 * 0.01)
    assert [s.weight for s in mixed.segments] == pytest.approx([0.75, 0.25])


def test_segment_visits_and_flows_add_up_to_the_population():
    r = point(simpson(), mix=Mix(shares={"channel": {"google": 3, "facebook": 1}}))
    google, facebook = r.segments
    assert dict(google.visits) == pytest.approx({"a": 1.0, "b": 0.9, "s": 0.81})
    assert dict(facebook.flows) == pytest.approx({"ab": 0.1, "bs": 0.01})
    for n, node in r.nodes.items():
        assert sum(s.weight * s.visits[n] for s in r.segments) == pytest.approx(node.visits)
    for e, edge in r.edges.items():
        assert sum(s.weight * s.flows[e] for s in r.segments) == pytest.approx(edge.flow)


def test_parameters_used_are_those_of_the_selected_segments():
    r = point(simpson(), mix=Mix(select={"channel": ["google"]}))
    assert set(r.parameters_used) == {"ab-g", "bs-g"}  # facebook's parameters were resolved, then not used


def test_slots_in_a_table_many_blocks_long():
    rng = np.random.default_rng(3)
    table = rng.choice(np.arange(0, 900, 3), size=(5000, 700)).astype(np.int32)  # 4 blocks of rows
    table[-1, -1] = 901  # a slot only the last row of the last block uses
    assert np.array_equal(slots_in(table, 902), np.unique(table))
    assert slots_in(table[:0], 5).tolist() == []


def test_values_no_parameter_names_share_one_segment():
    nodes = {"a": {"entry": 1}, "s": {"outcome": "success"}}
    params = [param("as-base", "as", 0.2), param("as-g", "as", 0.6, context={"channel": "google"})]
    r = point(build(graph(nodes, [("as", "a", "s", None)]), params, CHANNELS))
    assert [(s.context, s.weight) for s in r.segments] == [({"channel": "google"}, 0.5), ({"channel": "*"}, 0.5)]
    assert r.segments[1].members == {"channel": ["facebook", "direct"]}
    assert r.conversion.point == pytest.approx(0.5 * 0.6 + 0.5 * 0.2)
    assert r.to_json()["segments"][1]["members"] == {"channel": ["facebook", "direct"]}


def test_unknown_context_value_and_empty_mixes_are_usage_errors():
    reg = simpson()
    with pytest.raises(UsageError, match="unknown context 'chanel'"):
        point(reg, mix=Mix(select={"chanel": ["google"]}))
    with pytest.raises(UsageError, match="unknown value 'bing'"):
        point(reg, mix=Mix(shares={"channel": {"bing": 1.0}}))
    with pytest.raises(UsageError, match="not all zero"):
        point(reg, mix=Mix(shares={"channel": {"google": 0.0}}))
    with pytest.raises(UsageError, match="no traffic"):
        point(reg, mix=Mix(select={"channel": ["facebook"]}, shares={"channel": {"google": 1.0}}))
    with pytest.raises(UsageError, match="unknown graph 'nope'"):
        point(reg, "nope")


def test_parse_options():
    assert parse_select("channel=google,facebook") == {"channel": ["google", "facebook"]}
    assert parse_mix("channel=google:0.6, direct:0.4") == {"channel": {"google": 0.6, "direct": 0.4}}
    assert Mix.from_options(["channel=google", "channel=direct", "device=mobile"]).select == {
        "channel": ["google", "direct"], "device": ["mobile"]}
    for bad in ("channel", "=google", "channel=", "channel=google,"):
        with pytest.raises(UsageError):
            parse_select(bad)
    for bad in ("channel=google", "channel=google:x", "channel=google:-0.1", "channel=google:0,direct:0",
                "channel=google:1,google:2"):
        with pytest.raises(UsageError):
            parse_mix(bad)
    o = parse_override("e.signup.context(channel='direct').p.mean=0.5")
    assert (o.reference.edge, o.reference.context, o.reference.field, o.value) == (
        "signup", (("channel", "direct"),), "mean", 0.5)
    for bad in ("e.signup.p.mean", "e.signup.p.mean=x", "e.signup.p.mean=1.2", "e.signup.p.stdev=-0.1",
                "e.signup.context(channel=).p.mean=0.1"):
        with pytest.raises(UsageError):
            parse_override(bad)


# --- overrides --------------------------------------------------------------------------------

def override_registry():
    nodes = {"a": {"entry": 1}, "s": {"outcome": "success"}}
    edges = [("signup", "a", "s", None)]
    params = [param("signup-base", "signup", 0.2, 0.05), param("signup-google", "signup", 0.4, 0.02,
                                                               context={"channel": "google"})]
    return build(graph(nodes, edges), params, CHANNELS)


def test_override_of_a_fallen_back_context_changes_that_traffic_only():
    reg = override_registry()
    before = point(reg)
    after = point(reg, overrides=[parse_override("e.signup.context(channel='direct').p.mean=0.5")])
    conv = {tuple(s.context.items()): s.conversion for s in after.segments}
    assert conv == pytest.approx({(("channel", "google"),): 0.4, (("channel", "direct"),): 0.5,
                                  (("channel", "facebook"),): 0.2})
    assert after.conversion.point == pytest.approx(before.conversion.point + 0.2 * (0.5 - 0.2))
    (o,) = after.overrides
    assert (o.value, o.before, o.replaces) == (0.5, 0.2, None)
    # The stdev is copied from what the reference resolved to before: the base's.
    assert after.parameters_used["override:e.signup.context(channel='direct')"].stdev == 0.05


def test_override_replaces_the_parameter_with_the_same_filters():
    reg = override_registry()
    r = point(reg, overrides=[parse_override("e.signup.context(channel='google').p.stdev=0.01")])
    assert r.parameters_used["signup-google"].mean == 0.4
    assert r.parameters_used["signup-google"].stdev == 0.01
    assert r.overrides[0].replaces == "signup-google"
    r = point(reg, overrides=[parse_override("e.signup.p.mean=0.3")])
    assert r.conversion.point == pytest.approx(0.5 * 0.4 + 0.5 * 0.3)


def test_override_of_an_inline_base():
    reg = build(graph({"a": {"entry": 1}, "s": {"outcome": "success"}}, [("go", "a", "s", (0.3, 0.05))]))
    r = point(reg, overrides=[parse_override("e.go.p.mean=0.6")])
    assert r.conversion.point == pytest.approx(0.6)
    assert set(r.parameters_used) == {"inline:go"}
    assert r.parameters_used["inline:go"].stdev == 0.05
    assert r.overrides[0].replaces == "inline:go"


def test_overrides_the_graph_never_uses_are_usage_errors():
    reg = override_registry()
    for text, message in (
            ("e.checkout.p.mean=0.5", "no edge 'checkout'"),
            ("e.signup.visited(pricing).p.mean=0.5", "no node 'pricing'"),
            ("e.signup.context(channel='bing').p.mean=0.5", "unknown value 'bing'"),
            ("e.signup.context(device='mobile').p.mean=0.5", "unknown context 'device'"),
            ("e.signup.p.mean=0.1", None),  # fine: the base still serves facebook and direct
    ):
        if message is None:
            point(reg, overrides=[parse_override(text)])
            continue
        with pytest.raises(UsageError, match=message):
            point(reg, overrides=[parse_override(text)])
    # With only google traffic selected, the base is never used.
    with pytest.raises(UsageError, match="never uses"):
        point(reg, overrides=[parse_override("e.signup.p.mean=0.1")], mix=Mix(select={"channel": ["google"]}))
    with pytest.raises(UsageError, match="too large"):
        point(reg, overrides=[parse_override("e.signup.p.stdev=0.9")])
    with pytest.raises(UsageError, match="set twice"):
        point(reg, overrides=[parse_override("e.signup.p.mean=0.1"), parse_override("e.signup.p.mean=0.2")])


# --- registries that cannot be computed -------------------------------------------------------

def test_out_probabilities_above_one_are_refused():
    reg = build(graph({"a": {"entry": 1}, "s": {"outcome": "success"}, "f": {"outcome": "failure"}},
                      [("as", "a", "s", 0.7), ("af", "a", "f", 0.6)]))
    with pytest.raises(FunnelcheckError, match="sum to 1.3 > 1"):
        point(reg)


def test_a_cycle_nobody_leaves_is_refused():
    nodes = {"a": {"entry": 1}, "b": {}, "c": {}, "s": {"outcome": "success"}}
    edges = [("ab", "a", "b", 0.5), ("as", "a", "s", 0.5), ("bc", "b", "c", 1.0), ("cb", "c", "b", 1.0)]
    with pytest.raises(FunnelcheckError, match="circle forever through b, c"):
        point(build(graph(nodes, edges)))
    loop = {"a": {"entry": 1}, "s": {"outcome": "success"}}
    with pytest.raises(FunnelcheckError, match="circle forever through a"):
        point(build(graph(loop, [("aa", "a", "a", 1.0), ("as", "a", "s", 0.0)])))
