"""Issue 7, class 1: nothing in a repository runs code; the parse cache is data behind a checksum."""
from __future__ import annotations

import json
import pickle
import random

import pytest

from funnelcheck.cli import main
from funnelcheck.load.cache import cache_dir, read_entry, write_entry

from conftest import project_in

REGISTRY = {
    "funnelcheck.yaml": "registry: registry\n",
    "registry/contexts.yaml": "contexts:\n  - id: channel\n    values:\n      - {id: google, share: 1.0}\n",
    "registry/graphs/shop.yaml": """
        id: shop
        nodes:
          - id: home
            entry: {weight: 1}
          - id: buy
            outcome: success
          - id: gone
            outcome: failure
        edges:
          - {id: buys, from: home, to: buy, p: {parameter_id: p-buy}}
          - {id: leaves, from: home, to: gone, p: {mean: 0.5, stdev: 0.1}}
        """,
    "registry/parameters/p-buy.yaml": "id: p-buy\nedge: buys\nvalue: {mean: 0.5, stdev: 0.1}\n",
    "registry/parameters/broken.yaml": "id: broken\nedge: [unclosed\n",
    "registry/parameters/wrong.yaml": "id: other\nedge: buys\nvalue: {mean: 2, stdev: 0.1}\n",
}


class _Plant:
    """Unpickling this creates `target`: proof that a pickle was loaded."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture
def project(tmp_path, monkeypatch):
    return project_in(tmp_path, monkeypatch, REGISTRY)


def _validate(capsys) -> tuple[int, list]:
    code = main(["validate", "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_cache_lives_in_the_user_cache_folder_keyed_by_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    a, b = tmp_path / "a" / "models", tmp_path / "b" / "models"
    assert cache_dir(a).parent == tmp_path / "xdg" / "funnelcheck"
    assert cache_dir(a) != cache_dir(b)  # same folder name, different repositories
    assert cache_dir(a) == cache_dir(a / "x" / "..")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir(a).parent == tmp_path / "home" / ".cache" / "funnelcheck"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec says: ignore it
    assert cache_dir(a).parent == tmp_path / "home" / ".cache" / "funnelcheck"


def test_entries_round_trip_and_any_damage_reads_as_missing(tmp_path):
    path = tmp_path / "deep" / "entry.json"
    value = {"a": [1, 2.5, None, True, "x\n"], "b": {}}
    assert read_entry(path) is None
    write_entry(path, value)
    assert read_entry(path) == value
    raw = path.read_bytes()
    rng = random.Random(7)
    for _ in range(200):
        flipped = bytearray(raw)
        i = rng.randrange(len(flipped))
        flipped[i] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(flipped))
        assert read_entry(path) is None, f"byte {i} flipped yet trusted"
    path.write_bytes(pickle.dumps(value))
    assert read_entry(path) is None
    assert [p.name for p in path.parent.iterdir()] == ["entry.json"]  # no temporary left behind


def test_a_planted_pickle_is_never_loaded(project, tmp_path, capsys):
    target = tmp_path / "pwned"
    bomb = pickle.dumps((_Plant(str(target)), 16))
    # where the cache used to be (committed to the repository by a pull request) ...
    (project / ".funnelcheck" / "cache").mkdir(parents=True)
    for name in ("parse.pickle", "git-parse.pickle", "history-parse.pickle", "parse.00.pickle"):
        (project / ".funnelcheck" / "cache" / name).write_bytes(bomb)
    # ... and where it is now, in case someone can write there
    folder = cache_dir(project)
    folder.mkdir(parents=True)
    for name in ["parse.json", *(f"parse.{i:02d}.json" for i in range(16))]:
        (folder / name).write_bytes(bomb)
    code, findings = _validate(capsys)
    assert not target.exists()
    assert code == 1 and {f["code"] for f in findings} >= {"yaml-syntax", "id-mismatch"}
    code, _ = _validate(capsys)  # and again, now from the rebuilt cache
    assert not target.exists()


def test_random_byte_flips_in_every_cache_file_change_nothing(project, capsys):
    clean = _validate(capsys)
    assert clean[0] == 1 and clean[1]
    folder = cache_dir(project)
    files = sorted(p for p in folder.iterdir())
    assert len(files) == 18  # the parse cache's index and 16 shards, and the checks' memo
    rng = random.Random(2026)
    for round_ in range(5):
        for path in sorted(folder.iterdir()):
            raw = bytearray(path.read_bytes())
            for _ in range(3):
                i = rng.randrange(len(raw))
                raw[i] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(raw))
        assert _validate(capsys) == clean, f"round {round_}"
        assert _validate(capsys) == clean  # the rebuilt cache is right too


def test_an_edited_entry_with_a_valid_checksum_but_wrong_shape_is_rebuilt(project, capsys):
    clean = _validate(capsys)
    folder = cache_dir(project)
    for i, path in enumerate(sorted(folder.glob("parse.*.json"))):
        shapes = [None, [], {"entries": [[1, 2]], "stamps": []}, {"entries": [], "stamps": [["x", 5, "k", 1]]},
                  {"entries": [["parameter", "x", "k", True, {}, [[1, 2, 3, 4, 5, 6, 7]]]], "stamps": []}]
        write_entry(path, shapes[i % len(shapes)])
    assert _validate(capsys) == clean


def test_the_work_tree_gets_no_cache_files(project, capsys):
    _validate(capsys)
    assert not (project / ".funnelcheck").exists()
    assert len(list(cache_dir(project).iterdir())) == 18  # parse index, 16 shards, the checks memo
