"""Issue 7, classes 5 and 6: YAML limits measure what they claim; values are finite, ids whole."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelcheck.load.registry import load
from funnelcheck.load.schemafast import ecma_regex
from funnelcheck.load.sources import DictSource
from funnelcheck.yamlload import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES, load_yaml

REPO = Path(__file__).resolve().parent.parent
CONTEXTS = "contexts:\n  - id: channel\n    values:\n      - {id: google, share: 1.0}\n"


def _codes(files: dict) -> dict:
    loaded = load(DictSource({"contexts.yaml": CONTEXTS, **files}))
    return {(f.path, f.code): f for f in loaded.findings}


def _chain_graph(n: int) -> str:
    lines = ["id: chain", "nodes:", "  - id: n0", "    entry: {weight: 1}"]
    lines += [f"  - id: n{i}" for i in range(1, n - 1)]
    lines += [f"  - id: n{n - 1}", "    outcome: success", "edges:"]
    lines += [f"  - {{id: e{i}, from: n{i}, to: n{i + 1}, p: {{mean: 0.5, stdev: 0.1}}}}" for i in range(n - 1)]
    return "\n".join(lines) + "\n"


def test_a_plain_2500_node_graph_is_valid():
    text = _chain_graph(2500)
    doc, findings = load_yaml("g.yaml", text.encode())
    assert findings == [] and len(doc.data["nodes"]) == 2500 and len(doc.data["edges"]) == 2499
    assert not [f for f in _codes({"graphs/chain.yaml": text}).values() if f.severity == "error"]


def test_the_alias_guard_counts_expansions():
    # Nine levels of ten aliases: 10**9 values if expanded.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    doc, findings = load_yaml("bomb.yaml", ("\n".join(lines) + "\n").encode())
    assert doc is None and [f.code for f in findings] == ["alias-bomb"]
    # A modest use of aliases, under the budget, is fine: a1 and a2 bring in 110 + 1,110 values.
    doc, findings = load_yaml("ok.yaml", ("\n".join(lines[:3]) + "\n").encode())
    assert findings == [] and len(doc.data["a2"]) == 10 and doc.data["a2"][0][0] == ["x"] * 10
    # Exactly at the limit and one past it, counting every value an alias brings in (list + items).
    size = MAX_ALIAS_NODES // 11
    at = f"base: &b [{', '.join(['1'] * 10)}]\nuses: [{', '.join(['*b'] * size)}]\n"
    assert load_yaml("at.yaml", at.encode())[1] == []
    past = f"base: &b [{', '.join(['1'] * 10)}]\nuses: [{', '.join(['*b'] * (size + 1))}]\n"
    assert [f.code for f in load_yaml("past.yaml", past.encode())[1]] == ["alias-bomb"]


def test_a_recursive_alias_is_a_finding():
    doc, findings = load_yaml("r.yaml", b"a: &a [1, *a]\n")
    assert doc is None and findings[0].code in ("too-deep", "alias-bomb")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 999])
@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_a_finding(depth, style):
    if style == "flow":
        text = "id: p\nedge: e\ndescription: " + "[" * depth + "]" * depth + "\n"
    else:
        text = "id: p\nedge: e\ndescription:\n" + "".join("  " * i + "- \n" for i in range(depth))
    (f,) = _codes({"parameters/p.yaml": text}).values()
    assert f.code == "too-deep" and f.severity == "error" and str(MAX_DEPTH) in f.message


def test_nesting_at_the_limit_is_not_refused():
    value = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    doc, findings = load_yaml("x.yaml", f"{value}\n".encode())
    assert findings == [] and doc is not None


def test_a_50_mb_file_is_refused_unparsed_in_bounded_memory(tmp_path):
    root = tmp_path / "repo"
    (root / "registry" / "parameters").mkdir(parents=True)
    (root / "registry" / "contexts.yaml").write_text(CONTEXTS)
    with open(root / "registry" / "parameters" / "huge.yaml", "w") as fh:
        fh.write("id: huge\nedge: e\ndescription: [")
        chunk = "1, " * 100_000
        for _ in range(50 * 1024 * 1024 // len(chunk)):
            fh.write(chunk)
        fh.write("1]\n")
    limit = 1024 ** 3  # address space: the unbounded parser needed ~7 GB for this file
    script = ("import resource, runpy, sys\n"
              f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
              "sys.argv = ['funnelcheck', 'validate', '--format', 'json']\n"
              "runpy.run_module('funnelcheck', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert done.returncode == 1, done.stderr[-2000:]
    (f,) = [f for f in json.loads(done.stdout) if f["code"] == "file-too-large"]
    assert f["path"] == "registry/parameters/huge.yaml" and f"{MAX_FILE_BYTES:,}" in f["message"]


def test_just_under_the_size_limit_parses():
    body = "id: p\nedge: e\ndescription: '"
    text = body + "x" * (MAX_FILE_BYTES - len(body) - 2) + "'\n"
    assert len(text) == MAX_FILE_BYTES
    doc, findings = load_yaml("p.yaml", text.encode())
    assert findings == [] and doc is not None
    assert load_yaml("p.yaml", (text + " ").encode())[1][0].code == "file-too-large"


@pytest.mark.parametrize("spelling", [".nan", ".NaN", ".inf", "-.inf", "+.Inf"])
def test_non_finite_entry_weights_are_findings(spelling):
    graph = textwrap.dedent(f"""\
        id: g
        nodes:
          - id: a
            entry: {{weight: {spelling}}}
          - id: b
            outcome: success
        edges:
          - {{id: ab, from: a, to: b, p: {{mean: 1, stdev: 0}}}}
        """)
    found = _codes({"graphs/g.yaml": graph})
    f = found[("registry/graphs/g.yaml", "non-finite")]
    assert (f.line, f.column, f.json_path) == (4, 21, "$.nodes[0].entry.weight") and f.severity == "error"


def test_non_finite_numbers_anywhere_are_findings_each():
    text = "id: p\nedge: e\nvalue: {mean: .nan, stdev: .inf}\nfallback_value: {mean: 0.5, stdev: 0.1}\n"
    doc, findings = load_yaml("p.yaml", text.encode())
    assert doc is None and [(f.code, f.json_path) for f in findings] == [
        ("non-finite", "$.value.mean"), ("non-finite", "$.value.stdev")]
    assert load_yaml("q.yaml", b"big: 1e308\nsmall: -1e-308\n")[1] == []


@pytest.mark.parametrize("bad", ["signup\n", "signup\r", "sign|up", "sign`up", "sign up", "<b>", "a*b", "[x](y)"])
def test_ids_that_would_break_a_table_or_a_line_are_rejected(bad):
    text = f"id: {json.dumps(bad)}\nedge: e\nvalue: {{mean: 0.5, stdev: 0.1}}\n"
    found = _codes({"parameters/p.yaml": text})
    f = found[("registry/parameters/p.yaml", "schema")]
    assert f.json_path == "$.id" and "not a valid id" in f.message


def test_references_with_a_trailing_newline_are_rejected():
    text = 'id: p\nedge: "e\\n"\ncontext_filter: {channel: "google\\n"}\nvalue: {mean: 0.5, stdev: 0.1}\n'
    loaded = load(DictSource({"contexts.yaml": CONTEXTS, "parameters/p.yaml": text}))
    found = [f.json_path for f in loaded.findings if f.code == "schema"]
    assert sorted(found) == ["$.context_filter.channel", "$.edge"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab-_\n\r$|` ", max_size=8))
def test_ecma_patterns_match_the_whole_string(text):
    import re

    assert (ecma_regex("^[a-z0-9][a-z0-9_-]*$").search(text) is not None) == \
        (re.fullmatch("[a-z0-9][a-z0-9_-]*", text) is not None)
    assert (ecma_regex(r"^\d+[smhd]$").search(text) is not None) == (re.fullmatch(r"\d+[smhd]", text) is not None)
    assert ecma_regex("^[$]x$").search("$x") is not None and ecma_regex("^[$]x$").search("$x\n") is None
