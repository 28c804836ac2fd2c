"""The reference notation (docs/formats.md): grammar, canonical form, error columns."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelcheck.reference import Reference, ReferenceError, format_reference, parse_reference

ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True)


@st.composite
def references(draw) -> Reference:
    edge = draw(ids)
    visited = draw(st.lists(ids, max_size=3, unique=True))
    context = draw(st.dictionaries(ids, ids, max_size=3))
    return Reference.make(edge, visited, context, draw(st.sampled_from(["mean", "stdev"])))


@st.composite
def spellings(draw, ref: Reference) -> str:
    """One of the many accepted spellings of `ref`: any order, quotes, colon form, spaces after commas."""
    parts = []
    if ref.visited:
        nodes = draw(st.permutations(ref.visited))
        sep = draw(st.sampled_from([",", ", ", ",  "]))
        parts.append(f"visited({sep.join(nodes)})")
    if ref.context:
        pairs = []
        for k, v in draw(st.permutations(ref.context)):
            quote = draw(st.sampled_from(["'", '"', ""]))
            pairs.append(f"{k}{draw(st.sampled_from(['=', ':']))}{quote}{v}{quote}")
        parts.append(f"context({draw(st.sampled_from([',', ', '])).join(pairs)})")
    if draw(st.booleans()):
        parts.reverse()
    return ".".join([f"e.{ref.edge}", *parts, f"p.{ref.field}"])


@settings(max_examples=200)
@given(references())
def test_parse_of_format_is_identity(ref):
    assert parse_reference(format_reference(ref)) == ref


@settings(max_examples=200)
@given(st.data())
def test_any_spelling_parses_to_the_same_reference_and_formats_idempotently(data):
    ref = data.draw(references())
    text = data.draw(spellings(ref))
    parsed = parse_reference(text)
    assert parsed == ref
    canonical = format_reference(parsed)
    assert format_reference(parse_reference(canonical)) == canonical


def test_canonical_form_sorts_and_quotes():
    text = "e.signup.context(device:mobile, channel=\"google\").visited(pricing, homepage).p.mean"
    assert format_reference(parse_reference(text)) == \
        "e.signup.visited(homepage,pricing).context(channel='google',device='mobile').p.mean"


@pytest.mark.parametrize("text, column, expected", [
    ("e.signup.context(channel=).p.mean", 26, "expected a context value"),
    ("e.signup.p", 11, "expected '.'"),
    ("e.signup.visited().p.mean", 18, "expected a node id"),
    ("e.Signup.p.mean", 3, "expected an edge id"),
    ("e.signup.context(=x).p.mean", 18, "expected a context key"),
    ("e.signup.p.median", 12, "expected 'mean' or 'stdev'"),
    ("e.signup.visited(a b).p.mean", 19, "expected ')' or ','"),
    ("e.signup.context(channel='a').context(device='b').p.mean", 30, "context(...) may be given only once"),
    ("e.signup.visited(a).visited(b).p.mean", 20, "visited(...) may be given only once"),
    ("e.signup.context(channel='a',channel='b').p.mean", 30, "context key 'channel' is given twice"),
    ("e.signup.context(channel='Google').p.mean", 26, "expected a context value"),
])
def test_syntax_errors_name_the_column_and_what_was_expected(text, column, expected):
    with pytest.raises(ReferenceError) as info:
        parse_reference(text)
    assert info.value.column == column
    assert str(info.value) == f"column {column}: {expected}"


def test_spaces_are_allowed_only_after_commas():
    assert parse_reference("e.x.visited(a,  b).p.mean").visited == ("a", "b")
    with pytest.raises(ReferenceError):
        parse_reference("e.x.visited( a).p.mean")
