"""The `funnelcheck format` fixer: canonical filter order and references, every other byte kept."""
from __future__ import annotations

import os
import stat

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelcheck.fixer import FormatError, format_text
from funnelcheck.reference import Reference, format_reference

from conftest import write_tree

PARAM = """\
# Signup rate, Google mobile   (a comment that must survive)
id: signup-google-mobile
edge: signup
context_filter: {device: mobile,  channel: google}   # aligned on purpose
visited_filter: [pricing, features]
value: {mean: 0.32, stdev: 0.06}
description: "e.signup.context(device:mobile, channel:google).visited(pricing, features).p.mean"
"""

FIXED = """\
# Signup rate, Google mobile   (a comment that must survive)
id: signup-google-mobile
edge: signup
context_filter: {channel: google,  device: mobile}   # aligned on purpose
visited_filter: [features, pricing]
value: {mean: 0.32, stdev: 0.06}
description: "e.signup.visited(features,pricing).context(channel='google',device='mobile').p.mean"
"""


def test_flow_filters_and_a_reference_are_canonicalised_in_place():
    assert format_text(PARAM, "parameter") == FIXED
    assert format_text(FIXED, "parameter") == FIXED


def test_block_filters_move_with_their_comments():
    text = ("id: a\nedge: signup\ncontext_filter:\n  device: mobile    # phones\n  # the paid channel\n"
            "  channel: google\nvisited_filter:\n  - pricing   # p\n  - features\nvalue: {mean: 0.3, stdev: 0.1}\n")
    assert format_text(text, "parameter") == (
        "id: a\nedge: signup\ncontext_filter:\n  # the paid channel\n  channel: google\n  device: mobile    # phones\n"
        "visited_filter:\n  - features\n  - pricing   # p\nvalue: {mean: 0.3, stdev: 0.1}\n")


def test_the_last_block_entry_without_a_final_newline():
    text = "id: a\nedge: e\nvisited_filter:\n- b\n- a"
    assert format_text(text, "parameter") == "id: a\nedge: e\nvisited_filter:\n- a\n- b"


@pytest.mark.parametrize("before, after", [
    ("note: e.signup.context(channel:google).p.mean\n", "note: e.signup.context(channel='google').p.mean\n"),
    ("note: 'e.signup.context(channel=\"google\").p.mean'\n", "note: 'e.signup.context(channel=''google'').p.mean'\n"),
    ('note: "e.signup.visited(b, a).p.stdev"\n', 'note: "e.signup.visited(a,b).p.stdev"\n'),
    ("refs: [e.s.context(b=c).p.mean, x]\n", "refs: [e.s.context(b='c').p.mean, x]\n"),
    ("refs: [!!str e.s.context(b=c).p.mean]\n", "refs: [!!str e.s.context(b='c').p.mean]\n"),
    ("note: e.signup.context(channel=).p.mean\n", "note: e.signup.context(channel=).p.mean\n"),  # not valid: left alone
    ("note: |\n  e.signup.visited(b,a).p.mean\n", "note: |\n  e.signup.visited(b,a).p.mean\n"),  # block scalars kept
])
def test_reference_scalars_keep_their_quoting_style(before, after):
    assert format_text(before, "graph") == after
    assert yaml.safe_load(format_text(before, "graph")) == yaml.safe_load(after)


def test_filters_are_only_sorted_in_parameter_files():
    text = "id: g\nvisited_filter: [b, a]\n"
    assert format_text(text, "graph") == text


def test_aliases_are_not_expanded_and_a_bom_is_kept():
    text = "\ufeffa: &r e.s.visited(b,a).p.mean\nb: *r\n"
    assert format_text(text, "graph") == "\ufeffa: &r e.s.visited(a,b).p.mean\nb: *r\n"


def test_broken_yaml_is_an_error_not_a_rewrite():
    with pytest.raises(FormatError, match="^3:1: YAML syntax error"):
        format_text("id: a\nedge: [b\n", "parameter")


# --- the command ------------------------------------------------------------------------------

def test_the_command_fixes_in_place_and_follows_the_fixer_exit_convention(tmp_path, cli):
    write_tree(tmp_path, {"registry/parameters/signup/signup-google-mobile.yaml": PARAM,
                          "registry/parameters/signup/signup-base.yaml": "id: signup-base\nedge: signup\n",
                          ".github/workflows/ci.yml": "note: e.s.visited(b, a).p.mean\nvisited_filter: [b, a]\n"})
    target = tmp_path / "registry/parameters/signup/signup-google-mobile.yaml"
    os.chmod(target, 0o640)
    untouched = tmp_path / "registry/parameters/signup/signup-base.yaml"
    before = untouched.stat().st_mtime_ns
    result = cli("format", cwd=tmp_path)
    assert (result.code, result.out) == (1, "reformatted registry/parameters/signup/signup-google-mobile.yaml\n")
    assert target.read_text() == FIXED
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert untouched.stat().st_mtime_ns == before
    assert (tmp_path / ".github/workflows/ci.yml").read_text().startswith("note: e.s.visited(b, a)")
    assert cli("format", cwd=tmp_path).code == 0
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_the_command_takes_file_names_and_ignores_files_outside_the_registry(tmp_path, cli):
    write_tree(tmp_path, {"registry/parameters/a.yaml": "id: a\nedge: e\nvisited_filter: [b, a]\n",
                          "registry/parameters/b.yaml": "id: b\nedge: e\nvisited_filter: [b, a]\n",
                          "other.yaml": "visited_filter: [b, a]\n"})
    result = cli("format", "registry/parameters/a.yaml", "other.yaml", cwd=tmp_path)
    assert result.code == 1
    assert (tmp_path / "registry/parameters/a.yaml").read_text().endswith("[a, b]\n")
    assert (tmp_path / "registry/parameters/b.yaml").read_text().endswith("[b, a]\n")
    assert (tmp_path / "other.yaml").read_text() == "visited_filter: [b, a]\n"
    assert cli("format", "registry/parameters/nope.yaml", cwd=tmp_path).code == 2


