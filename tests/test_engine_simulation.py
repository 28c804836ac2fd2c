"""The engine against simulated users: visited conditions, cycles and context segments at once.

The simulation is written here from the model's definition, independently of the engine: a
few hundred thousand users draw a channel and a device from the shares, start at an entry,
and at every page take each way out with its resolved probability (most context keys, then
most visited nodes) or drop off. Their mean visits, flows and conversions must agree with
the engine's point estimate within 4 standard errors.
"""
from __future__ import annotations

import numpy as np

from funnelcheck.engine import run_whatif

from test_engine import build, graph, param

USERS = 300_000
CHANNEL = {"google": 0.6, "facebook": 0.4}
DEVICE = {"mobile": 0.5, "desktop": 0.3, "tablet": 0.2}
CONTEXTS = [{"id": "channel", "values": [{"id": k, "share": v} for k, v in CHANNEL.items()]},
            {"id": "device", "values": [{"id": k, "share": v} for k, v in DEVICE.items()]}]
NODES = {"home": {"entry": 0.7}, "blog": {"entry": 0.3}, "features": {}, "pricing": {}, "form": {},
         "done": {"outcome": "success"}, "lost": {"outcome": "failure"}}
EDGES = [("h-f", "home", "features"), ("h-p", "home", "pricing"), ("b-h", "blog", "home"),
         ("b-p", "blog", "pricing"), ("f-p", "features", "pricing"), ("p-f", "pricing", "features"),
         ("p-form", "pricing", "form"), ("form-done", "form", "done"), ("form-p", "form", "pricing"),
         ("form-lost", "form", "lost")]
PARAMS = [
    param("h-f", "h-f", 0.3), param("h-p", "h-p", 0.3), param("h-p-google", "h-p", 0.4, context={"channel": "google"}),
    param("b-h", "b-h", 0.4), param("b-p", "b-p", 0.2), param("f-p", "f-p", 0.5),
    param("p-f", "p-f", 0.2),  # pricing -> features -> pricing: a cycle
    param("p-form", "p-form", 0.2), param("p-form-feat", "p-form", 0.3, visited=["features"]),
    param("p-form-google", "p-form", 0.25, context={"channel": "google"}),
    param("p-form-google-feat", "p-form", 0.35, context={"channel": "google"}, visited=["features"]),
    param("form-done", "form-done", 0.5), param("form-done-desktop", "form-done", 0.6, context={"device": "desktop"}),
    param("form-p", "form-p", 0.15),  # back from the form to pricing: another cycle
    param("form-lost", "form-lost", 0.1),
    param("form-lost-blog", "form-lost", 0.2, visited=["blog"]),  # blog is on only some paths
]


def resolve(edge: str, visited: set[str], context: dict[str, str]) -> float:
    """Resolution (docs/formats.md) by hand: matching parameters, most context keys, then most visited nodes (no ties here)."""
    matching = [p for p in PARAMS if p["edge"] == edge
                and set(p.get("visited_filter", ())) <= visited
                and all(context[k] == v for k, v in p.get("context_filter", {}).items())]
    rank = sorted(matching, key=lambda p: (-len(p.get("context_filter", {})), -len(p.get("visited_filter", ()))))
    if len(rank) > 1:
        assert (len(rank[0].get("context_filter", {})), len(rank[0].get("visited_filter", ()))) != (
            len(rank[1].get("context_filter", {})), len(rank[1].get("visited_filter", ())))
    return rank[0]["value"]["mean"]


