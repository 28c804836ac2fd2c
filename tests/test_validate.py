"""`funnelcheck validate`: every bad input at its file, line and code; formats; cache; speed."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from itertools import product

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelcheck.load import registry as registry_module
from funnelcheck.findings import Finding
from funnelcheck.load.cache import cache_dir
from funnelcheck.load.registry import load
from funnelcheck.render import findings as render
from funnelcheck.load.sources import DictSource
from funnelcheck.checks import CODES, validate

from conftest import CONTEXTS, EXAMPLE, GOOD, GRAPH, REPO, param, write_tree
from gitrepos import GIT_ENV


def where(findings: list[dict], code: str) -> list[tuple[str, int, str]]:
    return sorted((f["path"], f["line"], f["code"]) for f in findings if f["code"] == code)


def only(findings: list[dict], code: str) -> dict:
    hits = [f for f in findings if f["code"] == code]
    assert len(hits) == 1, findings
    return hits[0]


def test_the_good_registry_is_clean(check):
    code, findings, result = check()
    assert (code, findings) == (0, []), result


def test_the_example_registry_is_clean(cli):
    result = cli("validate", "--registry", EXAMPLE, "--format", "json", "--strict", cwd=EXAMPLE.parent)
    assert result.code == 0 and json.loads(result.out) == [], result


# --- what one file can tell alone (reported by the loader, checked here end to end) ------------

def test_broken_yaml(check):
    code, findings, _ = check({"registry/parameters/signup/signup-base.yaml": "id: signup-base\nedge: [signup\nvalue: 1\n"})
    assert code == 1
    f = only(findings, "yaml-syntax")
    assert (f["path"], f["line"]) == ("registry/parameters/signup/signup-base.yaml", 3)


def test_duplicate_keys(check):
    text = "id: signup-base\nedge: signup\nvalue: {mean: 0.3, stdev: 0.05}\nedge: other\n"
    code, findings, _ = check({"registry/parameters/signup/signup-base.yaml": text})
    assert code == 1
    assert where(findings, "duplicate-key") == [("registry/parameters/signup/signup-base.yaml", 4, "duplicate-key")]
    assert "first defined on line 2" in only(findings, "duplicate-key")["message"]


def test_non_utf8(check):
    raw = b"id: signup-base\nedge: signup\ndescription: caf\xe9 au lait\nvalue: {mean: 0.3, stdev: 0.05}\n"
    code, findings, _ = check({"registry/parameters/signup/signup-base.yaml": raw})
    f = only(findings, "encoding")
    assert code == 1 and (f["path"], f["line"], f["column"]) == ("registry/parameters/signup/signup-base.yaml", 3, 17)


def test_alias_bomb_is_refused_fast(check):
    # Nine levels of ten aliases each: 10**9 nodes if expanded.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    start = time.perf_counter()
    code, findings, _ = check({"registry/parameters/bomb.yaml": "\n".join(lines) + "\n"})
    assert time.perf_counter() - start < 5
    assert code == 1
    assert where(findings, "alias-bomb") == [("registry/parameters/bomb.yaml", 1, "alias-bomb")]


def test_wrong_types(check):
    text = "id: signup-base\nedge: signup\nvalue:\n  mean: high\n  stdev: 0.05\n"
    code, findings, _ = check({"registry/parameters/signup/signup-base.yaml": text})
    f = only(findings, "schema")
    assert code == 1 and (f["line"], f["column"], f["json_path"]) == (4, 9, "$.value.mean")
    assert "expected a number" in f["message"]


def test_stem_differs_from_id(check):
    code, findings, _ = check({"registry/parameters/signup/signup-base.yaml": param("signup-default", "signup")})
    assert code == 1
    assert where(findings, "id-mismatch") == [("registry/parameters/signup/signup-base.yaml", 1, "id-mismatch")]


@pytest.mark.parametrize("content", ["", "# only a comment\n", "---\n"])
def test_empty_files(check, content):
    code, findings, _ = check({"registry/parameters/empty.yaml": content})
    assert code == 1
    assert where(findings, "empty-file") == [("registry/parameters/empty.yaml", 1, "empty-file")]


def test_a_list_where_a_mapping_belongs(check):
    text = "id: signup-google\nedge: signup\ncontext_filter:\n  - channel\n  - google\nvalue: {mean: 0.4, stdev: 0.05}\n"
    code, findings, _ = check({"registry/parameters/signup/signup-google.yaml": text})
    f = only(findings, "schema")
    assert code == 1 and (f["path"], f["line"]) == ("registry/parameters/signup/signup-google.yaml", 4)
    assert "expected a mapping, got a list" in f["message"]


def test_a_whole_file_that_is_a_list(check):
    code, findings, _ = check({"registry/graphs/shop.yaml": "- id: shop\n"})
    f = only(findings, "schema")
    assert code == 1 and (f["path"], f["line"]) == ("registry/graphs/shop.yaml", 1)


def test_duplicate_ids_across_files(check):
    code, findings, _ = check({"registry/parameters/other/signup-base.yaml": param("signup-base", "signup", 0.2)})
    assert code == 1
    assert where(findings, "duplicate-id") == [("registry/parameters/signup/signup-base.yaml", 1, "duplicate-id")]


# --- references between files -----------------------------------------------------------------

def test_unknown_context_key_and_value(check):
    code, findings, _ = check({
        "registry/parameters/signup/signup-google.yaml": param("signup-google", "signup", context="chanel: google"),
        "registry/parameters/signup/signup-bing.yaml": param("signup-bing", "signup", context="channel: bing"),
    })
    assert code == 1
    assert where(findings, "unknown-context") == [("registry/parameters/signup/signup-google.yaml", 3, "unknown-context")]
    assert "did you mean 'channel'" in only(findings, "unknown-context")["message"]
    f = only(findings, "unknown-context-value")
    assert (f["path"], f["line"], f["column"]) == ("registry/parameters/signup/signup-bing.yaml", 3, 27)


def test_unknown_visited_node(check):
    code, findings, _ = check({
        "registry/parameters/signup/signup-google-home.yaml":
            param("signup-google-home", "signup", context="channel: google", visited="home, checkout")})
    f = only(findings, "unknown-node")
    assert code == 1 and (f["path"], f["line"], f["column"]) == ("registry/parameters/signup/signup-google-home.yaml", 4, 24)
    assert "'checkout'" in f["message"]


def test_unknown_edge(check):
    code, findings, _ = check({"registry/parameters/signup/signup-google.yaml": param("signup-google", "sign-up")})
    f = only(findings, "unknown-edge")
    assert code == 1 and (f["path"], f["line"], f["column"]) == ("registry/parameters/signup/signup-google.yaml", 2, 7)
    assert "did you mean 'signup'" in f["message"]


def test_unknown_and_mismatched_base_parameters(check):
    graph = GRAPH.replace("p: {parameter_id: to-pricing-base}", "p: {parameter_id: to-pricing-basis}")
    code, findings, _ = check({"registry/graphs/shop.yaml": graph})
    assert code == 1
    assert where(findings, "unknown-parameter") == [("registry/graphs/shop.yaml", 17, "unknown-parameter")]
    graph = GRAPH.replace("p: {parameter_id: to-pricing-base}", "p: {parameter_id: signup-google}")
    code, findings, _ = check({"registry/graphs/shop.yaml": graph})
    f = only(findings, "base-mismatch")
    assert (f["path"], f["line"], code) == ("registry/graphs/shop.yaml", 17, 1)
    assert "supplies edge 'signup'" in f["message"]


def test_a_named_base_must_be_filter_free(check):
    code, findings, _ = check({"registry/parameters/to-pricing-base.yaml":
                               param("to-pricing-base", "to-pricing", 0.4, context="device: mobile")})
    f = only(findings, "base-mismatch")
    assert (code, f["path"], f["line"]) == (1, "registry/graphs/shop.yaml", 17)
    assert "has filters (device=mobile)" in f["message"]


def test_edge_endpoints_must_be_nodes(check):
    graph = GRAPH.replace("    to: bought\n", "    to: purchased\n")
    code, findings, _ = check({"registry/graphs/shop.yaml": graph})
    assert code == 1
    assert where(findings, "unknown-node") == [("registry/graphs/shop.yaml", 31, "unknown-node")]


def test_unknown_connection(check):
    text = param("signup-base", "signup") + "observation_source: {type: sql, connection: lake, query: SELECT 1}\n"
    code, findings, _ = check({"funnelcheck.yaml": "connections:\n  warehouse: {url_env: WAREHOUSE_URL}\n",
                               "registry/parameters/signup/signup-base.yaml": text})
    f = only(findings, "unknown-connection")
    assert (code, f["path"], f["line"]) == (1, "registry/parameters/signup/signup-base.yaml", 4)
    assert "known: warehouse" in f["message"]


# --- probabilities ----------------------------------------------------------------------------

def test_out_of_range_probabilities(check):
    code, findings, _ = check({
        "registry/parameters/signup/signup-google.yaml": param("signup-google", "signup", 1.2, 0.0, context="channel: google"),
        "registry/graphs/shop.yaml": GRAPH.replace("p: {mean: 0.3, stdev: 0.05}", "p: {mean: -0.1, stdev: 0.05}"),
    })
    assert code == 1
    assert where(findings, "probability-range") == [
        ("registry/graphs/shop.yaml", 36, "probability-range"),
        ("registry/parameters/signup/signup-google.yaml", 4, "probability-range")]


@pytest.mark.parametrize("mean, stdev, bad", [
    (0.3, 0.46, True),    # 0.46² = 0.2116 >= 0.3·0.7 = 0.21
    (0.3, 0.45, False),   # 0.2025 < 0.21
    (0.3, -0.01, True),
    (0.0, 0.0, False),    # a point mass is fine
    (1.0, 0.01, True),    # mean 1 leaves no room for spread
])
def test_infeasible_stdev(check, mean, stdev, bad):
    code, findings, _ = check({"registry/parameters/signup/signup-base.yaml": param("signup-base", "signup", mean, stdev)})
    assert where(findings, "infeasible-stdev") == (
        [("registry/parameters/signup/signup-base.yaml", 3, "infeasible-stdev")] if bad else [])
    assert code == (1 if bad else 0)


def test_fallback_value_and_prior_are_checked_too(check):
    text = ("id: signup-base\nedge: signup\nprior_source: {type: sheets, url: 'https://sheets.example/d/abc', range: A1:B1}\n"
            "fallback_value: {mean: 0.3, stdev: 0.5}\nbayesian_update:\n  prior: {alpha: 0, beta: 12}\n")
    code, findings, _ = check({"registry/parameters/signup/signup-base.yaml": text})
    assert code == 1
    assert where(findings, "infeasible-stdev") == [("registry/parameters/signup/signup-base.yaml", 4, "infeasible-stdev")]
    assert where(findings, "nonpositive-prior") == [("registry/parameters/signup/signup-base.yaml", 6, "nonpositive-prior")]
    assert where(findings, "missing-value") == []  # an external prior with a fallback needs no value


def test_a_parameter_needs_a_value(check):
    code, findings, _ = check({"registry/parameters/signup/signup-google.yaml":
                               "id: signup-google\nedge: signup\ncontext_filter: {channel: google}\n"})
    assert code == 1
    assert where(findings, "missing-value") == [("registry/parameters/signup/signup-google.yaml", 1, "missing-value")]


# --- parameters and bases ---------------------------------------------------------------------

def test_two_parameters_for_the_same_edge_and_filters(check):
    code, findings, _ = check({"registry/parameters/signup/google-signup.yaml":
                               param("google-signup", "signup", 0.2, context="channel: google")})
    assert code == 1
    assert where(findings, "conflicting-parameters") == [
        ("registry/parameters/signup/google-signup.yaml", 2, "conflicting-parameters"),
        ("registry/parameters/signup/signup-google.yaml", 2, "conflicting-parameters")]


def test_edge_with_no_base(check):
    code, findings, _ = check({"registry/parameters/signup/signup-base.yaml": None})
    assert code == 1
    assert where(findings, "no-base") == [("registry/graphs/shop.yaml", 26, "no-base")]


def test_edge_with_two_bases(check):
    code, findings, _ = check({"registry/parameters/buy-base.yaml": param("buy-base", "buy", 0.5)})
    assert code == 1
    assert where(findings, "multiple-bases") == [("registry/graphs/shop.yaml", 32, "multiple-bases")]
    assert "buy-base" in only(findings, "multiple-bases")["message"]


def test_inline_p_and_parameter_id_together_are_two_bases(check):
    graph = GRAPH.replace("p: {parameter_id: to-pricing-base}", "p: {parameter_id: to-pricing-base, mean: 0.4, stdev: 0.1}")
    code, findings, _ = check({"registry/graphs/shop.yaml": graph})
    assert code == 1 and where(findings, "multiple-bases") == [("registry/graphs/shop.yaml", 17, "multiple-bases")]


# --- graph structure --------------------------------------------------------------------------

def test_outcome_with_out_edges(check):
    graph = GRAPH + "  - id: upsell\n    from: bought\n    to: pricing\n    p: {mean: 0.1, stdev: 0.01}\n"
    code, findings, _ = check({"registry/graphs/shop.yaml": graph})
    assert code == 1
    assert where(findings, "outcome-out-edge") == [("registry/graphs/shop.yaml", 38, "outcome-out-edge")]


def test_unreachable_nodes(check):
    graph = GRAPH.replace("  - id: bought\n", "  - id: orphan\n  - id: bought\n")
    code, findings, _ = check({"registry/graphs/shop.yaml": graph})
    assert code == 1
    assert where(findings, "unreachable-node") == [("registry/graphs/shop.yaml", 9, "unreachable-node")]


def test_no_entry_and_no_success(check):
    graph = GRAPH.replace("    entry: {weight: 0.7}\n", "").replace("    entry: {weight: 0.3}\n", "") \
        .replace("outcome: success", "outcome: failure")
    code, findings, _ = check({"registry/graphs/shop.yaml": graph})
    assert code == 1
    assert where(findings, "no-entry") == [("registry/graphs/shop.yaml", 3, "no-entry")]
    assert where(findings, "no-success") == [("registry/graphs/shop.yaml", 3, "no-success")]


def test_duplicate_node_and_edge_ids_in_a_graph(check):
    graph = GRAPH.replace("  - id: lost\n", "  - id: lost\n  - id: lost\n") + \
        "  - id: buy\n    from: signup\n    to: lost\n    p: {mean: 0.1, stdev: 0.01}\n"
    code, findings, _ = check({"registry/graphs/shop.yaml": graph})
    assert code == 1
    assert where(findings, "duplicate-node") == [("registry/graphs/shop.yaml", 12, "duplicate-node")]
    assert where(findings, "duplicate-edge") == [("registry/graphs/shop.yaml", 38, "duplicate-edge")]


# --- contexts ---------------------------------------------------------------------------------

def test_shares_that_do_not_sum_to_one(check):
    code, findings, _ = check({"registry/contexts.yaml": CONTEXTS.replace("share: 0.4", "share: 0.3")})
    f = only(findings, "shares-sum")
    assert (code, f["path"], f["line"]) == (1, "registry/contexts.yaml", 4)
    assert "sum to 0.9" in f["message"]


def test_shares_given_for_some_values_only(check):
    code, findings, _ = check({"registry/contexts.yaml": CONTEXTS.replace("{id: desktop, share: 0.5}", "{id: desktop}")})
    assert code == 1 and where(findings, "shares-partial") == [("registry/contexts.yaml", 9, "shares-partial")]


def test_no_shares_is_a_warning(check):
    code, findings, _ = check({"registry/contexts.yaml": CONTEXTS.replace(", share: 0.5}", "}")})
    f = only(findings, "shares-missing")
    assert (code, f["severity"], f["line"]) == (0, "warning", 8)


# --- outgoing sums ----------------------------------------------------------------------------

def test_outgoing_sum_above_one_in_one_context_names_it(check):
    # pricing's out-edges: back-home 0.1 (inline) + signup; google mobile after home: 0.95 → 1.05.
    code, findings, _ = check({"registry/parameters/signup/signup-google-mobile-home.yaml": param(
        "signup-google-mobile-home", "signup", 0.95, 0.01, context="channel: google, device: mobile", visited="home")})
    assert code == 1
    f = only(findings, "outgoing-sum")
    assert (f["path"], f["line"]) == ("registry/graphs/shop.yaml", 7)
    assert "node 'pricing' sum to 1.05 > 1" in f["message"]
    assert "channel=google, device=mobile, visited home" in f["message"]
    assert "signup 0.95 (signup-google-mobile-home)" in f["message"] and "back-home 0.1 (inline p)" in f["message"]


def test_outgoing_sum_names_the_visited_nodes_and_merges_what_does_not_matter(check):
    # signup-blog (0.95) wins for traffic that came through the blog, except where a context
    # filter outranks it (google); whether home was visited too does not matter, so it is not named.
    code, findings, _ = check({"registry/parameters/signup/signup-blog.yaml":
                               param("signup-blog", "signup", 0.95, 0.01, visited="blog")})
    f = only(findings, "outgoing-sum")
    assert code == 1
    assert "sum to 1.05 > 1 for channel=organic, visited blog: back-home 0.1 (inline p) + signup 0.95" in f["message"]


def test_outgoing_sums_that_fit_pass(check):
    code, findings, _ = check({"registry/parameters/signup/signup-google-mobile-home.yaml": param(
        "signup-google-mobile-home", "signup", 0.9, 0.01, context="channel: google, device: mobile", visited="home")})
    # The means sum to exactly 1: no error. About half the draws pass 1, which is a warning (test_draws.py).
    assert code == 0 and [f["code"] for f in findings] == ["outgoing-sum-draws"]


# --- resolution ties --------------------------------------------------------------------------

def test_resolution_tie_is_a_warning_that_names_the_winner(check):
    code, findings, _ = check({"registry/parameters/signup/signup-mobile.yaml":
                               param("signup-mobile", "signup", 0.35, context="device: mobile")})
    f = only(findings, "resolution-tie")
    assert (code, f["severity"], f["path"], f["line"]) == (0, "warning", "registry/parameters/signup/signup-mobile.yaml", 3)
    assert "channel=google, device=mobile" in f["message"]
    assert "'signup-google' wins by context priority" in f["message"]


def test_no_tie_when_a_more_specific_parameter_covers_it(check):
    code, findings, result = check({
        "registry/parameters/signup/signup-mobile.yaml": param("signup-mobile", "signup", 0.35, context="device: mobile"),
        "registry/parameters/signup/signup-google-mobile.yaml":
            param("signup-google-mobile", "signup", 0.35, context="channel: google, device: mobile")})
    assert (code, findings) == (0, []), result


def test_a_tie_by_id(check):
    code, findings, _ = check({"registry/parameters/signup/signup-google-blog.yaml":
                               param("signup-google-blog", "signup", 0.3, context="channel: google", visited="blog")})
    f = only(findings, "resolution-tie")
    assert f["path"] == "registry/parameters/signup/signup-google-home.yaml"
    assert "'signup-google-blog' wins by parameter id" in f["message"]


def test_no_tie_when_the_union_of_visited_filters_cannot_occur(check):
    # home and blog are both entries; both are visited only by users who went blog → pricing → home.
    graph = GRAPH.replace("    to: home\n", "    to: lost\n")
    code, findings, _ = check({"registry/graphs/shop.yaml": graph,
                               "registry/parameters/signup/signup-google-blog.yaml":
                                   param("signup-google-blog", "signup", 0.3, context="channel: google", visited="blog")})
    assert where(findings, "resolution-tie") == []


# --- credentials ------------------------------------------------------------------------------

def test_credentials_written_inline(check):
    config = textwrap.dedent("""\
        connections:
          lake: {url: "postgresql://etl:s3cret@db.internal/lake"}
          ok: {url: "duckdb:///examples/events.duckdb"}
          env: {url_env: LAKE_URL}
        alerts:
          slack: {webhook_url: "https://hooks.slack.com/services/T000/B000/XXXX"}
          email: {smtp_host: localhost, smtp_password: hunter2}
          webhook: {url_env: HOOK_URL, token_env: HOOK_TOKEN}
        """)
    text = param("signup-base", "signup") + \
        "prior_source: {type: csv, url: 'https://data.example/priors.csv?key=abc123'}\n"
    code, findings, _ = check({"funnelcheck.yaml": config, "registry/parameters/signup/signup-base.yaml": text})
    assert code == 1
    assert where(findings, "inline-credential") == [
        ("funnelcheck.yaml", 2, "inline-credential"), ("funnelcheck.yaml", 6, "inline-credential"),
        ("funnelcheck.yaml", 7, "inline-credential"),
        ("registry/parameters/signup/signup-base.yaml", 4, "inline-credential")]
    assert not any("s3cret" in f["message"] or "hunter2" in f["message"] for f in findings)


# --- the registry folder ----------------------------------------------------------------------

def test_non_yaml_files_are_ignored(check):
    code, findings, _ = check({"registry/README.md": "# not: [yaml", "registry/parameters/notes.txt": "{{{",
                               "registry/parameters/data.json": "{]"})
    assert (code, findings) == (0, [])


def test_a_symlink_leaving_the_registry_is_refused(check, tmp_path):
    (tmp_path / "outside.yaml").write_text(param("stolen", "signup", 0.1, context="device: desktop"))
    (tmp_path / "registry" / "parameters").mkdir(parents=True)
    os.symlink(tmp_path / "outside.yaml", tmp_path / "registry" / "parameters" / "stolen.yaml")
    code, findings, _ = check()
    assert code == 1
    assert where(findings, "symlink-escape") == [("registry/parameters/stolen.yaml", 1, "symlink-escape")]


def test_a_missing_registry_folder_is_a_one_line_usage_error(cli, tmp_path):
    result = cli("validate", "--registry", "nowhere", cwd=tmp_path)
    assert result.code == 2
    assert result.out == "" and result.err.strip() == "funnelcheck validate: error: registry folder not found: nowhere"


def test_broken_files_do_not_cascade_into_reference_errors(check):
    # The graph does not load; its edges' parameters are not then also 'unknown-edge'.
    code, findings, _ = check({"registry/graphs/shop.yaml": GRAPH.replace("nodes:", "nodes: [")})
    assert code == 1 and {f["code"] for f in findings} == {"yaml-syntax"}


# --- output formats and options ---------------------------------------------------------------

BAD_TWO_FILES = {
    "registry/parameters/signup/signup-google.yaml": param("signup-google", "signup", 0.4, 0.9, context="channel: google"),
    "registry/contexts.yaml": CONTEXTS.replace("share: 0.4", "share: 0.3"),
}


def test_text_format(tmp_path, cli):
    write_tree(tmp_path, {**GOOD, **BAD_TWO_FILES})
    result = cli("validate", cwd=tmp_path)
    assert result.code == 1
    assert result.out.splitlines() == [
        "registry/contexts.yaml:4:7: error[shares-sum]: the shares of context 'channel' sum to 0.9, not 1 "
        "(google 0.6, organic 0.3)",
        "registry/parameters/signup/signup-google.yaml:4:27: error[infeasible-stdev]: stdev 0.9 is too large for "
        "mean 0.4: a Beta distribution needs stdev < sqrt(mean·(1−mean)) = 0.4899"]
    assert result.err.strip() == "funnelcheck validate: 2 errors, 0 warnings (4 parameters, 1 graph, 2 contexts)"


def test_json_format_has_the_spec_shape(tmp_path, cli):
    write_tree(tmp_path, {**GOOD, **BAD_TWO_FILES})
    result = cli("validate", "--format", "json", cwd=tmp_path)
    data = json.loads(result.out)
    assert result.code == 1 and result.err == ""
    assert [list(d) for d in data] == [["path", "line", "column", "severity", "code", "message", "json_path"]] * 2
    assert data[1]["json_path"] == "$.value.stdev"


def test_github_format_and_its_escaping(tmp_path, cli):
    write_tree(tmp_path, {**GOOD, **BAD_TWO_FILES})
    result = cli("validate", "--format", "github", cwd=tmp_path)
    assert result.out.splitlines()[0] == (
        "::error file=registry/contexts.yaml,line=4,col=7,title=funnelcheck shares-sum::"
        "the shares of context 'channel' sum to 0.9, not 1 (google 0.6, organic 0.3)")
    odd = Finding("a,b:c%.yaml", 2, 3, "warning", "x", "50% of\nit, really: yes")
    assert render.github([odd]) == "::warning file=a%2Cb%3Ac%25.yaml,line=2,col=3,title=funnelcheck x::50%25 of%0Ait, really: yes\n"


def test_github_format_is_automatic_on_github_actions_and_can_be_overridden(tmp_path, cli, monkeypatch):
    write_tree(tmp_path, {**GOOD, **BAD_TWO_FILES})
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert cli("validate", cwd=tmp_path).out.startswith("::error file=registry/contexts.yaml,line=4,col=7,")
    assert cli("validate", "--format", "text", cwd=tmp_path).out.startswith("registry/contexts.yaml:4:7: error[shares-sum]")


def test_strict_fails_on_warnings(check):
    tie = {"registry/parameters/signup/signup-mobile.yaml": param("signup-mobile", "signup", 0.35, context="device: mobile")}
    assert check(tie)[0] == 0
    code, findings, _ = check(tie, "--strict")
    assert code == 1 and [f["severity"] for f in findings] == ["warning"]


def test_paths_only_narrow_what_is_reported(tmp_path, cli):
    write_tree(tmp_path, {**GOOD, **BAD_TWO_FILES})
    result = cli("validate", "--format", "json", "registry/parameters", cwd=tmp_path)
    assert [f["path"] for f in json.loads(result.out)] == ["registry/parameters/signup/signup-google.yaml"]
    result = cli("validate", "--format", "json", "registry/contexts.yaml", cwd=tmp_path)
    assert [f["path"] for f in json.loads(result.out)] == ["registry/contexts.yaml"]
    # cross-file checks still see the whole registry: narrowing to a clean file passes
    result = cli("validate", "registry/graphs/shop.yaml", cwd=tmp_path)
    assert result.code == 0 and result.out == ""
    assert cli("validate", "registry/nope.yaml", cwd=tmp_path).code == 2


def test_every_code_is_documented():
    doc = (REPO / "docs" / "validation.md").read_text()
    missing = [code for code in CODES if f"`{code}`" not in doc]
    assert missing == []


# --- speed and imports ------------------------------------------------------------------------

HEAVY = ("numpy", "scipy", "pygit2", "sqlalchemy", "duckdb", "lark")  # dependencies, or the pipeline extra's


def test_validate_imports_nothing_heavy(tmp_path):
    write_tree(tmp_path, GOOD)
    probe = ("import sys\nfrom funnelcheck.cli import main\ncode = main(['validate', '--format', 'json'])\n"
             f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    for run in ("cold cache", "warm cache"):
        out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, env=env)
        assert out.stdout.splitlines()[-1] == "0 []", (run, out.stdout, out.stderr)


def test_the_parse_cache_is_reused_and_invalidated(tmp_path, cli, monkeypatch):
    write_tree(tmp_path, GOOD)
    parsed = []
    real = registry_module.parse_file
    monkeypatch.setattr(registry_module, "parse_file", lambda kind, sf, raw: parsed.append(sf.path) or real(kind, sf, raw))
    assert cli("validate", cwd=tmp_path).code == 0
    assert len(parsed) == 6
    parsed.clear()
    assert cli("validate", cwd=tmp_path).code == 0
    assert parsed == []  # everything came from the cache
    (tmp_path / "registry/parameters/signup/signup-base.yaml").write_text(param("signup-base", "signup", 1.5, 0.0))
    result = cli("validate", cwd=tmp_path)
    assert parsed == ["parameters/signup/signup-base.yaml"]
    assert result.code == 1 and "probability-range" in result.out
    cache = cache_dir(tmp_path) / "parse.json"
    assert cache.is_file()
    cache.write_bytes(b"garbage that fails the checksum")
    parsed.clear()
    again = cli("validate", cwd=tmp_path)
    assert (again.code, again.out) == (result.code, result.out) and len(parsed) == 6


# --- properties -------------------------------------------------------------------------------

class ShuffledSource(DictSource):
    def __init__(self, files: dict, seed: int):
        super().__init__(files)
        self.seed = seed

    def files(self):
        out = super().files()
        random.Random(self.seed).shuffle(out)
        return out


MESSY = {k[len("registry/"):]: v for k, v in GOOD.items()} | {
    "parameters/a/signup-base.yaml": param("signup-base", "signup", 0.2),           # duplicate id
    "parameters/signup-mobile.yaml": param("signup-mobile", "signup", 0.95, 0.01, context="device: mobile"),
    "parameters/signup-blog.yaml": param("signup-blog", "signup", 0.6, visited="blog"),
    "parameters/z.yaml": param("google-signup", "signup", 0.4, context="channel: google"),
    "contexts.yml": CONTEXTS,                                                         # a second contexts file
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6))
def test_file_order_never_changes_the_findings(seed):
    reference = validate(load(DictSource(MESSY)))
    assert {f.code for f in reference} >= {"duplicate-id", "duplicate-file", "outgoing-sum", "resolution-tie", "id-mismatch"}
    assert validate(load(ShuffledSource(MESSY, seed))) == reference


# An independent oracle for the outgoing-sum check: enumerate every full context assignment and
# every visited set a walk can produce, resolve by the rules of docs/formats.md#resolution written out directly.
NODES = ["a", "b", "c", "d", "win"]
EDGES = [("ab", "a", "b"), ("ac", "a", "c"), ("ba", "b", "a"), ("bc", "b", "c"), ("cd", "c", "d"), ("cw", "c", "win"),
         ("dw", "d", "win")]
ORACLE_CONTEXTS = {"channel": ["google", "organic", "direct"], "device": ["mobile", "desktop"]}


def oracle_nodes_over_one(params: list[dict]) -> set[str]:
    out_edges = {n: [e for e in EDGES if e[1] == n] for n in NODES}
    visited_sets = {n: set() for n in NODES}
    frontier = [("a", frozenset({"a"}))]
    seen = set(frontier)
    while frontier:
        node, visited = frontier.pop()
        visited_sets[node].add(visited)
        for _, _, target in out_edges[node]:
            nxt = (target, visited | {target})
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    priority = list(ORACLE_CONTEXTS)
    bad = set()
    for node, edges in out_edges.items():
        for visited in visited_sets[node]:
            for values in product(*ORACLE_CONTEXTS.values()):
                context = dict(zip(ORACLE_CONTEXTS, values))
                total = 0.0
                for edge_id, _, _ in edges:
                    matching = [p for p in params if p["edge"] == edge_id and set(p["visited"]) <= visited
                                and all(context[k] == v for k, v in p["context"].items())]
                    if matching:
                        best = min(matching, key=lambda p: (-len(p["context"]), -len(p["visited"]),
                                                            sorted(priority.index(k) for k in p["context"]), p["id"]))
                        total += best["mean"]
                if total > 1 + 1e-9:
                    bad.add(node)
    return bad


param_strategy = st.fixed_dictionaries({
    "edge": st.sampled_from([e[0] for e in EDGES]),
    "context": st.dictionaries(st.sampled_from(list(ORACLE_CONTEXTS)), st.just(None), max_size=2),
    "visited": st.lists(st.sampled_from(NODES[:4]), max_size=2, unique=True),
    "mean": st.sampled_from([0.3, 0.55, 0.7, 0.9, 0.05]),
    "pick": st.integers(0, 5),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(param_strategy, min_size=5, max_size=12))
def test_outgoing_sum_check_agrees_with_brute_force(raw):
    params, files, seen_filters = [], {}, set()
    for i, p in enumerate(raw):
        context = {k: ORACLE_CONTEXTS[k][p["pick"] % len(ORACLE_CONTEXTS[k])] for k in p["context"]}
        key = (p["edge"], tuple(sorted(context.items())), frozenset(p["visited"]))
        if key in seen_filters:
            continue
        seen_filters.add(key)
        params.append({"id": f"p{i}", "edge": p["edge"], "context": context, "visited": p["visited"], "mean": p["mean"]})
    files["contexts.yaml"] = "contexts:\n" + "".join(
        f"  - id: {k}\n    values: [{', '.join(f'{{id: {v}}}' for v in vs)}]\n" for k, vs in ORACLE_CONTEXTS.items())
    bases = {pp["edge"] for pp in params if not pp["context"] and not pp["visited"]}
    files["graphs/g.yaml"] = "id: g\nnodes:\n  - {id: a, entry: {weight: 1}}\n" + "".join(
        f"  - {{id: {n}}}\n" for n in NODES[1:4]) + "  - {id: win, outcome: success}\nedges:\n" + "".join(
        f"  - {{id: {e}, from: {s}, to: {t}" + ("}\n" if e in bases else ", p: {mean: 0.1, stdev: 0.0}}\n")
        for e, s, t in EDGES)
    for pp in params:
        files[f"parameters/{pp['id']}.yaml"] = param(
            pp["id"], pp["edge"], pp["mean"], 0.0, context=", ".join(f"{k}: {v}" for k, v in pp["context"].items()),
            visited=", ".join(pp["visited"]))
    oracle_params = params + [{"id": "", "edge": e, "context": {}, "visited": [], "mean": 0.1}
                              for e, _, _ in EDGES if e not in bases]
    findings = validate(load(DictSource(files)))
    graph_lines = files["graphs/g.yaml"].splitlines()
    flagged = {graph_lines[f.line - 1].split("id: ")[1].split(",")[0].rstrip("}") for f in findings
               if f.code == "outgoing-sum"}
    assert flagged == oracle_nodes_over_one(oracle_params)


@st.composite
def mutated_registries(draw):
    """GOOD with a few lines of its files deleted, duplicated or given another value."""
    files = {k[len("registry/"):]: textwrap.dedent(v).lstrip("\n") for k, v in GOOD.items()}
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(sorted(files)))
        lines = files[name].splitlines()
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "value"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif ":" in lines[i]:
            head = lines[i].split(":", 1)[0]
            lines[i] = head + ": " + draw(st.sampled_from(
                ["1.5", "-1", "[a, b]", "{x: 1}", "home", "''", "null", "true", "'e.signup.p.mean'", "[", "&a x"]))
        files[name] = "\n".join(lines) + "\n"
    return files


@settings(max_examples=60, deadline=None)
@given(mutated_registries())
def test_broken_registries_give_findings_never_exceptions(files):
    findings = validate(load(DictSource(files)))
    assert all(f.code in CODES and f.line >= 1 and f.column >= 1 for f in findings)
    assert all(f.path.startswith("registry/") for f in findings)


def test_rev_validates_a_revision_not_the_work_tree(tmp_path, cli):
    env = dict(os.environ, **GIT_ENV, HOME=str(tmp_path))

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True, capture_output=True)

    write_tree(tmp_path, GOOD)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "good")
    write_tree(tmp_path, BAD_TWO_FILES)
    git("commit", "-q", "-am", "bad")
    write_tree(tmp_path, GOOD)  # the work tree is good again, HEAD is not
    assert cli("validate", cwd=tmp_path).code == 0
    assert cli("validate", "--rev", "HEAD~1", cwd=tmp_path).code == 0
    result = cli("validate", "--rev", "HEAD", "--format", "json", cwd=tmp_path)
    assert result.code == 1
    assert [(f["path"], f["code"]) for f in json.loads(result.out)] == [
        ("registry/contexts.yaml", "shares-sum"), ("registry/parameters/signup/signup-google.yaml", "infeasible-stdev")]
