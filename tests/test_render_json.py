"""`--format json` text (render/format.json_text): the same JSON as json.dumps, laid out two levels deep."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from funnelcheck.render.format import JSON_DEPTH, json_text

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=30)


@given(values)
def test_the_text_is_the_same_json_as_json_dumps(value):
    text = json_text(value)
    assert text.endswith("\n")
    assert json.loads(text) == json.loads(json.dumps(value))


@given(st.dictionaries(st.text(max_size=5), st.lists(st.dictionaries(st.text(max_size=5), scalars, min_size=1),
                                                     min_size=1, max_size=4), min_size=1, max_size=3))
def test_each_row_is_one_line(value):
    """{key: [row, ...]}: one line per key and one per row, whatever a row holds (newlines are escaped)."""
    lines = json_text(value).splitlines()
    rows = sum(len(v) for v in value.values())
    assert len(lines) == 2 + sum(2 for _ in value) + rows
    for row_line in (line for line in lines if line.startswith("  " * JSON_DEPTH)):
        assert json.loads(row_line.strip().rstrip(","))  # a whole row on its line


def test_ascii_only_as_before():
    assert json_text({"name": "café ✓"}) == '{\n  "name": "caf\\u00e9 \\u2713"\n}\n'