def simulate(rng: np.random.Generator):
    names = list(NODES)
    pos = {n: i for i, n in enumerate(names)}
    channels, devices = list(CHANNEL), list(DEVICE)
    out = {n: [i for i, e in enumerate(EDGES) if e[1] == n] for n in names}
    width = max(len(v) for v in out.values())
    # prob[node, visited mask, channel, device, k]: the k-th way out, resolved by hand.
    prob = np.zeros((len(names), 2 ** len(names), len(channels), len(devices), width))
    for n in names:
        for mask in range(2 ** len(names)):
            visited = {m for m in names if mask >> pos[m] & 1} | {n}
            for ci, c in enumerate(channels):
                for di, d in enumerate(devices):
                    for k, ei in enumerate(out[n]):
                        prob[pos[n], mask, ci, di, k] = resolve(EDGES[ei][0], visited, {"channel": c, "device": d})
    target = np.full((len(names), width), -1)
    edge_no = np.full((len(names), width), -1)
    for n in names:
        for k, ei in enumerate(out[n]):
            target[pos[n], k], edge_no[pos[n], k] = pos[EDGES[ei][2]], ei
    entries = [n for n, a in NODES.items() if "entry" in a]
    weights = np.array([NODES[n]["entry"] for n in entries])
    node = np.array([pos[n] for n in entries])[rng.choice(len(entries), USERS, p=weights / weights.sum())]
    channel = rng.choice(len(channels), USERS, p=list(CHANNEL.values()))
    device = rng.choice(len(devices), USERS, p=list(DEVICE.values()))
    mask = 1 << node
    visits = np.zeros((USERS, len(names)), dtype=np.int32)
    flows = np.zeros((USERS, len(EDGES)), dtype=np.int32)
    users = np.arange(USERS)
    np.add.at(visits, (users, node), 1)
    alive = np.array([NODES[names[i]].get("outcome") is None for i in node])
    for _ in range(10_000):
        idx = np.flatnonzero(alive)
        if not len(idx):
            break
        p = prob[node[idx], mask[idx], channel[idx], device[idx]]  # (alive, width)
        pick = (rng.random(len(idx))[:, None] >= np.cumsum(p, axis=1)).sum(axis=1)  # == width: drop off
        moved = pick < width
        idx, pick = idx[moved], pick[moved]
        alive[np.flatnonzero(alive)[~moved]] = False
        nxt, ei = target[node[idx], pick], edge_no[node[idx], pick]
        node[idx] = nxt
        mask[idx] |= 1 << nxt
        np.add.at(visits, (idx, nxt), 1)
        np.add.at(flows, (idx, ei), 1)
        alive[idx] = [NODES[names[i]].get("outcome") is None for i in nxt]
    return names, channel, device, visits, flows


def close(engine: float, samples: np.ndarray) -> bool:
    se = samples.std() / np.sqrt(len(samples))
    return abs(engine - samples.mean()) <= 4 * se + 1e-12


def test_simulated_users_agree_with_the_engine():
    reg = build(graph(NODES, [(e, a, b, None) for e, a, b in EDGES]), PARAMS, CONTEXTS)
    r = run_whatif(reg, "g", samples=10)
    names, channel, device, visits, flows = simulate(np.random.default_rng(2024))
    done = visits[:, names.index("done")]
    assert close(r.conversion.point, done), (r.conversion.point, done.mean())
    for i, n in enumerate(names):
        assert close(r.nodes[n].visits, visits[:, i]), (n, r.nodes[n].visits, visits[:, i].mean())
    for j, (e, _, _) in enumerate(EDGES):
        assert close(r.edges[e].flow, flows[:, j]), (e, r.edges[e].flow, flows[:, j].mean())
    assert close(r.outcomes["lost"], visits[:, names.index("lost")])
    # Segments: google and desktop are named by parameters; facebook is the channel class '*',
    # mobile and tablet share the device class '*'.
    assert len(r.segments) == 4
    for seg in r.segments:
        google = channel == 0 if seg.context["channel"] == "google" else channel != 0
        desktop = device == 1 if seg.context["device"] == "desktop" else device != 1
        members = google & desktop
        assert close(seg.conversion, done[members]), (seg.context, seg.conversion, done[members].mean())
        assert abs(seg.weight - members.mean()) < 4 * np.sqrt(seg.weight * (1 - seg.weight) / USERS)