def test_the_command_reports_a_file_it_cannot_read(tmp_path, cli):
    write_tree(tmp_path, {"registry/parameters/a.yaml": "id: a\nedge: [e\n"})
    result = cli("format", cwd=tmp_path)
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("registry/parameters/a.yaml: cannot format: 3:1: YAML syntax error")
    assert (tmp_path / "registry/parameters/a.yaml").read_text() == "id: a\nedge: [e\n"


def test_a_symlink_is_not_written_through(tmp_path, cli):
    write_tree(tmp_path, {"outside.yaml": "id: a\nedge: e\nvisited_filter: [b, a]\n", "registry/contexts.yaml": "contexts: []\n"})
    (tmp_path / "registry/parameters").mkdir()
    os.symlink(tmp_path / "outside.yaml", tmp_path / "registry/parameters/a.yaml")
    assert cli("format", cwd=tmp_path).code == 0
    assert (tmp_path / "outside.yaml").read_text().endswith("[b, a]\n")


# --- properties -------------------------------------------------------------------------------

ids = st.sampled_from(["home", "pricing", "features", "signup", "blog"])
keys = st.sampled_from(["channel", "device", "browser", "utm_source"])


@st.composite
def spelled_references(draw):
    """A reference and one of its many non-canonical spellings."""
    visited = draw(st.lists(ids, unique=True, max_size=3))
    context = draw(st.dictionaries(keys, st.sampled_from(["google", "mobile", "none"]), max_size=3))
    ref = Reference.make("signup", visited, context, draw(st.sampled_from(["mean", "stdev"])))
    sep = lambda: draw(st.sampled_from([",", ", "]))  # noqa: E731
    parts = []
    if visited:
        nodes = draw(st.permutations(visited))
        parts.append("visited(" + "".join((sep() if i else "") + n for i, n in enumerate(nodes)) + ")")
    if context:
        pairs = draw(st.permutations(list(context.items())))
        quote = draw(st.sampled_from(["'", '"', ""]))
        colon = draw(st.sampled_from(["=", ":"]))
        parts.append("context(" + "".join((sep() if i else "") + f"{k}{colon}{quote}{v}{quote}"
                                          for i, (k, v) in enumerate(pairs)) + ")")
    if draw(st.booleans()):
        parts.reverse()
    return ref, ".".join(["e.signup"] + parts + ["p", ref.field])


@settings(max_examples=60, deadline=None)
@given(spelled=spelled_references(), visited=st.lists(ids, unique=True, max_size=4),
       context=st.dictionaries(keys, st.sampled_from(["google", "mobile"]), max_size=4), flow=st.booleans())
def test_formatting_is_canonical_idempotent_and_keeps_the_data(spelled, visited, context, flow):
    ref, text = spelled
    quoted = text.replace('"', '\\"')
    lines = ["# keep me", "id: p", "edge: signup"]
    if context:
        lines += ["context_filter: {" + ", ".join(f"{k}: {v}" for k, v in context.items()) + "}"] if flow else \
            ["context_filter:"] + [f"  {k}: {v}   # {k}" for k, v in context.items()]
    if visited:
        lines += [f"visited_filter: [{', '.join(visited)}]"] if flow else ["visited_filter:"] + [f"  - {n}" for n in visited]
    lines += [f'description: "{quoted}"', "value: {mean: 0.3, stdev: 0.1}   # the end"]
    source = "\n".join(lines) + "\n"
    out = format_text(source, "parameter")
    data = yaml.safe_load(out)
    assert data["description"] == format_reference(ref)
    assert list(data.get("context_filter") or {}) == sorted(context)
    assert data.get("context_filter", {}) == context
    assert data.get("visited_filter", []) == sorted(visited)
    assert format_text(out, "parameter") == out
    out_lines = out.splitlines()
    assert out_lines[:3] == lines[:3] and out_lines[-1] == lines[-1]  # untouched lines stay byte for byte
    if context and not flow:  # each block entry moved with its own comment
        assert [line for line in out_lines if line.startswith("  ") and "#" in line] == [
            f"  {k}: {context[k]}   # {k}" for k in sorted(context)]
    if context and flow:
        assert "context_filter: {" + ", ".join(f"{k}: {context[k]}" for k in sorted(context)) + "}" in out_lines
