"""The per-graph memo of the outgoing-sum and draws searches (checks/memo.py): only what changed is searched again,
and the findings are always those of a run without it."""
from __future__ import annotations

import json
import random
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelcheck.checks import memo as memo_module, validate
from funnelcheck.checks.memo import GraphMemo
from funnelcheck.cli import main
from funnelcheck.load.cache import cache_dir, read_entry
from funnelcheck.load.registry import load
from funnelcheck.load.sources import DictSource

from conftest import project_in

CONTEXTS = "contexts:\n  - id: channel\n    values:\n      - {id: google, share: 0.5}\n      - {id: organic, share: 0.5}\n"
GRAPHS = 3


def graph(i: int) -> str:
    return f"""id: g{i}
nodes:
  - id: home
    entry: {{weight: 1}}
  - id: signup
  - id: bought
    outcome: success
  - id: lost
    outcome: failure
edges:
  - {{id: g{i}-signup, from: home, to: signup, p: {{mean: 0.5, stdev: 0.05}}}}
  - {{id: g{i}-buy, from: signup, to: bought}}
  - {{id: g{i}-give-up, from: signup, to: lost}}
"""


def parameter(pid: str, edge: str, mean: float, stdev: float, context: str = "") -> str:
    text = f"id: {pid}\nedge: {edge}\nvalue: {{mean: {mean}, stdev: {stdev}}}\n"
    return text + (f"context_filter: {{channel: {context}}}\n" if context else "")


def registry(values: dict[int, tuple[float, float, float]]) -> dict[str, str]:
    """Three graphs; graph i's signup node splits into buy (base and google) and give-up with these means."""
    files = {"contexts.yaml": CONTEXTS}
    for i in range(GRAPHS):
        buy, google, give_up = values.get(i, (0.4, 0.45, 0.3))
        files[f"graphs/g{i}.yaml"] = graph(i)
        files[f"parameters/g{i}/g{i}-buy.yaml"] = parameter(f"g{i}-buy", f"g{i}-buy", buy, 0.05)
        files[f"parameters/g{i}/g{i}-buy-google.yaml"] = parameter(f"g{i}-buy-google", f"g{i}-buy", google, 0.08,
                                                                   "google")
        files[f"parameters/g{i}/g{i}-give-up.yaml"] = parameter(f"g{i}-give-up", f"g{i}-give-up", give_up, 0.1)
    return files


def findings(files: dict, memo: GraphMemo | None = None) -> list:
    return validate(load(DictSource(files)), memo=memo)


def test_only_the_graph_whose_file_changed_is_searched_again(tmp_path):
    store = tmp_path / "checks.json"
    files = registry({})
    first = GraphMemo(store)
    before = findings(files, first)
    first.save()
    assert first.computed == 2 * GRAPHS  # sums and draws, per graph

    again = GraphMemo(store)
    assert findings(files, again) == before
    assert again.computed == 0

    changed = registry({1: (0.55, 0.65, 0.4)})  # g1: 0.65 + 0.4 > 1 for google
    memo = GraphMemo(store)
    got = findings(changed, memo)
    memo.save()
    assert memo.computed == 2
    assert got == findings(changed)
    assert any(f.code == "outgoing-sum" and "g1" in f.path for f in got)
    assert not any(f.code == "outgoing-sum" for f in before)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, GRAPHS - 1), st.floats(0.05, 0.7), st.floats(0.05, 0.7),
                          st.floats(0.05, 0.6)), min_size=1, max_size=5))
def test_a_memo_kept_across_edits_gives_the_findings_of_a_run_without_it(tmp_path, edits):
    store = tmp_path / "edits.json"
    store.unlink(missing_ok=True)
    values: dict[int, tuple[float, float, float]] = {}
    for i, buy, google, give_up in edits:
        values[i] = (round(buy, 3), round(google, 3), round(give_up, 3))
        files = registry(values)
        memo = GraphMemo(store)
        got = findings(files, memo)
        memo.save()
        assert got == findings(files)


def test_a_damaged_or_foreign_store_is_ignored_and_rebuilt(tmp_path):
    store = tmp_path / "checks.json"
    files = registry({2: (0.5, 0.62, 0.45)})
    memo = GraphMemo(store)
    clean = findings(files, memo)
    memo.save()
    raw = bytearray(store.read_bytes())
    rng = random.Random(5)
    for _ in range(20):
        flipped = bytearray(raw)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        store.write_bytes(bytes(flipped))
        assert findings(files, GraphMemo(store)) == clean

    # Well-formed but made by other code: a changed check must never be answered by an old verdict.
    store.write_bytes(raw)
    memo_module.code_fingerprint.cache_clear()
    try:
        original = memo_module._CODE
        memo_module._CODE = original + ("cli.py",)
        stale = GraphMemo(store)
        assert findings(files, stale) == clean
        assert stale.computed == 2 * GRAPHS
    finally:
        memo_module._CODE = original
        memo_module.code_fingerprint.cache_clear()


def test_a_planted_finding_in_the_store_does_not_survive_a_changed_file(tmp_path):
    """The store answers only for the exact files it was made from."""
    store = tmp_path / "checks.json"
    files = registry({})
    memo = GraphMemo(store)
    findings(files, memo)
    memo.save()
    changed = registry({0: (0.3, 0.35, 0.3)})
    memo = GraphMemo(store)
    assert findings(changed, memo) == findings(changed)
    assert memo.computed == 2


def test_validate_keeps_the_memo_as_json_in_the_user_cache(tmp_path, monkeypatch, capsys):
    root = project_in(tmp_path, monkeypatch, {"funnelcheck.yaml": "registry: registry\n",
                                               **{f"registry/{k}": v for k, v in registry({0: (0.6, 0.7, 0.4)}).items()}})
    code = main(["validate", "--format", "json"])
    first = json.loads(capsys.readouterr().out)
    assert code == 1 and any(f["code"] == "outgoing-sum" for f in first)
    stored = read_entry(cache_dir(root) / "checks.json")
    assert isinstance(stored, dict) and len(stored["graphs"]) == 2 * GRAPHS
    assert not list(root.rglob("checks.json"))  # never inside the repository
    assert main(["validate", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out) == first


def test_two_registries_run_from_one_folder_keep_a_cache_each(tmp_path, monkeypatch, capsys):
    """Without funnelcheck.yaml, `--registry a` and `--registry b` share the folder: neither evicts the other."""
    files = {f"{name}/{k}": v for name in ("a", "b") for k, v in registry({}).items()}
    root = project_in(tmp_path, monkeypatch, files)
    for name in ("a", "b", "a", "b"):
        assert main(["validate", "--registry", name]) == 0
    capsys.readouterr()
    stored = sorted(p.name for p in cache_dir(root).iterdir() if not re.search(r"\.\d\d\.json$", p.name))
    assert len([n for n in stored if n.startswith("parse-")]) == 2
    assert len([n for n in stored if n.startswith("checks-")]) == 2
    for memo_file in cache_dir(root).glob("checks-*.json"):
        memo = GraphMemo(memo_file)
        assert len(memo.stored) == 2 * GRAPHS
