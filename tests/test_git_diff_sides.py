"""diff reuses each side's what-if run by a hash of its inputs; a reused or damaged entry never changes the output."""
from __future__ import annotations

import json

import numpy as np
import pytest

from funnelcheck.git import sides
from funnelcheck.git.diff import Side, diff
from funnelcheck.load.gitsource import load_revision
from funnelcheck.load.registry import find_project
from gitrepos import GitCli, parameter, shop_registry

CHECKOUT = "registry/parameters/checkout/checkout-base.yaml"


@pytest.fixture
def shop(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    repo = GitCli(tmp_path / "shop")
    repo.commit("base", shop_registry(add=0.5, checkout=0.4, google=0.5, stdev=0.05))
    repo.commit("head", {CHECKOUT: parameter("checkout-base", "checkout", 0.42, 0.05)})
    return repo


def store_files(shop) -> list:
    from funnelcheck.load.cache import cache_dir

    folder = cache_dir(shop.path) / "diff-sides"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_warm_run_reads_both_sides_back_and_prints_the_same(shop, cli, monkeypatch):
    cold = cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path)
    assert cold.code == 0, cold
    assert sorted(p.suffix for p in store_files(shop)) == [".f8", ".f8", ".json", ".json"]  # base and head

    def no_engine(task):
        raise AssertionError("the engine ran although both sides were cached")

    monkeypatch.setattr(sides, "_work", no_engine)
    warm = cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path)
    assert warm.code == 0 and warm.out == cold.out


def test_damaged_entries_are_computed_again(shop, cli):
    cold = cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path).out
    rng = np.random.default_rng(3)
    for path in store_files(shop):
        raw = bytearray(path.read_bytes())
        for i in rng.integers(0, len(raw), 3):
            raw[i] ^= 0x5A
        path.write_bytes(bytes(raw))
    assert cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path).out == cold
    assert cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=shop.path).out == cold


def test_a_new_push_reuses_the_base_and_drops_what_it_no_longer_uses(shop, cli):
    cli("diff", "HEAD~1", "HEAD", cwd=shop.path)
    first = {p.name for p in store_files(shop)}
    shop.commit("push 2", {CHECKOUT: parameter("checkout-base", "checkout", 0.44, 0.05)})
    out = json.loads(cli("diff", "HEAD~2", "HEAD", "--format", "json", cwd=shop.path).out)
    second = {p.name for p in store_files(shop)}
    assert len(first & second) == 2  # the base side's record and draws, reused
    assert len(second) == 4  # the first push's head is pruned
    # Closed form at the means: add × (0.6 · google + 0.4 · checkout).
    assert out["graphs"][0]["head"]["point"] == pytest.approx(0.5 * (0.6 * 0.5 + 0.4 * 0.44))


def test_inputs_hash_sees_every_input_of_a_run(shop, monkeypatch):
    monkeypatch.chdir(shop.path)
    reg = load_revision(find_project(), "HEAD~1").registry
    graph, by_edge = reg.graphs["shop"], reg.parameters_by_edge()
    key = sides.side_key(reg, graph, by_edge, 2000, 0, "e")
    assert key == sides.side_key(reg, graph, reg.parameters_by_edge(), 2000, 0, "e")
    assert len({key, sides.side_key(reg, graph, by_edge, 2001, 0, "e"), sides.side_key(reg, graph, by_edge, 2000, 1, "e"),
                sides.side_key(reg, graph, by_edge, 2000, 0, "other engine")}) == 4
    head = load_revision(find_project(), "HEAD").registry
    assert sides.side_key(head, head.graphs["shop"], head.parameters_by_edge(), 2000, 0, "e") != key


def test_one_process_or_two_give_identical_results(shop, monkeypatch):
    monkeypatch.chdir(shop.path)
    project = find_project()
    base = Side("HEAD~1", None, load_revision(project, "HEAD~1"))
    head = Side("HEAD", None, load_revision(project, "HEAD"))
    one = diff(base, head, samples=500, seed=4, jobs=1)
    two = diff(base, head, samples=500, seed=4, jobs=2)
    assert one.to_json() == two.to_json()
    stored = sides.SideStore(None)
    assert stored.get("x") is None  # no folder: nothing kept, nothing read
