"""The dashboard's data and file, without a browser: what is embedded, how safely, and how it is laid out."""
from __future__ import annotations

import base64
import hashlib
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from funnelcheck.engine import Mix, run_whatif
from funnelcheck.load.registry import find_project, load_project
from funnelcheck.resolve import Resolver
from funnelcheck.reference import parse_reference
from funnelcheck.web.dashboard import Board, board_from_rows, graph_panel, override_inputs
from funnelcheck.web.layout import back_edges, layout
from funnelcheck.web.page import script_json
from tests.conftest import EXAMPLE, REPO, write_tree
from tests.gitrepos import GitCli, shop_registry

DATA_BLOCK = re.compile(r'<script type="application/json" id="funnelcheck-data">(.*?)</script>', re.S)


def example_registry():
    return load_project(find_project(registry=str(EXAMPLE))).registry


def embedded(html: str) -> dict:
    blocks = DATA_BLOCK.findall(html)
    assert len(blocks) == 1
    return json.loads(blocks[0])


# --- the file --------------------------------------------------------------------------------------

def test_example_dashboard_is_one_small_offline_file(cli, tmp_path):
    result = cli("dashboard", "--registry", EXAMPLE, "--output", tmp_path / "out", "--database",
                 f"sqlite:///{tmp_path}/none.db", cwd=REPO)
    assert result.code == 0, result
    page = tmp_path / "out" / "index.html"
    assert result.out.strip() == str(page)
    html = page.read_text()
    assert len(html.encode()) < 2 * 1024 * 1024
    # Nothing is loaded from anywhere: no src/href to a URL, and the policy forbids it anyway.
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1).replace("&#x27;", "'")
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe-inline" not in csp
    # The one executable script is allowed by its hash, computed here independently.
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    data = embedded(html)
    assert data["serve"] is False and data["board"]["note"]


def test_embedded_segments_reproduce_whatif(tmp_path):
    """The data the page re-weights gives back the engine's population figures at the default mix."""
    registry = example_registry()
    panel = graph_panel(registry, "saas-signup", Board(), samples=300, seed=4)
    from funnelcheck.web.page import panel_json

    data = panel_json(panel)
    reference = run_whatif(registry, "saas-signup", Mix(), samples=300, seed=4)
    weights = np.array([s["weight"] for s in data["segments"]])
    draws = np.frombuffer(base64.b64decode(data["draws"]), dtype="<f8").reshape(len(weights), 300)
    assert weights @ np.array([s["conversion"] for s in data["segments"]]) == pytest.approx(reference.conversion.point, abs=1e-12)
    np.testing.assert_allclose(weights @ draws, reference.draws, atol=1e-12)
    nodes = [n["id"] for n in data["nodes"]]
    visits = weights @ np.array([s["visits"] for s in data["segments"]])
    for i, node in enumerate(nodes):
        assert visits[i] == pytest.approx(reference.nodes[node].visits, abs=1e-12)


def test_outside_git_the_history_is_omitted_and_inside_it_follows_commits(cli, tmp_path):
    outside = tmp_path / "plain"
    write_tree(outside, shop_registry())
    result = cli("dashboard", "--output", outside / "out", cwd=outside)
    assert result.code == 0, result
    assert embedded((outside / "out" / "index.html").read_text())["history"] is None

    repo = GitCli(tmp_path / "repo")
    repo.commit("first checkout rate", shop_registry(checkout=0.4))
    repo.commit("checkout up <b>5</b> points", shop_registry(checkout=0.45))
    result = cli("dashboard", "--output", tmp_path / "out", cwd=repo.path)
    assert result.code == 0, result
    history = {h["param_id"]: h["points"] for h in embedded((tmp_path / "out" / "index.html").read_text())["history"]}
    assert [p["mean"] for p in history["checkout-base"]] == [0.4, 0.45]
    assert [p["message"] for p in history["checkout-base"]] == ["first checkout rate", "checkout up <b>5</b> points"]
    assert [p["mean"] for p in history["add-to-cart-base"]] == [0.5]


def test_history_on_the_page_reuses_each_parameters_walk_index(tmp_path, monkeypatch):
    """A page made again walks only the commits made since, and shows what a fresh walk shows."""
    import shutil

    from funnelcheck.git import history as history_module
    from funnelcheck.load.cache import cache_dir
    from funnelcheck.web.dashboard import load_history

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    repo = GitCli(tmp_path / "repo")
    repo.commit("first checkout rate", shop_registry(checkout=0.4))
    repo.commit("checkout up", shop_registry(checkout=0.45))
    monkeypatch.chdir(repo.path)
    scanned: dict[str, int] = {}
    walk = history_module.parameter_history

    def counting(*args, **kwargs):
        found = walk(*args, **kwargs)
        scanned[found.parameter_id] = found.commits_scanned
        return found

    monkeypatch.setattr(history_module, "parameter_history", counting)

    def page() -> dict:
        project = find_project()
        return {h.param_id: h.points for h in load_history(project, load_project(project).registry, 50)}

    first = page()
    assert scanned["checkout-base"] == 2
    assert len(list((cache_dir(repo.path) / "history-index").iterdir())) >= 2
    repo.commit("checkout up again", shop_registry(checkout=0.5))
    again = page()
    assert scanned["checkout-base"] == 1  # only the new commit
    shutil.rmtree(tmp_path / "xdg")
    fresh = page()
    assert scanned["checkout-base"] == 3
    assert again == fresh != first
    assert [p.mean for p in fresh["checkout-base"]] == [0.4, 0.45, 0.5]


@settings(max_examples=200)
@given(st.text())
def test_no_string_can_end_the_data_block(text):
    block = script_json({"description": text, "name": "</script><img src=x onerror=alert(1)>" + text})
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block)["description"] == text


