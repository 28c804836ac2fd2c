"""`funnelcheck resolve` on the example registry and on bad input."""
from __future__ import annotations

import json

from conftest import EXAMPLE

SEED_REF = "e.signup.visited(pricing).context(channel='google',device='mobile').p.mean"


def test_resolve_json_shape_on_the_example_registry(cli):
    r = cli("resolve", SEED_REF, "--registry", EXAMPLE, "--format", "json")
    assert r.code == 0, r
    data = json.loads(r.out)
    for key in ("reference", "value", "field", "parameter_id", "file", "tier", "partial", "candidates"):
        assert key in data
    assert data["reference"] == SEED_REF
    assert (data["value"], data["parameter_id"], data["tier"], data["partial"]) == (0.32, "signup-google-mobile", "exact", False)
    assert data["file"].endswith("parameters/signup/signup-google-mobile.yaml")
    assert data["candidates"][0]["parameter_id"] == "signup-google-mobile"


def test_resolve_prints_the_canonical_form_and_explains(cli):
    r = cli("resolve", "e.signup.context(device:mobile, channel=google).p.stdev", "--registry", EXAMPLE, "--explain")
    assert r.code == 0, r
    first = r.out.splitlines()[0]
    assert first == "e.signup.context(channel='google',device='mobile').p.stdev = 0.06"
    assert "winner" in r.out and "needs visited features" in r.out


def test_stdev_field_and_fallback_to_base(cli):
    r = cli("resolve", "e.checkout.context(device='desktop',browser='safari').p.mean", "--registry", EXAMPLE, "--format", "json")
    data = json.loads(r.out)
    assert (data["parameter_id"], data["value"], data["tier"], data["partial"]) == ("checkout-base", 0.55, "base", True)


def test_syntax_error_is_one_line_with_the_column(cli):
    r = cli("resolve", "e.signup.context(channel=).p.mean", "--registry", EXAMPLE)
    assert r.code == 2
    assert "column 26: expected a context value" in r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_unknown_edge_exits_1(cli):
    r = cli("resolve", "e.nowhere.p.mean", "--registry", EXAMPLE)
    assert r.code == 1
    assert "unknown edge 'nowhere'" in r.out


def test_missing_registry_folder_is_exit_2(cli, tmp_path):
    r = cli("resolve", "e.x.p.mean", "--registry", tmp_path / "nope")
    assert r.code == 2
    assert "registry folder not found" in r.err


def test_broken_registry_refuses_to_resolve(cli, tree):
    root = tree({"registry/contexts.yaml": "contexts: [\n"})
    r = cli("resolve", "e.x.p.mean", "--registry", root / "registry")
    assert r.code == 1
    assert "contexts.yaml:2:1" in r.err
