"""Resolution through the fallback hierarchy (docs/formats.md#resolution)."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from funnelcheck.reference import Reference, parse_reference
from funnelcheck.load.registry import load
from funnelcheck.resolve import Resolver, resolve
from funnelcheck.load.sources import DictSource

CONTEXTS = """\
contexts:
  - id: channel
    values: [{id: google}, {id: facebook}, {id: direct}]
  - id: device
    values: [{id: mobile}, {id: desktop}]
  - id: browser
    values: [{id: chrome}, {id: safari}]
"""
GRAPH = """\
id: g
nodes:
  - {id: home, entry: {weight: 1}}
  - {id: features}
  - {id: pricing}
  - {id: form}
  - {id: done, outcome: success}
edges:
  - {id: to-features, from: home, to: features, p: {mean: 0.5, stdev: 0.1}}
  - {id: to-pricing, from: features, to: pricing, p: {mean: 0.5, stdev: 0.1}}
  - {id: signup, from: pricing, to: form}
  - {id: finish, from: form, to: done, p: {mean: 0.9, stdev: 0}}
"""


def param(pid: str, mean: float, context: dict | None = None, visited: list | None = None, edge: str = "signup") -> str:
    lines = [f"id: {pid}", f"edge: {edge}"]
    if context:
        lines.append("context_filter: {" + ", ".join(f"{k}: {v}" for k, v in context.items()) + "}")
    if visited:
        lines.append(f"visited_filter: [{', '.join(visited)}]")
    lines.append(f"value: {{mean: {mean}, stdev: 0.01}}")
    return "\n".join(lines) + "\n"


def registry_of(params: dict[str, str], order: list[str] | None = None):
    files = {"contexts.yaml": CONTEXTS, "graphs/g.yaml": GRAPH}
    names = order or list(params)
    files.update({f"parameters/{n}.yaml": params[n] for n in names})
    loaded = load(DictSource(files))
    assert not [f for f in loaded.findings if f.severity == "error"], loaded.findings
    return loaded.registry


SEED = {
    "signup-base": param("signup-base", 0.20),
    "signup-google": param("signup-google", 0.30, {"channel": "google"}),
    "signup-pricing": param("signup-pricing", 0.25, visited=["pricing"]),
    "signup-google-pricing": param("signup-google-pricing", 0.40, {"channel": "google"}, ["pricing"]),
}


def test_spec_example_winner_tier_and_partial():
    reg = registry_of(SEED)
    res = resolve(reg, parse_reference(
        "e.signup.visited(pricing).context(channel='google',device='mobile').p.mean"))
    assert res.winner.id == "signup-google-pricing"
    assert res.tier == "context"
    assert res.partial is True
    assert res.value == 0.40
    assert [c.id for c in res.candidates] == ["signup-google-pricing", "signup-google", "signup-pricing", "signup-base"]


def test_tiers():
    reg = registry_of(SEED)
    tier = lambda text: (lambda r: (r.winner.id, r.tier, r.partial))(resolve(reg, parse_reference(text)))
    assert tier("e.signup.context(channel='google').p.mean") == ("signup-google-pricing", "exact", False)
    assert tier("e.signup.context(channel='facebook').p.mean") == ("signup-pricing", "visited", True)
    assert tier("e.signup.p.mean") == ("signup-pricing", "exact", False)  # pricing is the source: always visited
    assert tier("e.finish.p.stdev") == (None, "inline", False)


def test_base_tier_when_only_the_filter_free_parameter_matches():
    reg = registry_of({k: v for k, v in SEED.items() if k in ("signup-base", "signup-google")})
    res = resolve(reg, parse_reference("e.signup.context(channel='direct').p.mean"))
    assert (res.winner.id, res.tier, res.partial) == ("signup-base", "base", True)


def test_tie_is_broken_by_context_priority_then_id():
    reg = registry_of({
        "signup-base": param("signup-base", 0.2),
        "a-mobile": param("a-mobile", 0.1, {"device": "mobile"}),
        "z-google": param("z-google", 0.3, {"channel": "google"}),
        "b-chrome": param("b-chrome", 0.4, {"browser": "chrome"}),
    })
    ref = parse_reference("e.signup.context(channel='google',device='mobile',browser='chrome').p.mean")
    assert resolve(reg, ref).winner.id == "z-google"  # channel is the first context
    ref = parse_reference("e.signup.context(device='mobile',browser='chrome').p.mean")
    assert resolve(reg, ref).winner.id == "a-mobile"
    reg = registry_of({
        "signup-base": param("signup-base", 0.2),
        "b-google": param("b-google", 0.1, {"channel": "google"}, ["features"]),
        "a-google": param("a-google", 0.3, {"channel": "google"}, ["home"]),
    })
    ref = parse_reference("e.signup.visited(home,features).context(channel='google').p.mean")
    assert resolve(reg, ref).winner.id == "a-google"  # same rank, same context: parameter id


# --- properties ---------------------------------------------------------------------------------

CTX_VALUES = {"channel": ["google", "facebook", "direct"], "device": ["mobile", "desktop"], "browser": ["chrome", "safari"]}
NODES = ["home", "features", "pricing"]


@st.composite
def filters(draw):
    keys = draw(st.lists(st.sampled_from(sorted(CTX_VALUES)), unique=True, max_size=3))
    context = {k: draw(st.sampled_from(CTX_VALUES[k])) for k in keys}
    visited = draw(st.lists(st.sampled_from(NODES), unique=True, max_size=2))
    return context, visited


@st.composite
def parameter_sets(draw):
    specs = draw(st.lists(filters(), max_size=8))
    params, seen = {"signup-base": param("signup-base", 0.2)}, set()
    for i, (context, visited) in enumerate(specs):
        key = (tuple(sorted(context.items())), tuple(sorted(visited)))
        if key in seen or key == ((), ()):
            continue  # two parameters with the same filters are a conflict, not a resolution case
        seen.add(key)
        params[f"p{i}"] = param(f"p{i}", round(draw(st.floats(0.01, 0.99)), 3), context, visited)
    return params


queries = filters().map(lambda cv: Reference.make("signup", cv[1], cv[0]))


@settings(max_examples=80, deadline=None)
@given(parameter_sets(), queries)
def test_winner_filters_are_a_subset_of_the_query(params, ref):
    res = resolve(registry_of(params), ref)
    assert set(res.winner.context_filter) <= set(ref.context)
    assert res.winner.visited_filter <= set(ref.visited) | {"pricing"}
    # and nothing that matches outranks it
    assert all((len(c.context_filter), len(c.visited_filter)) <= (len(res.winner.context_filter), len(res.winner.visited_filter))
               for c in res.candidates)


@settings(max_examples=60, deadline=None)
@given(parameter_sets(), queries, filters())
def test_adding_a_non_matching_parameter_never_changes_the_result(params, ref, extra):
    context, visited = extra
    before = resolve(registry_of(params), ref)
    probe = Reference.make("signup", visited, context)
    matches = set(visited) <= set(ref.visited) | {"pricing"} and all(ref.context_dict.get(k) == v for k, v in context.items())
    key = (tuple(sorted(context.items())), frozenset(visited))
    taken = any((s.context_filter, s.visited_filter) == key for s in Resolver(registry_of(params)).slots["signup"])
    if matches or taken or probe == Reference.make("signup"):
        return
    params = dict(params, extra=param("extra", 0.77, context, visited))
    after = resolve(registry_of(params), ref)
    assert (after.winner.id, after.value, after.tier, after.partial) == (before.winner.id, before.value, before.tier, before.partial)


@settings(max_examples=40, deadline=None)
@given(parameter_sets(), queries, st.randoms(use_true_random=False))
def test_file_order_never_changes_a_result(params, ref, rnd: random.Random):
    order = list(params)
    rnd.shuffle(order)
    a = resolve(registry_of(params), ref)
    b = resolve(registry_of(params, order), ref)
    assert (a.winner.id, a.value, a.tier, [c.id for c in a.candidates]) == (b.winner.id, b.value, b.tier, [c.id for c in b.candidates])
