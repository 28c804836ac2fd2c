"""Loading: positions of nodes, sources, config discovery, the parse cache."""
from __future__ import annotations


import shutil

from funnelcheck.load.cache import cache_dir
from funnelcheck.load.registry import ParseCache, find_project, load, load_project
from funnelcheck.load.sources import DictSource, WorkTreeSource
from funnelcheck.yamlload import load_yaml

from conftest import EXAMPLE


def test_every_node_has_its_line_and_column():
    doc, findings = load_yaml("f.yaml", b"id: a\nedges:\n  - {id: x, from: a}\n  - id: y\n    to:   b\n")
    assert not findings
    assert doc.marks[("edges", 0, "from")] == (3, 19)
    assert doc.marks[("edges", 1, "to")] == (5, 11)
    assert doc.key_marks[("edges", 1, "to")] == (5, 5)


def test_example_registry_loads_into_the_model():
    loaded = load(WorkTreeSource(EXAMPLE))
    assert not [f for f in loaded.findings if f.severity == "error"], loaded.findings
    reg = loaded.registry
    assert [c.id for c in reg.contexts] == ["channel", "device", "utm_source", "browser"]
    assert len(reg.parameters) >= 25
    g = reg.graphs["saas-signup"]
    assert len(g.nodes) >= 8
    seed = reg.parameters["signup-google-mobile"]
    assert seed.context == {"channel": "google", "device": "mobile"}
    assert (seed.value.mean, seed.value.stdev) == (0.32, 0.06)
    assert reg.parameters["checkout-base"].value.mean == 0.55


def test_yaml_files_outside_the_known_folders_and_non_yaml_files_are_ignored():
    loaded = load(DictSource({"README.md": "# hi", "notes/x.yaml": "::: not yaml", "contexts.yaml": "contexts: []\n"}))
    assert loaded.findings == []


def test_config_discovery_and_registry_override(tmp_path, monkeypatch):
    (tmp_path / "models" / "sub").mkdir(parents=True)
    (tmp_path / "models" / "funnelcheck.yaml").write_text("registry: reg\n")
    monkeypatch.chdir(tmp_path / "models" / "sub")
    project = find_project()
    assert project.registry == tmp_path / "models" / "reg"
    assert project.config_path == tmp_path / "models" / "funnelcheck.yaml"
    assert find_project(registry="elsewhere").registry.name == "elsewhere"


def test_parse_cache_is_reused_and_survives_corruption(tmp_path):
    reg = tmp_path / "registry"
    (reg / "parameters").mkdir(parents=True)
    (reg / "contexts.yaml").write_text("contexts: []\n")
    (reg / "parameters" / "a.yaml").write_text("id: a\nedge: e\nvalue: {mean: 0.5, stdev: 0.1}\n")
    cache_file = tmp_path / "cache.pickle"
    cold = ParseCache(cache_file)
    load(WorkTreeSource(reg), cache=cold)
    cold.save()  # the loader never saves: its caller does
    warm = ParseCache(cache_file)
    assert len(warm.entries) == 2
    load(WorkTreeSource(reg), cache=warm)
    assert not warm.dirty  # nothing re-parsed
    cache_file.write_bytes(b"garbage")
    assert ParseCache(cache_file).entries == {}


def test_load_project_writes_its_cache_in_the_user_cache_folder(tmp_path, monkeypatch):
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "contexts.yaml").write_text("contexts: []\n")
    monkeypatch.chdir(tmp_path)
    load_project(find_project())
    assert (cache_dir(tmp_path) / "parse.json").is_file()
    assert not (tmp_path / ".funnelcheck").exists()  # nothing in the repository


def test_parsing_over_several_processes_gives_what_one_process_gives(tmp_path, monkeypatch):
    """Past PARALLEL_AT uncached files, parsing is spread over forked workers: the model, the findings
    and the cache entries must be the ones a serial parse gives (bad files and findings included)."""
    from funnelcheck.load import registry as registry_module

    reg = tmp_path / "registry"
    shutil.copytree(EXAMPLE, reg)
    (reg / "parameters" / "broken.yaml").write_text("id: broken\nedge: [signup\n")
    (reg / "parameters" / "odd.yaml").write_text("id: not-odd\nedge: signup\nvalue: {mean: .nan, stdev: 0.1}\n")
    serial_cache, parallel_cache = ParseCache(), ParseCache()
    serial = load(WorkTreeSource(reg), cache=serial_cache)
    monkeypatch.setattr(registry_module, "PARALLEL_AT", 2)
    parallel = load(WorkTreeSource(reg), cache=parallel_cache)
    assert sorted(parallel.findings) == sorted(serial.findings) and len(serial.findings) >= 2
    assert parallel.registry.parameters == serial.registry.parameters
    assert parallel.registry.graphs == serial.registry.graphs and parallel.failed == serial.failed
    assert parallel_cache.entries == serial_cache.entries