# --- parts ---------------------------------------------------------------------------------------------

def test_override_inputs_are_the_references_that_resolve_to_the_parameters_in_use():
    registry = example_registry()
    result = run_whatif(registry, "saas-signup", samples=10)
    inputs = override_inputs(registry, result)
    assert {o.parameter for o in inputs} == set(result.parameters_used)
    resolver = Resolver(registry, registry.graphs["saas-signup"])
    for o in inputs:
        ref = parse_reference(o.reference)
        assert ref.field == "mean" and o.mean == result.parameters_used[o.parameter].mean
        if not o.parameter.startswith("inline:"):
            # The reference names exactly the parameter's filters, so at its own state it resolves to it.
            visited = set(ref.visited) | {registry.graphs["saas-signup"].edge(ref.edge).source}
            assert resolver.resolve(ref, visited).winner.id == o.parameter


def row(param_id, status, z=1.0, **kw):
    """A monitor_results row as the store returns it."""
    return {"run_date": "2026-11-29", "param_id": param_id, "status": status, "z": z, "reference": f"e.{param_id}.p.mean",
            "expected": 0.3, "rate": 0.31, "n": 200, "k": 62, "message": "", "window_start": "2026-11-22",
            "window_end": "2026-11-29", **kw}


def test_board_rows_worst_first_and_edges_show_their_worst_status():
    registry = example_registry()
    board = board_from_rows([row("signup-base", "green"), row("signup-google", "red", z=3.4),
                             row("checkout-base", "insufficient", n=12), row("signup-facebook", "amber")],
                            {"signup-google": [0.5, None, 3.4]})
    assert [r.status for r in board.rows] == ["red", "amber", "insufficient", "green"]
    assert board.rows[0].z_history == (0.5, None, 3.4)
    assert board.edge_status(registry) == {"signup": "red", "checkout": "insufficient"}
    assert board_from_rows([], {}).note


@st.composite
def graphs(draw):
    """Random small graphs: every node reachable from node 0, cycles allowed."""
    from funnelcheck.model import Edge, Graph, Node

    n = draw(st.integers(2, 9))
    edges = [(draw(st.integers(0, i - 1)), i) for i in range(1, n)]
    edges += draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] != e[1]),
                           max_size=8))
    edges = list(dict.fromkeys(edges))
    nodes = tuple(Node(f"n{i}", 1.0 if i == 0 else None, None, None) for i in range(n))
    return Graph("g", None, nodes, tuple(Edge(f"e{a}-{b}", f"n{a}", f"n{b}", None, None, None) for a, b in edges), None)


@settings(max_examples=200)
@given(graphs())
def test_layout_gives_distinct_places_and_draws_every_non_back_edge_rightwards(graph):
    places = layout(graph)
    assert len(set(places.values())) == len(graph.nodes)
    back = back_edges(graph)
    for e in graph.edges:
        if e.id not in back:
            assert places[e.target].column > places[e.source].column
    # Without the back edges the graph has no cycle (a topological order exists).
    remaining = {n.id for n in graph.nodes}
    forward = [e for e in graph.edges if e.id not in back]
    while remaining:
        sources = [v for v in remaining if not any(e.target == v and e.source in remaining for e in forward)]
        assert sources, "a cycle survived"
        remaining -= set(sources)


def test_a_graph_the_engine_refuses_gets_its_error_and_the_others_are_still_drawn(cli, tmp_path):
    files = shop_registry()
    files["registry/graphs/broken.yaml"] = """\
id: broken
nodes:
  - {id: a, entry: {weight: 1}}
  - {id: b, outcome: success}
  - {id: c, outcome: failure}
edges:
  - {id: ab, from: a, to: b, p: {mean: 0.7, stdev: 0.0}}
  - {id: ac, from: a, to: c, p: {mean: 0.6, stdev: 0.0}}
"""
    write_tree(tmp_path, files)
    result = cli("dashboard", "--output", tmp_path / "out", "--samples", "20", cwd=tmp_path)
    assert result.code == 1
    assert "graph 'broken'" in result.err and "sum to 1.3 > 1" in result.err
    data = embedded((tmp_path / "out" / "index.html").read_text())
    graphs = {g["id"]: g for g in data["graphs"]}
    assert "sum to 1.3 > 1" in graphs["broken"]["error"]
    # The shop graph is whole: conversion 0.5 * 0.4 at the means.
    assert graphs["shop"]["conversion"]["point"] == pytest.approx(0.2, abs=1e-12)
    assert oct((tmp_path / "out" / "index.html").stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("argv, says", [
    (["dashboard", "--samples", "0"], "--samples must be between 1 and 1,000,000"),
    (["dashboard", "--history-limit", "0"], "--history-limit must be at least 1"),
    (["dashboard", "--output", "registry/contexts.yaml"], "not a folder"),
    (["serve", "--port", "70000"], "--port must be between 0 and 65535"),
])
def test_bad_usage_is_exit_2_with_one_line(cli, tmp_path, argv, says):
    write_tree(tmp_path, shop_registry())
    result = cli(*argv, cwd=tmp_path)
    assert result.code == 2 and says in result.err and "Traceback" not in result.err


def test_an_unreadable_database_is_a_note_not_a_failure(cli, tmp_path):
    write_tree(tmp_path, shop_registry())
    (tmp_path / "broken.db").write_bytes(b"this is not an SQLite database" * 100)
    result = cli("dashboard", "--output", tmp_path / "out", "--samples", "10", "--database",
                 f"sqlite:///{tmp_path}/broken.db", cwd=tmp_path)
    assert result.code == 0, result
    note = embedded((tmp_path / "out" / "index.html").read_text())["board"]["note"]
    assert note.startswith("The persistence database could not be read") and "not a database" in note
