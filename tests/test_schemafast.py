"""The fast schema pre-check is sound: whenever it says valid, jsonschema finds no error."""
from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelcheck.resources import resource_dir
from funnelcheck.load.schemafast import compile_schema
from funnelcheck.load.sources import WorkTreeSource
from funnelcheck.load.registry import kind_of
from funnelcheck.yamlload import load_yaml

from conftest import EXAMPLE

KINDS = ("contexts", "parameter", "graph", "config")
SCHEMAS = {k: json.loads((resource_dir("schemas") / f"{k}.schema.json").read_text()) for k in KINDS}
FAST = {k: compile_schema(s) for k, s in SCHEMAS.items()}
SLOW = {k: jsonschema.Draft202012Validator(s, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        for k, s in SCHEMAS.items()}

VALID = {
    "parameter": {"id": "signup-google", "edge": "signup", "context_filter": {"channel": "google"},
                  "visited_filter": ["pricing"], "value": {"mean": 0.3, "stdev": 0.05}, "description": "x",
                  "fallback_value": {"mean": 0.3, "stdev": 0.05},
                  "prior_source": {"type": "sheets", "url": "https://x", "range": "A1:B1", "refresh_frequency": "1h"},
                  "observation_source": {"type": "sql", "connection": "lake", "query": "SELECT 1", "window": "7d"},
                  "bayesian_update": {"prior": {"alpha": 8, "beta": 17}, "max_prior_weight": 500,
                                      "updated_through": "2026-11-20T00:00:00Z"},
                  "model_fit": {"method": "wald", "thresholds": {"amber": 2, "red": 3}, "min_sample_size": 100}},
    "graph": {"id": "g", "name": "G", "nodes": [{"id": "a", "entry": {"weight": 1}}, {"id": "b", "outcome": "success"}],
              "edges": [{"id": "ab", "from": "a", "to": "b", "p": {"mean": 0.5, "stdev": 0.1}},
                        {"id": "ba", "from": "b", "to": "a", "p": {"parameter_id": "x"}}]},
    "contexts": {"contexts": [{"id": "channel", "name": "C", "values": [{"id": "google", "label": "G", "share": 1}]}]},
    "config": {"registry": "registry", "connections": {"lake": {"url_env": "LAKE"}},
               "model_fit": {"method": "predictive", "thresholds": {"amber": 2}, "min_sample_size": 0},
               "alerts": {"renotify_days": 7}},
}


@pytest.mark.parametrize("kind", KINDS)
def test_valid_documents_take_the_fast_path(kind):
    assert not list(SLOW[kind].iter_errors(VALID[kind]))
    assert FAST[kind](VALID[kind])


def test_every_example_file_takes_the_fast_path():
    for sf in WorkTreeSource(EXAMPLE).files():
        kind = kind_of(sf.path)
        doc, _ = load_yaml(sf.display, sf.read())
        assert FAST[kind](doc.data), sf.path


values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | st.sampled_from(
        ["", "a", "A", "signup", "-x", "1h", "7x", "sql", "wald", "2026-11-20T00:00:00Z", "2026-13-01T00:00:00Z",
         "abc\n", "success"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "mean", "stdev", "x", "type", "weight", "values", "alpha"]), inner, max_size=3),
    max_leaves=6)


def _parts(data):
    """Every value inside the valid documents: swapping them around keeps many documents valid."""
    yield data
    for v in (data.values() if isinstance(data, dict) else data if isinstance(data, list) else ()):
        yield from _parts(v)


plausible = st.sampled_from([v for doc in VALID.values() for v in _parts(doc)]).map(copy.deepcopy)


def _paths(data, here=()):
    yield here
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, here + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, here + (i,))


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_the_fast_check_never_accepts_what_jsonschema_rejects(kind, data):
    doc = copy.deepcopy(VALID[kind])
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            doc = data.draw(values)
            continue
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        if action == "replace":
            parent[path[-1]] = data.draw(values | plausible)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["extra", "mean", "id", "stdev", "name"]))] = data.draw(values | plausible)
        else:
            parent.append(data.draw(values | plausible))
    if FAST[kind](doc):
        assert not list(SLOW[kind].iter_errors(doc)), doc
